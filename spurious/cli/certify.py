"""`spurious certify` and `spurious verify`: rigorous certificates for critical points of a landscape
that has a rigorous (ball-arithmetic) evaluation (today the ReLU teacher-student population loss).

    spurious certify --problem relu-teacher-student --param teacher=8 --param student=8 --point W.npy -o cert.json
    spurious certify --teacher 8 --student 8 --point W.npy -o cert.json        (the same, in shorthand)
    spurious certify --teacher 10 --student 10 --runs 200 --seed 0 --family lowest-spurious -o cert.json
    spurious verify cert.json
"""
from __future__ import annotations

import sys

from ..core.errors import SpuriousError
from ..core.files import check_output_file
from .problem_args import add_problem_args, problem_from_args


def register(subparsers):
    p = subparsers.add_parser(
        "certify", help="prove in ball arithmetic that a critical point (spurious minimum or saddle) exists",
        description="Prove, in outward-rounded ball arithmetic (Arb), that the problem's loss has exactly one "
                    "critical point in an explicit ball around a given point, its Morse index (minimum, or saddle "
                    "with index) and an enclosure of its loss; write a certificate that `spurious verify` re-checks "
                    "from the file alone. Only problems with a rigorous evaluation can be certified (today "
                    "relu-teacher-student, the exact ReLU teacher-student population loss); others are refused "
                    "before any work. The point comes from --point FILE, or from a multistart run "
                    "(--runs/--from-run) whose family --family is taken.")
    add_problem_args(p)
    p.add_argument("--point", metavar="FILE", default=None,
                   help="the point: .npy, JSON (a matrix, or an object with 'point'/'representative'), or text rows")
    p.add_argument("--from-run", action="store_true",
                   help="run the engine and certify one family's representative (implied by --runs)")
    p.add_argument("--runs", "-r", type=int, default=None, help="random starts for --from-run (default 100)")
    p.add_argument("--seed", "-s", type=int, default=0, help="random seed for --from-run (default 0)")
    p.add_argument("--protocol", default=None,
                   help="with --from-run: one of the problem's named optimizer protocols (relu-teacher-student: "
                        "2018, 2021; default: the problem's own)")
    p.add_argument("--family", default="lowest-spurious",
                   help="with --from-run: lowest-spurious (default), lowest-saddle, or a family id")
    p.add_argument("--device", default="auto", help="cpu, gpu or auto, for --from-run")
    p.add_argument("--polish", action="store_true",
                   help="Newton-polish the point in float64 first (the certificate is about the polished point)")
    p.add_argument("--precision", type=int, default=None,
                   help="bits of the ball arithmetic (default: 128, raised to 512 only if rounding is what fails)")
    p.add_argument("--radius-factor", type=int, default=2,
                   help="ball radius = factor * |grad F| / eigenvalue gap, rounded up (integer >= 2; default 2)")
    p.add_argument("--output", "-o", metavar="PATH", required=True, help="certificate file to write ('-' for stdout)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    p.set_defaults(handler=handle_certify)

    v = subparsers.add_parser(
        "verify", help="re-check a certificate written by `spurious certify`",
        description="Re-derive every bound of a certificate from its problem and point in ball arithmetic, "
                    "check the theorem's hypotheses in exact rational arithmetic, and compare with the claim. "
                    "Exit 0 if valid; exit 1 with a one-line reason if not. (The checker is spurious/verify.py, "
                    "which uses only python-flint, numpy and the standard library; it also runs as a script.)")
    v.add_argument("certificate", metavar="CERT", help="certificate file")
    v.set_defaults(handler=handle_verify)


def _problem(args):
    """The problem from the shared problem options, refused here when it cannot be certified:
    every refusal comes before any optimization or file output."""
    from ..certify import rigorous_data

    _, _, problem = problem_from_args(args)
    rigorous_data(problem)
    return problem


def _point_from_run(args, problem, optimizer):
    from .. import run
    from ..certify import choose_family
    from .progress import Progress

    runs = 100 if args.runs is None else args.runs
    progress = None if args.quiet else Progress("runs")
    result = run(problem, runs, seed=args.seed, optimizer=optimizer, device=args.device, progress=progress)
    family = choose_family(result.analysis, args.family)
    note = (f"family {family.id} ({family.cls.replace('_', ' ')}, loss {family.loss:.6f}, "
            f"{family.count} of {runs} runs; representative run {family.run})")
    return family.representative, note


def handle_certify(args) -> int:
    from ..certify import certify, read_point
    from ..core.setup import resolve_device
    from ..optimize import protocol

    from_run = args.from_run or args.runs is not None
    if args.output != "-":
        check_output_file(args.output, "--output")
    problem = _problem(args)
    if args.point is not None and from_run:
        raise SpuriousError("give either --point or --from-run/--runs, not both")
    if args.point is None and not from_run:
        raise SpuriousError("give the point to certify: --point FILE, or --from-run/--runs to run the engine")
    if args.point is not None:
        point, note = read_point(args.point, problem), f"point from {args.point}"
    else:
        if args.runs is not None and args.runs <= 0:
            raise SpuriousError(f"--runs must be a positive integer, got {args.runs}")
        if not 0 <= args.seed < 2**63:
            raise SpuriousError(f"--seed must be an integer in 0..2^63-1, got {args.seed}")
        optimizer = protocol(problem, args.protocol)  # an unknown protocol is refused before the run
        resolve_device(args.device)
        point, note = _point_from_run(args, problem, optimizer)
    certificate = certify(problem, point, precision=args.precision, radius_factor=args.radius_factor,
                          polish=args.polish)
    if args.output == "-":
        sys.stdout.write(certificate.to_json())
    else:
        certificate.write(args.output)
    if not args.quiet:
        stream = sys.stderr if args.output == "-" else sys.stdout
        stream.write(f"{note}\n{certificate.summary()}\n")
        if args.output != "-":
            stream.write(f"certificate written to {args.output} (re-check: spurious verify {args.output})\n")
    return 0


def handle_verify(args) -> int:
    from ..verify import InvalidCertificate, TooLargeToCheck, verify_file

    try:
        verified = verify_file(args.certificate)
    except TooLargeToCheck as error:
        raise SpuriousError(str(error)) from None
    except InvalidCertificate as error:
        sys.stderr.write(f"spurious: error: invalid certificate: {error}\n")
        return 1
    print(verified.summary())
    return 0
