"""Speed at scale on the CPU (issue 20): the 2021 protocol at n = k = 100 and the raw step at large k.

    python -u benchmarks/bench_scale.py protocol [--k 100] [--runs 500] [--seed 0] [--baseline-steps 200]
    python -u benchmarks/bench_scale.py step     [--k 100] [--pool 256] [--steps 20]

protocol: one `sp.run` of the 2021 protocol (step 5/k, stop at ||grad F||_F <= 1e-12, n = k = d,
          V = I): multistart (Gram-matrix angles, conjugate-gradient Newton finish on Hessian-vector
          products) and the analysis (MINRES polish, Lanczos spectra or isotypic spectra, classes,
          families up to symmetry). Prints the time of each stage, the peak resident memory, the
          classes and families, and, as the baseline in the same process, the rate of the previous
          gradient step (difference-form angles, one point at a time under vmap) on the same pool,
          with the time the same run-steps would have taken at that rate.
step:     run-steps per second of the engine's batched gradient step against the previous one, in
          a compiled loop of `steps` steps over a pool of random starts.
"""
from __future__ import annotations

import argparse
import math
import resource
import time
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np

import spurious as sp
from spurious.optimize import protocol
from spurious.stats import wilson_interval


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rate(problem, batch_fn, pool: int, steps: int, seed: int = 0) -> float:
    """Run-steps per second of `steps` gradient steps (step 5/k) of batch_fn's gradient over `pool` starts."""
    points = jnp.asarray(sp.starts(problem, seed, np.arange(pool)))
    step = 5.0 / problem.teacher
    loop = jax.jit(lambda x: jax.lax.fori_loop(0, steps, lambda i, x: x - step * batch_fn(x)[1], x))
    jax.block_until_ready(loop(points))
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        jax.block_until_ready(loop(points))
        best = min(best, time.perf_counter() - started)
    return pool * steps / best


def _rates(problem, pool: int, steps: int) -> tuple[float, float]:
    engine = _rate(problem, problem.loss_and_grad_batch, pool, steps)
    previous = _rate(problem, jax.vmap(problem.loss_and_grad), pool, steps)
    return engine, previous


def step(args):
    problem = sp.ReLUTeacherStudent(args.k, args.k)
    engine, previous = _rates(problem, args.pool, args.steps)
    print(f"k = n = d = {args.k}, pool {args.pool}, {args.steps} steps per call")
    print(f"  engine step (Gram angles, batch fallback)  {engine:.3e} run-steps/s")
    print(f"  previous step (difference angles, vmap)    {previous:.3e} run-steps/s   ratio {engine / previous:.2f}x")


def protocol_run(args):
    problem = sp.ReLUTeacherStudent(args.k, args.k)
    optimizer = protocol(problem, "2021")
    print(f"2021 protocol, n = k = d = {args.k} ({problem.size:,} parameters), {args.runs} runs, seed {args.seed}; "
          f"step {optimizer.step:.4g}, stop at ||grad F||_F <= {optimizer.grad_tol:g}", flush=True)
    started = time.perf_counter()
    last = [started]

    def progress(done, total):
        now = time.perf_counter()
        if now - last[0] >= 60 or done == total:
            last[0] = now
            print(f"  {now - started:7.0f} s  {done}/{total} runs finished", flush=True)

    endpoints = sp.multistart(problem, args.runs, seed=args.seed, optimizer=optimizer, progress=progress)
    engine_seconds = time.perf_counter() - started
    analysis = sp.analyze(problem, endpoints)
    total = time.perf_counter() - started
    steps = endpoints.steps
    print(f"engine   {engine_seconds:8.1f} s   ({steps.sum():.3e} run-steps; per run median {np.median(steps):.0f}, "
          f"max {steps.max()}; {int(endpoints.newton.sum())} finished by the Newton switch)")
    print(f"analysis {analysis.seconds:8.1f} s")
    print(f"total    {total:8.1f} s = {total / 60:.1f} min (target 60 min); peak RSS {_peak_mib():.0f} MiB")
    print("status:", dict(Counter(endpoints.status.tolist())))
    print("classes:", dict(Counter(analysis.cls.tolist())))
    unknown = int(np.sum(analysis.morse_index < 0))
    print(f"Morse index known for {len(analysis.cls) - unknown} of {len(analysis.cls)} endpoints")
    spurious = int(np.sum(analysis.loss >= 1e-3))
    low, high = wilson_interval(spurious, args.runs)
    print(f"loss >= 1e-3: {spurious}/{args.runs} = {100 * spurious / args.runs:.1f}% (95% interval "
          f"{100 * low:.1f}-{100 * high:.1f}%); at the global minimum: "
          f"{int(np.sum(analysis.cls == 'global_minimum'))}")
    print(f"{len(analysis.families)} families:")
    for family in analysis.families:
        print(f"  {family.cls:18s} runs {family.count:4d}  loss {family.loss:.10f}  index {family.morse_index:3d}  "
              f"lambda_min {family.lambda_min:.3e}  {family.isotropy}")
    pool = min(args.runs, 256)
    engine_rate, previous_rate = _rates(problem, pool, args.baseline_steps)
    print(f"baseline in this process, pool {pool}: engine step {engine_rate:.3e} run-steps/s, previous step "
          f"{previous_rate:.3e} ({engine_rate / previous_rate:.2f}x); the same {steps.sum():.3e} run-steps at the "
          f"previous rate: {steps.sum() / previous_rate / 60:.1f} min of gradient descent alone")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("protocol")
    run.add_argument("--k", type=int, default=100)
    run.add_argument("--runs", type=int, default=500)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--baseline-steps", type=int, default=20)
    run.set_defaults(handler=protocol_run)
    raw = commands.add_parser("step")
    raw.add_argument("--k", type=int, default=100)
    raw.add_argument("--pool", type=int, default=256)
    raw.add_argument("--steps", type=int, default=20)
    raw.set_defaults(handler=step)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
