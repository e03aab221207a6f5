"""`spurious run`: multistart gradient descent on any landscape, every endpoint classified."""
from __future__ import annotations

import json
import sys

from ..core.errors import SpuriousError
from ..core.files import check_output_file, write_atomic
from .problem_args import add_problem_args, problem_from_args


def register(subparsers):
    p = subparsers.add_parser(
        "run", help="optimize many random starts and classify every endpoint",
        description="Gradient descent from many random starts on a landscape (by default the exact two-layer "
                    "ReLU population loss with the Safran & Shamir 2018 protocol); prints counts per class and "
                    "the families of endpoints equal up to symmetry.")
    add_problem_args(p)
    p.add_argument("--runs", "-r", type=int, default=100, help="number of random starts (default 100)")
    p.add_argument("--seed", "-s", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--protocol", default=None,
                   help="a named optimizer protocol of the problem (relu-teacher-student: 2018, the default: step "
                        "0.1, stop at max_i|2pi grad_i| <= 1e-9; 2021: step 5/k, stop at |grad|_F <= 1e-12)")
    p.add_argument("--step", type=float, default=None, help="step size (overrides the protocol's)")
    p.add_argument("--grad-tol", type=float, default=None, help="stop tolerance (overrides the protocol's)")
    p.add_argument("--max-steps", type=int, default=None, help="give up after this many steps (default 1e6)")
    p.add_argument("--pure-gd", action="store_true",
                   help="plain gradient descent to the stop tolerance, as in the papers: no Newton switch and no "
                        "stop at the global value (implies --no-global-stop)")
    p.add_argument("--no-global-stop", action="store_true",
                   help="follow every run to the gradient criterion, also runs whose loss has reached the known "
                        "global value (by default they stop there: a global minimum, decided early)")
    p.add_argument("--device", default="auto", help="cpu, gpu or auto (default: a GPU when JAX sees one)")
    p.add_argument("--json", metavar="PATH", default=None, help="write the machine-readable summary ('-' for stdout)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from ..core.setup import resolve_device
    from ..optimize import protocol
    from ..pipeline import run
    from ..report import format_run_summary, run_summary
    from .progress import Progress

    # every check before any work: the options, the output path, the problem, the optimizer
    if args.runs is None or args.runs <= 0:
        raise SpuriousError(f"--runs must be a positive integer, got {args.runs}")
    if not 0 <= args.seed < 2**63:
        raise SpuriousError(f"--seed must be an integer in 0..2^63-1, got {args.seed}")
    if args.json not in (None, "-"):
        check_output_file(args.json, "--json")
    resolve_device(args.device)
    _, _, problem = problem_from_args(args)
    overrides = {"step": args.step, "grad_tol": args.grad_tol, "max_steps": args.max_steps}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.pure_gd:
        overrides["newton_switch"] = None
    if args.pure_gd or args.no_global_stop:
        overrides["global_stop"] = None
    optimizer = protocol(problem, args.protocol, **overrides)
    progress = None if args.quiet else Progress("runs")
    result = run(problem, args.runs, seed=args.seed, optimizer=optimizer, device=args.device, progress=progress)
    summary = run_summary(result)
    if args.json == "-":
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_run_summary(summary))
        if args.json:
            write_atomic(args.json, json.dumps(summary, indent=1))
            print(f"\nsummary written to {args.json}")
    return 0
