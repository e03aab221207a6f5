"""Annihilation of the lowest spurious minimum of every k = 6..20 (n = k) by one more student neuron.

    python benchmarks/annihilation_table.py [--ks 6-20] [--alpha 0.5] [--out benchmarks/certificates/annihilation]

For each k it reads the certified lowest spurious minimum of benchmarks/certificates/relu-k{k}-n{k}-
lowest-spurious.json, splits the neuron whose splitting block has the most negative eigenvalue
(spurious.annihilation), writes the annihilation certificate, re-checks it with spurious.verify (timed
apart), and prints one markdown row: the 2021 criterion (smallest eigenvalue of H_ww - I/2) of the odd
neuron and of the others, the same curvature from the (n+1)-Hessian, the certified bounds, and where
gradient descent of n = k + 1 goes from 8 starts at distance 1e-3 from the split point.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import spurious as sp
from spurious.annihilation import annihilate
from spurious.certify import Certificate
from spurious.verify import verify_certificate

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ks", default="6-20")
    parser.add_argument("--alpha", default="0.5")
    parser.add_argument("--out", default=os.path.join(HERE, "certificates", "annihilation"))
    args = parser.parse_args(argv)
    lo, hi = (int(x) for x in args.ks.split("-"))
    os.makedirs(args.out, exist_ok=True)
    print("| k | loss of the minimum | split neuron | criterion: min eig (H_ww - I/2), all neurons | "
          "(n+1)-Hessian along the split x a(1-a) | certified a^T S a <= | curvature at alpha <= | "
          "certify + descent s | verify s | descent from the split point (n = k + 1) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k in range(lo, hi + 1):
        base = Certificate.read(os.path.join(HERE, "certificates", f"relu-k{k}-n{k}-lowest-spurious.json"))
        problem = sp.ReLUTeacherStudent(k, k)
        result = annihilate(problem, base.point, args.alpha)
        if result.certificate is None:
            print(f"| {k} | {result.loss:.6f} | {result.neuron} | refused: {result.refusal} |", flush=True)
            continue
        path = os.path.join(args.out, f"relu-k{k}-n{k + 1}-split.json")
        result.certificate.write(path)
        started = time.perf_counter()
        with open(path) as handle:
            verify_certificate(json.load(handle))
        checked = time.perf_counter() - started
        criteria = np.array([s.criterion for s in result.splits])
        values = ", ".join(f"{v:.4f}" for v in sorted(set(np.round(criteria, 4))))
        chosen = result.chosen
        descent = "; ".join(f"{f.cls.replace('_', ' ')} (loss {f.loss:.3g}): {f.count}" for f in result.descent.families)
        print(f"| {k} | {result.loss:.6f} | {result.neuron} | {values} | "
              f"{chosen.embedded_curvature * result.alpha * (1 - result.alpha):.6f} | "
              f"{result.certificate.data['bounds']['splitting_curvature_upper']} | "
              f"{result.certificate.data['claim']['curvature_upper']} | {result.seconds:.1f} | {checked:.1f} | "
              f"{descent} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
