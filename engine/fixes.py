"""One-click fixes for common shape errors: named actions that edit a graph document.

``fixes_for(graph, problem)`` looks at one problem reported by ``infer_shapes`` and returns the repairs
that apply to it, most likely first. Each :class:`Fix` has a short title for a button ("Insert a Flatten
before 'fc1'"), a sentence saying what it does, and ``apply(graph)``, which edits the document through
the ordinary ``Graph`` methods and returns the ids of the nodes it added or changed. The GUI offers them
on the error itself (and wraps ``apply`` in an undoable edit); scripts can call them directly::

    inf = engine.infer_shapes(graph)
    for problem in inf.errors:
        for fix in fixes_for(graph, problem, inf):
            print(problem.message, "->", fix.title)
    fixes_for(graph, inf.errors[0])[0].apply(graph)

The repairs:

- ``insert_flatten``: a Linear receives an image-like tensor (N, C, H, W): put a Flatten on its input wire.
  Offered on the Linear itself and on an error further down that it causes (a loss that gets
  (N, 16, 5, 10) class scores because a Flatten is missing upstream).
- ``set_input_size``: a layer's declared input size (Linear ``in_features``, Conv2d ``in_channels``,
  BatchNorm ``num_features``) disagrees with what arrives: set it to the arriving size.
- ``project_shortcut``: an Add whose inputs differ in channels (or in H and W by a whole factor), as in a
  residual block that changes width: put a 1x1 Conv2d (with the matching stride) on the shortcut, the
  input that branches off earlier.

Pure Python; no Qt, no torch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from .graph import Edge, Graph, Node
from .inference import ERROR, Inference, Problem, infer_shapes
from .spec import TensorInfo

# Declared input-size params that are 0 for "take it from the wire", and the axis they describe.
INPUT_SIZE_PARAMS: dict[str, int] = {"in_features": -1, "in_channels": 1, "num_features": 1}

ROW = 90.0  # vertical distance between consecutive nodes in the templates' layout


@dataclass(frozen=True)
class Fix:
    """A named repair. ``apply`` edits the graph it is given and returns the ids of the nodes it added
    or changed; it raises ``GraphEditError``/``ParamError`` (leaving what it did so far) when the graph
    has changed so much that the fix no longer fits, so callers apply it inside an undoable edit."""

    code: str
    title: str
    detail: str
    node: str
    _apply: Callable[[Graph], list[str]] = field(repr=False, compare=False)

    def apply(self, graph: Graph) -> list[str]:
        return self._apply(graph)


def fixes_for(graph: Graph, problem: Problem, inference: Inference | None = None) -> list[Fix]:
    """The fixes that apply to one problem (possibly none), the most likely first."""
    if problem.severity != ERROR or problem.node is None or problem.node not in graph.nodes:
        return []
    inf = inference if inference is not None else infer_shapes(graph)
    out: list[Fix] = []
    node = graph.nodes[problem.node]
    if problem.code == "shape":
        if node.type == "Add":
            out += _shortcut_projection(graph, inf, node)
        out += _input_size(graph, inf, node)
    if problem.code in ("shape", "internal"):
        linear = _linear_needing_flatten(graph, inf, node)
        if linear is not None:
            out.insert(0, _insert_flatten(graph, inf, linear))
    return out


def all_fixes(graph: Graph, inference: Inference | None = None) -> list[tuple[Problem, list[Fix]]]:
    """Every error with the fixes offered for it (errors without a fix included, with an empty list)."""
    inf = inference if inference is not None else infer_shapes(graph)
    return [(p, fixes_for(graph, p, inf)) for p in inf.errors]


# --------------------------------------------------------------------------- helpers

def _incoming(graph: Graph, node_id: str, port: str) -> Edge | None:
    for e in graph.edges:
        if e.dst == node_id and e.dst_port == port:
            return e
    return None


def _between(graph: Graph, a: str, b: str) -> tuple[float, float] | None:
    pa, pb = graph.layout.get(a), graph.layout.get(b)
    if pa is None or pb is None:
        return None
    return ((pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2)


def insert_on_wire(graph: Graph, edge: Edge, type_name: str, params: dict | None = None,
                   label_prefix: str | None = None, port_in: str = "in", port_out: str = "out") -> Node:
    """Replace the wire ``edge`` by ``src -> new node -> dst``. The new node sits between the two on
    the canvas, and the nodes from ``dst`` down move one row to make room when the wire is vertical."""
    spec = graph.registry[type_name]
    label = graph.unique_label(label_prefix or spec.prefix)
    pos = _between(graph, edge.src, edge.dst)
    graph.disconnect(edge)
    node = graph.add_node(type_name, label, params, pos=pos)
    graph.connect(edge.src, edge.src_port, node.id, port_in)
    graph.connect(node.id, port_out, edge.dst, edge.dst_port)
    _make_room(graph, edge, node.id)
    return node


def _make_room(graph: Graph, edge: Edge, new_id: str) -> None:
    """When the wire ran down a column with about one row between its ends, push everything at or below
    ``dst`` down a row so the inserted node does not sit on top of its neighbours."""
    pa, pb = graph.layout.get(edge.src), graph.layout.get(edge.dst)
    if pa is None or pb is None or abs(pa[0] - pb[0]) > 1 or pb[1] - pa[1] > 1.5 * ROW or pb[1] <= pa[1]:
        return
    limit = pb[1]
    for nid, (x, y) in list(graph.layout.items()):
        if nid != new_id and y >= limit:
            graph.layout[nid] = (x, y + ROW)
    graph.layout[new_id] = (pa[0], pa[1] + ROW)


def _input_tensor(inf: Inference, node_id: str, port: str = "in") -> TensorInfo | None:
    info = inf.nodes.get(node_id)
    return info.inputs.get(port) if info else None


# --------------------------------------------------------------------------- insert a Flatten

def _linear_needing_flatten(graph: Graph, inf: Inference, node: Node) -> Node | None:
    """The first Linear (this node, or upstream of it) that receives a tensor with more than one axis
    after the batch from something other than a Flatten: where the missing Flatten belongs. Later
    Linears on the same path only pass the extra axes along."""
    seen: set[str] = set()
    found: list[str] = []
    queue = deque([(node.id, 0)])
    while queue:
        nid, depth = queue.popleft()
        if nid in seen or depth > 24:
            continue
        seen.add(nid)
        t = _input_tensor(inf, nid)
        if graph.nodes[nid].type == "Linear" and t is not None and t.rank > 2:
            e = _incoming(graph, nid, "in")
            if e is not None and graph.nodes[e.src].type != "Flatten":
                found.append(nid)
        info = inf.nodes.get(nid)
        for src, _port in (info.sources.values() if info else ()):
            queue.append((src, depth + 1))
    if not found:
        return None
    position = {nid: i for i, nid in enumerate(inf.order)}
    return graph.nodes[min(found, key=lambda nid: position.get(nid, 0))]


def _insert_flatten(graph: Graph, inf: Inference, linear: Node) -> Fix:
    t = _input_tensor(inf, linear.id)
    size = 1
    for d in t.shape[1:]:
        size = size * d if isinstance(d, int) and isinstance(size, int) else "?"
    label, lid = linear.label, linear.id

    def apply(g: Graph) -> list[str]:
        edge = _incoming(g, lid, "in")
        if edge is None:
            from .graph import GraphEditError
            raise GraphEditError(f"'{label}' no longer has an input wire")
        flat = insert_on_wire(g, edge, "Flatten")
        return [flat.id]

    return Fix("insert_flatten", f"Insert a Flatten before '{label}'",
               f"'{label}' receives {t}; a Flatten makes it (N, {size}) so the Linear sees one feature vector "
               "per sample.", lid, apply)


# --------------------------------------------------------------------------- declared input sizes

def _input_size(graph: Graph, inf: Inference, node: Node) -> list[Fix]:
    spec = graph.registry.get(node.type)
    t = _input_tensor(inf, node.id)
    if spec is None or t is None:
        return []
    out = []
    for name, axis in INPUT_SIZE_PARAMS.items():
        desc = spec.param(name)
        if desc is None or t.rank < 2:
            continue
        have = node.params.get(name, desc.default)
        arriving = t.shape[axis]
        if not isinstance(arriving, int) or not have or have == arriving:
            continue
        nid, label = node.id, node.label

        def apply(g: Graph, name=name, arriving=arriving, nid=nid) -> list[str]:
            g.set_param(nid, name, arriving)
            return [nid]

        out.append(Fix("set_input_size", f"Set {name} of '{label}' to {arriving}",
                       f"'{label}' declares {name}={have} but receives {t}; set it to {arriving} "
                       "(0 would take it from the wire).", nid, apply))
    return out


# --------------------------------------------------------------------------- residual projections

def _shortcut_projection(graph: Graph, inf: Inference, add: Node) -> list[Fix]:
    info = inf.nodes.get(add.id)
    if info is None or len(info.inputs) < 2:
        return []
    position = {nid: i for i, nid in enumerate(inf.order)}
    ports = list(info.inputs)
    first = info.inputs[ports[0]]
    for port in ports[1:]:
        other = info.inputs[port]
        if first.rank != 4 or other.rank != 4 or first.shape == other.shape:
            continue
        # The shortcut is the input that branches off earlier in the network.
        a_src, b_src = info.sources[ports[0]][0], info.sources[port][0]
        if position.get(a_src, 0) <= position.get(b_src, 0):
            short_port, short, main = ports[0], first, other
        else:
            short_port, short, main = port, other, first
        stride = _whole_stride(short.shape[2:], main.shape[2:])
        if stride is None or not isinstance(main.shape[1], int):
            return []
        channels = main.shape[1]
        aid, alabel = add.id, add.label
        src_label = graph.nodes[info.sources[short_port][0]].label
        params = {"out_channels": channels, "kernel_size": 1, "bias": False}
        if stride != 1:
            params["stride"] = stride
        how = f"1x1 convolution to {channels} channels" + (f", stride {stride}" if stride != 1 else "")

        def apply(g: Graph, short_port=short_port, params=params) -> list[str]:
            edge = _incoming(g, aid, short_port)
            if edge is None:
                from .graph import GraphEditError
                raise GraphEditError(f"'{alabel}' input '{short_port}' is no longer connected")
            proj = insert_on_wire(g, edge, "Conv2d", params, label_prefix="proj")
            return [proj.id]

        return [Fix("project_shortcut", f"Project the shortcut into '{alabel}' ({how})",
                    f"The shortcut from '{src_label}' carries {short} but the other branch {main}; a {how} "
                    f"on the shortcut makes them addable.", aid, apply)]
    return []


def _whole_stride(short_hw: tuple, main_hw: tuple) -> int | None:
    """The stride that takes the shortcut's H, W to the main branch's (1 when equal), or None."""
    if not all(isinstance(d, int) and d > 0 for d in (*short_hw, *main_hw)):
        return 1 if short_hw == main_hw else None
    strides = set()
    for s, m in zip(short_hw, main_hw):
        # a 1x1 kernel with stride k and no padding gives (s - 1) // k + 1
        k = next((k for k in range(1, s + 1) if (s - 1) // k + 1 == m), None)
        if k is None:
            return None
        strides.add(k)
    return strides.pop() if len(strides) == 1 else None


__all__ = ["Fix", "fixes_for", "all_fixes", "insert_on_wire", "INPUT_SIZE_PARAMS"]
