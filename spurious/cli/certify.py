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

    a = subparsers.add_parser(
        "annihilate", help="split a neuron of a spurious minimum (one more student neuron) and prove it is no longer a minimum",
        description="Take a critical point of width n (a spurious minimum, from --point FILE or a multistart run's "
                    "family), split one student neuron w into alpha w and (1 - alpha) w, which is a critical point of "
                    "width n + 1 with the same loss, and prove in ball arithmetic that it is not a local minimum: the "
                    "loss has negative curvature along the direction that moves the two halves apart. Prints, per "
                    "neuron, the splitting criterion of Safran, Yehudai & Shamir (2021) (the smallest eigenvalue of "
                    "H_ww - I/2) and the same curvature from the wider problem's Hessian; the certified bound; and "
                    "where gradient descent of the wider problem goes from just off the split point. The "
                    "certificate (-o) is re-checked by `spurious verify`.")
    add_problem_args(a)
    a.add_argument("--point", metavar="FILE", default=None,
                   help="the critical point: .npy, JSON (a matrix, or an object with 'point'/'representative'), or text rows")
    a.add_argument("--runs", "-r", type=int, default=None, help="random starts of a multistart run whose family is split")
    a.add_argument("--seed", "-s", type=int, default=0, help="random seed of that run (default 0)")
    a.add_argument("--protocol", default=None, help="optimizer protocol of that run (default: the problem's own)")
    a.add_argument("--family", default="lowest-spurious",
                   help="with --runs: lowest-spurious (default), lowest-saddle, or a family id")
    a.add_argument("--neuron", type=int, default=None,
                   help="the student neuron to split (default: the one whose splitting block has the most negative eigenvalue)")
    a.add_argument("--alpha", default="0.5", help="the split ratio, strictly between 0 and 1 (default 0.5)")
    a.add_argument("--offset", type=float, default=1e-3,
                   help="distance from the split point at which gradient descent of the wider problem starts (default 1e-3)")
    a.add_argument("--random-starts", type=int, default=6,
                   help="random directions of descent from the split point, besides +- the split direction (default 6)")
    a.add_argument("--polish", action="store_true", help="Newton-polish the point in float64 first")
    a.add_argument("--precision", type=int, default=None, help="bits of the ball arithmetic (default: 128, raised when needed)")
    a.add_argument("--radius-factor", type=int, default=2, help="ball radius factor (integer >= 2; default 2)")
    a.add_argument("--device", default="auto", help="cpu, gpu or auto")
    a.add_argument("--output", "-o", metavar="PATH", default=None, help="write the certificate here ('-' for stdout)")
    a.add_argument("--json", metavar="PATH", default=None, help="write the summary as JSON ('-' for stdout)")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    a.set_defaults(handler=handle_annihilate)

    v = subparsers.add_parser(
        "verify", help="re-check a certificate written by `spurious certify`, `spurious annihilate` or "
                       "`spurious symmetric continue --certify`",
        description="Re-derive every bound of a certificate from its problem and point in ball arithmetic, "
                    "check the theorem's hypotheses in exact rational arithmetic, and compare with the claim. "
                    "Exit 0 if valid; exit 1 with a one-line reason if not. (The checker is spurious/verify.py, "
                    "which uses only python-flint, numpy and the standard library; it also runs as a script; certificates of "
                    "symmetric critical points at large k are checked by spurious/verify_symmetric.py.)")
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


def handle_annihilate(args) -> int:
    import json

    from ..annihilation import annihilate, check_critical
    from ..certify import exact_alpha, newton_polish, read_point
    from ..core.files import write_atomic
    from ..core.setup import resolve_device
    from ..optimize import protocol

    for option, path in (("--output", args.output), ("--json", args.json)):
        if path not in (None, "-"):
            check_output_file(path, option)
    if args.output == "-" and args.json == "-":
        raise SpuriousError("--output and --json cannot both go to stdout")
    problem = _problem(args)
    rigorous = problem.rigorous()
    if rigorous["student"] < rigorous["teacher"]:
        raise SpuriousError(f"annihilation needs a student at least as wide as the teacher (n >= k), got n = "
                            f"{rigorous['student']} < k = {rigorous['teacher']}")
    alpha = exact_alpha(args.alpha)
    if args.neuron is not None and not 0 <= args.neuron < problem.shape[0]:
        raise SpuriousError(f"--neuron must be a student neuron 0..{problem.shape[0] - 1}, got {args.neuron}")
    if not (args.offset > 0 and args.offset < 1):
        raise SpuriousError(f"--offset must lie strictly between 0 and 1, got {args.offset}")
    if args.random_starts < 0:
        raise SpuriousError(f"--random-starts must be 0 or more, got {args.random_starts}")
    if (args.point is None) == (args.runs is None):
        raise SpuriousError("give the critical point: either --point FILE or --runs N (a multistart run's family)")
    resolve_device(args.device)
    if args.point is not None:
        point, note = read_point(args.point, problem), f"point from {args.point}"
        if args.polish:
            point = newton_polish(problem, point)
        check_critical(problem, point)
    else:
        if args.runs <= 0:
            raise SpuriousError(f"--runs must be a positive integer, got {args.runs}")
        if not 0 <= args.seed < 2**63:
            raise SpuriousError(f"--seed must be an integer in 0..2^63-1, got {args.seed}")
        point, note = _point_from_run(args, problem, protocol(problem, args.protocol))
    result = annihilate(problem, point, alpha, args.neuron, offsets=(args.offset,), random_starts=args.random_starts,
                        precision=args.precision, radius_factor=args.radius_factor, device=args.device)
    if result.certificate is not None and args.output is not None:
        if args.output == "-":
            sys.stdout.write(result.certificate.to_json())
        else:
            result.certificate.write(args.output)
    if args.json is not None:
        text = json.dumps({"note": note, **result.to_dict(with_certificate=False)}, indent=1)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            write_atomic(args.json, text)
    stream = sys.stderr if "-" in (args.output, args.json) else sys.stdout
    stream.write(f"{note}\n{format_annihilation(result)}\n")
    if result.certificate is not None and args.output not in (None, "-"):
        stream.write(f"certificate written to {args.output} (re-check: spurious verify {args.output})\n")
    if result.certificate is None:
        raise SpuriousError(f"not certified: {result.refusal}")
    return 0


def format_annihilation(result) -> str:
    """The outcome of `annihilate` in words: criterion per neuron, the chosen split, its certificate, and
    where descent goes from just off the split point."""
    chosen = result.chosen
    lines = [f"critical point of loss {result.loss:.9g}; split ratio alpha = {result.alpha:g}",
             "  neuron  criterion (min eig of H_ww - I/2 off w)  curvature along the split (wider Hessian)  agree"]
    for split in result.splits:
        mark = " <- split" if split.neuron == chosen.neuron else ""
        lines.append(f"  {split.neuron:>6}  {split.criterion:>40.6e}  {split.embedded_curvature:>41.6e}  "
                     f"{'yes' if split.agrees else 'NO'}{mark}")
    if result.certificate is not None:
        lines.append(result.certificate.summary())
    else:
        lines.append(f"not certified: {result.refusal}")
    if result.descent is not None:
        counts = ", ".join(f"{c} {n}" for c, n in result.descent.counts().items())
        families = "; ".join(f"{f.cls.replace('_', ' ')} at loss {f.loss:.6g}: {f.count}"
                             for f in result.descent.families)
        lines.append(f"gradient descent of n = {result.point.shape[0] + 1} from {len(result.descent.cls)} starts at "
                     f"distance {', '.join(f'{o:g}' for o in result.offsets)} from the split point (+-the split "
                     f"direction and random directions): {counts} ({families})")
    return "\n".join(lines)


def handle_verify(args) -> int:
    from .. import verify_symmetric
    from ..verify import InvalidCertificate, TooLargeToCheck, load_certificate, verify_certificate

    try:
        certificate = load_certificate(args.certificate)
        if isinstance(certificate, dict) and certificate.get("format") == verify_symmetric.FORMAT:
            verified = verify_symmetric.verify_certificate(certificate)
        else:
            verified = verify_certificate(certificate)
    except TooLargeToCheck as error:
        raise SpuriousError(str(error)) from None
    except InvalidCertificate as error:
        sys.stderr.write(f"spurious: error: invalid certificate: {error}\n")
        return 1
    print(verified.summary())
    return 0
