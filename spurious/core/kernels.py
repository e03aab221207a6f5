"""The one cache of compiled kernels: per owner object (a problem), keyed by what was compiled.

Kept here, not on the owner, so a user's problem object is never written to; an entry goes when
its owner is garbage-collected."""
from __future__ import annotations

import weakref
from typing import Callable

_CACHE: dict[int, dict] = {}


def compiled(owner, key: tuple, build: Callable[[], Callable]) -> Callable:
    """The kernel `build()` made for (owner, key), built on first use."""
    ident = id(owner)
    entry = _CACHE.get(ident)
    if entry is None:
        entry = _CACHE[ident] = {}
        weakref.finalize(owner, _CACHE.pop, ident, None)
    if key not in entry:
        entry[key] = build()
    return entry[key]


def cached_kernels(owner) -> int:
    """How many kernels are cached for owner (for tests)."""
    return len(_CACHE.get(id(owner), {}))
