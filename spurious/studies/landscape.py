"""The landscape between a stored study's minima (spurious.landscape, run over a study).

    spurious landscape explore safran-shamir-2018@table --store table.db --out graphs/

For every finished problem of the study with spurious minimum families, the family representatives
and the global minimum's family are explored (spurious.landscape.explore: rounds of batched nudged
elastic bands from each spurious family to the global minimum, index-1 saddles confirmed by descent
and certified in ball arithmetic where the problem allows). Each problem's network is committed to
the store in one transaction under the study's writer lock, so a killed exploration resumes with the
problems not yet done; re-running skips the problems already explored with the same families.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.errors import SpuriousError
from ..landscape import Network, explore
from ..problems import build
from ..store import Store
from ..transitions import Ascent, Band
from .certification import _under_lock

MINIMUM_CLASSES = ("global_minimum", "spurious_minimum", "local_minimum")


@dataclass(frozen=True)
class StudyLandscape:
    key: str
    explored: int  # problems explored by this invocation
    skipped: int  # already in the store
    seconds: float


def _label(family: dict) -> str:
    return f"family {family['id']} ({family['class'].replace('_', ' ')})"


def explore_study(store: Store, key: str, band: Band = Band(), all_pairs: bool = False, command: str = "",
                  on_problem: Callable[[str, Network, list], None] | None = None,
                  ascent: Ascent | None = Ascent(modes=2), single_ended: bool = False) -> StudyLandscape:
    """Explore every finished problem of study `key` that has at least one spurious (or local)
    minimum family and one other minimum family; refuses (SpuriousError, before the lock) a study
    with no such problem. ascent, single_ended: the single-ended search (spurious.landscape.explore). on_problem(problem_key, network, families) is called after each commit."""
    started = time.perf_counter()
    study = store.study(key)
    if study is None:
        raise SpuriousError(f"no study {key!r} in the store")
    if study["kind"] != "landscape":
        raise SpuriousError(f"study {key!r} is an experiment study: only landscape studies store minima to explore")
    work = []
    for row in store.problems(key):
        families = [f for f in store.families(key, row["key"]) if f["class"] in MINIMUM_CLASSES]
        targets = [f for f in families if f["class"] == "global_minimum"]
        if len(families) < 2 or len(families) == len(targets):
            continue
        problem = build(row["name"], row["params"], where=f"problem {row['key']}")
        target = min(targets or families, key=lambda f: f["loss"])
        ordered = [target] + [f for f in families if f is not target]
        work.append((row, problem, ordered))
    if not work:
        raise SpuriousError(f"study {key!r} has no finished problem with a spurious minimum and another minimum to "
                            f"join it to: nothing to explore")
    done = store.landscapes(key)
    pending = [(row, (problem, families)) for row, problem, families in work if row["key"] not in done]
    count = {"explored": 0}

    def act(token, row, item):
        problem, families = item
        minima = [(_label(f), np.asarray(f["representative"], dtype=float)) for f in families]
        network = explore(problem, minima, target=0, band=band, all_pairs=all_pairs, ascent=ascent,
                          single_ended=single_ended)
        store.write_landscape(key, token, row["key"], [[f["id"], f["representative"]] for f in families],
                              network.to_dict(), network.seconds)
        count["explored"] += 1
        if on_problem is not None:
            on_problem(row["key"], network, families)

    _under_lock(store, key, command, pending, act)
    return StudyLandscape(key, count["explored"], len(work) - len(pending), time.perf_counter() - started)
