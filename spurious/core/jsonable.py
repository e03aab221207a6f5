"""Plain JSON data: one canonical encoding (for hashes and the store) and one conversion of numbers."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np


def canonical_json(data) -> str:
    """Sorted keys, no spaces, no NaN: equal data gives equal text (hashed into keys)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(data) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


def number(x) -> float | int | None:
    """A JSON-safe number: ints stay ints, floats are floats, NaN and infinities are None."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


def numbers(values):
    """An array (or scalar) as nested lists of JSON-safe numbers, with None for NaN and infinities."""
    array = np.asarray(values)
    if array.ndim == 0:
        return number(array.item())
    return [numbers(v) for v in array] if array.ndim > 1 else [number(v) for v in array.tolist()]
