"""The disconnectivity tree of minima joined by saddles (Becker & Karplus, J. Chem. Phys. 106, 1495,
1997): plain data, no JAX, shared by the exploration (spurious.landscape) and the reports."""
from __future__ import annotations


def disconnectivity(losses, edges: list[tuple[int, int, float]]) -> list[tuple[float, int, int, int]]:
    """The disconnectivity tree (Becker & Karplus 1997) of minima 0..m-1 joined by saddles (i, j, level):
    the saddles in ascending order of level, kept where they join two groups not yet connected
    (union-find). Returns the merges (level, node_a, node_b, new_node): nodes 0..m-1 are the minima,
    m, m+1, ... the groups formed by successive merges."""
    from scipy.cluster.hierarchy import DisjointSet

    count = len(losses)
    groups = DisjointSet(range(count))
    node = {i: i for i in range(count)}  # a group's representative -> its node in the tree
    merges = []
    for i, j, level in sorted(edges, key=lambda edge: edge[2]):
        a, b = groups[i], groups[j]
        if a == b:
            continue
        new = count + len(merges)
        merges.append((float(level), node[a], node[b], new))
        groups.merge(i, j)
        node[groups[i]] = new
    return merges


def lowest_levels(count: int, merges, target: int) -> dict[int, float | None]:
    """For each minimum, the lowest saddle level at which it is joined to `target` in the tree (the
    minimax path over the network's saddles), None where it never is."""
    members = {i: {i} for i in range(count)}
    joined: dict[int, float | None] = {i: None for i in range(count)}
    joined[target] = None
    for level, a, b, new in merges:
        members[new] = members.pop(a) | members.pop(b)
        if target in members[new]:
            for m in members[new]:
                if joined[m] is None and m != target:
                    joined[m] = level
    return joined
