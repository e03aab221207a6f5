"""The shipped landscapes, registered by name with typed parameters (see spurious.problems.registry).

A new landscape is shipped by writing its Problem in a module of this package and registering it
here; the contract test (tests/test_problem_contract.py) then covers it."""
from __future__ import annotations

from .conv import CNNRandomLabels
from .deep_linear import DeepLinearResidual
from .empirical import EmpiricalTeacherStudent
from .gelu_width import GeluRandomLabels
from .parity import ParityNetwork
from .patches import WeightSharingPatches
from .quadratic import QuadraticNetwork
from ..core.errors import SpuriousError
from .registry import Parameter, register
from .relu import ReLUTeacherStudent
from .residual import ResidualUnitRegression

_TEACHER_STUDENT_DOCS = {
    "teacher": "teacher neurons k", "student": "student neurons n", "dim": "input dimension d (default k)",
    "init_std": "start standard deviation (default 1/sqrt(d))",
    "teacher_weights": "teacher rows V, k x d (default V = I)",
}

#: a grid may sweep `extra` instead of `student`: student = teacher + extra
_EXTRA = (Parameter("extra", "int", default=None, doc="student = teacher + extra (a study grid's shorthand)",
                    symbol="n - k"),)
_SYMBOLS = {"teacher": "k", "student": "n", "dim": "d"}


def _student_from_extra(params: dict) -> dict:
    params = dict(params)
    extra = params.pop("extra")
    if "student" in params:
        raise SpuriousError("give student or extra, not both")
    params["student"] = params["teacher"] + extra
    ordered = {k: params[k] for k in ("teacher", "student")}
    ordered.update({k: v for k, v in params.items() if k not in ordered})
    return ordered


register("relu-teacher-student", ReLUTeacherStudent, docs=_TEACHER_STUDENT_DOCS, symbols=_SYMBOLS, shorthands=_EXTRA,
         expand=_student_from_extra, example={"teacher": 3, "student": 4},
         doc="two-layer ReLU teacher-student, exact population loss for Gaussian inputs (Safran & Shamir 2018)")
register("empirical-teacher-student", EmpiricalTeacherStudent, symbols={**_SYMBOLS, "samples": "N"},
         shorthands=_EXTRA, expand=_student_from_extra,
         docs={**_TEACHER_STUDENT_DOCS, "samples": "training samples N", "activation": "activation name",
               "data_seed": "seed of the training sample"},
         example={"teacher": 2, "student": 3, "samples": 50, "activation": "softplus"},
         doc="two-layer teacher-student on N Gaussian samples, any activation (finite-sample loss)")
register("quadratic-network", QuadraticNetwork,
         docs={"dim": "input dimension d", "hidden": "hidden units k", "samples": "training samples n",
               "weight_decay": "lambda in (lambda/2)||W||_F^2", "signs": "output weights a: 'balanced' (default: "
               "k/2 of each sign), 'positive' or a list of +-1", "targets": "'gaussian' (y ~ N(0, 1)) or 'planted' "
               "(y = sum_j (w*_j.x)^2)", "planted": "planted weights (k* x d) or a number k* of random ones",
               "data_seed": "seed of inputs, labels and planted weights", "init_std": "start standard deviation "
               "(default 1/sqrt(d))"},
         example={"dim": 3, "hidden": 4, "samples": 10, "weight_decay": 0.01},
         doc="one hidden layer of quadratic activations with fixed output signs (Du & Lee 2018)")
register("deep-linear-residual", DeepLinearResidual,
         docs={"dim": "width d of every layer", "depth": "layers L", "eigenvalues": "spectrum of the symmetric "
               "target Phi (default linspace(0.5, 2, d))", "negative": "set the smallest default eigenvalue to -0.5",
               "target": "the target Phi itself (d x d), instead of a spectrum", "data_seed": "seed of the rotation "
               "of Phi", "init_std": "start: identity plus this much N(0, 1) noise (default 0: the identity)"},
         example={"dim": 3, "depth": 3, "init_std": 0.1},
         doc="deep linear residual network fitting a symmetric target (Bartlett, Helmbold & Long 2018)")
register("residual-unit-regression", ResidualUnitRegression,
         docs={"architecture": "'residual' w.(x + V f(x)), 'plain' v.f(x) or 'decoupled' w.x + u.f(x), "
               "f = relu(U x + c)", "dim": "input dimension d", "width": "branch width m", "samples": "training "
               "samples N", "init": "'standard' or 'dead' (the branch is zero on every sample)",
               "noise_std": "label noise", "dead_bias": "c = -dead_bias in the dead start",
               "data_seed": "seed of the data and the target directions"},
         example={"dim": 3, "width": 4, "samples": 20},
         doc="one residual unit (or a plain network) vs the best linear predictor (Shamir 2018)")

# -- the finite-sample landscapes of the sample-based experiment studies -------------------------------
register("weight-sharing-patches", WeightSharingPatches, example={"patches": 3, "dim": 2, "samples": 30},
         docs={"architecture": "'shared' (one filter for every patch) or 'separate' (one per patch)",
               "c": "weight C of the low-frequency term h_1", "patches": "patches P", "dim": "patch dimension m",
               "samples": "training samples N", "filter_norm": "||u0|| of the teacher filter",
               "init_scale": "start N(0, init_scale^2 I/m)", "data_seed": "seed of the data and the teacher filter"},
         doc="filters on non-overlapping patches, target C h_1 + prod h_i (Shalev-Shwartz, Shamir & Shammah 2017)")
register("parity-network", ParityNetwork, example={"dim": 3, "width": 4, "samples": 16},
         docs={"dim": "input bits d", "width": "hidden ReLUs m (default 10 d)", "samples": "training points N",
               "data_seed": "seed of the subset S and the training points"},
         doc="one-hidden-layer ReLU network, hinge loss on the parity of a random subset (Shalev-Shwartz et al. 2017)")
register("gelu-random-labels", GeluRandomLabels, example={"dim": 3, "samples": 8, "width": 3},
         docs={"dim": "input dimension d", "samples": "training samples N", "width": "hidden units m",
               "data_seed": "seed of the inputs and labels"},
         doc="two-layer GELU network on random labels, both layers trained (Song et al. 2021)")
register("cnn-random-labels", CNNRandomLabels, example={"channels": 1, "samples": 6, "side": 4, "kernel": 2, "fc_width": 3},
         docs={"channels": "conv channels C (n1 = C x positions)", "samples": "training images N",
               "side": "image side", "kernel": "conv kernel size", "fc_width": "fully connected units",
               "filter_std": "start filters N(0, filter_std^2)", "data_seed": "seed of the images and labels"},
         doc="conv -> softplus -> fc -> softplus -> linear on random labels (Nguyen & Hein 2018)")
