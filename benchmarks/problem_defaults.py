"""Each registered problem at small parameters under its default protocol: how do 8 starts end?

    python benchmarks/problem_defaults.py [NAME ...]      (residual-unit-regression alone takes ~20 min)
"""
import sys, time, numpy as np, spurious as sp
from spurious.problems import build
from spurious.optimize import protocol
CASES = [
  ("relu-teacher-student", dict(teacher=4, student=4)),
  ("empirical-teacher-student", dict(teacher=3, student=3, samples=200)),
  ("quadratic-network", dict(dim=3, hidden=4, samples=10, weight_decay=0.01)),
  ("quadratic-network", dict(dim=5, hidden=8, samples=30)),
  ("deep-linear-residual", dict(dim=4, depth=3, init_std=0.1)),
  ("residual-unit-regression", dict()),
  ("weight-sharing-patches", dict()),
  ("parity-network", dict(dim=3, samples=100)),
  ("gelu-random-labels", dict(dim=8, samples=16, width=8)),
  ("cnn-random-labels", dict(samples=10, side=6)),
]
only = sys.argv[1:] 
for name, params in CASES:
    if only and name not in only: continue
    try:
        p = build(name, params)
    except Exception as e:
        print(name, "BUILD", e); continue
    t = time.time()
    r = sp.run(p, runs=8, seed=0, optimizer=protocol(p, max_steps=200000))
    e = r.endpoints
    print(f"{name} {params} size={p.size} step={r.endpoints.optimizer.step if hasattr(r.endpoints,'optimizer') else '?'} "
          f"{dict(zip(*np.unique(e.status, return_counts=True)))} steps~{np.mean(e.steps):.0f} loss {np.min(e.loss):.3g}..{np.max(e.loss):.3g} |g|max {np.max(e.grad_norm):.2g} {time.time()-t:.0f}s", flush=True)
