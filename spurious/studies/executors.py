"""Executors: where cells run. The driver (spurious.studies.runner) hands an executor plain-data cells
and gets plain-data results back, and alone writes them to the store.

Contract for an executor (in-process here; a Ray executor plugs in the same way):

    executor.map(fn, cells, progress=None) -> iterator of (cell, result)

`fn` is a module-level function (spurious.studies.cells.execute_cell), picklable, called as
`fn(cell, device=..., progress=...)`; results may come back in any order, one pair per cell, as
soon as each cell finishes (so the driver commits it at once). `progress(cell, done, total)`, when
given, may be called with runs finished inside a cell; executors that cannot report that simply
never call it. An exception in a cell propagates out of `map` (cells already yielded stay stored).
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator


class Executor:
    name = "executor"

    def map(self, fn: Callable, cells: Iterable[dict],
            progress: Callable[[dict, int, int], None] | None = None) -> Iterator[tuple[dict, dict]]:
        raise NotImplementedError

    def close(self):
        pass


class InProcessExecutor(Executor):
    """Cells one after the other in this process (JAX uses the machine's cores inside each cell)."""

    name = "in-process"

    def __init__(self, device: str = "auto"):
        self.device = device

    def map(self, fn, cells, progress=None):
        for cell in cells:
            hook = None
            if progress is not None:
                hook = lambda done, total, cell=cell: progress(cell, done, total)
            yield cell, fn(cell, device=self.device, progress=hook)


EXECUTORS = {"in-process": InProcessExecutor}


def make_executor(name: str = "in-process", **options) -> Executor:
    from ..errors import SpuriousError

    if name not in EXECUTORS:
        raise SpuriousError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](**options)
