"""Figures of a network of minima and transition states: its disconnectivity graph and the loss along
the paths that set the barriers (matplotlib)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..core.disconnectivity import disconnectivity


def disconnectivity_figure(losses, labels, merges, target: int | None = None, title: str = "") -> Figure:
    """Minima as the leaves of a tree at their losses, joined by horizontal bars at the saddle levels
    of `merges` ((level, node_a, node_b, new_node) as from spurious.landscape.disconnectivity);
    `target` (e.g. the global minimum) drawn in another colour. Minima never joined stand apart."""
    count = len(losses)
    children = {new: (a, b) for _, a, b, new in merges}
    level_of = {new: level for level, _, _, new in merges}
    top = set(range(count + len(merges))) - {c for pair in children.values() for c in pair}

    order: list[int] = []

    def leaves(node):
        if node < count:
            order.append(node)
        else:
            a, b = children[node]
            # the lower subtree first, so the tree reads left to right from its deepest minimum
            for child in sorted((a, b), key=lambda n: _lowest(n, children, losses, count)):
                leaves(child)

    for node in sorted(top, key=lambda n: _lowest(n, children, losses, count)):
        leaves(node)
    x = {leaf: float(position) for position, leaf in enumerate(order)}

    def place(node):
        if node not in x:
            a, b = children[node]
            x[node] = 0.5 * (place(a) + place(b))
        return x[node]

    def height(node):
        return losses[node] if node < count else level_of[node]

    figure = Figure(figsize=(max(4.0, 0.45 * count + 2.0), 4.5))
    axes = figure.add_subplot()
    for level, a, b, new in merges:
        for child in (a, b):
            axes.plot([place(child), place(child)], [height(child), level], color="0.2", lw=1.2)
        axes.plot([place(a), place(b)], [level, level], color="0.2", lw=1.2)
    for leaf in range(count):
        colour = "tab:green" if leaf == target else "tab:red"
        axes.plot([x[leaf]], [losses[leaf]], "o", color=colour, ms=5)
    axes.set_xticks([x[leaf] for leaf in order], [str(labels[leaf]) for leaf in order], rotation=60, ha="right",
                    fontsize=8)
    axes.set_ylabel("loss")
    axes.set_title(title or "disconnectivity graph (green: target)", fontsize=10)
    figure.tight_layout()
    return figure


def _lowest(node, children, losses, count) -> float:
    if node < count:
        return losses[node]
    a, b = children[node]
    return min(_lowest(a, children, losses, count), _lowest(b, children, losses, count))


def path_profiles_figure(network: dict, title: str = "") -> Figure | None:
    """The loss along the band that sets each minimum's lowest barrier to the target (minimum 0),
    against the position on the path (0: the band's first end, 1: its second); minima whose lowest
    barrier's saddle came from a single-ended search or an index reduction have no curve."""
    from .tables import lowest_barriers

    # a saddle found by a single-ended search or an index reduction has no band to draw
    found = [(i, search) for i, item in lowest_barriers(network).items() if item is not None
             for search in [item[1]] if search.get("path_losses") is not None]
    if not found:
        return None
    figure = Figure(figsize=(6.0, 4.0))
    axes = figure.add_subplot()
    for i, search in found:
        losses = np.asarray(search["path_losses"])
        position = np.linspace(0.0, 1.0, len(losses))
        label = f"{network['minima'][search['from']]['label']} -> {network['minima'][search['to']]['label']}"
        axes.plot(position, losses, ".-", lw=1.0, ms=3, label=label)
        top = 1 + int(np.argmax(losses[1:-1]))
        axes.plot([position[top]], [search["saddle_loss"]], "k^", ms=5)
    axes.set_xlabel("position along the band")
    axes.set_ylabel("loss")
    axes.set_title(title or "paths of the lowest barriers (triangles: saddles)", fontsize=10)
    axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def transition_figures(report) -> list[tuple[Figure, str]]:
    """(figure, caption) for each explored problem of a landscape report: its disconnectivity graph and
    its path profiles."""
    out = []
    for t in report.transitions:
        network = t["network"]
        minima = network["minima"]
        edges = [(e["a"], e["b"], network["searches"][e["search"]]["saddle_loss"]) for e in network["edges"]]
        merges = disconnectivity([m["loss"] for m in minima], edges)
        out.append((disconnectivity_figure([m["loss"] for m in minima], [m["label"] for m in minima], merges,
                                           target=0, title=t["label"]),
                    f"{t['label']}: disconnectivity graph: each minimum at its loss, joined to others at the lowest "
                    f"saddle found between them; green: the global minimum"))
        profiles = path_profiles_figure(network, title=t["label"])
        if profiles is not None:
            out.append((profiles, f"{t['label']}: loss along the bands whose saddles set the barriers"))
    return out
