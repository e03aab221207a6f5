"""spurious: where gradient descent ends on neural-network loss landscapes, and what each endpoint is.

    import spurious as sp
    problem = sp.ReLUTeacherStudent(teacher=10, student=10)
    result = sp.run(problem, runs=1000, seed=0)
    result.analysis.families[0]

The names below are imported on first use (PEP 562), so that `import spurious.cli` does not start
JAX: the command line installs its signal handling first, and answers bad usage at once. Every
module that touches JAX imports spurious.core.setup itself (float64 before anything else).
"""
import importlib
import sys
import types

from .core.version import __version__

#: public name -> the module that defines it
_EXPORTS = {
    "Analysis": "analyze", "Family": "analyze", "Tolerances": "analyze", "analyze": "analyze",
    "hessian_spectrum": "analyze", "polish": "analyze",
    "NonSmoothPoint": "core.errors", "SpuriousError": "core.errors",
    "Endpoints": "optimize", "GradientDescent": "optimize", "descend": "optimize", "multistart": "optimize",
    "starts": "optimize",
    "RunResult": "pipeline", "run": "pipeline",
    "EmpiricalTeacherStudent": "problems", "LossProblem": "problems", "Problem": "problems",
    "ReLUTeacherStudent": "problems",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spurious' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """Importing the submodule spurious.analyze binds it as an attribute of the package; the name
    means the function, as it did when the package imported it eagerly."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
