"""Landscapes: each Problem supplies loss, gradient, Hessian, starts, global value and symmetry."""
from .base import LossProblem, Problem
from .empirical import ACTIVATIONS, EmpiricalTeacherStudent
from .relu import ReLUTeacherStudent

__all__ = ["Problem", "LossProblem", "ReLUTeacherStudent", "EmpiricalTeacherStudent", "ACTIVATIONS"]
