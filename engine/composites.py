"""Composite editing: expand a block into its primitive nodes, or collapse selected nodes into a new
composite saved in the graph file. Qt-free document edits that the GUI's undo commands call.

A composite's sub-graph is an ordinary graph: its Input nodes are the block's input ports and its
Output nodes its output ports, by label.
"""

from __future__ import annotations

import copy

from .graph import Edge, Graph, GraphEditError, identifier
from .inference import infer_shapes
from .spec import LAYER


def expand(graph: Graph, node_id: str) -> list[str]:
    """Replace a composite node by the nodes of its sub-graph, wired as the block was. Returns the ids
    of the new nodes. Labels become '<block>.<inner>' so the origin stays readable."""
    node = graph.node(node_id)
    sub = graph.definition(node_id)
    if sub is None:
        raise GraphEditError(f"'{node.label}' is not a composite block that can be expanded")
    twins = [n.label for n in graph.nodes.values() if n.shares == node_id]
    if node.shares is not None or twins:
        other = graph.node(node.shares).label if node.shares else twins[0]
        raise GraphEditError(f"'{node.label}' shares its weights with '{other}'; stop sharing before expanding, "
                             "or the expanded copy would silently get weights of its own")
    inputs = {n.id: n.label for n in sub.nodes.values() if n.type == "Input"}
    outputs = {n.id: n.label for n in sub.nodes.values() if n.type == "Output"}
    incoming = {e.dst_port: (e.src, e.src_port) for e in graph.edges_into(node_id)}
    outgoing: dict[str, list[tuple[str, str]]] = {}
    for e in graph.edges_from(node_id):
        outgoing.setdefault(e.src_port, []).append((e.dst, e.dst_port))

    x0, y0 = graph.layout.get(node_id, (0.0, 0.0))
    inner_pos = [sub.layout[n] for n in sub.nodes if n in sub.layout]
    ox = min((p[0] for p in inner_pos), default=0.0)
    oy = min((p[1] for p in inner_pos), default=0.0)
    graph.remove_node(node_id)

    new_ids: dict[str, str] = {}
    for inner in sub.nodes.values():
        if inner.id in inputs or inner.id in outputs:
            continue
        label = f"{node.label}.{inner.label}"
        if any(n.label == label for n in graph.nodes.values()):
            label = graph.unique_label(label + "_")
        nid = graph.unique_id(identifier(label, "n"))
        graph.nodes[nid] = type(inner)(nid, inner.type, label, copy.deepcopy(inner.params))
        new_ids[inner.id] = nid
        if inner.id in sub.layout:
            px, py = sub.layout[inner.id]
            graph.layout[nid] = (x0 + px - ox, y0 + py - oy)
    for inner in sub.nodes.values():  # weight sharing inside the block stays inside it
        if inner.shares is not None and inner.id in new_ids and inner.shares in new_ids:
            graph.nodes[new_ids[inner.id]].shares = new_ids[inner.shares]

    def sources(src: str, src_port: str) -> list[tuple[str, str]]:
        if src in inputs:
            return [incoming[inputs[src]]] if inputs[src] in incoming else []
        return [(new_ids[src], src_port)]

    for e in sub.edges:
        if e.dst in outputs:
            for s in sources(e.src, e.src_port):
                for d in outgoing.get(outputs[e.dst], []):
                    graph.edges.append(Edge(*s, *d))
        else:
            for s in sources(e.src, e.src_port):
                graph.edges.append(Edge(*s, new_ids[e.dst], e.dst_port))
    return list(new_ids.values())


def collapse(graph: Graph, node_ids: list[str], name: str, label: str | None = None) -> str:
    """Move the selected nodes into a new composite called ``name`` (saved in the file, reusable) and
    put one node of it in their place. Every wire entering the selection becomes an Input of the
    composite (one per distinct source), every wire leaving it an Output. Returns the new node's id."""
    selected = list(dict.fromkeys(node_ids))
    if not selected:
        raise GraphEditError("select the nodes to group into a composite first")
    if not name.strip():
        raise GraphEditError("a composite needs a name")
    if name in graph.composites or name in graph.registry:
        raise GraphEditError(f"the name '{name}' is already used by a composite or node type")
    for nid in selected:
        node = graph.node(nid)
        spec = graph.registry.get(node.type)
        if spec is None or spec.role != LAYER:
            raise GraphEditError(f"'{node.label}' ({node.type}) cannot go inside a composite: only layers and "
                                 "blocks can; Inputs, Outputs, Targets and losses stay in the main graph")
        owner = node.shares
        if owner is not None and owner not in selected:
            raise GraphEditError(f"'{node.label}' shares weights with '{graph.node(owner).label}', which is not "
                                 "selected")
        for twin in graph.nodes.values():
            if twin.shares == nid and twin.id not in selected:
                raise GraphEditError(f"'{twin.label}' shares the weights of '{node.label}' but is not selected")
    chosen = set(selected)
    inf = infer_shapes(graph)
    sub = Graph(name, f"Made from {len(selected)} nodes of '{graph.name}'.", graph.registry)
    sub.composites = graph.composites

    in_nodes: dict[tuple[str, str], str] = {}  # outside source -> Input label
    out_nodes: dict[tuple[str, str], str] = {}  # inside source -> Output label
    for nid in selected:  # keep document order inside the composite
        node = graph.nodes[nid]
        sub.nodes[nid] = type(node)(nid, node.type, node.label, copy.deepcopy(node.params), node.shares)
        if nid in graph.layout:
            sub.layout[nid] = graph.layout[nid]
    for e in graph.edges:
        src_in, dst_in = e.src in chosen, e.dst in chosen
        if src_in and dst_in:
            sub.edges.append(e)
        elif dst_in:
            key = (e.src, e.src_port)
            if key not in in_nodes:
                t = inf.shape(*key)
                if t is None or any(not isinstance(d, int) and not str(d).isidentifier() for d in t.shape[1:]):
                    raise GraphEditError(f"the shape arriving from '{graph.nodes[e.src].label}' is not known; fix "
                                         "the graph's errors before grouping")
                base = identifier(graph.nodes[e.src].label) if in_nodes else "x"
                n = sub.add_node("Input", _free_label(sub, base), {"shape": list(t.shape[1:]), "dtype": t.dtype})
                in_nodes[key] = n.label
                _place(sub, n.id, graph.layout.get(e.dst), -80)
            sub.edges.append(Edge(sub.by_label(in_nodes[key]).id, "out", e.dst, e.dst_port))
        elif src_in:
            key = (e.src, e.src_port)
            if key not in out_nodes:
                base = identifier(graph.nodes[e.src].label if e.src_port == "out" else e.src_port)
                n = sub.add_node("Output", _free_label(sub, "out" if not out_nodes else base))
                out_nodes[key] = n.label
                sub.edges.append(Edge(e.src, e.src_port, n.id, "in"))
                _place(sub, n.id, graph.layout.get(e.src), 80)

    xs = [graph.layout[n] for n in selected if n in graph.layout]
    centre = (sum(p[0] for p in xs) / len(xs), sum(p[1] for p in xs) / len(xs)) if xs else None
    outside_edges = [e for e in graph.edges if (e.src in chosen) != (e.dst in chosen)]
    for nid in selected:
        graph.remove_node(nid)
    graph.composites[name] = sub
    block = graph.add_node("Composite", label or graph.unique_label(identifier(name).lower()),
                           {"definition": name}, pos=centre)
    for e in outside_edges:
        if e.dst in chosen:
            wire = Edge(e.src, e.src_port, block.id, in_nodes[(e.src, e.src_port)])
        else:
            wire = Edge(block.id, out_nodes[(e.src, e.src_port)], e.dst, e.dst_port)
        if wire not in graph.edges:  # one source feeding several nodes inside enters once
            graph.edges.append(wire)
    return block.id


def _free_label(g: Graph, base: str) -> str:
    label, i = base, 2
    while any(n.label == label for n in g.nodes.values()):
        label = f"{base}_{i}"
        i += 1
    return label


def _place(sub: Graph, nid: str, near, dy: float) -> None:
    if near is not None:
        sub.layout[nid] = (near[0], near[1] + dy)


# ---------------------------------------------------------------------------------------------------
# Editing a composite's inside: every instance follows the definition.

def graphs_with(graph: Graph) -> list[Graph]:
    """The top graph and every composite definition of its file (where instances can live)."""
    return [graph, *graph.composites.values()]


def instances(graph: Graph, name: str) -> list[tuple[Graph, str]]:
    """Every node that instantiates the user composite ``name``, as (the graph holding it, node id): the
    top graph's first, in document order, then those inside other definitions."""
    return [(g, nid) for g in graphs_with(graph) for nid, n in g.nodes.items()
            if n.type == "Composite" and n.params.get("definition") == name]


def port_labels(sub: Graph) -> dict[str, tuple[str, str]]:
    """A definition's ports as {node id: (Input or Output, label)}: what ``sync_instances`` compares."""
    return {nid: (n.type, n.label) for nid, n in sub.nodes.items() if n.type in ("Input", "Output")}


def sync_instances(graph: Graph, name: str, before: dict[str, tuple[str, str]]) -> list[Edge]:
    """Keep every instance's wires in step after the inside of composite ``name`` was edited. ``before``
    is ``port_labels`` of the definition before the edit: a port whose Input or Output node was renamed
    keeps its wires under the new name; wires on a port that no longer exists are removed and returned
    (so an editor can say so). The definition must exist."""
    sub = graph.composites[name]
    after = port_labels(sub)
    renamed = {(kind, old): after[nid][1] for nid, (kind, old) in before.items()
               if nid in after and after[nid][0] == kind and after[nid][1] != old}
    ins = {label for kind, label in after.values() if kind == "Input"}
    outs = {label for kind, label in after.values() if kind == "Output"}
    dropped: list[Edge] = []
    for g, nid in instances(graph, name):
        kept = []
        for e in g.edges:
            if e.dst == nid:
                port = renamed.get(("Input", e.dst_port), e.dst_port)
                e = Edge(e.src, e.src_port, e.dst, port)
                if port not in ins:
                    dropped.append(e)
                    continue
            if e.src == nid:
                port = renamed.get(("Output", e.src_port), e.src_port)
                e = Edge(e.src, port, e.dst, e.dst_port)
                if port not in outs:
                    dropped.append(e)
                    continue
            kept.append(e)
        g.edges = kept
    return dropped


def rename_definition(graph: Graph, old: str, new: str) -> int:
    """Rename the user composite ``old`` to ``new``; every instance (in the top graph and inside other
    definitions) follows. Returns the number of instances renamed."""
    if old not in graph.composites:
        raise GraphEditError(f"this file defines no composite '{old}'")
    new = new.strip()
    if not new:
        raise GraphEditError("a composite needs a name")
    if new == old:
        return 0
    if new in graph.composites or new in graph.registry:
        raise GraphEditError(f"the name '{new}' is already used by a composite or node type")
    found = instances(graph, old)
    sub = graph.composites.pop(old)
    sub.name = new
    graph.composites[new] = sub
    for g, nid in found:
        g.nodes[nid].params["definition"] = new
    return len(found)
