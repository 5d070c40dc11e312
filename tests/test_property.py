"""Property-based tests (hypothesis) over random graphs built from the registry.

Valid graphs: random chains and branches of Linear, Conv2d, pooling, BatchNorm, activations, Dropout,
Flatten, Add and Concat with random valid params. The strategy tracks each tensor's shape with its own
(PyTorch) formulas, so "valid" does not come from the engine under test. Every layer node gets an Output,
so forward returns every tensor and each inferred shape is compared with the real one. The generated code,
run on its own with the compiled weights, must agree with the compiled module and with an independent
node-by-node evaluation of the graph.

Broken graphs: a valid graph with random breaking edits. ``infer_shapes`` must report them and never
raise; the compiler must raise ``GraphError`` and nothing else. Random edits that may or may not break a
graph must leave it either refused by validation or compiling and running with the inferred shapes.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import engine
from engine import Edge, GraphError, infer_shapes
from engine.compiler import build

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel lengths")

BATCH = 2
LABEL_BASES = ["x", "x1", "self", "forward", "torch", "F", "nn", "out", "a b", "1st", "class", "layer"]
ELEMENTWISE = ["ReLU", "Tanh", "Sigmoid", "Softmax", "Dropout"]


# ----------------------------------------------------------------------------- shape formulas (PyTorch's)
def conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def pool_out(size, k, s, p, ceil_mode):
    num = size + 2 * p - k
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


# ----------------------------------------------------------------------------- valid graphs
class Builder:
    """A graph under construction and the per-sample shape of every tensor in it."""

    def __init__(self, draw):
        self.draw = draw
        self.g = engine.Graph("random net")
        self.shapes: dict[str, tuple] = {}  # node id -> per-sample shape of its 'out'
        self.count = 0

    def label(self) -> str:
        base = self.draw(st.sampled_from(LABEL_BASES))
        self.count += 1
        return base if not self.g._label_taken(base) else f"{base} {self.count}"

    def add(self, type_name, params, sources, shape):
        node = self.g.add_node(type_name, self.label(), params)
        ports = self.g.input_port_names(node.id)
        for port, src in zip(ports, sources):
            self.g.connect(src, "out", node.id, port)
        self.shapes[node.id] = shape
        return node.id


def _ints2(draw, lo, hi):
    a = draw(st.integers(lo, hi))
    return a if draw(st.booleans()) else [a, draw(st.integers(lo, hi))]


def _pair(v):
    return list(v) if isinstance(v, list) else [v, v]


def add_image_op(b: Builder, src: str, shape: tuple):
    c, h, w = shape
    draw = b.draw
    op = draw(st.sampled_from(["Conv2d", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "GlobalAvgPool2d",
                               "Flatten"] + ELEMENTWISE))
    if op == "Conv2d":
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
        out_c = groups * draw(st.integers(1, 3))
        stride, dil, kern = _ints2(draw, 1, 2), _ints2(draw, 1, 2), _ints2(draw, 1, 3)
        pad = draw(st.sampled_from(["ints", "same", "valid"]))
        if pad == "same":
            stride = 1
        padding = _ints2(draw, 0, 1) if pad == "ints" else pad
        pads = [0, 0] if pad == "valid" else (_pair(padding) if pad == "ints" else None)
        ks, ss, ds = _pair(kern), _pair(stride), _pair(dil)
        hw = []
        for i, size in enumerate((h, w)):
            if pads is None:
                hw.append(size)
                continue
            if ds[i] * (ks[i] - 1) + 1 > size + 2 * pads[i]:  # does not fit: a 1x1 tap does
                ks[i], ds[i] = 1, 1
            hw.append(conv_out(size, ks[i], ss[i], pads[i], ds[i]))
        params = {"out_channels": out_c, "kernel_size": ks, "stride": stride, "padding": padding,
                  "dilation": ds, "groups": groups, "bias": draw(st.booleans()),
                  "in_channels": draw(st.sampled_from([0, c]))}
        return b.add(op, params, [src], (out_c, *hw))
    if op in ("MaxPool2d", "AvgPool2d"):
        ks = [draw(st.integers(1, min(3, size))) for size in (h, w)]
        pads = [draw(st.integers(0, k // 2)) for k in ks]
        strides = [draw(st.integers(0, 2)) for _ in ks]
        ceil_mode = draw(st.booleans())
        hw = [pool_out(size, k, s or k, p, ceil_mode) for size, k, s, p in zip((h, w), ks, strides, pads)]
        params = {"kernel_size": ks, "stride": strides, "padding": pads, "ceil_mode": ceil_mode}
        return b.add(op, params, [src], (c, *hw))
    if op == "BatchNorm2d":
        params = {"num_features": draw(st.sampled_from([0, c])), "affine": draw(st.booleans()),
                  "eps": draw(st.sampled_from([1e-5, 1e-3])), "momentum": draw(st.sampled_from([0.1, 0.0, 1.0]))}
        return b.add(op, params, [src], shape)
    if op == "GlobalAvgPool2d":
        keep = draw(st.booleans())
        return b.add(op, {"keepdim": keep}, [src], (c, 1, 1) if keep else (c,))
    if op == "Flatten":
        return add_flatten(b, src, shape)
    return add_elementwise(b, op, src, shape)


def add_flatten(b: Builder, src: str, shape: tuple):
    rank = len(shape) + 1
    start = b.draw(st.integers(1, rank - 1))
    end = b.draw(st.integers(start, rank - 1))
    merged = math.prod(shape[start - 1:end])
    out = (*shape[:start - 1], merged, *shape[end:])
    params = {"start_dim": start if b.draw(st.booleans()) else start - rank,
              "end_dim": end if b.draw(st.booleans()) else end - rank}
    return b.add("Flatten", params, [src], out)


def add_elementwise(b: Builder, op: str, src: str, shape: tuple):
    params = {}
    if op == "Softmax":
        r = len(shape)
        params = {"dim": b.draw(st.sampled_from(list(range(1, r + 1)) + list(range(-r, 0))))}
    elif op == "Dropout":
        params = {"p": b.draw(st.sampled_from([0.0, 0.25, 0.5]))}
    return b.add(op, params, [src], shape)


def add_vector_op(b: Builder, src: str, shape: tuple):
    draw = b.draw
    op = draw(st.sampled_from(["Linear", "Linear", "BatchNorm1d", "Flatten"] + ELEMENTWISE))
    if op == "Linear":
        out = draw(st.integers(1, 5))
        params = {"out_features": out, "bias": draw(st.booleans()), "in_features": draw(st.sampled_from([0, shape[-1]]))}
        return b.add(op, params, [src], (*shape[:-1], out))
    if op == "BatchNorm1d":
        params = {"num_features": draw(st.sampled_from([0, shape[0]])), "affine": draw(st.booleans())}
        return b.add(op, params, [src], shape)
    if op == "Flatten":
        return add_flatten(b, src, shape)
    return add_elementwise(b, op, src, shape)


def add_merge(b: Builder, src: str, shape: tuple):
    draw = b.draw
    n = draw(st.integers(2, 3))
    if draw(st.booleans()):  # Add: identical shapes (a tensor may be added to itself)
        same = [nid for nid, s in b.shapes.items() if s == shape]
        srcs = [src] + [draw(st.sampled_from(same)) for _ in range(n - 1)]
        return b.add("Add", {"inputs": n}, srcs, shape)
    axis = draw(st.integers(1, len(shape)))  # Concat along one non-batch axis
    fits = [nid for nid, s in b.shapes.items()
            if len(s) == len(shape) and all(a == c for i, (a, c) in enumerate(zip(s, shape)) if i != axis - 1)]
    srcs = [src] + [draw(st.sampled_from(fits)) for _ in range(n - 1)]
    out = list(shape)
    out[axis - 1] = sum(b.shapes[s][axis - 1] for s in srcs)
    dim = axis if draw(st.booleans()) else axis - (len(shape) + 1)
    return b.add("Concat", {"inputs": n, "dim": dim}, srcs, tuple(out))


@st.composite
def valid_graphs(draw):
    b = Builder(draw)
    image = draw(st.booleans())
    for _ in range(draw(st.integers(1, 2))):
        shape = ((draw(st.integers(1, 3)), draw(st.integers(3, 7)), draw(st.integers(3, 7))) if image
                 else (draw(st.integers(1, 5)),))
        b.add("Input", {"shape": list(shape)}, [], shape)
    inputs = list(b.shapes)
    for _ in range(draw(st.integers(1, 6))):
        src = draw(st.sampled_from(list(b.shapes)))
        shape = b.shapes[src]
        if draw(st.integers(0, 4)) == 0:
            add_merge(b, src, shape)
        elif len(shape) == 3:
            add_image_op(b, src, shape)
        else:
            add_vector_op(b, src, shape)
    for nid in list(b.shapes):
        if nid not in inputs:
            out = b.g.add_node("Output", f"out {nid}")
            b.g.connect(nid, "out", out.id, "in")
    if len(b.shapes) == len(inputs):  # only inputs: return the first one
        out = b.g.add_node("Output", "passthrough")
        b.g.connect(inputs[0], "out", out.id, "in")
    return b.g, dict(b.shapes)


# ----------------------------------------------------------------------------- running a graph
def reference_forward(c, xs):
    """Evaluate the graph node by node, independently of the generated forward()."""
    g, inf, model = c.inference.graph, c.inference, c.model
    values = {}
    for (nid, _), x in zip(c.plan.inputs, xs):
        values[nid] = x
    for nid in inf.order:
        node = g.nodes[nid]
        if node.type in ("Input", "Output"):
            continue
        info = inf.nodes[nid]
        ports = g.input_port_names(nid)
        args = [values[info.sources[p][0]] for p in ports]
        p = info.params
        if nid in c.plan.attrs:
            y = model.get_submodule(c.plan.attrs[nid])(*args)
        elif node.type == "ReLU":
            y = F.relu(args[0])
        elif node.type == "Tanh":
            y = torch.tanh(args[0])
        elif node.type == "Sigmoid":
            y = torch.sigmoid(args[0])
        elif node.type == "Softmax":
            y = F.softmax(args[0], dim=p["dim"])
        elif node.type == "Flatten":
            y = torch.flatten(args[0], p["start_dim"], p["end_dim"])
        elif node.type == "GlobalAvgPool2d":
            y = args[0].mean(dim=(2, 3), keepdim=p["keepdim"])
        elif node.type == "Add":
            y = sum(args[1:], args[0])
        elif node.type == "Concat":
            y = torch.cat(args, dim=p["dim"])
        else:  # pragma: no cover - the strategies only draw the types above
            raise AssertionError(f"no reference for {node.type}")
        values[nid] = y
    return tuple(values[inf.nodes[out_id].sources["in"][0]] for out_id, _ in c.plan.outputs)


def as_tuple(y):
    return y if isinstance(y, tuple) else (y,)


def run_and_check(g, expected_shapes=None, every_layer_returned=True):
    """Compile, check every inferred shape against the real one, run backward, and compare the generated
    code and an independent evaluation with the compiled module."""
    c = build(g, seed=0)
    inf = c.inference
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(BATCH, *inf.shape(nid).shape[1:], generator=gen).requires_grad_()
          for nid, _ in c.plan.inputs]

    c.model.train()
    outs = as_tuple(c.model(*xs))
    assert len(outs) == len(c.plan.outputs)
    for (out_id, name), y in zip(c.plan.outputs, outs):
        src_id, port = inf.nodes[out_id].sources["in"]
        t = inf.shape(src_id, port)
        assert (BATCH, *t.shape[1:]) == tuple(y.shape), f"{g.nodes[src_id].label}: inferred {t}, real {tuple(y.shape)}"
        assert str(y.dtype) == f"torch.{t.dtype}"
        assert inf.shape(out_id) == t
        if expected_shapes is not None and src_id in expected_shapes:
            assert tuple(y.shape[1:]) == expected_shapes[src_id], g.nodes[src_id].label
    sum(y.float().mean() for y in outs).backward()
    for name, param in c.model.named_parameters():
        if every_layer_returned:
            assert param.grad is not None, name
        assert param.grad is None or torch.isfinite(param.grad).all(), name

    # the generated file, executed on its own with the compiled weights, is the same model
    source = engine.generate_code(g)
    assert source == c.source
    namespace: dict = {"__name__": "generated_property"}
    exec(compile(source, "<generated>", "exec"), namespace)
    standalone = namespace[c.plan.class_name]()
    standalone.load_state_dict(c.model.state_dict())
    c.model.eval()
    standalone.eval()
    with torch.no_grad():
        ours = as_tuple(c.model(*xs))
        theirs = as_tuple(standalone(*xs))
        ref = reference_forward(c, xs)
    for a, b_, r in zip(ours, theirs, ref):
        torch.testing.assert_close(a, b_, rtol=0, atol=0)
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)
    assert sum(p.numel() for p in c.model.parameters()) == inf.total_params


@given(valid_graphs())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: tests/conftest.py profile
def test_random_valid_graphs_compile_run_and_match_their_inferred_shapes(case):
    torch.set_num_threads(1)
    g, shapes = case
    note(engine.dumps(g))
    inf = infer_shapes(g)
    assert inf.ok, [str(p) for p in inf.errors]
    for nid, shape in shapes.items():
        assert inf.shape(nid).shape == ("N", *shape), (g.nodes[nid].label, str(inf.shape(nid)), shape)
    run_and_check(g, shapes)


# ----------------------------------------------------------------------------- broken graphs
WRONG_VALUES = st.sampled_from(["3", "", None, {}, {"a": 1}, [], ["x"], [1, 2, 3], True, 2.5, float("nan"),
                                float("inf"), -1, -10 ** 30, 10 ** 400, "same", [True, 1]])
# Any value a param could hold. Integers stay small: a size of 10**400 passes validation and fails in torch
# (see test_compiler.py::test_a_size_too_large_for_torch_is_refused_by_validation).
ANY_VALUES = st.one_of(WRONG_VALUES.filter(lambda v: not (isinstance(v, int) and abs(v) > 2 ** 31)),
                       st.integers(-3, 9), st.floats(-1, 2, allow_nan=False),
                       st.lists(st.integers(-1, 5), min_size=1, max_size=3), st.booleans())


STRUCTURAL = ["remove_wire", "wire_into_taken_port", "cycle"]
LOCAL = ["wire_to_missing", "bad_param", "unknown_type", "duplicate_label"]


def _structural_edit(draw, g, kind):
    """Edits of the wiring, made on the still-valid graph (so they cannot cancel each other)."""
    if kind == "remove_wire":
        edge = draw(st.sampled_from(g.edges))
        g.disconnect(edge)
        return edge.dst
    if kind == "wire_into_taken_port":
        edge = draw(st.sampled_from(g.edges))
        src = draw(st.sampled_from([n for n in g.nodes if g.nodes[n].type != "Output"]))
        g.edges.append(Edge(src, "out", edge.dst, edge.dst_port))
        return edge.dst
    # a cycle: a layer downstream of `first` (or `first` itself) feeds `first`
    layers = [n for n in g.nodes if engine.REGISTRY[g.nodes[n].type].role == "layer"]
    first = draw(st.sampled_from(layers))
    downstream, todo = {first}, [first]
    while todo:
        n = todo.pop()
        for e in g.edges_from(n):
            if e.dst not in downstream:
                downstream.add(e.dst)
                todo.append(e.dst)
    last = draw(st.sampled_from([n for n in layers if n in downstream]))
    port = draw(st.sampled_from(g.input_port_names(first)))
    g.edges = [e for e in g.edges if not (e.dst == first and e.dst_port == port)]
    g.edges.append(Edge(last, "out", first, port))
    return first


def _local_edit(draw, g, kind):
    """Edits of one node or one extra wire; each is an error wherever it lands."""
    ids = list(g.nodes)
    if kind == "wire_to_missing":
        dst = draw(st.sampled_from(ids))
        src = draw(st.sampled_from(ids + ["ghost"]))
        g.edges.append(Edge(src, "out" if src == "ghost" else "bogus", dst, "in"))
        return None
    if kind == "bad_param":
        known = [n for n in ids if engine.REGISTRY.get(g.nodes[n].type) is not None
                 and engine.REGISTRY[g.nodes[n].type].params]
        nid = draw(st.sampled_from(known))
        desc = draw(st.sampled_from(engine.REGISTRY[g.nodes[nid].type].params))
        value = draw(WRONG_VALUES)
        try:
            desc.coerce(value)
        except ValueError:
            pass
        else:  # the value happens to fit this descriptor: use one no descriptor accepts
            value = {"not": "a value"}
        g.nodes[nid].params[desc.name] = value
        return nid
    if kind == "unknown_type":
        nid = draw(st.sampled_from(ids))
        g.nodes[nid].type = draw(st.sampled_from(["Quantum", "", "linear", "Conv3d"]))
        return nid
    # duplicate_label: the later of the two nodes in the document is the one blamed
    a = draw(st.sampled_from(ids))
    b = draw(st.sampled_from([n for n in ids if n != a]))
    g.nodes[b].label = g.nodes[a].label
    return max(a, b, key=ids.index)


def _valid_with_layers(case):
    g, _ = case
    return any(engine.REGISTRY[n.type].role == "layer" for n in g.nodes.values())


@given(valid_graphs().filter(_valid_with_layers), st.data())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: tests/conftest.py profile
def test_random_broken_graphs_are_reported_and_compile_raises_graph_error(case, data):
    g, _ = case
    edits = []
    structural = data.draw(st.sampled_from([None] + STRUCTURAL))
    if structural:
        edits.append((structural, _structural_edit(data.draw, g, structural)))
    local = data.draw(st.lists(st.sampled_from(LOCAL), min_size=0 if structural else 1, max_size=2))
    for kind in local:
        edits.append((kind, _local_edit(data.draw, g, kind)))
    note(repr(edits))
    note(engine.dumps(g))
    inf = infer_shapes(g)  # never raises
    assert not inf.ok
    kind, nid = edits[-1]
    if nid is not None and kind not in ("remove_wire", "cycle"):
        # the last edit is reported on its node (earlier edits may have changed what is downstream)
        assert inf.problems_for(nid), (kind, nid, [str(p) for p in inf.problems])
    for p in inf.problems:
        assert p.message and (p.node is None or p.node in g.nodes)
    with pytest.raises(GraphError) as exc:
        build(g)
    assert exc.value.problems
    with pytest.raises(GraphError):
        engine.generate_code(g)
    engine.dumps(g)  # a broken document still saves


@given(valid_graphs(), st.data())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: tests/conftest.py profile
def test_random_edits_are_either_refused_or_compile_and_run(case, data):
    """Random rewiring and random param values (of any type): validation is the only gate, so whatever it
    lets through must compile and run with the inferred shapes."""
    torch.set_num_threads(1)
    g, _ = case
    ids = list(g.nodes)
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.booleans()):
            nid = data.draw(st.sampled_from(ids))
            spec = engine.REGISTRY[g.nodes[nid].type]
            if spec.params and spec.type != "Input":
                desc = data.draw(st.sampled_from(spec.params))
                g.nodes[nid].params[desc.name] = data.draw(ANY_VALUES)
        else:
            src, dst = data.draw(st.sampled_from(ids)), data.draw(st.sampled_from(ids))
            ports = g.input_port_names(dst)
            if ports:
                port = data.draw(st.sampled_from(ports))
                g.edges = [e for e in g.edges if not (e.dst == dst and e.dst_port == port)]
                g.edges.append(Edge(src, "out", dst, port))
    note(engine.dumps(g))
    inf = infer_shapes(g)
    event("refused" if not inf.ok else "accepted")
    if not inf.ok:
        with pytest.raises(GraphError):
            build(g)
        return
    run_and_check(g, every_layer_returned=False)  # a rewired layer may feed no Output
