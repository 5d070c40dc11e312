"""The graph document: nodes with typed params, edges between named ports, and (kept apart from the
network's meaning) the canvas layout. Plain data; every GUI edit and every script goes through the
methods here, and nothing in this module knows about Qt, torch or files."""

from __future__ import annotations

import copy
import keyword
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable

from .nodes import REGISTRY
from .spec import NodeSpec, Registry


@dataclass
class Node:
    id: str
    type: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    shares: str | None = None  # id of a node of the same type whose weights this node uses


@dataclass(frozen=True)
class Edge:
    src: str
    src_port: str
    dst: str
    dst_port: str

    def __str__(self) -> str:
        return f"{self.src}:{self.src_port} -> {self.dst}:{self.dst_port}"


class GraphEditError(ValueError):
    """An edit that cannot be made (unknown node or port, a label already taken). The document is unchanged."""


def identifier(text: str, fallback: str = "x") -> str:
    """A legal Python identifier made from a label ('Conv 1' -> 'Conv_1', 'conv²' -> 'conv2'). ASCII
    only: Python NFKC-normalises other identifiers, so two different labels could become one name."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^0-9A-Za-z_]+", "_", ascii_text.strip()).strip("_") or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    if keyword.iskeyword(name) or name in ("self", "torch", "nn", "F", "super"):
        name += "_"
    return name


class Graph:
    """A network as a document. ``nodes`` keeps insertion order; ids are stable for the node's life."""

    def __init__(self, name: str = "Untitled", description: str = "", registry: Registry = REGISTRY):
        self.name = name
        self.description = description
        self.registry = registry
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.layout: dict[str, tuple[float, float]] = {}
        self.training: dict[str, Any] = {}
        # A weights file (safetensors or a torch checkpoint) the network starts from, relative to the
        # graph file: what an imported ONNX model brings along. Compiling through
        # engine.onnx_weights.build_with_weights, training and exporting load it.
        self.weights: str | None = None
        self.path: str | None = None  # where the document was read from (not saved)
        # Named sub-graphs (composites) that Composite nodes instantiate. Every graph nested in this one
        # shares this dict, so a definition is stored once, at the top of the file.
        self.composites: dict[str, Graph] = {}

    # ------------------------------------------------------------ queries
    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphEditError(f"no node with id {node_id!r}") from None

    def spec(self, node_id: str) -> NodeSpec | None:
        return self.registry.get(self.node(node_id).type)

    def by_label(self, label: str) -> Node:
        for n in self.nodes.values():
            if n.label == label:
                return n
        raise GraphEditError(f"no node labelled {label!r}")

    def edges_into(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.dst == node_id]

    def edges_from(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node_id]

    def __len__(self) -> int:
        return len(self.nodes)

    # ------------------------------------------------------------ edits
    def add_node(self, type_name: str, label: str | None = None, params: dict | None = None,
                 node_id: str | None = None, pos: tuple[float, float] | None = None) -> Node:
        """Add a node of a registered type with default params (overridden by ``params``)."""
        spec = self.registry.get(type_name)
        if spec is None:
            raise GraphEditError(f"unknown node type {type_name!r}")
        values = spec.default_params()
        for key, value in (params or {}).items():
            if spec.param(key) is None:
                raise GraphEditError(f"{spec.type} has no param {key!r}")
            values[key] = value
        if label is None:
            label = self.unique_label(spec.prefix)
        elif self._label_taken(label):
            raise GraphEditError(f"the label {label!r} is already used by another node")
        if node_id is None:
            node_id = self.unique_id(identifier(label, "n"))
        elif node_id in self.nodes:
            raise GraphEditError(f"a node with id {node_id!r} already exists")
        node = Node(node_id, spec.type, label, values)
        self.nodes[node_id] = node
        if pos is not None:
            self.set_position(node_id, pos)
        return node

    def set_position(self, node_id: str, pos: tuple[float, float]) -> None:
        """Canvas position: layout, kept apart from the network's meaning."""
        self.node(node_id)
        x, y = float(pos[0]), float(pos[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise GraphEditError(f"a canvas position must be finite, got ({x}, {y})")
        self.layout[node_id] = (x, y)

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge]]:
        """Remove a node and its wires; returns both so an undo can restore them. Nodes that shared its
        weights get their own."""
        node = self.node(node_id)
        for twin in self.nodes.values():
            if twin.shares == node_id:
                twin.shares = None
        removed = [e for e in self.edges if node_id in (e.src, e.dst)]
        self.edges = [e for e in self.edges if node_id not in (e.src, e.dst)]
        del self.nodes[node_id]
        self.layout.pop(node_id, None)
        return node, removed

    def connect(self, src: str, src_port: str, dst: str, dst_port: str) -> Edge:
        """Add a wire. Only the ports' existence is checked here; whether the shapes fit is shape
        inference's job (see ``engine.check_connection`` for an editor's up-front answer)."""
        self._check_port(src, src_port, output=True)
        self._check_port(dst, dst_port, output=False)
        edge = Edge(src, src_port, dst, dst_port)
        if edge in self.edges:
            raise GraphEditError(f"{edge} is already connected")
        self.edges.append(edge)
        return edge

    def disconnect(self, edge: Edge) -> None:
        try:
            self.edges.remove(edge)
        except ValueError:
            raise GraphEditError(f"no wire {edge}") from None

    def set_param(self, node_id: str, name: str, value: Any) -> Any:
        """Set a param after validating it against the descriptor. Returns the clean value stored.
        Raises ``ParamError`` (a ValueError) with the reason, leaving the old value."""
        node = self.node(node_id)
        spec = self.registry.get(node.type)
        if spec is None:
            raise GraphEditError(f"node {node.label!r} has the unknown type {node.type!r}")
        desc = spec.param(name)
        if desc is None:
            raise GraphEditError(f"{spec.type} has no param {name!r}")
        if node.shares is not None:
            raise GraphEditError(f"'{node.label}' uses the weights of '{self.node(node.shares).label}'; edit "
                                 "that node's params (or stop sharing)")
        clean = desc.coerce(value)
        stored = list(clean) if isinstance(clean, tuple) else clean
        node.params[name] = stored
        for twin in self.nodes.values():  # nodes sharing these weights keep the same params
            if twin.shares == node_id:
                twin.params[name] = copy.deepcopy(stored)
        self._drop_vanished_ports(node_id)
        return stored

    def set_label(self, node_id: str, label: str) -> None:
        node = self.node(node_id)
        if not label.strip():
            raise GraphEditError("a label cannot be empty")
        if label != node.label and self._label_taken(label):
            raise GraphEditError(f"the label {label!r} is already used by another node")
        node.label = label

    def copy(self) -> "Graph":
        return copy.deepcopy(self)

    def __deepcopy__(self, memo: dict) -> "Graph":
        """A copy of the document's parts (nodes, edges, composites, settings), sharing the registry of
        node types: it is the app's, not the document's, and copying it was most of a copy's time (3.6
        of 3.8 ms for a 7-node graph; the app copies the graph for each live preview, each run, each
        export)."""
        memo.setdefault(id(self.registry), self.registry)
        twin = self.__class__.__new__(self.__class__)
        memo[id(self)] = twin
        for key, value in self.__dict__.items():
            twin.__dict__[key] = copy.deepcopy(value, memo)
        return twin

    # ------------------------------------------------------------ helpers
    def unique_label(self, prefix: str) -> str:
        taken = {n.label for n in self.nodes.values()}
        i = 1
        while f"{prefix}{i}" in taken:
            i += 1
        return f"{prefix}{i}"

    def unique_id(self, base: str) -> str:
        if base not in self.nodes:
            return base
        i = 2
        while f"{base}_{i}" in self.nodes:
            i += 1
        return f"{base}_{i}"

    def _label_taken(self, label: str) -> bool:
        return any(n.label == label for n in self.nodes.values())

    def definition(self, node_id: str) -> "Graph | None":
        """The sub-graph a composite node stands for (a user composite of this file, or the one a built-in
        block generates from its params); None for a plain node or a definition that cannot be found."""
        node = self.node(node_id)
        spec = self.registry.get(node.type)
        if spec is None or spec.subgraph is None:
            return None
        try:
            sub = spec.subgraph(_params_or_default(spec, node), self.composites)
        except Exception:
            return None
        if sub is not None:
            sub.composites = self.composites
        return sub

    def input_port_names(self, node_id: str) -> list[str]:
        node = self.node(node_id)
        spec = self.registry.get(node.type)
        if spec is None:
            return sorted({e.dst_port for e in self.edges_into(node_id)})
        if spec.subgraph is not None:
            return _boundary_labels(self.definition(node_id), "Input") or \
                sorted({e.dst_port for e in self.edges_into(node_id)})
        try:
            return [p.name for p in spec.input_ports(_params_or_default(spec, node))]
        except Exception:  # a broken port-count param: fall back to the defaults
            return [p.name for p in spec.input_ports()]

    def output_port_names(self, node_id: str) -> list[str]:
        node = self.node(node_id)
        spec = self.registry.get(node.type)
        if spec is None:
            return sorted({e.src_port for e in self.edges_from(node_id)})
        if spec.subgraph is not None:
            return _boundary_labels(self.definition(node_id), "Output") or \
                sorted({e.src_port for e in self.edges_from(node_id)})
        try:
            return [p.name for p in spec.output_ports(_params_or_default(spec, node))]
        except Exception:  # a broken port-count param: fall back to the defaults
            return [p.name for p in spec.output_ports()]

    def set_shares(self, node_id: str, target_id: str | None) -> None:
        """Make a node apply the weights of another node of the same type (a Siamese twin, a GAN's
        discriminator applied to real and fake images), or give it its own weights again (None). The
        node's params become the target's, so the two always agree."""
        node = self.node(node_id)
        if target_id is None:
            node.shares = None
            return
        target = self.node(target_id)
        if target_id == node_id:
            raise GraphEditError("a node cannot share weights with itself")
        if target.type != node.type:
            raise GraphEditError(f"'{node.label}' ({node.type}) cannot share weights with '{target.label}' "
                                 f"({target.type}): the types differ")
        if target.shares is not None:
            target = self.node(target.shares)
        node.shares = target.id
        node.params = copy.deepcopy(target.params)

    def _check_port(self, node_id: str, port: str, output: bool) -> None:
        node = self.node(node_id)
        names = self.output_port_names(node_id) if output else self.input_port_names(node_id)
        if port not in names:
            side = "output" if output else "input"
            have = ", ".join(names) or "none"
            raise GraphEditError(f"{node.type} {node.label!r} has no {side} port {port!r} (it has: {have})")

    def _drop_vanished_ports(self, node_id: str) -> None:
        """After a param change that removes ports (fewer Concat inputs, fewer Split outputs), drop the
        wires on them."""
        names = set(self.input_port_names(node_id))
        outs = set(self.output_port_names(node_id))
        self.edges = [e for e in self.edges if (e.dst != node_id or e.dst_port in names)
                      and (e.src != node_id or e.src_port in outs)]

    def topological_ids(self) -> Iterable[str]:  # convenience for callers that know the graph is acyclic
        from .inference import topological_order
        order, _ = topological_order(self)
        return order


def _boundary_labels(sub: "Graph | None", node_type: str) -> list[str]:
    if sub is None:
        return []
    return [n.label for n in sub.nodes.values() if n.type == node_type]


def _params_or_default(spec: NodeSpec, node: Node) -> dict:
    values = spec.default_params()
    for p in spec.params:
        if p.name in node.params:
            try:
                values[p.name] = p.coerce(node.params[p.name])
            except ValueError:
                pass
    return values
