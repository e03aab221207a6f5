"""Ray executor against in-process: overhead on a small study, and speed-up with more worker processes.

    python benchmarks/bench_ray.py overhead [--study PATH|NAME] [--size SIZE] [--workers 1,2] [--repeat 2]
    python benchmarks/bench_ray.py tasks [--cells 300]
    python benchmarks/bench_ray.py speedup [--cells 48] [--sleep 1.0] [--workers 1,2,4,8,16]

overhead  runs one landscape study end to end through the command line (`spurious study run`, a fresh
          process each time: imports, Ray start, compilation, cells, commits), in-process and on a
          private local Ray instance with each --workers; cold (every process compiles its kernels)
          and warm (JAX's persistent compilation cache filled beforehand); checks that every Ray store
          equals the in-process one, bit for bit.
tasks     the cost of one Ray task round trip through the executor (no-op cells), after start-up.
speedup   a study whose cells wait instead of computing (as cells spread over many nodes would
          look to the driver): wall time through run_study (Ray start, tasks, commits to the store) as
          the number of local worker processes grows past this machine's cores.
Prints a markdown table per part; numbers in benchmarks/RAY_RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

SMALL = """
[study]
name = "bench-ray-small"
problem = "relu-teacher-student"
runs = 48
runs_per_cell = 6
seeds = [0]
[grid]
teacher = [4]
extra = [0, 1]
[optimizer]
step = 0.01
max_steps = 50000
newton_switch = false
"""


def _run(cmd, env) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def overhead(args):
    from spurious.store import Store

    folder = tempfile.mkdtemp(prefix="bench-ray-")
    target = args.study
    if target is None:
        target = os.path.join(folder, "small.toml")
        with open(target, "w") as fh:
            fh.write(SMALL)
    size = ["--size", args.size] if args.size else []
    base = [sys.executable, "-m", "spurious", "study", "run", target, *size, "--no-report", "--quiet",
            "--device", "cpu"]
    modes = [("in-process", [])] + [(f"ray, {w} worker{'s' * (w > 1)}", ["--executor", "ray", "--workers", str(w)])
                                    for w in args.workers]
    rows = []
    for cache in ("cold", "warm"):
        env = dict(os.environ)
        if cache == "warm":
            env.update(JAX_COMPILATION_CACHE_DIR=os.path.join(folder, "jax-cache"),
                       JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
            _run(base + ["--store", os.path.join(folder, "warm-up.db")], env)  # fills the cache
        for name, extra in modes:
            times = []
            for i in range(args.repeat):
                db = os.path.join(folder, f"{cache}-{_slug(name)}-{i}.db")
                times.append(_run(base + extra + ["--store", db], env))
                with Store(db) as store, Store(os.path.join(folder, f"{cache}-in-process-0.db")) as ref:
                    key = store.studies()[0]["key"]
                    same = store.content(key) == ref.content(key)
            rows.append((cache, name, min(times), same))
    print(f"\n### overhead: `{os.path.basename(target)}`{' --size ' + args.size if args.size else ''}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n")
    print("| compilation | executor | wall s (best of %d) | vs in-process | store equals in-process |" % args.repeat)
    print("|---|---|---:|---:|---|")
    for cache, name, seconds, same in rows:
        ref = next(s for c, n, s, _ in rows if c == cache and n == "in-process")
        print(f"| {cache} | {name} | {seconds:.1f} | {seconds - ref:+.1f} s ({seconds / ref:.2f}x) | "
              f"{'yes' if same else 'NO'} |")


def _noop(cell, device="cpu", progress=None):
    return {"index": cell["index"]}


def tasks(args):
    from spurious.studies.executors import RayExecutor

    started = time.perf_counter()
    executor = RayExecutor(device="cpu", workers=args.workers_tasks)
    executor.start()
    up = time.perf_counter() - started
    cells = [{"index": i} for i in range(args.cells)]
    list(executor.map(_noop, cells[:20]))  # workers started and warm
    t0 = time.perf_counter()
    list(executor.map(_noop, cells))
    per = (time.perf_counter() - t0) / len(cells)
    t1 = time.perf_counter()
    executor.close()
    down = time.perf_counter() - t1
    print(f"\n### tasks: {args.cells} no-op cells, {args.workers_tasks} workers, load {os.getloadavg()[0]:.1f}\n")
    print("| ray start (local) | per cell round trip | ray shutdown |\n|---:|---:|---:|")
    print(f"| {up:.1f} s | {per * 1e3:.1f} ms | {down:.1f} s |")


# -- speed-up: cells that wait ------------------------------------------------------------------------
def _register_sleeper():
    """An experiment whose cells sleep (registered in the driver and, by Ray's setup hook, in each worker)."""
    from spurious.experiments import EXPERIMENTS, Experiment, ExperimentReport, Verdict

    class Sleeper(Experiment):
        name = "bench-sleeper"
        title = "cells that wait (benchmark only)"
        claim = "-"
        sizes = ("quick",)

        def default_config(self, size="quick"):
            return {"cells": 96, "sleep": 1.0}

        def cells(self, config):
            return [{"i": i, "sleep": config["sleep"]} for i in range(config["cells"])]

        def run_cell(self, cell):
            time.sleep(cell["sleep"])
            return {"i": cell["i"], "pid": os.getpid()}

        def evaluate(self, config, results):
            return ExperimentReport(claim=self.claim, verdict=Verdict.REPRODUCED, summary="", table=[], figures=[])

    EXPERIMENTS[Sleeper.name] = Sleeper()


def speedup(args):
    from spurious.store import Store
    from spurious.studies import parse, run_study
    from spurious.studies.executors import InProcessExecutor, RayExecutor

    _register_sleeper()
    config = parse({"study": {"name": "bench-sleeper", "experiment": "bench-sleeper"},
                    "experiment": {"cells": args.cells, "sleep": args.sleep}}, size="quick")
    again = parse({"study": {"name": "bench-sleeper-again", "experiment": "bench-sleeper"},
                   "experiment": {"cells": args.cells, "sleep": args.sleep}}, size="quick")
    folder = tempfile.mkdtemp(prefix="bench-ray-")
    rows = []
    started = time.perf_counter()
    with Store(os.path.join(folder, "in-process.db")) as store:
        run_study(config, store, InProcessExecutor(device="cpu"))
    rows.append(("in-process", 1, 0.0, time.perf_counter() - started, time.perf_counter() - started))
    for w in args.workers:
        started = time.perf_counter()
        executor = RayExecutor(device="cpu", workers=w,
                               init_options={"runtime_env": {"worker_process_setup_hook": _register_sleeper}})
        with Store(os.path.join(folder, f"ray-{w}.db")) as store, executor:
            executor.start()
            up = time.perf_counter() - started
            outcome = run_study(config, store, executor)
            cells = time.perf_counter() - started - up
            assert outcome.cells_run == args.cells
            pids = {r["pid"] for _, r in store.experiment_results(config.key)}
            t0 = time.perf_counter()  # the same again, the workers now up (steady state)
            assert run_study(again, store, executor).cells_run == args.cells
            warm = time.perf_counter() - t0
            pids |= {r["pid"] for _, r in store.experiment_results(again.key)}
        rows.append((f"ray, {w} workers", len(pids), up, cells, warm))
    serial = args.cells * args.sleep
    print(f"\n### speed-up: {args.cells} cells of {args.sleep:g} s wait each ({serial:.0f} s of cell time), "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n")
    print("| executor | worker processes used | Ray start s | cells s (worker start-up, tasks, commits) | total s | "
          "speed-up, total | cells s, workers already up | speed-up, workers up |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    ref = rows[0][3]
    for name, used, up, cells, warm in rows:
        print(f"| {name} | {used} | {up:.1f} | {cells:.1f} | {up + cells:.1f} | {ref / (up + cells):.1f}x | "
              f"{warm:.1f} | {ref / warm:.1f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("overhead")
    p.add_argument("--study", default=None, help="a study file or built-in name (default: a small 8-cell study)")
    p.add_argument("--size", default=None)
    p.add_argument("--workers", default="1,2", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--repeat", type=int, default=2)
    p = sub.add_parser("tasks")
    p.add_argument("--cells", type=int, default=300)
    p.add_argument("--workers", dest="workers_tasks", type=int, default=2)
    p = sub.add_parser("speedup")
    p.add_argument("--cells", type=int, default=96)
    p.add_argument("--sleep", type=float, default=1.0)
    p.add_argument("--workers", default="1,2,4,8,16", type=lambda s: [int(x) for x in s.split(",")])
    args = parser.parse_args()
    {"overhead": overhead, "tasks": tasks, "speedup": speedup}[args.part](args)


if __name__ == "__main__":
    main()
