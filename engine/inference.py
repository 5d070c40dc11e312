"""Validation and shape inference in one walk over the graph.

``infer_shapes(graph)`` never raises for a broken graph: it returns every port's inferred tensor (batch
axis symbolic, ``N``), per-node cost, and *all* the problems at once, each naming its node (and port,
param or edge). A node that cannot be inferred only because something upstream failed is not blamed:
the problem is reported once, where it starts.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from .graph import Edge, Graph
from .params import ParamError
from .spec import INPUT, LAYER, LOSS, OUTPUT, TARGET, Cost, NodeSpec, ShapeError, TensorInfo, numel

ERROR, WARNING = "error", "warning"
DTYPE_BYTES = {"float32": 4, "int64": 8, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or suspicious) in a graph. ``code`` is machine-readable (for one-click fixes)."""

    severity: str
    code: str
    message: str
    node: str | None = None
    port: str | None = None
    param: str | None = None
    edge: int | None = None

    @property
    def location(self) -> str:
        parts = []
        if self.node is not None:
            parts.append(f"node {self.node}")
        if self.port is not None:
            parts.append(f"port {self.port}")
        if self.param is not None:
            parts.append(f"param {self.param}")
        if self.edge is not None:
            parts.append(f"edge {self.edge}")
        return ", ".join(parts) or "graph"

    def __str__(self) -> str:
        return f"{self.severity}: {self.message} [{self.location}]"

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class NodeInfo:
    """What inference learned about one node."""

    params: dict[str, Any] | None = None  # coerced values; None when a param is invalid
    inputs: dict[str, TensorInfo] = field(default_factory=dict)
    outputs: dict[str, TensorInfo] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)  # input port -> (node id, port)
    sub: "Inference | None" = None  # for a composite node: the inference of its sub-graph

    @property
    def inferred(self) -> bool:
        return self.params is not None and (bool(self.outputs) or self._is_sink)

    _is_sink: bool = False

    def output_bytes(self) -> int:
        """Bytes of this node's outputs for one sample."""
        return sum(numel(t.shape) * DTYPE_BYTES.get(t.dtype, 4) for t in self.outputs.values())


@dataclass
class Inference:
    graph: Graph
    order: list[str]
    nodes: dict[str, NodeInfo]
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def problems_for(self, node_id: str) -> list[Problem]:
        return [p for p in self.problems if p.node == node_id]

    def shape(self, node_id: str, port: str = "out") -> TensorInfo | None:
        info = self.nodes.get(node_id)
        return info.outputs.get(port) if info else None

    def ids_with_role(self, role: str) -> list[str]:
        """Node ids of one role (INPUT, OUTPUT, ...) in document order, which is the stated order of
        forward()'s arguments and returned tuple."""
        reg = self.graph.registry
        return [nid for nid, n in self.graph.nodes.items()
                if (spec := reg.get(n.type)) is not None and spec.role == role]

    @property
    def total_params(self) -> int:
        return sum(info.cost.params for info in self.nodes.values())

    @property
    def total_flops(self) -> int:
        """Forward floating-point operations for one sample (a multiply-add counts as 2)."""
        return sum(self._model_infos(lambda i: i.cost.flops))

    def activation_bytes(self, batch_size: int = 1) -> int:
        """Memory of every model tensor (inputs and each node's outputs) for a batch: what a training
        step keeps for the backward pass, roughly. Parameters, gradients and optimizer state excluded."""
        return batch_size * sum(self._model_infos(_node_bytes))

    def _model_infos(self, fn):
        reg = self.graph.registry
        for nid, info in self.nodes.items():
            spec = reg.get(self.graph.nodes[nid].type)
            if spec is not None and spec.role in (INPUT, LAYER):
                yield fn(info)

    def summary_rows(self) -> list[dict]:
        rows = []
        for nid in self.order:
            node = self.graph.nodes[nid]
            info = self.nodes[nid]
            rows.append({
                "id": nid, "label": node.label, "type": node.type,
                "output": {p: str(t) for p, t in info.outputs.items()},
                "params": info.cost.params, "flops": info.cost.flops,
                "activation_bytes": info.output_bytes(),
                "problems": [p.message for p in self.problems_for(nid)],
            })
        return rows


def _node_bytes(info: NodeInfo) -> int:
    """A node's activations per sample; a composite's are everything its inside produces."""
    if info.sub is None:
        return info.output_bytes()
    inner = info.sub
    return inner.activation_bytes(1) - sum(inner.nodes[i].output_bytes() for i in inner.ids_with_role(INPUT))


def _display(graph: Graph, node_id: str) -> str:
    node = graph.nodes[node_id]
    return f"{node.type} '{node.label}'"


def topological_order(graph: Graph, edges: list[Edge] | None = None) -> tuple[list[str], list[list[str]]]:
    """Kahn's algorithm, ties broken by document order. Returns the order of the acyclic part and the cycles found
    (each as a list of node ids in wire order)."""
    edges = graph.edges if edges is None else edges
    indeg = {nid: 0 for nid in graph.nodes}
    succ: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        succ[e.src].append(e.dst)
        indeg[e.dst] += 1
    # Among the nodes that are ready, the one drawn first goes first: a branch is finished before the
    # next begins, so generated code reads like hand-written code.
    rank = {nid: i for i, nid in enumerate(graph.nodes)}
    ready = [rank[nid] for nid in graph.nodes if indeg[nid] == 0]
    heapq.heapify(ready)
    ids = list(graph.nodes)
    order = []
    while ready:
        nid = ids[heapq.heappop(ready)]
        order.append(nid)
        for nxt in succ[nid]:
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                heapq.heappush(ready, rank[nxt])
    if len(order) == len(graph.nodes):
        return order, []
    return order, _cycles(graph, {n for n in graph.nodes if indeg[n] > 0}, succ)


def _cycles(graph: Graph, remaining: set[str], succ) -> list[list[str]]:
    """The strongly connected components (Tarjan, iterative) that form cycles, each in wire order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0
    for root in (n for n in graph.nodes if n in remaining):
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in remaining:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ[w])))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in succ[v]:
                    comps.append(_cycle_path(comp, succ))
    return comps


def _cycle_path(comp: list[str], succ) -> list[str]:
    """One closed walk through a component, for a readable message."""
    members = set(comp)
    start = min(comp)
    path, seen, v = [start], {start}, start
    while True:
        nxt = next((w for w in succ[v] if w in members), None)
        if nxt is None or nxt in seen:
            return path
        path.append(nxt)
        seen.add(nxt)
        v = nxt


def infer_shapes(graph: Graph, input_overrides: dict[str, TensorInfo] | None = None,
                 _stack: tuple[str, ...] = (), _memo: dict | None = None) -> Inference:
    """Validate the graph and infer every port's tensor. Never raises for a broken graph.

    ``input_overrides`` maps Input node ids to the tensor that arrives there instead of the declared
    shape: how a composite's inside is inferred for the tensors its instance receives."""
    reg = graph.registry
    overrides = input_overrides or {}
    memo = {} if _memo is None else _memo
    problems: list[Problem] = []
    infos: dict[str, NodeInfo] = {nid: NodeInfo() for nid in graph.nodes}
    failed: set[str] = set()  # nodes whose outputs are unknown (error here or upstream)

    def err(code, message, node=None, **kw):
        problems.append(Problem(ERROR, code, message, node, **kw))

    if not any(n.type == "Input" for n in graph.nodes.values()):
        err("no_input", "the graph has no Input node")
    if not any(n.type == "Output" for n in graph.nodes.values()):
        err("no_output", "the graph has no Output node")

    # ---- node types and params
    specs: dict[str, NodeSpec] = {}
    labels: dict[str, str] = {}
    for nid, node in graph.nodes.items():
        if node.label in labels:
            err("duplicate_label", f"{node.type} '{node.label}' has the same label as node "
                f"'{labels[node.label]}'; labels name the layers in code and must differ", nid)
        labels.setdefault(node.label, nid)
        spec = reg.get(node.type)
        if spec is None:
            err("unknown_type", f"'{node.label}' has the unknown node type '{node.type}' (kept as it was in "
                "the file; replace it with a known type)", nid)
            failed.add(nid)
            continue
        specs[nid] = spec
        clean, ok = {}, True
        owner = node
        if node.shares is not None:
            owner = graph.nodes.get(node.shares)
            reason = _share_problem(graph, node, owner)
            if reason:
                err("shares", f"{_display(graph, nid)} {reason}", nid)
                failed.add(nid)
                continue
        for desc in spec.params:
            value = owner.params.get(desc.name, desc.default)
            try:
                clean[desc.name] = desc.coerce(value)
            except ParamError as exc:
                ok = False
                err("param", f"{_display(graph, nid)} param '{desc.name}' {exc}", nid, param=desc.name)
        for key in node.params:
            if spec.param(key) is None:
                problems.append(Problem(WARNING, "unknown_param", f"{_display(graph, nid)} has no param "
                                        f"'{key}'; it is ignored", nid, param=key))
        if ok:
            infos[nid].params = clean
        else:
            failed.add(nid)

    # ---- wires: endpoints exist, one wire per input port, roles fit
    good_edges: list[Edge] = []
    wired: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, e in enumerate(graph.edges):
        reason = _bad_endpoint(graph, specs, infos, e)
        if reason:
            err("bad_edge", f"wire {i} ({e}): {reason}", e.dst if e.dst in graph.nodes else None, edge=i)
            continue
        wired[(e.dst, e.dst_port)].append(i)
        good_edges.append(e)
    for (dst, port), idxs in wired.items():
        if len(idxs) > 1:
            srcs = ", ".join(f"'{graph.nodes[graph.edges[i].src].label}'" for i in idxs)
            err("multi_wire", f"{_display(graph, dst)} input '{port}' has {len(idxs)} wires (from {srcs}); "
                "an input takes one", dst, port=port)
            failed.add(dst)
    role_of = {nid: (specs[nid].role if nid in specs else None) for nid in graph.nodes}
    for i, e in enumerate(good_edges):
        problem = _role_problem(graph, role_of, e)
        if problem:
            err("role", problem, e.dst, port=e.dst_port)
            failed.add(e.dst)

    # ---- cycles
    order, cycles = topological_order(graph, good_edges)
    for cyc in cycles:
        names = " -> ".join(f"'{graph.nodes[n].label}'" for n in cyc + cyc[:1])
        for n in cyc:
            err("cycle", f"{_display(graph, n)} is part of a cycle: {names}", n)
            failed.add(n)
    in_order = set(order)
    order += [n for n in graph.nodes if n not in in_order]  # cycle members last, for listing

    # ---- reachability from the inputs
    succ = defaultdict(list)
    for e in good_edges:
        succ[e.src].append(e.dst)
    reachable = set()
    queue = deque(nid for nid, r in role_of.items() if r in (INPUT, TARGET))
    while queue:
        nid = queue.popleft()
        if nid in reachable:
            continue
        reachable.add(nid)
        queue.extend(succ[nid])

    # ---- shapes, in topological order
    incoming: dict[str, dict[str, Edge]] = defaultdict(dict)
    for e in good_edges:
        incoming[e.dst].setdefault(e.dst_port, e)
    for nid in order:
        if nid in failed or nid not in specs:
            failed.add(nid)
            continue
        spec, info = specs[nid], infos[nid]
        if nid in overrides:
            info.outputs = {"out": overrides[nid]}
            continue
        blocked = False
        for port_name, optional in _input_ports(graph, spec, nid, info.params):
            edge = incoming[nid].get(port_name)
            if edge is None:
                if not optional:
                    why = "" if nid in reachable else "; nothing reaches this node from an Input"
                    err("unconnected", f"{_display(graph, nid)} input '{port_name}' is not connected{why}",
                        nid, port=port_name)
                    blocked = True
                continue
            src_t = infos[edge.src].outputs.get(edge.src_port)
            if edge.src in failed or src_t is None:
                blocked = True  # upstream is already blamed
                continue
            info.inputs[port_name] = src_t
            info.sources[port_name] = (edge.src, edge.src_port)
        if blocked:
            failed.add(nid)
            continue
        if spec.subgraph is not None:
            problem = _infer_composite(graph, nid, info, _stack, memo)
            if problem:
                err(problem[0], problem[1], nid)
                failed.add(nid)
            continue
        try:
            outs = spec.infer(info.params, dict(info.inputs)) if spec.infer else {}
            info.outputs = outs
            info._is_sink = not spec.output_ports(info.params)
            info.cost = spec.cost(info.params, info.inputs, outs) if spec.cost else Cost()
        except ShapeError as exc:
            msg = f"{_display(graph, nid)} {exc}"
            if exc.port and exc.port in info.sources:
                msg += f" from '{graph.nodes[info.sources[exc.port][0]].label}'"
            err("shape", msg, nid, port=exc.port)
            info.outputs = {}
            failed.add(nid)
        except Exception as exc:  # a bug in a shape rule must not take the editor down
            err("internal", f"{_display(graph, nid)}: the shape rule failed ({type(exc).__name__}: {exc})", nid)
            info.outputs = {}
            failed.add(nid)

    # ---- shared weights: both users must build the same module
    for nid, node in graph.nodes.items():
        if node.shares is None or nid in failed or node.shares in failed:
            continue
        mine, theirs = _construction(graph, nid, specs, infos), _construction(graph, node.shares, specs, infos)
        if mine != theirs:
            err("shares", f"{_display(graph, nid)} shares weights with '{graph.nodes[node.shares].label}', but "
                f"the tensors arriving there need {mine} and '{graph.nodes[node.shares].label}' is built as "
                f"{theirs}", nid)
        infos[nid].cost = Cost(0, infos[nid].cost.flops)  # the weights are counted once, at their owner

    # ---- warnings: dead ends
    used = {(e.src) for e in good_edges}
    for nid, role in role_of.items():
        if role == LAYER and nid not in used:
            problems.append(Problem(WARNING, "unused", f"{_display(graph, nid)} output is not used; connect it "
                                    "to an Output or another layer", nid))
        if role == TARGET and nid not in used:
            problems.append(Problem(WARNING, "unused", f"Target '{graph.nodes[nid].label}' is not read by any "
                                    "loss node", nid))
    return Inference(graph, order, infos, problems)


def _input_ports(graph: Graph, spec: NodeSpec, nid: str, params: dict) -> list[tuple[str, bool]]:
    """(name, optional) of a node's input ports; a composite's come from its definition's Inputs."""
    if spec.subgraph is not None:
        return [(name, False) for name in graph.input_port_names(nid)]
    return [(p.name, p.optional) for p in spec.input_ports(params)]


def _share_problem(graph: Graph, node, owner) -> str | None:
    if owner is None:
        return f"shares weights with node '{node.shares}', which does not exist"
    if owner.id == node.id:
        return "cannot share weights with itself"
    if owner.type != node.type:
        return f"({node.type}) cannot share weights with {owner.type} '{owner.label}': the types differ"
    if owner.shares is not None:
        return (f"shares weights with '{owner.label}', which itself uses the weights of another node; share "
                "with the owner directly")
    return None


def _construction(graph: Graph, nid: str, specs, infos) -> str:
    """What building a node's module looks like, to check that nodes sharing weights agree."""
    spec, info = specs[nid], infos[nid]
    if spec.subgraph is not None:
        return "a block receiving " + ", ".join(f"{k} {v} {v.dtype}" for k, v in info.inputs.items())
    call = spec.module(info.params, info.inputs) if spec.module else None
    return call.render() if call is not None else "no weights"


def _infer_composite(graph: Graph, nid: str, info: NodeInfo, stack: tuple[str, ...], memo: dict):
    """Infer a composite node through its sub-graph. Returns (code, message) on failure."""
    import json

    node = graph.nodes[nid]
    sub = graph.definition(nid)
    shown = _display(graph, nid)
    if sub is None:
        if node.type == "Composite":
            return ("definition", f"{shown} refers to the composite '{info.params.get('definition')}', which "
                    "this file does not define")
        return ("definition", f"{shown}: its sub-graph could not be built from its params")
    if sub.name in stack:
        return ("recursion", f"{shown}: the composite '{sub.name}' contains itself "
                f"({' -> '.join(stack + (sub.name,))})")
    by_label = {n.label: n.id for n in sub.nodes.values() if n.type == "Input"}
    overrides = {by_label[port]: t for port, t in info.inputs.items()}
    key = (node.type, json.dumps(info.params, sort_keys=True, default=list), sub.name,
           tuple(sorted((k, v.shape, v.dtype) for k, v in overrides.items())))
    if key not in memo:
        memo[key] = infer_shapes(sub, overrides, stack + (sub.name,), memo)
    sub_inf = memo[key]
    roles = {graph.registry.get(n.type).role for n in sub.nodes.values() if graph.registry.get(n.type)}
    if roles & {LOSS, TARGET}:
        return ("definition", f"{shown}: the composite '{sub.name}' holds loss or Target nodes; those belong "
                "in the top-level graph")
    errors = sub_inf.errors
    if errors:
        return ("inside", f"{shown}, inside '{sub.name}': " + "; ".join(p.message for p in errors))
    info.sub = sub_inf
    info.outputs = {n.label: sub_inf.nodes[n.id].inputs["in"]
                    for n in sub.nodes.values() if n.type == "Output"}
    info.cost = Cost(sub_inf.total_params, sub_inf.total_flops)
    return None


def _bad_endpoint(graph: Graph, specs, infos, e: Edge) -> str | None:
    for node_id in (e.src, e.dst):
        if node_id not in graph.nodes:
            return f"node '{node_id}' does not exist"
    if e.src in specs and e.src_port not in graph.output_port_names(e.src):
        return f"'{graph.nodes[e.src].label}' has no output port '{e.src_port}'"
    if e.dst in specs and e.dst_port not in graph.input_port_names(e.dst):
        return f"'{graph.nodes[e.dst].label}' has no input port '{e.dst_port}'"
    return None


def _role_problem(graph: Graph, role_of: dict, e: Edge) -> str | None:
    src_role, dst_role = role_of[e.src], role_of[e.dst]
    src, dst = graph.nodes[e.src], graph.nodes[e.dst]
    if None in (src_role, dst_role):
        return None
    if dst_role == LOSS and src_role not in (OUTPUT, TARGET):
        return (f"{dst.type} '{dst.label}' input '{e.dst_port}' must come from an Output or a Target node, "
                f"not from {src.type} '{src.label}'; route '{src.label}' through an Output node")
    if src_role == TARGET and dst_role != LOSS:
        return (f"Target '{src.label}' may only feed loss nodes, but is wired to {dst.type} '{dst.label}'; "
                "use an Input node for data the model reads")
    if src_role == OUTPUT and dst_role != LOSS:
        return (f"Output '{src.label}' may only feed loss nodes, but is wired to {dst.type} '{dst.label}'; "
                f"wire the layer before '{src.label}' instead")
    return None


def check_connection(graph: Graph, src: str, src_port: str, dst: str, dst_port: str) -> str | None:
    """Why the wire src:src_port -> dst:dst_port cannot be made, or None when it can. For an editor that
    refuses a wire with the reason: only problems the new wire causes at ``dst`` count."""
    from .graph import GraphEditError

    trial = graph.copy()
    try:
        trial.connect(src, src_port, dst, dst_port)
    except GraphEditError as exc:
        return str(exc)
    others = [e for e in graph.edges if e.dst == dst and e.dst_port == dst_port]
    if others:
        return (f"input '{dst_port}' of '{graph.nodes[dst].label}' already has a wire from "
                f"'{graph.nodes[others[0].src].label}'")
    before = {p.message for p in infer_shapes(graph).problems_for(dst) if p.code != "unconnected"}
    after = infer_shapes(trial)
    if any(p.code == "cycle" for p in after.problems):
        if not any(p.code == "cycle" for p in infer_shapes(graph).problems):
            return f"the wire would close a cycle through '{graph.nodes[dst].label}'"
    new = [p for p in after.problems_for(dst)
           if p.severity == ERROR and p.code != "unconnected" and p.message not in before]
    return new[0].message if new else None


class GraphError(ValueError):
    """Raised by the compiler and code generator for a graph with errors; carries every problem."""

    def __init__(self, graph: Graph, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p.message}" for p in problems)
        super().__init__(f"graph '{graph.name}' has {len(problems)} error(s):\n{lines}")


def require_valid(graph: Graph) -> Inference:
    """Infer, and raise ``GraphError`` listing every error when the graph cannot be compiled."""
    inf = infer_shapes(graph)
    if not inf.ok:
        raise GraphError(graph, inf.errors)
    return inf
