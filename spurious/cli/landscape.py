"""`spurious landscape explore`: transition states between a stored study's minima."""
from __future__ import annotations

import os
from collections import Counter

from ..core.files import check_output_folder


def register(subparsers):
    landscape = subparsers.add_parser(
        "landscape", help="the landscape between a study's minima: transition states, barriers, disconnectivity graphs",
        description="Explore the landscape between the minima a study found (see docs/landscape.md).")
    sub = landscape.add_subparsers(dest="landscape_command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "explore", help="transition states from each spurious family to the global minimum (resumable)",
        description="For every finished problem of the study: nudged elastic bands from each spurious minimum "
                    "family to the global minimum (and on through the minima they pass), their highest points "
                    "refined to index-1 saddles, confirmed by descent and certified in ball arithmetic. Each "
                    "problem's network is committed to the store; a second run skips the problems done.")
    p.add_argument("study", help="study name or name@size")
    p.add_argument("--store", metavar="PATH", default=None,
                   help="the study database (default $SPURIOUS_STORE or ./spurious.db)")
    p.add_argument("--all-pairs", action="store_true", help="a band between every pair of minima, not only to the global")
    p.add_argument("--single-ended", type=int, metavar="M", default=0,
                   help="also follow the M softest Hessian modes of every minimum uphill, both ways, to the saddles "
                        "they reach (gentlest ascent; default 0: only from minima no band joined to the global one, "
                        "2 modes)")
    p.add_argument("--images", type=int, default=16, help="points on each band, the two minima included (default 16)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write each problem's disconnectivity graph, DIR/<problem>.png (created if its parent exists)")
    p.set_defaults(handler=handle_explore)


def _barrier_lines(network) -> list[str]:
    barriers = network.lowest_barriers(0)
    lines = []
    for i, (label, loss, _) in enumerate(network.minima):
        if i == 0:
            continue
        barrier = barriers[i]
        if barrier is None:
            lines.append(f"  {label}: loss {loss:.10f}, no path to the global minimum found")
            continue
        level = loss + barrier
        search = next(s for a, b, s in network.edges if network.searches[s][2].saddle_loss == level)
        certificate = network.certificates.get(search)
        proof = ("not certified" if certificate is None else f"certification refused: {certificate}"
                 if isinstance(certificate, str) else
                 f"saddle certified, index {certificate.morse_index}, loss in [{float(certificate.loss_lower):.13f}, "
                 f"{float(certificate.loss_upper):.13f}]")
        lines.append(f"  {label}: loss {loss:.10f}, barrier to the global minimum {barrier:.4e} ({proof})")
    return lines


def handle_explore(args) -> int:
    from ..cli.study import _store_path
    from ..store import Store
    from ..studies.landscape import explore_study
    from ..transitions import Ascent, Band

    band = Band(images=args.images)
    ascent = Ascent(modes=args.single_ended) if args.single_ended else Ascent(modes=2)
    if args.single_ended < 0:
        Ascent(modes=args.single_ended)  # refuses with the reason
    if args.out is not None:
        check_output_folder(args.out, "--out")

    def report(problem_key, network, families):
        kinds = Counter(t.kind for _, _, t in network.searches)
        print(f"{problem_key}: {len(network.minima)} minima, {kinds['band']} bands, {kinds['ascent']} single-ended searches, "
              f"{kinds['reduction']} index reductions, {len(network.edges)} "
              f"transition states ({network.seconds:.1f} s)", flush=True)
        for line in _barrier_lines(network):
            print(line, flush=True)
        if args.out is not None:
            from ..report.landscape import disconnectivity_figure

            os.makedirs(args.out, exist_ok=True)
            safe = "".join(ch if ch.isalnum() or ch in "-_=," else "_" for ch in problem_key)
            figure = disconnectivity_figure([m[1] for m in network.minima], [m[0] for m in network.minima],
                                            network.merges(), target=0, title=problem_key)
            figure.savefig(os.path.join(args.out, f"{safe}.png"), dpi=110)

    with Store(_store_path(args), create=False) as store:
        key = store.resolve(args.study)
        result = explore_study(store, key, band, all_pairs=args.all_pairs,
                               command=f"spurious landscape explore {key}", on_problem=report, ascent=ascent,
                               single_ended=bool(args.single_ended))
    print(f"{key}: {result.explored} problems explored, {result.skipped} already in the store ({result.seconds:.1f} s)"
          + (f"; graphs in {args.out}" if args.out else ""))
    return 0

