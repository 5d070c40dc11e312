"""Typed param descriptors, node specs and the registry (engine/params.py, engine/spec.py, engine/nodes/)."""

from __future__ import annotations

import json
import math

import pytest

import engine
from engine.params import Bool, Choice, Float, Int, Ints, Padding, ParamError, Shape, Text
from engine.spec import CATEGORIES, Call, NodeSpec, Registry, TensorInfo, format_shape, numel, render_value


# ----------------------------------------------------------------------------- Int
def test_int_accepts_whole_numbers_and_integral_floats():
    p = Int("n", 1, min=1, max=10)
    assert p.coerce(5) == 5
    assert p.coerce(7.0) == 7 and type(p.coerce(7.0)) is int


@pytest.mark.parametrize("value, fragment", [
    ("3", "expected a whole number, got '3' (text)"),
    (True, "expected a whole number, got True (a boolean)"),
    (None, "expected a whole number, got nothing (null)"),
    (2.5, "expected a whole number, got 2.5"),
    ([1], "expected a whole number"),
    (0, "must be at least 1, got 0"),
    (11, "must be at most 10, got 11"),
])
def test_int_refuses_with_what_was_expected_and_what_arrived(value, fragment):
    with pytest.raises(ParamError) as exc:
        Int("n", 1, min=1, max=10).coerce(value)
    assert fragment in str(exc.value)


def test_int_special_values_bypass_the_range_and_are_named_in_messages():
    p = Int("in_features", 0, min=1, special={0: "auto"})
    assert p.coerce(0) == 0
    with pytest.raises(ParamError, match=r"at least 1 \(or 0 for auto\), got -1"):
        p.coerce(-1)
    assert p.describe_range() == "integer in [1, inf] (or 0 for auto)"


def test_param_error_is_a_value_error():
    assert issubclass(ParamError, ValueError)


# ----------------------------------------------------------------------------- Float
def test_float_accepts_ints_and_floats_as_float():
    p = Float("p", 0.5, min=0.0, max=1.0)
    assert p.coerce(1) == 1.0 and isinstance(p.coerce(1), float)
    assert p.coerce(0.25) == 0.25


@pytest.mark.parametrize("value, fragment", [
    ("0.1", "expected a number, got '0.1' (text)"),
    (False, "expected a number, got False (a boolean)"),
    (float("nan"), "must be a finite number"),
    (float("inf"), "must be a finite number"),
    (-0.1, "must be at least 0.0, got -0.1"),
    (1.5, "must be at most 1.0, got 1.5"),
])
def test_float_refusals(value, fragment):
    with pytest.raises(ParamError) as exc:
        Float("p", 0.5, min=0.0, max=1.0).coerce(value)
    assert fragment in str(exc.value)


def test_float_exclusive_minimum():
    eps = Float("eps", 1e-5, min=0.0, min_exclusive=True)
    assert eps.coerce(1e-12) == 1e-12
    with pytest.raises(ParamError, match="greater than 0.0, got 0.0"):
        eps.coerce(0.0)
    assert eps.describe_range() == "number in (0.0, inf]"


def test_float_refuses_an_integer_too_large_for_a_float():
    with pytest.raises(ParamError):
        Float("p", 0.5, min=0.0, max=1.0).coerce(10 ** 400)


# ----------------------------------------------------------------------------- Bool, Choice, Text
def test_bool_only_takes_booleans():
    assert Bool("bias", True).coerce(False) is False
    for bad in (0, 1, "true", None):
        with pytest.raises(ParamError, match="expected true or false"):
            Bool("bias", True).coerce(bad)


def test_choice_lists_the_options():
    c = Choice("reduction", "mean", options=("mean", "sum"))
    assert c.coerce("sum") == "sum"
    with pytest.raises(ParamError, match=r"must be one of 'mean', 'sum'; got 'max' \(text\)"):
        c.coerce("max")
    with pytest.raises(ParamError):
        c.coerce(["mean"])  # unhashable values are refused, not crashed on


def test_text_type_and_length():
    t = Text("note", "", max_len=5)
    assert t.coerce("abc") == "abc"
    with pytest.raises(ParamError, match="expected text"):
        t.coerce(3)
    with pytest.raises(ParamError, match="at most 5 characters"):
        t.coerce("abcdef")


# ----------------------------------------------------------------------------- Ints, Padding, Shape
def test_ints_broadcast_a_single_value_and_check_each():
    k = Ints("kernel_size", 3, n=2, min=1)
    assert k.coerce(5) == (5, 5)
    assert k.coerce([3, 1]) == (3, 1)
    with pytest.raises(ParamError, match="expected 2 values, got 3"):
        k.coerce([1, 2, 3])
    with pytest.raises(ParamError, match="at least 1"):
        k.coerce([0, 1])
    with pytest.raises(ParamError, match="a whole number or a list of 2"):
        k.coerce([1, True])
    with pytest.raises(ParamError):
        k.coerce("3")


def test_padding_takes_same_valid_or_ints():
    p = Padding("padding", 0, n=2, min=0)
    assert p.coerce("same") == "same" and p.coerce("valid") == "valid"
    assert p.coerce(1) == (1, 1)
    with pytest.raises(ParamError):
        p.coerce("full")
    with pytest.raises(ParamError):
        p.coerce(-1)


def test_shape_sizes_and_named_axes():
    s = Shape("shape", [1, 28, 28])
    assert s.coerce([1, 28, 28]) == (1, 28, 28)
    assert s.coerce(7) == (7,)
    assert s.coerce([]) == ()
    assert s.coerce(["T", 16]) == ("T", 16)
    for bad, fragment in [([0, 3], "at least 1"), (["N", 3], "positive whole number or a name"),
                          (["1x"], "positive whole number or a name"), ({"a": 1}, "expected a list"),
                          ([2.0], "positive whole number")]:
        with pytest.raises(ParamError, match=fragment):
            s.coerce(bad)


def test_descriptors_describe_themselves_as_plain_json():
    for p in (Int("a", 1, min=0), Float("b", 0.1), Bool("c", True), Choice("d", "x", options=("x",)),
              Ints("e", 1), Padding("f", 0), Shape("g", [3])):
        data = p.to_json()
        assert json.loads(json.dumps(data)) == data
        assert data["name"] == p.name and data["kind"] == p.kind and data["allowed"]
    assert Text("h", "").to_json()["kind"] == "text"


# ----------------------------------------------------------------------------- specs and registry
def test_every_registered_spec_is_consistent():
    reg = engine.REGISTRY
    assert len(reg) >= 20
    for spec in reg:
        assert spec.category in CATEGORIES
        assert reg[spec.type] is spec
        # a new node with default params is valid as far as its params go
        for p in spec.params:
            p.coerce(p.default)
        json.dumps(spec.to_json())
        assert spec.doc.strip(), spec.type
        if spec.role == "layer" and spec.subgraph is None:  # composites infer through their sub-graph
            assert spec.infer is not None and spec.forward is not None, spec.type


def test_registry_follows_aliases_and_reports_unknown_types():
    reg = engine.REGISTRY
    assert reg.get("Dense") is reg["Linear"]
    assert reg.canonical("Dense") == "Linear"
    assert reg.canonical("Quantum") == "Quantum"
    assert reg.get("Quantum") is None and "Quantum" not in reg and "Linear" in reg
    with pytest.raises(KeyError, match="unknown node type 'Quantum'"):
        reg["Quantum"]
    cats = reg.by_category()
    assert "Linear" in [s.type for s in cats["Layers"]]
    assert all(specs for specs in cats.values())


def test_registry_refuses_a_type_registered_twice():
    spec = engine.REGISTRY["ReLU"]
    with pytest.raises(ValueError, match="registered twice"):
        Registry([spec, spec])


def test_spec_with_a_default_its_own_descriptor_refuses_cannot_be_declared():
    with pytest.raises(ParamError):
        NodeSpec(type="Bad", category="Layers", doc="x", params=(Int("n", 0, min=1),))
    with pytest.raises(AssertionError, match="unknown category"):
        NodeSpec(type="Bad", category="Nowhere", doc="x")


def test_variable_port_count_follows_the_param():
    concat = engine.REGISTRY["Concat"]
    assert [p.name for p in concat.input_ports()] == ["in1", "in2"]
    assert [p.name for p in concat.input_ports({"inputs": 4, "dim": 1})] == ["in1", "in2", "in3", "in4"]


# ----------------------------------------------------------------------------- small spec helpers
def test_render_value_only_renders_plain_data():
    assert render_value((3, 3)) == "3"
    assert render_value((3, 1)) == "(3, 1)"
    assert render_value((5,)) == "(5,)"
    assert render_value("x'); import os; ('") == repr("x'); import os; ('")
    assert render_value(True) == "True" and render_value(None) == "None" and render_value(0.5) == "0.5"
    with pytest.raises(TypeError):
        render_value(object())
    assert Call("nn.Conv2d", (1, 6), {"kernel_size": (5, 5)}).render() == "nn.Conv2d(1, 6, kernel_size=5)"


def test_tensor_info_and_numel():
    t = TensorInfo(("N", 16, 5, 5))
    assert t.rank == 4 and str(t) == "(N, 16, 5, 5)" and t.dtype == "float32"
    assert numel(t.shape) == 400
    assert numel(("N", "T", 8)) == 8  # a run-time axis counts as 1
    assert format_shape(("N",)) == "(N)"
    assert math.prod([2, 3]) == numel(("N", 2, 3))
