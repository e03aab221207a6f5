"""Engine vs a plain per-run NumPy gradient-descent loop, in one process, on shared starts.

    python benchmarks/bench_engine.py [--runs 1000] [--baseline-runs 10] [--sizes 6,20]

For each k = n: the engine optimizes and classifies `--runs` starts (compile time included);
the NumPy loop (benchmarks/numpy_baseline.py, what a researcher would write) runs the first
`--baseline-runs` of the same starts with the same 2018 protocol. Prints the time per classified
run of each, their ratio, and whether the shared runs got the same class (loss >= 1e-3 or not)
and the same final loss.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import spurious as sp  # noqa: E402
from numpy_baseline import gradient_descent  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--baseline-runs", type=int, default=10)
    parser.add_argument("--sizes", default="6,20")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"{'k=n':>4} {'engine runs':>11} {'engine s/run':>12} {'numpy runs':>10} {'numpy s/run':>11} "
          f"{'ratio':>7} {'same class':>10} {'max |dloss|':>11}")
    for k in (int(s) for s in args.sizes.split(",")):
        problem = sp.ReLUTeacherStudent(k, k)
        started = time.perf_counter()
        result = sp.run(problem, args.runs, seed=args.seed, device=args.device)
        engine = (time.perf_counter() - started) / args.runs

        shared = min(args.baseline_runs, args.runs)
        starts = sp.starts(problem, args.seed, np.arange(shared))
        started = time.perf_counter()
        baseline = [gradient_descent(w0, problem.teacher_weights) for w0 in starts]
        numpy_time = (time.perf_counter() - started) / shared
        base_loss = np.array([b[1] for b in baseline])
        engine_loss = result.analysis.loss[:shared]
        same = np.array_equal(base_loss >= 1e-3, engine_loss >= 1e-3)
        print(f"{k:>4} {args.runs:>11} {engine:>12.4f} {shared:>10} {numpy_time:>11.4f} "
              f"{numpy_time / engine:>6.1f}x {str(same):>10} {np.max(np.abs(base_loss - engine_loss)):>11.2e}",
              flush=True)


if __name__ == "__main__":
    main()
