"""Copy, paste and duplicate parts of a graph. The clipboard holds ordinary ``.dcnet`` text (the
selected nodes, the wires between them and their positions), so a selection pasted into a text editor
is a valid graph file, and a graph file's text can be pasted onto the canvas. Pure engine code."""

from __future__ import annotations

import re

import engine
from engine.graph import Edge, Graph, Node, identifier

MIME = "application/x-deepcanvas-graph"


def copy_text(graph: Graph, node_ids) -> str:
    keep = [nid for nid in node_ids if nid in graph.nodes]
    chosen = set(keep)
    sub = Graph(graph.name, registry=graph.registry)
    for nid in keep:
        n = graph.nodes[nid]
        sub.nodes[nid] = Node(n.id, n.type, n.label, dict(n.params))
        if nid in graph.layout:
            sub.layout[nid] = graph.layout[nid]
    sub.edges = [e for e in graph.edges if e.src in chosen and e.dst in chosen]
    return engine.dumps(sub)


def free_label(graph: Graph, label: str) -> str:
    """``label`` if no node has it, else ``label_2``, ``label_3``, ... (an existing suffix is replaced)."""
    taken = {n.label for n in graph.nodes.values()}
    if label not in taken:
        return label
    base = re.sub(r"_\d+$", "", label)
    i = 2
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


def paste(graph: Graph, text: str, offset: tuple[float, float] = (40.0, 40.0),
          at: tuple[float, float] | None = None) -> list[str]:
    """Add the nodes and wires in ``text`` to ``graph`` with fresh ids and free labels. They land
    ``offset`` from where they were copied, or with their top-left corner ``at`` a point. Returns the
    new node ids. Raises ``GraphFileError`` for text that is not a graph."""
    src = engine.loads(text, "clipboard", graph.registry)
    positions = [src.layout[n] for n in src.nodes if n in src.layout]
    if at is not None and positions:
        left, top = min(p[0] for p in positions), min(p[1] for p in positions)
        offset = (at[0] - left, at[1] - top)
    new_ids: dict[str, str] = {}
    for nid, n in src.nodes.items():
        label = free_label(graph, n.label)
        new_id = graph.unique_id(identifier(label, "n"))
        graph.nodes[new_id] = Node(new_id, n.type, label, dict(n.params))
        if nid in src.layout:
            x, y = src.layout[nid]
            graph.layout[new_id] = (x + offset[0], y + offset[1])
        new_ids[nid] = new_id
    for e in src.edges:
        if e.src in new_ids and e.dst in new_ids:
            wire = Edge(new_ids[e.src], e.src_port, new_ids[e.dst], e.dst_port)
            try:
                graph.connect(wire.src, wire.src_port, wire.dst, wire.dst_port)
            except engine.GraphEditError:  # a node of an unknown type: keep the wire; validation reports it
                graph.edges.append(wire)
    return list(new_ids.values())
