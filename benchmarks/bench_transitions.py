"""Transition states between the minima of the 2018 protocol, k = n = 6..10 (issue 18).

    python -u benchmarks/bench_transitions.py [--ks 6-10] [--runs 1000] [--out DIR] [--numpy-iterations 300]

For each k: a multistart (2018 protocol) finds the families; every spurious family's representative
and the global minimum W = I are explored (spurious.landscape.explore: rounds of batched bands,
index-1 saddles confirmed by descent and certified by ball arithmetic). Prints the barrier table
(the lowest barrier from each spurious family to the global minimum, over the network's saddles),
writes the disconnectivity graph of each k to DIR, and times the exploration. Baseline in the same
process: the per-pair, per-image NumPy band (numpy_baseline.nudged_elastic_band), timed over
--numpy-iterations iterations on the first round's pairs of each k and scaled to the iterations the
batched band took; the batched band's own time per path is timed on the same pairs (compiled first).
"""
from __future__ import annotations

import argparse
from collections import Counter
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import spurious as sp  # noqa: E402
from spurious import landscape as ls  # noqa: E402
from spurious import transitions as tr  # noqa: E402
from spurious.report.landscape import disconnectivity_figure  # noqa: E402

from numpy_baseline import nudged_elastic_band  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", default="6-10")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="transitions-bench")
    parser.add_argument("--numpy-iterations", type=int, default=300)
    args = parser.parse_args()
    lo, hi = (int(x) for x in args.ks.split("-"))
    os.makedirs(args.out, exist_ok=True)
    band = tr.Band()
    total_explore = 0.0
    for k in range(lo, hi + 1):
        problem = sp.ReLUTeacherStudent(k, k)
        started = time.perf_counter()
        result = sp.run(problem, args.runs, seed=args.seed)
        search_seconds = time.perf_counter() - started
        families = [f for f in result.analysis.families if f.cls == "spurious_minimum"]
        minima = [("global", np.eye(k))] + [(f"F{f.id} {f.isotropy}", f.representative) for f in families]
        print(f"\nk = n = {k}: {args.runs} runs in {search_seconds:.1f} s, {len(families)} spurious families", flush=True)
        if not families:
            continue
        network = ls.explore(problem, minima, target=0, band=band)
        total_explore += network.seconds
        found = len(network.minima) - len(minima)
        kinds = Counter(t.kind for _, _, t in network.searches)
        print(f"exploration {network.seconds:.1f} s: {kinds['band']} bands, {kinds['ascent']} single-ended searches and "
              f"{kinds['reduction']} index reductions, {len(network.edges)} saddles "
              f"joining minima, {found} minima found on the way")
        barriers = network.lowest_barriers(0)
        print(f"  {'minimum':24s} {'loss':>12s} {'barrier to global':>18s} {'saddle loss (certified enclosure)':>44s} index")
        for i, (label, loss, _) in enumerate(network.minima):
            if i == 0:
                continue
            barrier = barriers[i]
            if barrier is None:
                print(f"  {label:24s} {loss:12.8f} {'no path found':>18s}")
                continue
            level = loss + barrier
            search = next(s for a, b, s in network.edges if abs(network.searches[s][2].saddle_loss - level) < 1e-15)
            certificate = network.certificates.get(search)
            if certificate is None or isinstance(certificate, str):
                enclosure, index = f"not certified: {certificate}", network.searches[search][2].morse_index
            else:
                enclosure = f"[{float(certificate.loss_lower):.13f}, {float(certificate.loss_upper):.13f}]"
                index = certificate.morse_index
            print(f"  {label:24s} {loss:12.8f} {barrier:18.3e} {enclosure:>44s} {index:5d}")
        refused = [s for s, c in network.certificates.items() if isinstance(c, str)]
        print(f"  certificates: {len(network.certificates) - len(refused)} saddles certified with index "
              f"{sorted({c.morse_index for c in network.certificates.values() if not isinstance(c, str)})}, "
              f"{len(refused)} refused")
        figure = disconnectivity_figure([m[1] for m in network.minima], [m[0] for m in network.minima],
                                        network.merges(), target=0, title=f"k = n = {k}")
        figure.savefig(os.path.join(args.out, f"disconnectivity-k{k}.png"), dpi=110)

        # time per path: the batched band against the NumPy band, on the first round's pairs
        pairs = [(network.minima[i][2], tr.align(problem, network.minima[i][2], network.minima[0][2]))
                 for i in range(1, len(minima))]
        starts, ends = np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])
        tr.elastic_bands(problem, starts, ends, band)  # compiled
        started = time.perf_counter()
        paths = tr.elastic_bands(problem, starts, ends, band)
        batched = (time.perf_counter() - started) / len(pairs)
        iterations = paths[0].iterations
        started = time.perf_counter()
        nudged_elastic_band(starts[0], ends[0], problem.teacher_weights, images=band.images, step=band.step,
                            spring=band.spring, climb_after=band.climb_after, iterations=args.numpy_iterations)
        numpy_per_path = (time.perf_counter() - started) / args.numpy_iterations * iterations
        print(f"  time per path ({len(pairs)} pairs, {iterations} iterations): batched {batched:.2f} s, "
              f"NumPy per pair {numpy_per_path:.1f} s (scaled from {args.numpy_iterations} iterations): "
              f"ratio {numpy_per_path / batched:.0f}x", flush=True)
    print(f"\nexploration total (k = {lo}..{hi}, multistarts excluded): {total_explore:.1f} s = {total_explore / 60:.1f} min")


if __name__ == "__main__":
    main()
