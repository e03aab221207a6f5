"""Published numbers that built-in studies are compared against.

Source: /work/shared/reference/relu-teacher-student.md, whose tables were rebuilt from the authors'
stored result files (ItaySafran/OneLayerGDconvergence for 2018, ItaySafran/Overparameterization for
2021); the printed papers may differ in the last digit.

- Safran & Shamir, "Spurious Local Minima are Common in Two-Layer ReLU Neural Networks",
  ICML 2018, arXiv:1712.08968: percent of 1000 gradient-descent runs ending with F >= 1e-3, number of
  families of such endpoints, and the lowest spurious value of F, for n = k and n = k + 1.
- Safran, Yehudai & Shamir, "The Effects of Mild Over-parameterization on the Optimization Landscape
  of Shallow ReLU Neural Networks", COLT 2021: percent of 500 runs ending at a spurious point, n = k.

Each entry is plain JSON data: its tables are keyed by the values of the problem parameters named in
"key", joined by commas ("6,7" for teacher 6, student 7), and apply only to problems whose parameters
paired in "equal" agree (the papers ran d = k). A study stores a snapshot of it with its configuration,
so its report needs nothing but the store.
"""
from __future__ import annotations

import copy

from ..core.errors import SpuriousError

_K = list(range(6, 21))

_SS18_SAME = [0.3, 5.5, 12.6, 21.8, 34.6, 45.5, 58.5, 73.0, 73.6, 80.3, 85.1, 89.7, 90.0, 93.4, 94.9]
_SS18_FAMILIES = [1, 1, 1, 2, 2, 3, 6, 4, 8, 9, 10, 10, 11, 28, 21]
_SS18_MIN_LOSS = [.025081, .023203, .021508, .020014, .018702, .017547, .016524, .015613, .014798, .014064,
                  .013400, .012796, .012245, .011740, .011276]
# n = k + 1: (6,7), (7,8), (9,10) produced no spurious endpoint; (20,21) was not run.
_SS18_PLUS_ONE = {6: 0.0, 7: 0.0, 8: 0.1, 9: 0.0, 10: 0.1, 11: 0.1, 12: 0.3, 13: 1.5, 14: 5.5, 15: 10.2,
                  16: 18.0, 17: 23.3, 18: 36.9, 19: 49.1}

_SYS21_SAME = [0.0, 5.4, 11.4, 22.2, 32.0, 47.4, 53.8, 67.0, 70.4, 78.0, 87.2, 90.2, 89.6, 94.4, 94.2]


def _key(k: int, n: int) -> str:
    return f"{k},{n}"


# The same authors measured the n = k fractions twice, with different step sizes and stopping rules.
# A report shows the other measurement beside a disagreement: it tells a fluke in one published
# number from a difference in our implementation.
_SS18_REPLICATION = {
    "source": "Safran & Shamir 2018", "runs": 1000,
    "protocol": "step 0.1, stop at max_i ||2 pi grad_i F|| <= 1e-9, starts N(0, 1/d)",
    "fraction": {_key(k, k): p / 100 for k, p in zip(_K, _SS18_SAME)},
}
_SYS21_REPLICATION = {
    "source": "Safran, Yehudai & Shamir 2021", "runs": 500,
    "protocol": "step 5/k, stop at ||grad F|| <= 1e-12, starts N(0, 1/k)",
    "fraction": {_key(k, k): p / 100 for k, p in zip(_K, _SYS21_SAME)},
}


PUBLISHED: dict[str, dict] = {
    "safran-shamir-2018": {
        "source": "Safran & Shamir, Spurious Local Minima are Common in Two-Layer ReLU Neural Networks, "
                  "ICML 2018 (arXiv:1712.08968); numbers rebuilt from the authors' result files "
                  "(ItaySafran/OneLayerGDconvergence)",
        "runs": 1000,
        "criterion": "final loss >= 1e-3",
        "key": ["teacher", "student"], "equal": [["dim", "teacher"]],
        "fraction": {**{_key(k, k): p / 100 for k, p in zip(_K, _SS18_SAME)},
                     **{_key(k, k + 1): p / 100 for k, p in _SS18_PLUS_ONE.items()}},
        "families": {_key(k, k): f for k, f in zip(_K, _SS18_FAMILIES)},
        "min_loss": {_key(k, k): v for k, v in zip(_K, _SS18_MIN_LOSS)},
        "replications": [_SYS21_REPLICATION],
    },
    "safran-yehudai-shamir-2021": {
        "source": "Safran, Yehudai & Shamir, The Effects of Mild Over-parameterization on the Optimization "
                  "Landscape of Shallow ReLU Neural Networks, COLT 2021; numbers rebuilt from the authors' "
                  "result files (ItaySafran/Overparameterization)",
        "runs": 500,
        "criterion": "final loss >= 1e-3",
        "key": ["teacher", "student"], "equal": [["dim", "teacher"]],
        "fraction": {_key(k, k): p / 100 for k, p in zip(_K, _SYS21_SAME)},
        "families": {},
        "min_loss": {},
        "replications": [_SS18_REPLICATION],
    },
}


def published(name: str) -> dict:
    """A copy of the published numbers `name` (plain JSON data)."""
    try:
        return copy.deepcopy(PUBLISHED[name])
    except KeyError:
        raise SpuriousError(f"unknown published data {name!r}: choose one of {', '.join(PUBLISHED)}") from None
