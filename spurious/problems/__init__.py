"""Landscapes: each Problem supplies loss, gradient, Hessian, starts, global value and symmetry."""
from .base import LossProblem, Problem
from .empirical import ACTIVATIONS, EmpiricalTeacherStudent
from .deep_linear import DeepLinearResidual
from .quadratic import ConvexTwinSolution, QuadraticNetwork, solve_convex_twin
from .relu import ReLUTeacherStudent
from .residual import ResidualUnitRegression

__all__ = ["Problem", "LossProblem", "ReLUTeacherStudent", "EmpiricalTeacherStudent", "ACTIVATIONS",
           "QuadraticNetwork", "ConvexTwinSolution", "solve_convex_twin", "DeepLinearResidual",
           "ResidualUnitRegression"]
