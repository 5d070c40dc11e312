"""Code generation (engine/codegen.py): readable, legal, straight-line PyTorch; nothing from the file
becomes code."""

from __future__ import annotations

import ast
import os
import re

import pytest
import torch

import engine
from engine import GraphError, generate_code
from engine.codegen import class_name_for
from engine.compiler import build
from graphs import ALL, inception_block, lenet5, mlp, residual_block


def _forward_lines(source: str, class_name: str) -> list[str]:
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    fwd = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    text = source.splitlines()
    return [text[stmt.lineno - 1].strip() for stmt in fwd.body], fwd  # each statement with its comment


def _run_source(source: str) -> dict:
    namespace: dict = {"__name__": "generated_under_test"}
    exec(compile(source, "<generated>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("name", sorted(ALL))
def test_the_compiler_runs_exactly_the_generated_code(name):
    g = ALL[name]()
    assert build(g).source == generate_code(g)
    ast.parse(generate_code(g))


def test_lenet5_reads_like_hand_written_code():
    source = generate_code(lenet5())
    assert "class LeNet5(nn.Module):" in source
    assert "        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)\n" in source
    assert "        self.fc1 = nn.Linear(400, 120)\n" in source
    assert "        self.pool1 = nn.AvgPool2d(kernel_size=2)\n" in source
    assert "    def forward(self, image):\n        x = self.conv1(image)  # (N, 6, 28, 28)\n" in source
    assert "        x = torch.flatten(x, 1)  # flatten: (N, 400)\n" in source
    assert "class LeNet5Loss(nn.Module):" in source and "ce = F.cross_entropy(logits, label)" in source
    assert "input_names = ('image',)" in source and "output_names = ('logits',)" in source


@pytest.mark.parametrize("name", sorted(ALL))
def test_forward_is_straight_line_code_with_one_line_per_layer(name):
    g = ALL[name]()
    c = build(g)
    lines, fwd = _forward_lines(c.source, c.plan.class_name)
    assert all(isinstance(stmt, (ast.Assign, ast.Return)) for stmt in fwd.body), lines
    layers = [nid for nid, n in g.nodes.items() if engine.REGISTRY[n.type].role == "layer"]
    assert len(lines) == len(layers) + 1
    for line, nid in zip(lines, [n for n in c.inference.order if n in layers]):
        assert line.endswith(str(c.inference.shape(nid))), (line, nid)  # the inferred shape as a comment


def test_a_residual_block_keeps_the_skip_tensor_alive():
    c = build(residual_block())
    lines, _ = _forward_lines(c.source, c.plan.class_name)
    assert lines[0] == "x1 = self.conv1(x)  # (N, 4, 8, 8)"  # x is still needed by the Add
    assert any(re.fullmatch(r"x\d* = x\d* \+ x  # add: \(N, 4, 8, 8\)", line) for line in lines), lines


def test_inception_branches_are_concatenated_in_port_order():
    c = build(inception_block())
    src = c.source
    assert re.search(r"= torch\.cat\(\[x1, x2, x3\], dim=1\)  # concat: \(N, 11, 8, 8\)", src), src


def test_an_invalid_graph_raises_graph_error_listing_every_problem():
    g = lenet5()
    g.node("conv1").params["out_channels"] = 0
    g.node("fc2").type = "Quantum"
    with pytest.raises(GraphError) as exc:
        generate_code(g)
    assert len(exc.value.problems) == 2
    assert "graph 'LeNet-5' has 2 error(s)" in str(exc.value)
    assert "Conv2d 'conv1' param 'out_channels'" in str(exc.value) and "'Quantum'" in str(exc.value)


@pytest.mark.parametrize("name, expected", [
    ("LeNet-5", "LeNet5"), ("my resnet", "MyResnet"), ("3 layers", "Net3Layers"), ("???", "Net"),
    ('x"""; import os', "XImportOs"),
])
def test_class_names(name, expected):
    assert class_name_for(name) == expected


def test_a_chosen_class_name_is_used():
    source = generate_code(mlp(), class_name="Classifier")
    ns = _run_source(source)
    assert "Classifier" in ns and "ClassifierLoss" in ns


def test_clashing_labels_get_legal_unique_names():
    g = engine.Graph("clashes")
    x = g.add_node("Input", "self", {"shape": [3]})
    x1 = g.add_node("Input", "x1", {"shape": [3]})
    a = g.add_node("Linear", "forward", {"out_features": 3})
    b = g.add_node("Linear", "state dict", {"out_features": 3})
    c = g.add_node("Linear", "state-dict", {"out_features": 3})
    add = g.add_node("Add", "torch")
    out = g.add_node("Output", "x")
    out2 = g.add_node("Output", "x 1")
    g.connect(x.id, "out", a.id, "in")
    g.connect(a.id, "out", b.id, "in")
    g.connect(x1.id, "out", c.id, "in")
    g.connect(b.id, "out", add.id, "in1")
    g.connect(c.id, "out", add.id, "in2")
    g.connect(add.id, "out", out.id, "in")
    g.connect(x1.id, "out", out2.id, "in")
    comp = build(g)
    attrs = list(comp.plan.attrs.values())
    assert len(set(attrs)) == 3 and "forward" not in attrs
    assert all(a.isidentifier() for a in attrs)
    args = [a for _, a in comp.plan.inputs]
    assert args == ["self_", "x1"]
    names = [n for _, n in comp.plan.outputs]
    assert len(set(names)) == 2 and not set(names) & set(args)
    t0, t1 = torch.randn(2, 3), torch.randn(2, 3)
    y, y2 = comp.model(t0, t1)
    m = comp.model
    assert torch.allclose(y, m.get_submodule(attrs[1])(m.get_submodule(attrs[0])(t0)) + m.get_submodule(attrs[2])(t1))
    assert torch.equal(y2, t1)


def test_labels_and_names_from_a_file_never_become_code(tmp_path, monkeypatch):
    """Labels with quotes, triple quotes, newlines and python code end up only as data."""
    calls = []
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd) or 0)
    sentinel = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(sentinel)!r}).touch(); __import__('os').system('x')"
    g = mlp()
    g.name = f'evil """ {payload}\n{payload}'
    g.description = f'"""\n{payload}\n"""\\'
    g.set_label("x", f"x\n{payload}")
    g.set_label("relu", f'r"""\n{payload}\r\n# \\')       # a parameter-free node: its label is in a comment
    g.set_label("hidden", f"h')\n{payload}\n('")
    g.set_label("logits", f'"""{payload}"""')
    g.set_label("label", f"\\\n{payload}")
    g.set_label("ce", f"ce\n{payload}")
    path = tmp_path / "evil.dcnet"
    engine.save_graph(g, path)
    g = engine.load_graph(path)

    source = generate_code(g)
    tree = ast.parse(source)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "__import__" not in names
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                and any(a.name in ("os", "pathlib") for a in n.names)]
    ns = _run_source(source)
    model_cls = next(v for k, v in ns.items() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                     and not k.endswith("Loss"))
    model = model_cls()
    out = model(torch.randn(2, 4))
    loss_cls = next(v for k, v in ns.items() if k.endswith("Loss"))
    loss_cls()(out, torch.tensor([0, 2])).backward()
    comp = build(g)
    comp.model(torch.randn(2, 4))
    assert not sentinel.exists() and calls == []
    assert ns["__doc__"].startswith(f'evil """ {payload}')  # the text survives, as text


def test_a_label_with_a_superscript_still_compiles():
    g = mlp()
    g.set_label("hidden", "conv²")
    build(g).model(torch.randn(2, 4))


def test_labels_equal_after_unicode_normalisation_get_distinct_attributes():
    g = mlp()
    g.set_label("hidden", "filter")
    g.set_label("head", "\ufb01lter")
    model = build(g).model
    assert model(torch.randn(2, 4)).shape == (2, 3)


def test_a_label_equal_to_an_nn_module_method_is_renamed():
    g = mlp()
    g.set_label("hidden", "to_empty")
    assert build(g).model(torch.randn(2, 4)).shape == (2, 3)
