"""`spurious run`: multistart gradient descent on the ReLU teacher-student landscape, classified."""
from __future__ import annotations

import json
import sys

from ..errors import SpuriousError


def register(subparsers):
    p = subparsers.add_parser(
        "run", help="optimize many random starts and classify every endpoint",
        description="Gradient descent from many random starts on the exact two-layer ReLU population "
                    "loss (Safran & Shamir 2018 protocol by default); prints counts per class and the "
                    "families of endpoints equal up to symmetry.")
    p.add_argument("--teacher", "-k", type=int, required=True, help="teacher neurons k")
    p.add_argument("--student", "-n", type=int, required=True, help="student neurons n")
    p.add_argument("--dim", "-d", type=int, default=None, help="input dimension d (default k)")
    p.add_argument("--runs", "-r", type=int, default=100, help="number of random starts (default 100)")
    p.add_argument("--seed", "-s", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--protocol", choices=("2018", "2021"), default="2018",
                   help="2018: step 0.1, stop at max_i|2pi grad_i| <= 1e-9; 2021: step 5/k, stop at |grad|_F <= 1e-12")
    p.add_argument("--step", type=float, default=None, help="step size (overrides the protocol's)")
    p.add_argument("--grad-tol", type=float, default=None, help="stop tolerance (overrides the protocol's)")
    p.add_argument("--max-steps", type=int, default=None, help="give up after this many steps (default 1e6)")
    p.add_argument("--pure-gd", action="store_true",
                   help="no Newton switch: plain gradient descent to the stop tolerance, as in the papers")
    p.add_argument("--device", default="auto", help="cpu, gpu or auto (default: a GPU when JAX sees one)")
    p.add_argument("--json", metavar="PATH", default=None, help="write the machine-readable summary ('-' for stdout)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from .. import GradientDescent, ReLUTeacherStudent, run
    from .._jax import resolve_device
    from ..report import format_run_summary, run_summary
    from .progress import Progress

    if args.runs is None or args.runs <= 0:
        raise SpuriousError(f"--runs must be a positive integer, got {args.runs}")
    if args.seed < 0:
        raise SpuriousError(f"--seed must be non-negative, got {args.seed}")
    resolve_device(args.device)
    problem = ReLUTeacherStudent(teacher=args.teacher, student=args.student, dim=args.dim)
    overrides = {}
    if args.step is not None:
        overrides["step"] = args.step
    if args.grad_tol is not None:
        overrides["grad_tol"] = args.grad_tol
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.pure_gd:
        overrides["newton_switch"] = None
    if args.protocol == "2018":
        optimizer = GradientDescent.safran_shamir_2018(**overrides)
    else:
        optimizer = GradientDescent.safran_yehudai_shamir_2021(problem.teacher, **overrides)
    progress = None if args.quiet else Progress("runs")
    result = run(problem, args.runs, seed=args.seed, optimizer=optimizer, device=args.device, progress=progress)
    summary = run_summary(result)
    if args.json == "-":
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_run_summary(summary))
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(summary, fh, indent=1)
            print(f"\nsummary written to {args.json}")
    return 0
