"""Small shared pieces of the landscape studies: convergence-rate fits, JSON-safe numbers, flat
config sections, and the classes and families of analyzed endpoints as plain data."""
from __future__ import annotations


import numpy as np

from ..core.jsonable import number, numbers


def num(x) -> float | None:
    """A JSON-safe float (None for NaN/inf)."""
    return number(float(x))


def nums(values) -> list:
    """A flat list of JSON-safe floats."""
    return numbers(np.asarray(values, dtype=np.float64).reshape(-1))


def flat(prefix: str, section: dict) -> dict:
    """{prefix_key: value}: configs stay flat, so a study file can override any single setting."""
    return {f"{prefix}_{k}": v for k, v in section.items()}


def section(config: dict, prefix: str) -> dict:
    """The settings of one part of a flat config: {key: value} for every prefix_key."""
    start = prefix + "_"
    return {k[len(start):]: v for k, v in config.items() if k.startswith(start)}


def classes_and_families(analysis) -> dict:
    """What spurious.analyze found, as plain data for a cell result: runs per class, and each family's
    class, Morse index, loss, size and number of symmetry zero modes left out of its spectrum."""
    return {"classes": analysis.counts(),
            "families": [{"class": f.cls, "morse_index": int(f.morse_index), "loss": num(f.loss),
                          "count": int(f.count), "zero_modes": int(f.zero_modes)} for f in analysis.families]}


def merge_classes(parts) -> dict[str, int]:
    """Runs per class summed over several analyses' `classes_and_families` outputs."""
    out: dict[str, int] = {}
    for part in parts:
        for cls, count in part["classes"].items():
            out[cls] = out.get(cls, 0) + count
    return out


def describe_classes(counts: dict[str, int]) -> str:
    return ", ".join(f"{cls} {count}" for cls, count in sorted(counts.items())) or "none"


def describe_families(families, limit: int = 6) -> str:
    """Families as 'class (index i) at loss L x count', largest first."""
    families = sorted(families, key=lambda f: -f["count"])
    text = "; ".join(f"{f['class']} (index {f['morse_index']}) at {f['loss']:.6g} x{f['count']}"
                     if f["loss"] is not None else f"{f['class']} x{f['count']}" for f in families[:limit])
    return text + (f"; {len(families) - limit} more" if len(families) > limit else "")


def fit_rate(steps, losses, floor: float = 1e-24, start: float = 1e-3) -> dict:
    """Classify the tail of a loss curve as a linear (geometric) or sublinear (power-law) rate.

    The fitted segment runs from the first point with loss <= start * loss[0] (past the initial
    transient) to the last point with loss >= floor (above the float64 round-off floor). Two models
    are fitted by least squares: log L = a - r t (linear convergence, rate r per step) and
    log L = a - p log t (sublinear, exponent p). The class is the model with the smaller residual.
    """
    t = np.asarray(steps, dtype=np.float64)
    L = np.asarray(losses, dtype=np.float64)
    ok = np.isfinite(L) & (L > 0)
    out = {"class": "undetermined", "rate": None, "exponent": None, "points": 0,
           "r2_linear": None, "r2_power": None}
    if not ok.all() or len(L) < 4:
        return out
    below = np.flatnonzero(L <= start * L[0])
    if not len(below):
        return out
    first = below[0]
    above = np.flatnonzero(L >= floor)
    last = above[-1] if len(above) else -1
    seg = np.arange(first, last + 1)
    seg = seg[t[seg] > 0]
    if len(seg) < 4:
        return out
    ts, ls = t[seg], np.log(L[seg])

    def r2(x):
        A = np.stack([np.ones_like(x), x], axis=1)
        coef, *_ = np.linalg.lstsq(A, ls, rcond=None)
        resid = ls - A @ coef
        total = np.sum((ls - ls.mean()) ** 2)
        return coef, (1.0 - np.sum(resid ** 2) / total) if total > 0 else 1.0

    lin, r2_lin = r2(ts)
    pw, r2_pow = r2(np.log(ts))
    out.update(points=int(len(seg)), r2_linear=float(r2_lin), r2_power=float(r2_pow),
               rate=float(-lin[1]), exponent=float(-pw[1]),
               segment=[float(ts[0]), float(ts[-1])])
    out["class"] = "linear" if r2_lin >= r2_pow else "sublinear"
    return out
