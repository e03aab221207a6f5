"""Certify the lowest spurious minimum for every k = n = 6..20 (Safran & Shamir 2018 setting: V = I, d = k).

For each k the engine runs gradient descent from `runs` random starts (2018 protocol), the lowest-loss
family classified as a spurious minimum is taken, and its representative is certified in ball arithmetic
(spurious.certify) and the certificate re-checked (spurious.verify). When the lowest family found does not
match the 2018 table's lowest loss, further seeds are run (up to --extra-seeds) and the lowest over all
seeds is used. Prints one line per k as it finishes and writes a Markdown table.

    python benchmarks/certify_table.py                       # k = 6..20, writes benchmarks/CERTIFY_RESULTS.md
    python benchmarks/certify_table.py --k 6 7 --out -       # some k, table on stdout only
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

# one BLAS thread: the machine has 2 cores and is shared; threads only oversubscribe it
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


import spurious as sp  # noqa: E402
from spurious.certify import certify  # noqa: E402
from spurious.verify import verify_certificate  # noqa: E402

#: lowest spurious F for n = k in the 2018 paper (reference/relu-teacher-student.md)
REFERENCE_LOWEST = {6: .025081, 7: .023203, 8: .021508, 9: .020014, 10: .018702, 11: .017547, 12: .016524,
                    13: .015613, 14: .014798, 15: .014064, 16: .013400, 17: .012796, 18: .012245, 19: .011740,
                    20: .011276}
#: starts per k: the lowest family is rare at k = 6 (0.3% of runs in 2018) and common for large k
DEFAULT_RUNS = {6: 1000, 7: 100, 8: 100, **{k: 128 for k in range(9, 15)}, **{k: 64 for k in range(15, 21)}}
#: the 2018 table is rounded to 6 decimals (and may differ in the last digit)
MATCH = 1.5e-6


def lowest_spurious(problem, runs, seed, extra_seeds, reference):
    best, used, spurious_runs, engine_seconds = None, [], 0, 0.0
    for attempt in range(1 + extra_seeds):
        started = time.perf_counter()
        result = sp.run(problem, runs, seed=seed + attempt)
        engine_seconds += time.perf_counter() - started
        used.append(seed + attempt)
        families = [f for f in result.analysis.families if f.cls == "spurious_minimum"]
        spurious_runs += sum(f.count for f in families)
        if families:
            candidate = min(families, key=lambda f: f.loss)
            if best is None or candidate.loss < best.loss:
                best = candidate
        if best is not None and abs(best.loss - reference) <= MATCH:
            break
    return best, used, spurious_runs, engine_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=list(range(6, 21)))
    parser.add_argument("--runs", type=int, default=None, help="starts per seed (default: per-k table)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra-seeds", type=int, default=3, help="more seeds to try when the 2018 lowest is not found")
    parser.add_argument("--out", default=str(Path(__file__).with_name("CERTIFY_RESULTS.md")),
                        help="Markdown output ('-': stdout only)")
    parser.add_argument("--certificates", default=str(Path(__file__).with_name("certificates")),
                        help="directory to write the certificates to ('-': none)")
    args = parser.parse_args(argv)

    header = ("| k | runs x seeds | spurious runs | lowest spurious F (engine) | 2018 | certified | radius | "
              "\\|eigenvalue\\| >= | loss enclosure | gradient norm <= | bits | certify s | verify s |")
    rule = "|" + "---|" * (header.replace("\\|", "").count("|") - 1)
    rows = [header, rule]
    print(header, flush=True)
    totals = []
    for k in args.k:
        problem = sp.ReLUTeacherStudent(teacher=k, student=k)
        runs = args.runs or DEFAULT_RUNS.get(k, 64)
        family, seeds, spurious_runs, engine_seconds = lowest_spurious(problem, runs, args.seed, args.extra_seeds,
                                                                       REFERENCE_LOWEST[k])
        if family is None:
            row = f"| {k} | {runs} x {len(seeds)} | 0 | none found | {REFERENCE_LOWEST[k]:.6f} | - | | | | | | | |"
        else:
            cert = certify(problem, family.representative)
            started = time.perf_counter()
            verified = verify_certificate(cert.data)
            verify_seconds = time.perf_counter() - started
            assert verified.kind == cert.kind
            if args.certificates != "-":
                Path(args.certificates).mkdir(parents=True, exist_ok=True)
                cert.write(Path(args.certificates) / f"relu-k{k}-n{k}-lowest-spurious.json")
            claim, bounds = cert.data["claim"], cert.data["bounds"]
            matched = "" if abs(family.loss - REFERENCE_LOWEST[k]) <= MATCH else " (not the 2018 lowest)"
            what = "spurious minimum" if claim["spurious"] else f"{claim['kind']} (index {claim['morse_index']})"
            row = (f"| {k} | {runs} x {len(seeds)} | {spurious_runs} | {family.loss:.6f}{matched} | "
                   f"{REFERENCE_LOWEST[k]:.6f} | {what} | {bounds['radius']} | {claim['eigenvalue_abs_lower']} | "
                   f"[{claim['loss_lower']}, {claim['loss_upper']}] | {bounds['gradient_norm_upper']} | "
                   f"{cert.precision} | {cert.seconds:.2f} | {verify_seconds:.2f} |")
            totals.append((k, engine_seconds, cert.seconds, verify_seconds))
        rows.append(row)
        print(row, flush=True)

    notes = [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs while this ran), "
        f"Python {platform.python_version()}, one BLAS thread.",
        "Engine: `spurious.run(ReLUTeacherStudent(k, k), runs, seed)` with the 2018 protocol; the lowest-loss "
        "spurious-minimum family is certified; 'runs x seeds' = starts per seed x seeds run (seeds "
        f"{args.seed}, {args.seed}+1, ... until the 2018 lowest loss appeared).",
        "Certificate: `spurious.certify.certify(problem, representative)`; radius = ball around the float64 point "
        "holding exactly one critical point; |eigenvalue| >= bound on every Hessian eigenvalue in that ball (all "
        "positive: a strict minimum); loss enclosure = F at the critical point; times are wall-clock seconds "
        "for certify (all ball arithmetic, 400 x 400 Hessian at k = 20) and for the independent re-check.",
        "Engine seconds per k: " + ", ".join(f"{k}: {e:.0f}" for k, e, _, _ in totals) + ".",
        "",
        "The certificates are in `benchmarks/certificates/`; re-check any of them with "
        "`spurious verify benchmarks/certificates/relu-k20-n20-lowest-spurious.json` "
        "(or `python spurious/verify.py FILE`, which needs only python-flint and numpy).",
        "",
        "Reproduce: `python benchmarks/certify_table.py` (writes this file and the certificates).",
    ]
    text = "# Certified lowest spurious minima, k = n = 6..20\n\n" + "\n".join(rows + notes) + "\n"
    if args.out != "-":
        Path(args.out).write_text(text)
        print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
