"""Students wider than the teacher (n = k + 1, k + 2): the time of the table, and what the early
decisions save, each against a baseline run in the same process.

    python benchmarks/bench_overparameterized.py table    [--ks 6-19] [--extra 1] [--runs 1000] [--seed 0]
    python benchmarks/bench_overparameterized.py savings  [--ks 6,8,10] [--extra 1] [--runs 16] [--seed 0]

table:   the 2018 protocol at n = k + extra, engine and analysis (sp.run), per k: seconds, the share of
         runs ending at loss >= 1e-3 with its 95% interval, minima and saddles among them, how the runs
         ended (gradient criterion, stopped at the global value, capped) and the largest number of steps.
savings: the same runs twice, with the stop at the global value (the default) and followed to the
         2018 stop criterion (global_stop off); prints the run-steps and seconds of each, the share of
         run-steps the early decisions save, and checks run for run that the 2018 statistic (final loss
         >= 1e-3) and the class are the same, and that every run's descent was monotone.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import spurious as sp
from spurious.optimize import protocol
from spurious.stats import wilson_interval


def ks_of(text: str) -> list[int]:
    if "-" in text:
        lo, hi = (int(x) for x in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(x) for x in text.split(",")]


def table(args):
    total = 0.0
    print(f"{'k':>3} {'n':>3} {'runs':>5} {'seconds':>8} {'loss>=1e-3 % [95% CI]':>22} {'minima':>6} {'saddles':>7} "
          f"{'other':>5}  ended (grad/global/capped/rule)  max steps")
    for k in ks_of(args.ks):
        problem = sp.ReLUTeacherStudent(k, k + args.extra)
        started = time.perf_counter()
        result = sp.run(problem, args.runs, seed=args.seed)
        seconds = time.perf_counter() - started
        total += seconds
        e, a = result.endpoints, result.analysis
        high = a.loss >= 1e-3
        low, up = wilson_interval(int(high.sum()), args.runs)
        minima = int(np.sum(high & (a.cls == "spurious_minimum")))
        saddles = int(np.sum(high & (a.cls == "saddle")))
        ended = "/".join(str(int(np.sum(e.status == s))) for s in ("converged", "global", "not_converged"))
        print(f"{k:>3} {k + args.extra:>3} {args.runs:>5} {seconds:>8.1f} "
              f"{100 * high.mean():>7.1f} [{100 * low:4.1f}, {100 * up:4.1f}] {minima:>6} {saddles:>7} "
              f"{int(high.sum()) - minima - saddles:>5}  {ended}/{int(a.by_rule.sum())}  {int(e.steps.max())}", flush=True)
    print(f"total {total:.1f} s ({total / 60:.1f} min) for {len(ks_of(args.ks))} problems of {args.runs} runs")


def savings(args):
    early_steps = followed_steps = 0
    early_seconds = followed_seconds = 0.0
    same = True
    for k in ks_of(args.ks):
        problem = sp.ReLUTeacherStudent(k, k + args.extra)
        started = time.perf_counter()
        early = sp.run(problem, args.runs, seed=args.seed)
        t_early = time.perf_counter() - started
        started = time.perf_counter()
        followed = sp.run(problem, args.runs, seed=args.seed,
                          optimizer=protocol(problem, global_stop=False, max_steps=args.max_steps))
        t_followed = time.perf_counter() - started
        outcome = np.array_equal(early.analysis.loss >= 1e-3, followed.analysis.loss >= 1e-3)
        classes = np.array_equal(early.analysis.cls, followed.analysis.cls)
        monotone = bool(np.all(early.endpoints.monotone) and np.all(followed.endpoints.monotone))
        capped = int(np.sum(followed.endpoints.status == "not_converged"))
        same &= outcome and classes
        s_early, s_followed = int(early.endpoints.steps.sum()), int(followed.endpoints.steps.sum())
        early_steps += s_early
        followed_steps += s_followed
        early_seconds += t_early
        followed_seconds += t_followed
        print(f"k={k} n={k + args.extra}, {args.runs} runs: early {s_early:,} run-steps in {t_early:.1f} s, followed to "
              f"the stop criterion {s_followed:,} in {t_followed:.1f} s ({capped} capped at {args.max_steps:,}); saved "
              f"{1 - s_early / s_followed:.1%} of the run-steps, {t_followed / t_early:.1f}x the time; same 2018 outcome "
              f"run for run: {outcome}, same class: {classes}, monotone descent in every run: {monotone}", flush=True)
    print(f"all: early {early_steps:,} run-steps in {early_seconds:.1f} s, followed {followed_steps:,} in "
          f"{followed_seconds:.1f} s: {1 - early_steps / followed_steps:.1%} of the run-steps saved, "
          f"{followed_seconds / early_seconds:.1f}x; every outcome and class the same: {same}")
    return 0 if same else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("table", "savings"))
    parser.add_argument("--ks", default=None)
    parser.add_argument("--extra", type=int, default=1)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=3_000_000, help="savings: the cap of the followed runs")
    args = parser.parse_args(argv)
    if args.mode == "table":
        args.ks, args.runs = args.ks or "6-19", args.runs or 1000
        table(args)
        return 0
    args.ks, args.runs = args.ks or "6,8,10", args.runs or 16
    return savings(args)


if __name__ == "__main__":
    sys.exit(main())
