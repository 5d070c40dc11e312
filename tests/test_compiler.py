"""The compiler (engine/compiler.py): a graph becomes an ordinary, well-behaved torch.nn.Module."""

from __future__ import annotations

import copy
import datetime
import importlib.util
import inspect
import pickle
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import engine
from engine import GraphError
from engine.compiler import build
from graphs import ALL, LENET5_PARAMS, inception_block, lenet5, mlp, residual_block


def example_input(compiled, batch: int = 2, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    xs = []
    for nid, _ in compiled.plan.inputs:
        t = compiled.inference.shape(nid)
        xs.append(torch.randn(batch, *t.shape[1:], generator=gen))
    return xs


# ----------------------------------------------------------------------------- the module
def test_state_dict_keys_are_readable():
    model = engine.compile_graph(lenet5())
    assert list(model.state_dict()) == [
        "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
        "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    assert model.conv1.weight.shape == (6, 1, 5, 5)
    assert "bn1.running_mean" in engine.compile_graph(residual_block()).state_dict()


def test_build_returns_everything_it_rests_on():
    c = build(lenet5())
    assert isinstance(c.model, nn.Module) and isinstance(c.loss, nn.Module)
    assert c.plan.inputs == [("image", "image")] and c.plan.outputs == [("logits", "logits")]
    assert c.plan.targets == [("label", "label")] and c.plan.losses == ["ce"]
    assert c.inference.ok and c.inference.total_params == LENET5_PARAMS
    assert type(c.model).input_names == ("image",) and type(c.model).output_names == ("logits",)
    assert inspect.getsource(type(c.model)).startswith("class LeNet5(nn.Module):")


class HandWrittenLeNet5(nn.Module):
    """LeNet-5 written by hand: the oracle for the compiled model."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


def test_compiled_lenet5_matches_a_hand_written_one():
    model = engine.compile_graph(lenet5())
    ref = HandWrittenLeNet5()
    ref.load_state_dict(model.state_dict())
    x = torch.randn(3, 1, 32, 32)
    torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)
    assert sum(p.numel() for p in model.parameters()) == LENET5_PARAMS


# ----------------------------------------------------------------------------- seeds
def _weights(model):
    return [t.clone() for t in model.state_dict().values()]


def test_same_seed_same_weights_other_seed_other_weights():
    g = lenet5()
    a, b, c = (engine.compile_graph(g, seed=s) for s in (7, 7, 8))
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(b)))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)
    # a copy of the graph is the same graph
    d = engine.compile_graph(g.copy(), seed=7)
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(d)))


def test_compiling_does_not_touch_the_global_random_state():
    torch.manual_seed(1234)
    expected = torch.rand(5)
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    engine.compile_graph(lenet5(), seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.rand(5), expected)


def test_seed_none_draws_from_the_global_generator():
    torch.manual_seed(99)
    a = engine.compile_graph(mlp(), seed=None)
    torch.manual_seed(99)
    b = engine.compile_graph(mlp(), seed=None)
    c = engine.compile_graph(mlp(), seed=None)
    assert torch.equal(a.hidden.weight, b.hidden.weight)
    assert not torch.equal(b.hidden.weight, c.hidden.weight)


# ----------------------------------------------------------------------------- the generated file as a module
@pytest.mark.parametrize("name", sorted(ALL))
def test_generated_source_imported_as_a_module_gives_identical_outputs(tmp_path, name, monkeypatch):
    g = ALL[name]()
    c = build(g, seed=5)
    path = tmp_path / f"gen_{name}.py"
    path.write_text(engine.generate_code(g))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(f"gen_{name}")
    try:
        assert module.__file__ == str(path)
        model = getattr(module, c.plan.class_name)()
        model.load_state_dict(c.model.state_dict())
        c.model.eval()
        model.eval()
        xs = example_input(c)
        with torch.no_grad():
            torch.testing.assert_close(model(*xs), c.model(*xs), rtol=0, atol=0)
    finally:
        sys.modules.pop(f"gen_{name}", None)


# ----------------------------------------------------------------------------- outputs and losses
def two_headed():
    """One trunk, two heads; the Output nodes are listed in the document in the order b, a."""
    g = engine.Graph("two heads")
    x = g.add_node("Input", "x", {"shape": [6]})
    out_b = g.add_node("Output", "score")
    trunk = g.add_node("Linear", "trunk", {"out_features": 5})
    head_a = g.add_node("Linear", "class_head", {"out_features": 4})
    head_b = g.add_node("Linear", "score_head", {"out_features": 2})
    out_a = g.add_node("Output", "classes")
    t_cls = g.add_node("Target", "cls")
    t_val = g.add_node("Target", "value", {"shape": [2], "dtype": "float32"})
    ce = g.add_node("CrossEntropyLoss", "ce", {"weight": 2.0, "label_smoothing": 0.1})
    mse = g.add_node("MSELoss", "mse", {"weight": 0.5, "reduction": "sum"})
    g.connect(x.id, "out", trunk.id, "in")
    g.connect(trunk.id, "out", head_a.id, "in")
    g.connect(trunk.id, "out", head_b.id, "in")
    g.connect(head_a.id, "out", out_a.id, "in")
    g.connect(head_b.id, "out", out_b.id, "in")
    g.connect(out_a.id, "out", ce.id, "pred")
    g.connect(t_cls.id, "out", ce.id, "target")
    g.connect(out_b.id, "out", mse.id, "pred")
    g.connect(t_val.id, "out", mse.id, "target")
    return g


def test_several_outputs_come_back_as_a_tuple_in_document_order():
    c = build(two_headed())
    assert [n for _, n in c.plan.outputs] == ["score", "classes"]
    assert type(c.model).output_names == ("score", "classes")
    x = torch.randn(3, 6)
    score, classes = c.model(x)
    m = c.model
    torch.testing.assert_close(score, m.score_head(m.trunk(x)))
    torch.testing.assert_close(classes, m.class_head(m.trunk(x)))


def test_the_loss_module_sums_weighted_terms():
    c = build(two_headed())
    assert [n for _, n in c.plan.targets] == ["cls", "value"]
    x = torch.randn(3, 6)
    score, classes = c.model(x)
    cls = torch.tensor([0, 3, 1])
    value = torch.randn(3, 2)
    total = c.loss(score, classes, cls, value)
    expected = (2.0 * F.cross_entropy(classes, cls, label_smoothing=0.1)
                + 0.5 * F.mse_loss(score, value, reduction="sum"))
    torch.testing.assert_close(total, expected)
    assert total.dim() == 0
    assert "2.0 * ce + 0.5 * mse" in c.source
    loss = engine.compile_loss(two_headed())
    torch.testing.assert_close(loss(score, classes, cls, value), expected)


def test_compile_loss_without_a_loss_node_says_what_to_add():
    with pytest.raises(ValueError, match="has no loss node; add one"):
        engine.compile_loss(mlp(with_loss=False))
    assert build(mlp(with_loss=False)).loss is None


def test_compiling_an_invalid_graph_raises_graph_error():
    g = mlp()
    g.set_param("x", "shape", [1, 4, 4])
    conv = g.add_node("Conv2d", "conv")
    with pytest.raises(GraphError) as exc:
        engine.compile_graph(g)
    assert {p.node for p in exc.value.problems} >= {"conv"}
    assert all(p.severity == "error" for p in exc.value.problems)
    assert issubclass(GraphError, ValueError)
    del conv


# ----------------------------------------------------------------------------- torch integration
def test_forward_and_backward_reach_every_parameter():
    c = build(lenet5())
    out = c.model(torch.randn(4, 1, 32, 32))
    loss = c.loss(out, torch.tensor([1, 2, 3, 4]))
    loss.backward()
    for name, p in c.model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_to_dtype_and_device():
    model = engine.compile_graph(residual_block())
    model.to(torch.float64)
    assert model(torch.randn(2, 4, 8, 8, dtype=torch.float64)).dtype == torch.float64
    model.to("cpu")
    meta = engine.compile_graph(lenet5()).to("meta")
    assert meta(torch.empty(7, 1, 32, 32, device="meta")).shape == (7, 10)


def test_deepcopy_is_an_independent_equal_model():
    model = engine.compile_graph(inception_block())
    clone = copy.deepcopy(model)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(clone(x), model(x), rtol=0, atol=0)
    with torch.no_grad():
        clone.branch1x1.weight.add_(1.0)
    assert not torch.equal(clone(x), model(x))


def test_pickle_round_trip_in_process():
    model = engine.compile_graph(lenet5())
    clone = pickle.loads(pickle.dumps(model))
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(clone(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["lenet5", "residual", "inception"])
def test_dynamo_traces_forward_without_graph_breaks(name):
    c = build(ALL[name]())
    try:
        explanation = torch._dynamo.explain(c.model)(*example_input(c))
    finally:
        torch._dynamo.reset()
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_distributed_data_parallel_with_gloo(tmp_path):
    import torch.distributed as dist

    store = tmp_path / "store"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=60))
    try:
        c = build(residual_block())
        ddp = nn.parallel.DistributedDataParallel(c.model)
        out = ddp(torch.randn(3, 4, 8, 8))
        F.cross_entropy(out, torch.tensor([0, 1, 2])).backward()
        assert all(p.grad is not None for p in c.model.parameters())
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()


def test_train_and_eval_modes_behave_like_torch():
    g = mlp(with_loss=False)
    g.disconnect(engine.Edge("relu", "out", "head", "in"))
    drop = g.add_node("Dropout", "drop", {"p": 0.5})
    g.connect("relu", "out", drop.id, "in")
    g.connect(drop.id, "out", "head", "in")
    model = engine.compile_graph(g)
    x = torch.randn(64, 4)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.equal(a, model(x))


def test_a_size_too_large_for_torch_is_refused_by_validation():
    g = mlp()
    g.node("hidden").params["out_features"] = 10 ** 400
    assert not engine.infer_shapes(g).ok
    with pytest.raises(GraphError):
        build(g)
