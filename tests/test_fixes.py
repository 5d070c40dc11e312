"""One-click fixes (engine/fixes.py), without Qt: each common shape error gets a repair that makes the
graph valid, and the repaired network is the one a person would have drawn."""

import pytest

import engine
from engine.fixes import all_fixes, fixes_for, insert_on_wire
from tests import graphs


def only_error(graph):
    inf = engine.infer_shapes(graph)
    assert len(inf.errors) == 1, [p.message for p in inf.errors]
    return inf.errors[0], inf


def lenet_without_flatten(in_features=0):
    g = graphs.lenet5()
    g.remove_node("flatten")
    g.connect("pool2", "out", "fc1", "in")
    if in_features:
        g.set_param("fc1", "in_features", in_features)
    return g


def test_missing_flatten_is_fixed_from_the_loss_that_it_breaks():
    g = lenet_without_flatten()
    problem, inf = only_error(g)
    assert problem.node == "ce"  # fc1 happily maps the last axis; the loss is what complains
    fixes = fixes_for(g, problem, inf)
    assert [f.code for f in fixes] == ["insert_flatten"]
    assert fixes[0].title == "Insert a Flatten before 'fc1'"
    assert "(N, 16, 5, 5)" in fixes[0].detail and "(N, 400)" in fixes[0].detail
    added = fixes[0].apply(g)
    inf = engine.infer_shapes(g)
    assert inf.ok, [p.message for p in inf.errors]
    assert g.nodes[added[0]].type == "Flatten"
    assert inf.total_params == graphs.LENET5_PARAMS
    assert str(inf.shape(added[0])) == "(N, 400)"


def test_missing_flatten_before_a_linear_with_declared_features():
    g = lenet_without_flatten(in_features=400)
    problem, inf = only_error(g)
    assert problem.node == "fc1"
    fixes = fixes_for(g, problem, inf)
    # Flatten first (it is what was meant); setting in_features to 5 is offered too, but second.
    assert [f.code for f in fixes] == ["insert_flatten", "set_input_size"]
    fixes[0].apply(g)
    assert engine.infer_shapes(g).ok


def test_linear_input_features_set_to_what_arrives():
    g = graphs.mlp(in_features=4)
    g.set_param("hidden", "in_features", 7)
    problem, inf = only_error(g)
    (fix,) = fixes_for(g, problem, inf)
    assert fix.code == "set_input_size" and fix.title == "Set in_features of 'hidden' to 4"
    assert fix.apply(g) == ["hidden"]
    assert g.nodes["hidden"].params["in_features"] == 4
    assert engine.infer_shapes(g).ok


def test_conv_input_channels_set_to_what_arrives():
    g = graphs.lenet5()
    g.set_param("conv2", "in_channels", 3)
    problem, inf = only_error(g)
    (fix,) = fixes_for(g, problem, inf)
    assert fix.title == "Set in_channels of 'conv2' to 6"
    fix.apply(g)
    assert engine.infer_shapes(g).ok


@pytest.mark.parametrize("stride", [1, 2])
def test_residual_shortcut_gets_a_1x1_projection(stride):
    g = graphs.residual_block(channels=4, size=8)
    g.set_param("conv1", "out_channels", 8)
    g.set_param("conv2", "out_channels", 8)
    if stride == 2:
        g.set_param("conv1", "stride", 2)
    problem, inf = only_error(g)
    assert problem.node == "add"
    fixes = fixes_for(g, problem, inf)
    assert [f.code for f in fixes] == ["project_shortcut"]
    assert "1x1 convolution to 8 channels" in fixes[0].title
    assert ("stride 2" in fixes[0].title) == (stride == 2)
    (proj,) = fixes[0].apply(g)
    inf = engine.infer_shapes(g)
    assert inf.ok, [p.message for p in inf.errors]
    node = g.nodes[proj]
    assert node.type == "Conv2d" and node.params["kernel_size"] == 1 and node.params["out_channels"] == 8
    # the projection sits on the shortcut (from the block input), not on the main branch
    assert engine.Edge("x", "out", proj, "in") in g.edges
    assert engine.Edge("bn2", "out", "add", "in1") in g.edges
    assert str(inf.shape("add")) == f"(N, 8, {8 // stride}, {8 // stride})"


def test_shortcut_found_whichever_port_it_uses():
    g = graphs.residual_block(channels=4, size=8)
    for e in list(g.edges):
        if e.dst == "add":
            g.disconnect(e)
    g.connect("x", "out", "add", "in1")  # shortcut on in1 this time
    g.connect("bn2", "out", "add", "in2")
    g.set_param("conv2", "out_channels", 6)
    problem, inf = only_error(g)
    (fix,) = fixes_for(g, problem, inf)
    (proj,) = fix.apply(g)
    assert engine.Edge("x", "out", proj, "in") in g.edges
    assert engine.infer_shapes(g).ok


def test_no_fix_for_problems_it_cannot_repair():
    g = graphs.mlp()
    g.disconnect(engine.Edge("hidden", "out", "relu", "in"))
    inf = engine.infer_shapes(g)
    assert inf.errors
    assert all(fixes == [] for _, fixes in all_fixes(g, inf))
    # an Add whose spatial sizes are not a whole stride apart has no projection to offer
    g = graphs.residual_block(channels=4, size=8)
    g.set_param("conv1", "kernel_size", 2)  # 8 -> 7: no 1x1 stride maps 8 to 7
    problem, inf = only_error(g)
    assert fixes_for(g, problem, inf) == []


def test_fix_applies_to_an_equal_copy_and_refuses_when_the_wire_is_gone():
    g = lenet_without_flatten()
    problem, inf = only_error(g)
    (fix,) = fixes_for(g, problem, inf)
    copy = g.copy()
    fix.apply(copy)
    assert engine.infer_shapes(copy).ok
    assert not engine.infer_shapes(g).ok  # the analysed graph itself is untouched
    g.disconnect(engine.Edge("pool2", "out", "fc1", "in"))
    with pytest.raises(engine.GraphEditError, match="no longer has an input wire"):
        fix.apply(g)


def test_insert_on_wire_makes_room_in_a_column():
    g = engine.Graph()
    a = g.add_node("Input", "a", {"shape": [3]}, pos=(0, 0))
    b = g.add_node("ReLU", "b", pos=(0, 90))
    c = g.add_node("Output", "c", pos=(0, 180))
    g.connect(a.id, "out", b.id, "in")
    g.connect(b.id, "out", c.id, "in")
    new = insert_on_wire(g, engine.Edge(a.id, "out", b.id, "in"), "Sigmoid")
    assert g.layout[new.id] == (0, 90)
    assert g.layout[b.id] == (0, 180) and g.layout[c.id] == (0, 270)
    assert engine.infer_shapes(g).ok
