"""Validation and shape inference (engine/inference.py): every problem at once, each naming its node."""

from __future__ import annotations

import pytest

import engine
from engine import Edge, check_connection, infer_shapes
from engine.inference import ERROR, WARNING, Problem
from engine.spec import NodeSpec, Registry
from graphs import ALL, LENET5_PARAMS, inception_block, lenet5, mlp, residual_block


def errors(g):
    return infer_shapes(g).errors


def codes(g):
    return sorted((p.code, p.node) for p in errors(g))


# ----------------------------------------------------------------------------- valid graphs
@pytest.mark.parametrize("name", sorted(ALL))
def test_the_example_graphs_are_valid(name):
    inf = infer_shapes(ALL[name]())
    assert inf.ok, inf.problems
    assert inf.problems == []


def test_lenet5_shapes_and_parameter_count():
    inf = infer_shapes(lenet5())
    expected = {"image": (1, 32, 32), "conv1": (6, 28, 28), "pool1": (6, 14, 14), "conv2": (16, 10, 10),
                "pool2": (16, 5, 5), "flatten": (400,), "fc1": (120,), "fc2": (84,), "fc3": (10,),
                "logits": (10,), "label": ()}
    for nid, shape in expected.items():
        assert inf.shape(nid).shape == ("N", *shape), nid
    assert str(inf.shape("conv1")) == "(N, 6, 28, 28)" and inf.shape("conv1").dtype == "float32"
    assert inf.shape("label").dtype == "int64"
    assert inf.total_params == LENET5_PARAMS
    assert inf.shape("ce") is None and inf.shape("nope") is None


def test_branching_graphs_infer_merged_shapes():
    inf = infer_shapes(inception_block())
    assert str(inf.shape("concat")) == "(N, 11, 8, 8)"
    inf = infer_shapes(residual_block())
    assert str(inf.shape("add")) == "(N, 4, 8, 8)" and str(inf.shape("gap")) == "(N, 4)"


def test_roles_are_listed_in_document_order():
    g = mlp()
    inf = infer_shapes(g)
    assert inf.ids_with_role("input") == ["x"]
    assert inf.ids_with_role("output") == ["logits"]
    assert inf.ids_with_role("target") == ["label"]
    assert inf.ids_with_role("loss") == ["ce"]
    assert inf.order.index("x") < inf.order.index("hidden") < inf.order.index("ce")


# ----------------------------------------------------------------------------- each kind of error
def test_the_lenet_feature_mismatch_message():
    g = lenet5()
    g.set_param("image", "shape", [1, 28, 28])  # 28x28 without padding gives 16*4*4 = 256 features
    g.set_param("fc1", "in_features", 400)
    [p] = errors(g)
    assert p.message == "Linear 'fc1' expects 400 input features, got 256 from 'flatten'"
    assert (p.code, p.node, p.port) == ("shape", "fc1", "in")


def test_a_cycle_blames_every_node_in_it_and_shows_the_loop():
    g = mlp(with_loss=False)
    g.disconnect(Edge("x", "out", "hidden", "in"))
    g.connect("head", "out", "hidden", "in")
    errs = errors(g)
    assert {p.node for p in errs} == {"hidden", "relu", "head"}
    assert all(p.code == "cycle" for p in errs)
    loop = "'head' -> 'hidden' -> 'relu' -> 'head'"
    for p in errs:
        assert loop in p.message
    assert "Linear 'hidden' is part of a cycle" in [p for p in errs if p.node == "hidden"][0].message
    # the Output after the cycle is not blamed
    assert infer_shapes(g).problems_for("logits") == []


def test_a_self_loop_is_a_cycle():
    g = engine.Graph()
    x = g.add_node("Input", "x", {"shape": [3]})
    add = g.add_node("Add", "add")
    out = g.add_node("Output", "y")
    g.connect(x.id, "out", add.id, "in1")
    g.connect(add.id, "out", add.id, "in2")
    g.connect(add.id, "out", out.id, "in")
    [p] = errors(g)
    assert p.code == "cycle" and p.node == "add" and "'add' -> 'add'" in p.message


def test_an_unconnected_input_port():
    g = residual_block()
    g.disconnect(Edge("x", "out", "add", "in2"))
    [p] = errors(g)
    assert (p.code, p.node, p.port) == ("unconnected", "add", "in2")
    assert p.message == "Add 'add' input 'in2' is not connected"


def test_a_node_unreachable_from_any_input_says_so():
    g = mlp(with_loss=False)
    g.disconnect(Edge("x", "out", "hidden", "in"))
    [p] = errors(g)
    assert (p.code, p.node) == ("unconnected", "hidden")
    assert "nothing reaches this node from an Input" in p.message


def test_two_wires_into_one_input():
    g = mlp(with_loss=False)
    g.connect("x", "out", "relu", "in")
    [p] = errors(g)
    assert (p.code, p.node, p.port) == ("multi_wire", "relu", "in")
    assert "ReLU 'relu' input 'in' has 2 wires (from 'hidden', 'x')" in p.message


@pytest.mark.parametrize("param, value, fragment", [
    ("out_features", 0, "param 'out_features' must be at least 1, got 0"),
    ("out_features", "8", "param 'out_features' expected a whole number, got '8' (text)"),
    ("bias", "yes", "param 'bias' expected true or false, got 'yes' (text)"),
    ("in_features", -2, "param 'in_features' must be at least 1 (or 0 for auto), got -2"),
])
def test_bad_param_values_name_node_and_param(param, value, fragment):
    g = mlp(with_loss=False)
    g.node("hidden").params[param] = value
    [p] = errors(g)  # nothing downstream is blamed
    assert (p.code, p.node, p.param) == ("param", "hidden", param)
    assert p.message == f"Linear 'hidden' {fragment}"


def test_unknown_type():
    g = mlp(with_loss=False)
    g.node("relu").type = "Swish9000"
    [p] = errors(g)
    assert (p.code, p.node) == ("unknown_type", "relu")
    assert "'relu' has the unknown node type 'Swish9000'" in p.message


@pytest.mark.parametrize("edge, node, fragment", [
    (Edge("ghost", "out", "head", "in"), "head", "node 'ghost' does not exist"),
    (Edge("x", "out", "ghost", "in"), None, "node 'ghost' does not exist"),
    (Edge("x", "bogus", "logits", "in"), "logits", "'x' has no output port 'bogus'"),
    (Edge("x", "out", "relu", "in7"), "relu", "'relu' has no input port 'in7'"),
])
def test_wires_to_missing_nodes_or_ports(edge, node, fragment):
    g = mlp(with_loss=False)
    g.edges.append(edge)  # as a file could hold it: Graph.connect would refuse it
    [p] = errors(g)
    assert p.code == "bad_edge" and p.node == node and p.edge == len(g.edges) - 1
    assert p.message == f"wire {len(g.edges) - 1} ({edge}): {fragment}"


def test_a_target_wired_into_a_layer():
    g = mlp()
    g.disconnect(Edge("x", "out", "hidden", "in"))
    g.connect("label", "out", "hidden", "in")
    errs = [p for p in errors(g) if p.code == "role"]
    assert [(p.node, p.port) for p in errs] == [("hidden", "in")]
    assert "Target 'label' may only feed loss nodes, but is wired to Linear 'hidden'" in errs[0].message


def test_a_loss_reading_a_layer_instead_of_an_output():
    g = mlp()
    g.disconnect(Edge("logits", "out", "ce", "pred"))
    g.connect("head", "out", "ce", "pred")
    [p] = errors(g)
    assert (p.code, p.node, p.port) == ("role", "ce", "pred")
    assert "must come from an Output or a Target node, not from Linear 'head'" in p.message


def test_an_output_wired_into_a_layer():
    g = mlp(with_loss=False)
    extra = g.add_node("ReLU", "after")
    g.connect("logits", "out", extra.id, "in")
    out2 = g.add_node("Output", "y2")
    g.connect(extra.id, "out", out2.id, "in")
    [p] = errors(g)
    assert (p.code, p.node) == ("role", "after")
    assert "Output 'logits' may only feed loss nodes" in p.message


def test_duplicate_labels():
    g = mlp(with_loss=False)
    g.node("head").label = "hidden"  # as a file could hold it: set_label would refuse it
    [p] = errors(g)
    assert (p.code, p.node) == ("duplicate_label", "head")
    assert "Linear 'hidden' has the same label as node 'hidden'" in p.message


@pytest.mark.parametrize("build, fragment, node", [
    (lambda g: g.add_node("Conv2d", "conv"), "Conv2d 'conv' expects a 4-D input (N, C, H, W), got (N, 3) from 'head'",
     "conv"),
    (lambda g: g.add_node("Softmax", "sm", {"dim": 0}), "Softmax 'sm' cannot take the softmax across the batch axis",
     "sm"),
    (lambda g: g.add_node("Flatten", "flat", {"start_dim": 0}), "Flatten 'flat' cannot flatten the batch axis",
     "flat"),
])
def test_shape_errors_name_the_node_and_the_sender(build, fragment, node):
    g = mlp(with_loss=False)
    g.disconnect(Edge("head", "out", "logits", "in"))
    n = build(g)
    g.connect("head", "out", n.id, "in")
    g.connect(n.id, "out", "logits", "in")
    [p] = errors(g)
    assert (p.code, p.node) == ("shape", node)
    assert fragment in p.message


def test_add_reports_the_axis_that_disagrees():
    g = residual_block()
    g.set_param("conv2", "out_channels", 5)
    [p] = errors(g)
    assert (p.code, p.node, p.port) == ("shape", "add", "in2")
    assert "cannot add (N, 5, 8, 8) and (N, 4, 8, 8): axis 1 is 5 on one side and 4 on the other" in p.message


def test_a_graph_without_input_or_output():
    g = engine.Graph()
    found = {p.code for p in errors(g)}
    assert found == {"no_input", "no_output"}
    assert all(p.node is None and p.location == "graph" for p in errors(g))


def test_four_independent_mistakes_give_four_errors_and_nothing_downstream_is_blamed():
    g = lenet5()
    g.node("conv1").params["out_channels"] = -3     # 1: a param out of range
    g.node("fc2").type = "Quantum"                   # 2: an unknown type
    g.node("tanh4").label = "tanh3"                  # 3: a duplicate label
    g.edges.append(Edge("ghost", "out", "fc3", "in"))  # 4: a wire from a missing node
    errs = errors(g)
    assert sorted((p.code, p.node) for p in errs) == [
        ("bad_edge", "fc3"), ("duplicate_label", "tanh4"), ("param", "conv1"), ("unknown_type", "fc2")]
    inf = infer_shapes(g)
    for downstream in ("tanh1", "pool1", "conv2", "flatten", "fc1", "logits", "ce"):
        assert inf.problems_for(downstream) == [], downstream
    assert [p.code for p in inf.problems_for("tanh4")] == ["duplicate_label"]  # its own mistake only
    assert inf.shape("conv2") is None  # not inferred, but not blamed either


def test_never_raises_when_a_shape_rule_has_a_bug():
    def broken(p, ins):
        raise ZeroDivisionError("oops")

    reg = Registry([engine.REGISTRY["Input"], engine.REGISTRY["Output"],
                    NodeSpec(type="Broken", category="Layers", doc="a buggy rule", infer=broken,
                             forward=lambda p, a, m: a[0])])
    g = engine.Graph(registry=reg)
    x = g.add_node("Input", "x", {"shape": [2]})
    b = g.add_node("Broken", "b")
    y = g.add_node("Output", "y")
    g.connect(x.id, "out", b.id, "in")
    g.connect(b.id, "out", y.id, "in")
    [p] = errors(g)
    assert (p.code, p.node) == ("internal", "b")
    assert "the shape rule failed (ZeroDivisionError: oops)" in p.message


def test_never_raises_for_a_huge_integer_in_a_float_param():
    g = mlp(with_loss=False)
    d = g.add_node("Dropout", "drop")
    d.params["p"] = 10 ** 400
    [p] = errors(g)
    assert (p.node, p.param) == ("drop", "p")


# ----------------------------------------------------------------------------- warnings and reporting
def test_warnings_do_not_make_a_graph_invalid():
    g = mlp()
    g.add_node("ReLU", "dangling")
    g.connect("hidden", "out", "dangling", "in")
    g.node("head").params["colour"] = "red"
    g.add_node("Target", "spare")
    inf = infer_shapes(g)
    assert inf.ok
    assert sorted((p.code, p.node) for p in inf.warnings) == [
        ("unknown_param", "head"), ("unused", "dangling"), ("unused", "spare")]


def test_problem_location_text_and_json():
    p = Problem(ERROR, "shape", "msg", node="fc1", port="in", param="bias", edge=3)
    assert p.location == "node fc1, port in, param bias, edge 3"
    assert str(p) == "error: msg [node fc1, port in, param bias, edge 3]"
    assert Problem(WARNING, "unused", "m", node="a").to_json() == {
        "severity": "warning", "code": "unused", "message": "m", "node": "a"}


def test_summary_rows_cover_every_node():
    inf = infer_shapes(lenet5())
    rows = {r["id"]: r for r in inf.summary_rows()}
    assert set(rows) == set(lenet5().nodes)
    assert rows["conv1"]["output"] == {"out": "(N, 6, 28, 28)"} and rows["conv1"]["params"] == 156
    assert rows["ce"]["output"] == {} and rows["ce"]["problems"] == []


# ----------------------------------------------------------------------------- check_connection
def test_check_connection_accepts_a_good_wire_and_does_not_change_the_graph():
    g = mlp(with_loss=False)
    g.disconnect(Edge("relu", "out", "head", "in"))
    before = engine.dumps(g)
    assert check_connection(g, "relu", "out", "head", "in") is None
    assert check_connection(g, "x", "out", "head", "in") is None
    assert engine.dumps(g) == before


def test_check_connection_refuses_with_the_reason():
    g = mlp(with_loss=False)
    conv = g.add_node("Conv2d", "conv")
    assert check_connection(g, "relu", "out", conv.id, "in") == \
        "Conv2d 'conv' expects a 4-D input (N, C, H, W), got (N, 8) from 'relu'"
    assert check_connection(g, "relu", "out", "x", "in") == "Input 'x' has no input port 'in' (it has: none)"
    assert check_connection(g, "x", "out", "hidden", "in") == "x:out -> hidden:in is already connected"
    assert check_connection(g, "head", "out", "hidden", "in") == \
        "input 'in' of 'hidden' already has a wire from 'x'"


def test_check_connection_refuses_a_cycle():
    g = residual_block()
    g.disconnect(Edge("x", "out", "add", "in2"))
    assert check_connection(g, "relu2", "out", "add", "in2") == "the wire would close a cycle through 'add'"
    assert check_connection(g, "x", "out", "add", "in2") is None


def test_check_connection_refuses_a_wrong_role():
    g = mlp()
    g.disconnect(Edge("x", "out", "hidden", "in"))
    reason = check_connection(g, "label", "out", "hidden", "in")
    assert reason and "Target 'label' may only feed loss nodes" in reason


# ----------------------------------------------------------------------------- stats
@pytest.mark.parametrize("name", sorted(ALL))
def test_total_params_equal_the_compiled_module(name):
    g = ALL[name]()
    model = engine.compile_graph(g)
    assert infer_shapes(g).total_params == sum(p.numel() for p in model.parameters())


def test_flops_of_linear_and_conv2d_follow_the_formula():
    inf = infer_shapes(lenet5())
    # Linear: 2 * in * out per sample (a multiply-add is 2 FLOPs)
    assert inf.nodes["fc1"].cost.flops == 2 * 400 * 120
    assert inf.nodes["fc3"].cost.flops == 2 * 84 * 10
    # Conv2d: 2 * (C_in / groups) * kh * kw per output element
    assert inf.nodes["conv1"].cost.flops == 2 * 1 * 5 * 5 * (6 * 28 * 28)
    assert inf.nodes["conv2"].cost.flops == 2 * 6 * 5 * 5 * (16 * 10 * 10)
    g = engine.Graph()
    x = g.add_node("Input", "x", {"shape": [4, 9, 9]})
    c = g.add_node("Conv2d", "c", {"out_channels": 8, "kernel_size": [3, 2], "stride": 2, "groups": 2,
                                   "bias": False})
    y = g.add_node("Output", "y")
    g.connect(x.id, "out", c.id, "in")
    g.connect(c.id, "out", y.id, "in")
    inf = infer_shapes(g)
    assert str(inf.shape("c")) == "(N, 8, 4, 4)"
    assert inf.nodes["c"].cost.flops == 2 * (4 // 2) * 3 * 2 * (8 * 4 * 4)
    assert inf.nodes["c"].cost.params == 8 * (4 // 2) * 3 * 2
    assert inf.total_flops == inf.nodes["c"].cost.flops


def test_linear_flops_count_every_row_of_a_3d_input():
    g = engine.Graph()
    x = g.add_node("Input", "x", {"shape": [7, 5]})
    fc = g.add_node("Linear", "fc", {"out_features": 3})
    y = g.add_node("Output", "y")
    g.connect(x.id, "out", fc.id, "in")
    g.connect(fc.id, "out", y.id, "in")
    assert infer_shapes(g).nodes["fc"].cost.flops == 7 * 2 * 5 * 3


def test_activation_bytes_scale_with_batch_size():
    inf = infer_shapes(lenet5())
    one = inf.activation_bytes(1)
    per_sample_floats = (32 * 32 + 2 * 6 * 28 * 28 + 6 * 14 * 14 + 2 * 16 * 10 * 10 + 16 * 5 * 5 + 400
                         + 2 * 120 + 2 * 84 + 10)
    assert one == 4 * per_sample_floats
    assert inf.activation_bytes(64) == 64 * one
    assert inf.activation_bytes() == one
