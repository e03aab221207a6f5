"""The driver of a study: plan its cells, skip the ones the store already holds, run the rest through
an executor, and commit each result in one transaction as it arrives.

    from spurious.studies import load_study, run_study
    from spurious.store import Store
    config = load_study("safran-shamir-2018", size="quick")
    run_study(config, Store("spurious.db"))

Safe to kill at any moment and to run again: a cell is in the store completely or not at all, and
a second run does only the missing cells (none, for a finished study). One writer per study: a
second driver on the same study stops with a clear message while readers keep working.

Where cells run is the executor's business (spurious.studies.executors: in-process, or one Ray task
per cell); whichever it is, only this driver writes the store, and only cells not yet stored are
handed to it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..core.errors import SpuriousError
from ..store import Store
from .config import StudyConfig
from .executors import Executor, InProcessExecutor
from .kinds import execute_cell, kind_of, merge_families, plan


@dataclass(frozen=True)
class StudyRun:
    key: str
    cells_total: int
    cells_before: int  # already in the store when this run started
    cells_run: int  # committed by this run
    seconds: float

    @property
    def complete(self) -> bool:
        return self.cells_before + self.cells_run >= self.cells_total


def _as_cell_families(cell: dict, result: dict) -> list[dict]:
    return [{**f, "cell": cell["index"], "local": f["id"], "seed": cell["seed"]} for f in result["families"]]


def _merged(store: Store, key: str, problem: dict, extra: list[dict] = ()) -> list[dict]:
    fams = store.cell_families(key, problem["key"]) + list(extra)
    return merge_families(problem["name"], problem["params"], problem["tolerances"], fams, problem["runs_total"])


def run_study(config: StudyConfig, store: Store, executor: Executor | None = None,
              progress: Callable[[int, int], None] | None = None, break_lock: bool = False,
              command: str = "", on_cell: Callable[[dict, dict, int, int], None] | None = None) -> StudyRun:
    """Run the cells of `config` that `store` does not hold yet. progress(done, total) counts runs
    (landscape studies) or cells (experiment studies) of this invocation; on_cell(cell, result,
    committed, pending) is called after each commit."""
    started = time.perf_counter()
    cells = plan(config)
    kind = kind_of(config)
    store.check_compatible(config.key, config.work_hash())
    key = config.key
    existing = store.study(key)
    if existing is not None and existing["cells_done"] >= len(cells):
        return StudyRun(key, len(cells), len(cells), 0, time.perf_counter() - started)
    executor = executor or InProcessExecutor(device=config.device)
    token = store.acquire(key, break_lock=break_lock, command=command)
    try:
        store.register(config.record(), config.problems(), cells)
        done = store.done_cells(key)
        for cell in cells:
            if cell["index"] in done and done[cell["index"]] != cell["key"]:
                raise SpuriousError(f"study {key!r}: stored cell {cell['index']} does not match the plan (written "
                                   "with other resolved settings, e.g. by another spurious version; use a new "
                                   "--store or study name)")
        pending = [c for c in cells if c["index"] not in done]
        problems = {p["key"]: p for p in store.problems(key)}
        missing: dict[str, set[int]] = {k: set() for k in problems}
        for c in pending:
            if "problem_key" in c:
                missing[c["problem_key"]].add(c["index"])
        # Problems complete in the store but without joined families (should not happen; repairs it).
        lacking = store.problems_missing_families(key)
        for pkey, problem in problems.items():
            if not missing[pkey] and pkey in lacking:
                store.write_families(key, token, pkey, _merged(store, key, problem))

        total = sum(kind.units(c) for c in pending)
        finished = 0

        def inner(cell, done_in_cell, total_in_cell):
            if progress is not None and done_in_cell < total_in_cell:
                progress(finished + done_in_cell, total)

        if progress is not None:
            progress(0, total)
        committed = 0
        for cell, result in executor.map(execute_cell, pending, progress=inner):
            families = None
            if "problem_key" in cell:  # a cell of one problem: join its families once all its cells are in
                pkey = cell["problem_key"]
                missing[pkey].discard(cell["index"])
                if not missing[pkey]:
                    families = _merged(store, key, problems[pkey], _as_cell_families(cell, result))
            if store.commit_cell(key, token, cell, result, families):
                committed += 1
            finished += kind.units(cell)
            if progress is not None:
                progress(finished, total)
            if on_cell is not None:
                on_cell(cell, result, committed, len(pending))
        return StudyRun(key, len(cells), len(done), committed, time.perf_counter() - started)
    finally:
        try:
            store.release(key, token)
        except Exception:  # the run's own error matters more
            pass
