"""The disconnectivity graph of a network of minima and transition states (matplotlib)."""
from __future__ import annotations

from matplotlib.figure import Figure


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
