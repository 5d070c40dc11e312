"""Automatic layout: the network flows top to bottom in layers, as the templates are drawn.

Each node goes in the row after the deepest of its inputs (longest path from a source); a node with no
inputs (an Input, a Target) sits one row above its first consumer, so a loss's targets appear next to
it. Within a row, nodes are ordered by the mean column of their inputs (the barycentre heuristic), which
keeps branches side by side and wires short. Rows are ``ROW`` apart and columns ``COLUMN`` apart, the
grid the templates use. Pure Python: it only reads and writes ``graph.layout``.
"""

from __future__ import annotations

from collections import defaultdict

from engine.graph import Graph

ROW = 90.0
COLUMN = 260.0


def layers(graph: Graph) -> dict[str, int]:
    """The row of every node: longest path from a source, sources pulled down to their consumers."""
    from engine.inference import topological_order

    order, _cycles = topological_order(graph)
    order += [n for n in graph.nodes if n not in set(order)]  # nodes in a cycle: after the rest
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for e in graph.edges:
        if e.src in graph.nodes and e.dst in graph.nodes:
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)
    row: dict[str, int] = {}
    for nid in order:
        row[nid] = max((row[p] + 1 for p in preds[nid] if p in row), default=0)
    for nid in reversed(order):  # sources just above their first consumer
        if not preds[nid] and succs[nid]:
            row[nid] = max(0, min(row[s] for s in succs[nid]) - 1)
    return row


def arrange(graph: Graph, node_ids=None) -> dict[str, tuple[float, float]]:
    """Positions for ``node_ids`` (default: all nodes), laid out among themselves."""
    ids = list(graph.nodes) if node_ids is None else [n for n in node_ids if n in graph.nodes]
    keep = set(ids)
    sub = Graph(registry=graph.registry)
    sub.nodes = {nid: graph.nodes[nid] for nid in ids}
    sub.edges = [e for e in graph.edges if e.src in keep and e.dst in keep]
    row = layers(sub)
    by_row: dict[int, list[str]] = defaultdict(list)
    for nid in ids:
        by_row[row[nid]].append(nid)
    preds: dict[str, list[str]] = defaultdict(list)
    for e in sub.edges:
        preds[e.dst].append(e.src)
    column: dict[str, float] = {}
    for r in sorted(by_row):
        members = by_row[r]
        index = {nid: i for i, nid in enumerate(members)}

        def key(nid):
            cols = [column[p] for p in preds[nid] if p in column]
            return (sum(cols) / len(cols) if cols else float("inf"), index[nid])

        members.sort(key=key)
        wanted = [key(n)[0] for n in members]
        # spread the row around the mean of what feeds it, one column apart
        known = [w for w in wanted if w != float("inf")]
        centre = sum(known) / len(known) if known else 0.0
        start = centre - (len(members) - 1) / 2
        for i, nid in enumerate(members):
            column[nid] = start + i
    origin = min(column.values(), default=0.0)
    return {nid: (round((column[nid] - origin) * COLUMN, 1), row[nid] * ROW) for nid in ids}


def apply(graph: Graph, node_ids=None) -> None:
    """Lay out the nodes (all by default) in place. A subset keeps its top-left corner."""
    positions = arrange(graph, node_ids)
    if node_ids is not None:
        old = [graph.layout[n] for n in positions if n in graph.layout]
        if old:
            ox, oy = min(p[0] for p in old), min(p[1] for p in old)
            positions = {n: (x + ox, y + oy) for n, (x, y) in positions.items()}
    graph.layout.update(positions)


def place_missing(graph: Graph) -> None:
    """Give every node without a position one: all of them laid out when none has a position,
    otherwise each missing one in a free row below the others."""
    missing = [nid for nid in graph.nodes if nid not in graph.layout]
    if not missing:
        return
    if len(missing) == len(graph.nodes):
        apply(graph)
        return
    bottom = max(y for _x, y in graph.layout.values()) + ROW
    left = min(x for x, _y in graph.layout.values())
    for nid, (x, y) in arrange(graph, missing).items():
        graph.layout[nid] = (left + x, bottom + y)
