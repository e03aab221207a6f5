"""Landscapes: each Problem supplies everything a stage needs (see base.py); the catalogue registers
the shipped ones by name, and the registry builds any of them, or a user's own, from plain data."""
from . import catalogue  # noqa: F401  (registers the shipped landscapes)
from .base import LossProblem, Problem
from .deep_linear import DeepLinearResidual
from .empirical import ACTIVATIONS, EmpiricalTeacherStudent
from .quadratic import ConvexTwinSolution, QuadraticNetwork, solve_convex_twin
from .registry import Entry, Parameter, absolute_spec, build, build_shared, entry, is_spec
from .relu import ReLUTeacherStudent
from .residual import ResidualUnitRegression

__all__ = ["Problem", "LossProblem", "ReLUTeacherStudent", "EmpiricalTeacherStudent", "ACTIVATIONS",
           "QuadraticNetwork", "ConvexTwinSolution", "solve_convex_twin", "DeepLinearResidual",
           "ResidualUnitRegression", "Entry", "Parameter", "absolute_spec", "build", "build_shared", "entry", "is_spec"]
