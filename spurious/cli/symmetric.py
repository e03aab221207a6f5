"""`spurious symmetric`: critical points with diagonal symmetry (ReLU teacher-student, V = I, n = d = k),
solved in their fixed-point space at any k, with symmetry-adapted spectra and certificates.

    spurious symmetric solve --point W.npy                      isotropy, Newton in Fix(H), spectrum
    spurious symmetric solve --point W.npy --dense-check        ... compared with the dense Hessian
    spurious symmetric continue --point W.npy --at 20,100,1000,10000 --certify certs/
"""
from __future__ import annotations

import json
import sys
import time

from ..core.errors import SpuriousError
from ..core.files import check_output_file

def register(subparsers):
    p = subparsers.add_parser(
        "symmetric", help="critical points with diagonal symmetry at any k: fixed-point Newton, spectra, certificates",
        description="For the ReLU teacher-student loss with teacher V = I and n = d = k: find the isotropy "
                    "Delta(S_p1 x ... x S_pr) of a point (the permutations of neurons together with input "
                    "coordinates that fix it), solve for the critical point in its fixed-point space (dimension "
                    "independent of k), give every distinct Hessian eigenvalue with its multiplicity from the "
                    "isotypic blocks, continue the family in k, and certify it in ball arithmetic.")
    sub = p.add_subparsers(dest="symmetric_command", metavar="SUBCOMMAND")
    sub.required = True
    solve = sub.add_parser("solve", help="isotropy, Newton in the fixed-point space, symmetry-adapted spectrum",
                           description="Read a point (k x k), find its isotropy (or take --blocks), solve for the "
                                       "critical point in the fixed-point space and print its spectrum.")
    _point_args(solve)
    solve.add_argument("--dense-check", action="store_true",
                       help="also form the dense k^2 x k^2 Hessian and compare every eigenvalue (small k only)")
    solve.add_argument("--json", metavar="PATH", default=None, help="write the result as JSON ('-' for stdout)")
    solve.set_defaults(handler=handle_solve)

    cont = sub.add_parser("continue", help="follow a family in k and certify it at chosen k",
                          description="Solve at the point's k, then continue the family (largest block growing, "
                                      "the others fixed) to each k of --at, along every k up to 20 and steps "
                                      "of at most 25%% beyond. Prints per k of --at the loss (Arb, 15 digits), "
                                      "the smallest Hessian eigenvalue, the Morse index and the number of "
                                      "distinct eigenvalues; with --certify writes a certificate per k (re-check "
                                      "with `spurious verify`) and re-checks it. Extrapolates k x loss to "
                                      "k -> infinity.")
    _point_args(cont)
    cont.add_argument("--at", required=True, metavar="K,K,...", help="the k to report (each >= the point's k)")
    cont.add_argument("--certify", metavar="DIR", default=None,
                      help="write a certificate per k of --at into DIR (created if its parent exists)")
    cont.add_argument("--precision", type=int, default=256, help="bits of the ball arithmetic (default 256)")
    cont.add_argument("--json", metavar="PATH", default=None, help="write the table as JSON ('-' for stdout)")
    cont.set_defaults(handler=handle_continue)


def _point_args(parser):
    parser.add_argument("--point", metavar="FILE", required=True,
                        help="a k x k point: .npy, JSON (a matrix, or an object with 'point'/'representative'), or text rows")
    parser.add_argument("--blocks", metavar="P,P,...", default=None,
                        help="the isotropy's block sizes, largest first (default: found from the point)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest entry-wise distance from the fixed-point space for the point to count as "
                             "fixed (default 1e-5, the family tolerance)")


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SpuriousError(f"{name} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise SpuriousError(f"{name} is empty")
    return values


def _read(args):
    """The point (k x k, finite), after the checks of the options that need no point."""
    import numpy as np

    from ..certify import read_point
    from ..problems.symmetry import ISOTROPY_LIMIT

    if not args.tolerance > 0:
        raise SpuriousError(f"--tolerance must be positive, got {args.tolerance}")
    W = read_point(args.point)
    k = W.shape[0]
    if W.shape != (k, k) or k < 2:
        raise SpuriousError(f"{args.point}: expected a square k x k point (n = d = k), got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise SpuriousError(f"{args.point}: the point has entries that are not finite")
    if k > ISOTROPY_LIMIT:
        raise SpuriousError(f"{args.point}: k = {k}; the isotropy of a point is searched for k <= {ISOTROPY_LIMIT} "
                            f"(continue a family from a smaller k with `spurious symmetric continue --at`)")
    if args.blocks is not None:
        _claimed_blocks(args, k)
    return W


def _claimed_blocks(args, k) -> tuple:
    from .. import verify_symmetric as vs

    sizes = _ints(args.blocks, "--blocks")
    try:
        sizes = vs.check_partition(sizes, k)
    except ValueError as error:
        raise SpuriousError(f"--blocks: {error}") from None
    if list(sizes) != sorted(sizes, reverse=True):
        raise SpuriousError(f"--blocks: give the block sizes largest first, e.g. {sorted(sizes, reverse=True)}")
    return sizes


def _load(args, W):
    """The point's isotropy (sizes, rows, columns) and its fixed-space coordinates."""
    import numpy as np

    from ..problems.symmetry import coordinate_isotropy
    from .. import verify_symmetric as vs

    k = W.shape[0]
    found = coordinate_isotropy(W, k, args.tolerance)
    if args.blocks is not None:
        sizes = _claimed_blocks(args, k)
        if not found.diagonal or found.sizes != sizes:
            raise SpuriousError(f"{args.point}: the isotropy of the point (to {args.tolerance:g}) is {found.name}, "
                                f"not {vs.isotropy_name(sizes, False)}")
    elif not found.diagonal or max(found.sizes) == 1:
        raise SpuriousError(f"{args.point}: the point's isotropy ({found.name}, to {args.tolerance:g}) is not a "
                            f"diagonal group Delta(S_p1 x ... x S_pr) with a block of 2 or more; nothing to solve in")
    sizes = found.sizes
    values, _ = vs.from_matrix(sizes, W[np.ix_(found.rows, found.columns)])
    return W, found, sizes, values


def _spectrum_lines(spectrum) -> list[str]:
    lines = [f"  {'irreducible':<34} {'multiplicity':>12}  eigenvalues"]
    for block in spectrum.blocks:
        values = ", ".join(f"{v:.10g}" for v in block.eigenvalues)
        lines.append(f"  {block.irreducible:<34} {block.multiplicity:>12}  {values}")
    return lines


def handle_solve(args) -> int:
    import numpy as np

    from ..core.resources import require_memory
    from .. import fixed_points as fp

    W = _read(args)
    k = W.shape[0]
    if args.json not in (None, "-"):
        check_output_file(args.json, "--json")
    if args.dense_check:
        require_memory(3 * 8 * float(k) ** 4, f"--dense-check at k = {k} (a {k * k} x {k * k} Hessian)")
    W, found, sizes, values = _load(args, W)
    point = fp.newton(sizes, values)
    if point.gradient_norm > 1e-10:
        point = fp.high_precision_newton(point)
    moved = float(np.max(np.abs(point.values - values)))
    loss = fp.precise_loss(sizes, point.values)
    spectrum = fp.symmetric_spectrum(sizes, point.values)
    lines = [f"k = n = d = {k}: isotropy {found.name} (type {found.type}); fixed-point space of dimension "
             f"{len(values)}; the point is {found.deviation:.1e} from it",
             f"Newton in the fixed-point space: moved {moved:.1e}, gradient (per entry of F) {point.gradient_norm:.1e}",
             f"loss {loss}   smallest eigenvalue {spectrum.smallest:.10g}   Morse index {spectrum.morse_index}   "
             f"distinct eigenvalues {len(spectrum.distinct())} (dimension {k * k})"]
    lines += _spectrum_lines(spectrum)
    result = {"teacher": k, "isotropy": found.name, "type": found.type, "blocks": list(sizes),
              "coordinates": point.values.tolist(), "loss": loss, "gradient": point.gradient_norm,
              "morse_index": spectrum.morse_index, "lambda_min": spectrum.smallest,
              "spectrum": [{"irreducible": b.irreducible, "multiplicity": b.multiplicity,
                            "eigenvalues": b.eigenvalues.tolist()} for b in spectrum.blocks]}
    if args.dense_check:
        import spurious as sp

        problem = sp.ReLUTeacherStudent(teacher=k, student=k)
        dense = np.linalg.eigvalsh(np.asarray(problem.hessian(point.matrix())))
        difference = float(np.max(np.abs(dense - spectrum.full())))
        lines.append(f"dense check: the {k * k} eigenvalues of the dense Hessian differ from the blocks' (with "
                     f"multiplicities) by at most {difference:.1e}; dense loss {float(problem.loss(point.matrix())):.15g}")
        result["dense_difference"] = difference
    _write_json(args.json, result)
    if args.json != "-":
        print("\n".join(lines))
    return 0


def _write_json(path, result):
    if path is None:
        return
    from ..core.files import write_atomic

    text = json.dumps(result, indent=1)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        write_atomic(path, text + "\n")


def handle_continue(args) -> int:
    from .. import fixed_points as fp
    from .. import verify_symmetric as vs
    from ..core.files import check_output_folder

    targets = _ints(args.at, "--at")
    W = _read(args)
    k0 = W.shape[0]
    if any(t < k0 for t in targets):
        raise SpuriousError(f"--at: every k must be >= the point's k = {k0}, got {min(targets)}")
    if max(targets) > vs.MAX_TEACHER:
        raise SpuriousError(f"--at: k = {max(targets)} is above the largest supported, {vs.MAX_TEACHER}")
    if not 53 <= args.precision <= 4096:
        raise SpuriousError(f"--precision must be between 53 and 4096 bits, got {args.precision}")
    if args.certify is not None:
        check_output_folder(args.certify, "--certify")
    if args.json not in (None, "-"):
        check_output_file(args.json, "--json")
    W, found, sizes, values = _load(args, W)
    point = fp.newton(sizes, values)
    started = time.perf_counter()
    family = [point] + (fp.continue_in_k(point, fp.ladder(k0, targets)) if max(targets) > k0 else [])
    continued = time.perf_counter() - started
    rows = []
    for solved in family:
        if solved.k not in targets:
            continue
        precise = fp.high_precision_newton(solved)
        spectrum = fp.symmetric_spectrum(precise.sizes, precise.values, bits=args.precision)
        row = {"k": solved.k, "isotropy": vs.isotropy_name(solved.sizes, False), "coordinates": precise.values.tolist(),
               "loss": fp.precise_loss(precise.sizes, precise.values), "lambda_min": spectrum.smallest,
               "morse_index": spectrum.morse_index, "distinct_eigenvalues": len(spectrum.distinct())}
        if args.certify is not None:
            row.update(_certify_one(args, precise))
        rows.append(row)
    extrapolation = fp.extrapolate_loss([p.k for p in family], [fp.precise_loss(p.sizes, p.values) for p in family])
    _write_json(args.json, {"type": found.type, "rows": rows, "extrapolation": extrapolation,
                            "continuation_seconds": continued})
    if args.json == "-":
        return 0
    print(f"family {found.type}, from k = {k0} ({found.name}); continued along {len(family) - 1} values of k in "
          f"{continued:.1f} s")
    header = f"{'k':>6}  {'loss':>22}  {'k x loss':>10}  {'lambda_min':>11}  {'index':>5}  {'distinct':>8}"
    if args.certify is not None:
        header += "  certificate (loss enclosure; eigenvalues >=; seconds to produce + verify)"
    print(header)
    for row in rows:
        line = (f"{row['k']:>6}  {row['loss']:>22}  {row['k'] * float(row['loss']):>10.6f}  {row['lambda_min']:>11.6g}  "
                f"{row['morse_index']:>5}  {row['distinct_eigenvalues']:>8}")
        if args.certify is not None:
            line += (f"  {row['certificate']}: [{row['loss_lower']}, {row['loss_upper']}]; {row['eigenvalue_lower']}; "
                     f"{row['produce_seconds']:.1f} + {row['verify_seconds']:.1f}")
        print(line)
    if extrapolation:
        print(f"k x loss -> {extrapolation['limit']:.8f} +- {extrapolation['error']:.1e} as k -> infinity "
              f"({extrapolation['method']})")
    return 0


def _certify_one(args, precise) -> dict:
    import os

    from ..certify import certify_symmetric
    from ..core.files import write_atomic
    from ..verify_symmetric import verify_certificate

    started = time.perf_counter()
    certificate = certify_symmetric(precise, args.precision)
    produced = time.perf_counter() - started
    path = os.path.join(args.certify, f"symmetric-k{precise.k}-{'-'.join(str(p) for p in precise.sizes[1:]) or 'all'}.json")
    os.makedirs(args.certify, exist_ok=True)
    write_atomic(path, json.dumps(certificate, indent=1) + "\n")
    started = time.perf_counter()
    with open(path, encoding="utf-8") as handle:
        verified = verify_certificate(json.load(handle))
    checked = time.perf_counter() - started
    return {"certificate": path, "kind": verified.kind, "spurious": verified.spurious,
            "loss_lower": verified.loss_lower, "loss_upper": verified.loss_upper,
            "eigenvalue_lower": verified.eigenvalue_lower, "produce_seconds": produced, "verify_seconds": checked}
