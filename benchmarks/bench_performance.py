"""Performance figures of issue 7, each against a baseline run in the same process.

    python benchmarks/bench_performance.py raw      [--k 20] [--pool 1024] [--device cpu|gpu]
    python benchmarks/bench_performance.py table    [--runs 1000] [--ks 6-20] [--device ...]
    python benchmarks/bench_performance.py memory   [--k 6] [--runs 100000,1000000] [--max-steps 20]
    python benchmarks/bench_performance.py compaction [--k 20] [--runs 1000] [--repeat 2]
    python benchmarks/bench_performance.py profile  [--k 20] [--runs 1000] [--pool P]

raw:    run-steps per second of the engine's compiled GD loop at k = n = d, against a plain JAX
        version (vmap over runs, fixed-length fori_loop, arccos-based gradient, no compaction) and
        against the engine with its JAX step instead of the native kernel (SPURIOUS_NATIVE=off), and
        the fraction of the float64 limit: measured float64 matmul rate / 9e4 flop per run-step.
table:  end-to-end 2018 table (n = k, 2018 protocol, classification included), total time, against
        the per-run NumPy loop timed on a few runs of each k and scaled to the same run count.
memory: peak resident memory of one multistart call as the number of starts grows (the pool bounds
        the working set; only the R x n x d endpoint array grows with R). A step cap keeps it short.
profile: where the time of one sp.run goes, per compiled kernel (gradient descent by pool size,
        Newton tries, starts, losses) and the analysis, and how many kernels the call traced and
        the seconds of tracing, lowering and compiling (or loading from the disk cache) them.
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
import unittest.mock

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import spurious as sp  # noqa: E402
from spurious.core.setup import resolve_device  # noqa: E402
from spurious.optimize import _kernel  # noqa: E402

FLOP_PER_RUN_STEP_K20 = 9e4


def plain_jax_grad(W, V):
    norms_w, norms_v = jnp.linalg.norm(W, axis=1), jnp.linalg.norm(V, axis=1)

    def angles(A, B, na, nb):
        return jnp.arccos(jnp.clip((A @ B.T) / jnp.outer(na, nb), -1.0, 1.0))

    t_ww, t_wv = angles(W, W, norms_w, norms_w), angles(W, V, norms_w, norms_v)
    off = 1.0 - jnp.eye(W.shape[0])
    radial = (off * norms_w[None] * jnp.sin(t_ww)).sum(1) - (norms_v[None] * jnp.sin(t_wv)).sum(1)
    return 0.5 * W + (radial[:, None] * W / norms_w[:, None] + (off * (jnp.pi - t_ww)) @ W
                      - (jnp.pi - t_wv) @ V) / (2 * jnp.pi)


def rate(fn, *args, repeat=3):
    jax.block_until_ready(fn(*args))
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - started)
    return best


def matmul_flops(device):
    x = jax.device_put(jnp.ones((2048, 2048)), device)
    f = jax.jit(lambda a: a @ a)
    return 2 * 2048 ** 3 / rate(f, x)


def engine_rate(device, k, pool, steps):
    """Run-steps per second of the engine's compiled gradient-descent loop (`advance`)."""
    problem = sp.ReLUTeacherStudent(k, k)
    settings = sp.GradientDescent(grad_tol=1e-300, newton_switch=None, pool=pool, sync_steps=steps)
    W = jnp.asarray(sp.starts(problem, 0, np.arange(pool)))
    advance = _kernel(problem, "advance", settings, steps)
    # params, start, step, steps, halvings, done, reason, gradient norm, previous loss, rise, scale
    state = (W, W, jnp.full(pool, 0.1), jnp.zeros(pool, int), jnp.zeros(pool, int),
             jnp.zeros(pool, bool), jnp.zeros(pool, jnp.int32), jnp.full(pool, jnp.inf), jnp.full(pool, jnp.inf),
             jnp.full(pool, -jnp.inf), jnp.ones(pool))
    return pool * steps / rate(advance, *state)


def raw(args):
    from spurious.core import native
    from spurious.problems.relu import native_target

    device = resolve_device(args.device)
    k, pool, steps = args.k, args.pool, args.steps
    with jax.default_device(device):
        engine = engine_rate(device, k, pool, steps)
        step = "native kernel" if device.platform == "cpu" and native_target() else "JAX step"
        # the engine's JAX step, the one it takes without a C++ compiler or with SPURIOUS_NATIVE=off
        with unittest.mock.patch.dict(os.environ, {native.NATIVE_VARIABLE: "off"}):
            jax_step = engine_rate(device, k, pool, steps)
        problem = sp.ReLUTeacherStudent(k, k)
        W = jnp.asarray(sp.starts(problem, 0, np.arange(pool)))
        V = jnp.asarray(problem.teacher_weights)
        plain = jax.jit(jax.vmap(lambda w: jax.lax.fori_loop(0, steps, lambda i, x: x - 0.1 * plain_jax_grad(x, V), w)))
        baseline = pool * steps / rate(plain, W)
        limit = matmul_flops(device) / (FLOP_PER_RUN_STEP_K20 * (k / 20) ** 3)
    print(f"device {device.platform}, k = n = d = {k}, pool {pool}, {steps} steps per call")
    print(f"  engine      {engine:.3e} run-steps/s ({step})")
    print(f"  engine, JAX step {jax_step:.3e} run-steps/s   ratio {engine / jax_step:.2f}x")
    print(f"  plain JAX   {baseline:.3e} run-steps/s   ratio {engine / baseline:.2f}x")
    print(f"  float64 limit (matmul rate / flop per run-step) {limit:.3e}: engine at {engine / limit:.1%}")


def table(args):
    from numpy_baseline import gradient_descent

    lo, hi = (int(x) for x in args.ks.split("-"))
    total, numpy_total = 0.0, 0.0
    cache = jax.config.jax_compilation_cache_dir
    kept = len([f for f in os.listdir(cache) if f.endswith("-cache")]) if cache and os.path.isdir(cache) else 0
    print(f"kernel cache: {cache or 'off'} ({kept} kernels in it before this run: "
          f"{'warm' if kept else 'cold, every kernel compiled'})")
    print(f"{'k':>3} {'runs':>5} {'seconds':>8} {'spurious %':>10} {'numpy s/run':>11}")
    for k in range(lo, hi + 1):
        problem = sp.ReLUTeacherStudent(k, k)
        started = time.perf_counter()
        result = sp.run(problem, args.runs, seed=args.seed, device=args.device)
        seconds = time.perf_counter() - started
        total += seconds
        w0 = sp.starts(problem, args.seed, np.arange(args.numpy_runs))
        started = time.perf_counter()
        for w in w0:
            gradient_descent(w, problem.teacher_weights)
        per_run = (time.perf_counter() - started) / args.numpy_runs
        numpy_total += per_run * args.runs
        print(f"{k:>3} {args.runs:>5} {seconds:>8.1f} {100 * np.mean(result.analysis.loss >= 1e-3):>10.1f} {per_run:>11.3f}",
              flush=True)
    print(f"table: {total:.0f} s; NumPy per-run loop scaled to the same runs: {numpy_total:.0f} s "
          f"(ratio {numpy_total / total:.1f}x)")


def memory(args):
    problem = sp.ReLUTeacherStudent(args.k, args.k)
    settings = sp.GradientDescent(max_steps=args.max_steps, newton_switch=None)
    for runs in (int(r) for r in args.runs.split(",")):
        started = time.perf_counter()
        e = sp.multistart(problem, runs, seed=0, optimizer=settings, device=args.device)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"runs {runs:>9}: {time.perf_counter() - started:7.1f} s, peak RSS so far {peak:8.0f} MiB, "
              f"endpoint array {e.params.nbytes / 2**20:.0f} MiB", flush=True)


def compaction(args):
    import spurious.optimize as optimize

    problem = sp.ReLUTeacherStudent(args.k, args.k)
    chosen = optimize._shrink_factor
    times = {2: [], 4: []}
    for round_ in range(args.repeat + 1):
        for factor in (4, 2):
            optimize._shrink_factor = lambda _problem, f=factor: f
            started = time.perf_counter()
            e = sp.multistart(problem, args.runs, seed=args.seed, device=args.device)
            seconds = time.perf_counter() - started
            print(f"round {round_} ({'compiles' if round_ == 0 else 'warm'}), shrink by {factor}: {seconds:6.1f} s, "
                  f"run-steps {e.steps.sum():.4g}, loss >= 1e-3: {int(np.sum(e.loss >= 1e-3))}", flush=True)
            if round_:
                times[factor].append(seconds)
    optimize._shrink_factor = chosen
    by4, by2 = min(times[4]), min(times[2])
    print(f"k = n = {args.k}, {args.runs} runs, best warm: by 4 {by4:.1f} s, by 2 {by2:.1f} s, ratio {by4 / by2:.2f}x; "
          f"the engine uses {chosen(problem)} here")


def profile(args):
    """Where one sp.run's time goes: each compiled engine call timed from the outside (to
    completion), grouped by kernel, and pool size for the gradient-descent kernel."""
    import collections

    import spurious.optimize as optimize

    seconds, calls = collections.defaultdict(float), collections.Counter()
    compiled = optimize._kernel

    def timed(problem, what, *static):
        kernel = compiled(problem, what, *static)

        def call(*inputs):
            started = time.perf_counter()
            out = jax.block_until_ready(kernel(*inputs))
            key = f"{what} (pool {inputs[0].shape[0]})" if what == "advance" else what
            seconds[key] += time.perf_counter() - started
            calls[key] += 1
            return out

        return call

    # what a new problem costs before any work: the kernels traced, lowered and compiled (or loaded
    # from the disk cache) in this call, and the seconds JAX reports for each of those stages
    compile_events = collections.defaultdict(float)
    kernels_traced = 0

    def listen(event, duration, **_):
        nonlocal kernels_traced
        if event.startswith("/jax/core/compile/"):
            compile_events[event.rsplit("/", 1)[-1]] += duration
            kernels_traced += event.endswith("jaxpr_trace_duration")

    jax.monitoring.register_event_duration_secs_listener(listen)
    problem = sp.ReLUTeacherStudent(args.k, args.k)
    settings = sp.GradientDescent(pool=args.pool)
    optimize._kernel = timed
    try:
        started = time.perf_counter()
        result = sp.run(problem, args.runs, seed=args.seed, optimizer=settings, device=args.device)
        total = time.perf_counter() - started
    finally:
        optimize._kernel = compiled
    e = result.endpoints
    print(f"k = n = {args.k}, {args.runs} runs, pool {args.pool or 'auto'}: total {total:.1f} s, "
          f"multistart {e.seconds:.1f} s, analysis {total - e.seconds:.1f} s")
    for key in sorted(seconds, key=seconds.get, reverse=True):
        print(f"  {key:<20} {seconds[key]:7.1f} s in {calls[key]:5d} calls (compiles included)")
    print(f"  run-steps {e.steps.sum():.4g} (mean {e.steps.mean():.0f}, median {np.median(e.steps):.0f}, "
          f"max {e.steps.max()}); finished by Newton {e.newton.mean():.1%}")
    print(f"  kernels traced in this call: {kernels_traced}; "
          + ", ".join(f"{stage} {value:.2f} s" for stage, value in compile_events.items())
          + " (nested calls are inside their caller's time: newton holds its hessians)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("raw", "table", "memory", "compaction", "profile"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--pool", type=int, default=None,
                        help="raw: slots (default 1024); profile: the engine's pool (default: its own choice)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--runs", default=None)
    parser.add_argument("--ks", default="6-20")
    parser.add_argument("--numpy-runs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.what == "raw":
        args.k = args.k or 20
        args.pool = args.pool or 1024
        raw(args)
    elif args.what == "table":
        args.runs = int(args.runs or 1000)
        table(args)
    elif args.what == "profile":
        args.k = args.k or 20
        args.runs = int(args.runs or 1000)
        profile(args)
    elif args.what == "compaction":
        args.k = args.k or 20
        args.runs = int(args.runs or 1000)
        compaction(args)
    else:
        args.k = args.k or 6
        args.runs = args.runs or "10000,100000"
        memory(args)


if __name__ == "__main__":
    main()
