"""Same science, new house: run every built-in study, and compare two sets of stores run by two
versions of the code on the same seeds.

    # the old code (e.g. a checkout of the previous commit on PYTHONPATH), then the new one
    PYTHONPATH=/path/to/old python benchmarks/same_science.py run BEFORE_DIR --with-2018-cpu
    python benchmarks/same_science.py run AFTER_DIR --with-2018-cpu
    python benchmarks/same_science.py compare BEFORE_DIR AFTER_DIR

`run` calls the `spurious` command (`python -m spurious`, so PYTHONPATH picks the version) once per
built-in study and size, each into its own store OUT_DIR/NAME-SIZE.db. `compare` pairs the stores
with the same file name and reads them with sqlite3 alone, so it does not depend on either
version's store code. Landscape studies: every run's status, class, Morse index, loss and steps;
each problem's families as (class, Morse index, loss, count); and the partition of runs into
families up to relabelling. Experiment studies (and landscape cells): each cell's stored result,
numbers to a relative tolerance, wall-clock timings left out. Problems are matched by their
position in the study and cells by their index, not by keys, since keys are digests of settings
whose spelling may change while the science does not.

Prints one line per study (same / N differences) and the first differences; exits 1 if any.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

SHOWN = 8  # differences printed per study


# -- reading a store ----------------------------------------------------------------------------------
class StoreError(Exception):
    """A store that cannot be compared (missing table or column): reported as a difference."""


def connect(path: Path) -> sqlite3.Connection:
    # read-only: a reader beside a running study, never a writer
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def select(conn: sqlite3.Connection, table: str, wanted: list[str], where: str = "", args=()) -> list[dict]:
    have = columns(conn, table)
    if not have:
        raise StoreError(f"no table {table!r}")
    missing = [c for c in wanted if c not in have]
    if missing:
        raise StoreError(f"table {table!r} has no column {', '.join(missing)}")
    quoted = ", ".join(f'"{c}"' for c in wanted)
    rows = conn.execute(f"SELECT {quoted} FROM {table} {where}", args).fetchall()
    return [dict(zip(wanted, row)) for row in rows]


def studies(conn: sqlite3.Connection) -> dict[str, dict]:
    return {row["key"]: row for row in select(conn, "studies", ["id", "key", "kind"])}


def problems_by_key(conn, study_id) -> dict[str, dict]:
    rows = select(conn, "problems", ["key", "position", "name", "params"], "WHERE study_id = ?", (study_id,))
    return {r["key"]: r for r in rows}


def run_rows(conn, study_id, positions: dict[str, int]) -> dict[tuple, dict]:
    """(problem position, seed, run) -> the run's row, with `family` = its family id or None."""
    rows = select(conn, "runs", ["problem_key", "seed", "run", "cell", "status", "class", "morse_index",
                                 "loss", "steps"] + (["family"] if "family" in columns(conn, "runs") else
                                                     ["cell_family"]), "WHERE study_id = ?", (study_id,))
    if rows and "family" not in rows[0]:
        # older layout: a run names its cell's local family; family_members maps that to the merged family
        members = {(m["cell"], m["local"]): m["family"] for m in
                   select(conn, "family_members", ["cell", "local", "family"], "WHERE study_id = ?", (study_id,))}
        for r in rows:
            local = r.pop("cell_family")
            r["family"] = None if local is None or local < 0 else members.get((r["cell"], local))
    out = {}
    for r in rows:
        if r["problem_key"] not in positions:
            raise StoreError(f"run of unknown problem {r['problem_key']!r}")
        out[(positions[r["problem_key"]], r["seed"], r["run"])] = r
    return out


def family_rows(conn, study_id, positions: dict[str, int]) -> dict[int, list[dict]]:
    rows = select(conn, "families", ["problem_key", "id", "class", "morse_index", "loss", "count"],
                  "WHERE study_id = ?", (study_id,))
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault(positions.get(r["problem_key"], -1), []).append(r)
    return out


def cell_rows(conn, study_id) -> dict[int, dict]:
    rows = select(conn, "cells", ["idx", "kind", "problem_key", "seed", "first_run", "runs", "result"],
                  "WHERE study_id = ?", (study_id,))
    return {r["idx"]: r for r in rows}


# -- comparing values ------------------------------------------------------------------------------------
def close(a, b, rtol: float, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_timing(key: str) -> bool:
    """Wall-clock fields, which differ between any two runs."""
    return key == "seconds" or key.endswith("_seconds")


def json_differences(a, b, rtol: float, atol: float, path: str = "") -> list[str]:
    """Paths where two JSON values differ (numbers to tolerance; timings skipped)."""
    where = path or "(top)"
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            if is_timing(str(key)):
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append(f"{sub}: only before")
            elif key not in a:
                out.append(f"{sub}: only after")
            else:
                out.extend(json_differences(a[key], b[key], rtol, atol, sub))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} before, {len(b)} after"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(json_differences(x, y, rtol, atol, f"{path}[{i}]"))
        return out
    if (is_number(a) or a is None) and (is_number(b) or b is None) and (a is not None or b is not None):
        return [] if close(a, b, rtol, atol) else [f"{where}: {a!r} before, {b!r} after"]
    return [] if a == b else [f"{where}: {a!r} before, {b!r} after"]


def same_partition(before: dict, after: dict) -> list[str]:
    """Whether two labellings of the same items give the same partition, up to relabelling (an
    unlabelled item, None, must stay unlabelled)."""
    out = []
    for item in sorted(before, key=str):
        if (before[item] is None) != (after.get(item) is None):
            out.append(f"run {item}: family {before[item]} before, {after.get(item)} after")

    def blocks(labels: dict) -> dict:
        grouped: dict = {}
        for item, label in labels.items():
            if label is not None:
                grouped.setdefault(label, set()).add(item)
        return {label: frozenset(items) for label, items in grouped.items()}

    blocks_b, blocks_a = blocks(before), blocks(after)
    for (mine, other, name, other_labels) in ((blocks_b, set(blocks_a.values()), "before", after),
                                              (blocks_a, set(blocks_b.values()), "after", before)):
        for label, block in sorted(mine.items(), key=lambda kv: str(kv[0])):
            if block not in other:
                spread: dict = {}
                for item in block:
                    spread[other_labels.get(item)] = spread.get(other_labels.get(item), 0) + 1
                where = ", ".join(f"{n} in {l}" for l, n in sorted(spread.items(), key=lambda kv: str(kv[0])))
                out.append(f"family {label} {name} ({len(block)} runs) is not one family "
                           f"{'after' if name == 'before' else 'before'}: {where}")
    return out


# -- comparing stores ----------------------------------------------------------------------------------
def compare_landscape(before, after, b_id, a_id, rtol, atol) -> list[str]:
    out = []
    b_problems, a_problems = problems_by_key(before, b_id), problems_by_key(after, a_id)
    b_pos = {k: p["position"] for k, p in b_problems.items()}
    a_pos = {k: p["position"] for k, p in a_problems.items()}
    b_at = {p["position"]: p for p in b_problems.values()}
    a_at = {p["position"]: p for p in a_problems.values()}
    for position in sorted(set(b_at) | set(a_at)):
        if position not in a_at or position not in b_at:
            out.append(f"problem {position}: only {'before' if position in b_at else 'after'}")
            continue
        pb, pa = b_at[position], a_at[position]
        if pb["name"] != pa["name"]:
            out.append(f"problem {position}: {pb['name']} before, {pa['name']} after")
        params_b, params_a = json.loads(pb["params"]), json.loads(pa["params"])
        # the new code may spell out defaults the old one left implicit: only shared keys must agree
        for key in sorted(set(params_b) & set(params_a)):
            out.extend(f"problem {position} ({pb['key']}) params {d}"
                       for d in json_differences(params_b[key], params_a[key], rtol, 0.0, key))

    runs_b, runs_a = run_rows(before, b_id, b_pos), run_rows(after, a_id, a_pos)
    label = lambda k: f"problem {k[0]} ({b_at.get(k[0], a_at.get(k[0], {})).get('key', '?')}) seed {k[1]} run {k[2]}"
    for key in sorted(set(runs_b) | set(runs_a)):
        if key not in runs_a or key not in runs_b:
            out.append(f"{label(key)}: only {'before' if key in runs_b else 'after'}")
            continue
        rb, ra = runs_b[key], runs_a[key]
        for field in ("status", "class", "morse_index", "steps"):
            if rb[field] != ra[field]:
                out.append(f"{label(key)}: {field} {rb[field]!r} before, {ra[field]!r} after")
        if not close(rb["loss"], ra["loss"], rtol, atol):
            out.append(f"{label(key)}: loss {rb['loss']!r} before, {ra['loss']!r} after")

    fam_b, fam_a = family_rows(before, b_id, b_pos), family_rows(after, a_id, a_pos)
    for position in sorted(set(fam_b) | set(fam_a)):
        order = lambda f: (str(f["class"]), -1 if f["morse_index"] is None else f["morse_index"],
                           math.inf if f["loss"] is None else f["loss"])
        lb = sorted(fam_b.get(position, []), key=order)
        la = sorted(fam_a.get(position, []), key=order)
        where = f"problem {position} families"
        if len(lb) != len(la):
            out.append(f"{where}: {len(lb)} before, {len(la)} after")
            continue
        for fb, fa in zip(lb, la):
            if (fb["class"], fb["morse_index"], fb["count"]) != (fa["class"], fa["morse_index"], fa["count"]) \
                    or not close(fb["loss"], fa["loss"], rtol, atol):
                out.append(f"{where}: ({fb['class']}, index {fb['morse_index']}, loss {fb['loss']!r}, "
                           f"count {fb['count']}) before, ({fa['class']}, index {fa['morse_index']}, "
                           f"loss {fa['loss']!r}, count {fa['count']}) after")

    for position in sorted({k[0] for k in runs_b}):
        shared = [k for k in runs_b if k[0] == position and k in runs_a]
        out.extend(f"problem {position} partition: {d}" for d in
                   same_partition({k: runs_b[k]["family"] for k in shared}, {k: runs_a[k]["family"] for k in shared}))
    return out


def compare_cells(before, after, b_id, a_id, rtol, atol) -> list[str]:
    out = []
    cells_b, cells_a = cell_rows(before, b_id), cell_rows(after, a_id)
    for idx in sorted(set(cells_b) | set(cells_a)):
        if idx not in cells_a or idx not in cells_b:
            out.append(f"cell {idx}: only {'before' if idx in cells_b else 'after'}")
            continue
        cb, ca = cells_b[idx], cells_a[idx]
        for field in ("kind", "seed", "first_run", "runs"):
            if cb[field] != ca[field]:
                out.append(f"cell {idx}: {field} {cb[field]!r} before, {ca[field]!r} after")
        if (cb["result"] is None) != (ca["result"] is None):
            out.append(f"cell {idx}: {'no result' if cb['result'] is None else 'a result'} before, "
                       f"{'no result' if ca['result'] is None else 'a result'} after")
            continue
        if cb["result"] is not None:
            out.extend(f"cell {idx} result {d}" for d in
                       json_differences(json.loads(cb["result"]), json.loads(ca["result"]), rtol, atol))
    return out


def compare_stores(before_path: Path, after_path: Path, rtol: float, atol: float, experiment_atol: float):
    """[(study key, [differences])] for the studies in either store."""
    before, after = connect(before_path), connect(after_path)
    try:
        try:
            sb, sa = studies(before), studies(after)
        except StoreError as error:
            return [("(store)", [f"cannot read: {error}"])]
        out = []
        for key in sorted(set(sb) | set(sa)):
            if key not in sa or key not in sb:
                out.append((key, [f"study only {'before' if key in sb else 'after'}"]))
                continue
            kind = sb[key]["kind"]
            diffs = [] if sa[key]["kind"] == kind else [f"kind {kind!r} before, {sa[key]['kind']!r} after"]
            try:
                if kind == "landscape":
                    diffs += compare_landscape(before, after, sb[key]["id"], sa[key]["id"], rtol, atol)
                    diffs += compare_cells(before, after, sb[key]["id"], sa[key]["id"], rtol, atol)
                else:
                    diffs += compare_cells(before, after, sb[key]["id"], sa[key]["id"], rtol, experiment_atol)
            except StoreError as error:
                diffs.append(f"cannot compare: {error}")
            out.append((key, diffs))
        return out
    finally:
        before.close()
        after.close()


def compare(before_dir: Path, after_dir: Path, rtol: float, atol: float, experiment_atol: float) -> int:
    names_b = {p.name for p in before_dir.glob("*.db")}
    names_a = {p.name for p in after_dir.glob("*.db")}
    if not names_b and not names_a:
        print(f"no stores (*.db) in {before_dir} or {after_dir}")
        return 1
    differing = 0
    for name in sorted(names_b | names_a):
        if name not in names_a or name not in names_b:
            print(f"{name}: only in {before_dir if name in names_b else after_dir}")
            differing += 1
            continue
        for key, diffs in compare_stores(before_dir / name, after_dir / name, rtol, atol, experiment_atol):
            print(f"{key} ({name}): {'same' if not diffs else f'{len(diffs)} differences'}")
            for line in diffs[:SHOWN]:
                print(f"    {line}")
            if len(diffs) > SHOWN:
                print(f"    ... and {len(diffs) - SHOWN} more")
            differing += bool(diffs)
    print("same science" if not differing else f"{differing} studies or stores differ")
    return 1 if differing else 0


# -- running the built-in studies ----------------------------------------------------------------------------
def builtin_studies(cwd: Path) -> list[tuple[str, list[str]]]:
    """(name, sizes) of every built-in study, from `spurious study list`."""
    listing = subprocess.run([sys.executable, "-m", "spurious", "study", "list"], capture_output=True, text=True,
                             cwd=cwd)
    if listing.returncode != 0:
        raise SystemExit(f"spurious study list failed:\n{listing.stderr.strip()}")
    out = []
    for line in listing.stdout.splitlines():
        fields = re.split(r"\s{2,}", line.strip())
        if len(fields) < 3 or fields[0] == "study" or set(fields[0]) <= {"-"} or fields[1] not in (
                "landscape", "experiment", "exploration"):
            continue
        out.append((fields[0], [s.strip().rstrip("*") for s in fields[2].split(",")]))
    if not out:
        raise SystemExit(f"no studies found in the output of spurious study list:\n{listing.stdout}")
    return out


def run(out_dir: Path, sizes: list[str], with_2018_cpu: bool) -> int:
    # the commands run inside OUT_DIR: `python -m` puts the working directory first on sys.path, and a
    # checkout there would shadow the version PYTHONPATH names
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(name, size) for name, offered in builtin_studies(out_dir) for size in sizes if size in offered]
    if with_2018_cpu and ("safran-shamir-2018", "cpu") not in jobs:
        jobs.append(("safran-shamir-2018", "cpu"))
    failed = 0
    for name, size in jobs:
        store = out_dir / f"{name}-{size}.db"
        start = time.perf_counter()
        with open(out_dir / f"{name}-{size}.log", "w") as log:
            done = subprocess.run([sys.executable, "-m", "spurious", "study", "run", name, "--size", size,
                                   "--store", str(store)], stdout=log, stderr=subprocess.STDOUT, cwd=out_dir)
        status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode}, see {store.with_suffix('.log')})"
        print(f"{name} {size}: {time.perf_counter() - start:.0f} s, {status}", flush=True)
        failed += done.returncode != 0
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p_run = commands.add_parser("run", help="run every built-in study into OUT_DIR/NAME-SIZE.db")
    p_run.add_argument("out_dir", type=Path)
    p_run.add_argument("--sizes", default="quick", help="comma-separated sizes (default quick: what CI runs)")
    p_run.add_argument("--with-2018-cpu", action="store_true", help="also safran-shamir-2018 at size cpu")
    p_cmp = commands.add_parser("compare", help="compare the stores of two directories, file name by file name")
    p_cmp.add_argument("before_dir", type=Path)
    p_cmp.add_argument("after_dir", type=Path)
    p_cmp.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance of numbers (default 1e-9)")
    p_cmp.add_argument("--atol", type=float, default=1e-9, help="absolute tolerance of landscape losses (default 1e-9)")
    p_cmp.add_argument("--experiment-atol", type=float, default=0.0,
                       help="absolute tolerance of experiment results (default 0: relative only)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.out_dir, [s.strip() for s in args.sizes.split(",") if s.strip()], args.with_2018_cpu)
    for directory in (args.before_dir, args.after_dir):
        if not directory.is_dir():
            parser.error(f"{directory} is not a directory")
    return compare(args.before_dir, args.after_dir, args.rtol, args.atol, args.experiment_atol)


if __name__ == "__main__":
    sys.exit(main())
