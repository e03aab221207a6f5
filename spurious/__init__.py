"""spurious: where gradient descent ends on neural-network loss landscapes, and what each endpoint is.

    import spurious as sp
    problem = sp.ReLUTeacherStudent(teacher=10, student=10)
    result = sp.run(problem, runs=1000, seed=0)
    result.analysis.families[0]
"""
from .core import setup as _jax  # noqa: F401  (float64 before anything else touches JAX)
from .analyze import Analysis, Family, Tolerances, analyze, hessian_spectrum, polish
from .core.errors import NonSmoothPoint, SpuriousError
from .optimize import Endpoints, GradientDescent, multistart, starts
from .pipeline import RunResult, run
from .problems import EmpiricalTeacherStudent, LossProblem, Problem, ReLUTeacherStudent

from .core.version import __version__  # noqa: E402

__all__ = [
    "Analysis", "Endpoints", "EmpiricalTeacherStudent", "Family", "GradientDescent", "LossProblem",
    "NonSmoothPoint", "Problem", "ReLUTeacherStudent", "RunResult", "SpuriousError", "Tolerances",
    "analyze", "hessian_spectrum", "multistart", "polish", "run", "starts",
]
