"""How numbers are shown in reports (display only: stored values are never rounded)."""
from __future__ import annotations

import math
import re

#: a loss this close to 0 is shown as 0: float64 round-off of a zero loss (a closed-form population
#: loss at a global minimum comes out as -8.9e-16 or 3e-17; the losses compared here are >= 1e-3)
LOSS_ZERO = 1e-12


def format_loss(value, digits: int | None = None) -> str:
    """A loss for display: '-' when missing, '0' when |value| < LOSS_ZERO, else `digits` significant
    digits, or by default six decimals (scientific notation below 1e-4)."""
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) < LOSS_ZERO:
        return "0"
    if digits is not None:
        return f"{value:.{digits}g}"
    return f"{value:.6f}" if abs(value) >= 1e-4 else f"{value:.1e}"


def is_loss(column: str) -> bool:
    """Whether an evidence-table column holds losses (its name says so: 'final loss max', 'min_loss')."""
    return "loss" in re.split(r"[^a-z]+", column.lower())


def format_cell(column: str, value) -> str:
    """One cell of an experiment's evidence table: losses by `format_loss`, other floats with 4
    significant digits."""
    if isinstance(value, float) and is_loss(column):
        return format_loss(value, digits=4)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
