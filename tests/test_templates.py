"""The template library (templates/*.dcnet, engine.templates, `deepcanvas templates`) and the node types
it brought (engine/nodes/pooling.py).

Parameter counts are checked against the published reference implementations (torchvision's for AlexNet,
VGG-16, ResNet and GoogLeNet); LeNet-5 and ResNet-18 are also checked output for output against
hand-written PyTorch with the compiled model's weights loaded into it.

The sequence, generative and metric-learning templates (LSTM classifier, bidirectional GRU tagger,
seq2seq with attention, DCGAN, VAE, Siamese triplet network) are each checked against a hand-written
PyTorch equivalent: the same parameter count, the same outputs with the same weights, and their networks
(encoder/decoder, generator/discriminator, embedding) exposed by name.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import engine
from engine import templates
from engine.cli import main as cli_main
from engine.compiler import build
from engine.export import ExportError, export_graph

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"

# Parameters of the reference implementations at their original input size and 1000 classes.
REFERENCE_PARAMS = {
    "lenet5": 61_706,          # the standard PyTorch LeNet-5 (6-16-120-84-10, 1x32x32)
    "alexnet": 61_100_840,     # torchvision alexnet; local response normalisation has no parameters
    "vgg16": 138_357_544,      # torchvision vgg16
    "resnet18": 11_689_512,    # torchvision resnet18
    "resnet50": 25_557_032,    # torchvision resnet50
    "googlenet": 6_624_904,    # torchvision googlenet, aux_logits=False
    "mlp": sum(p.numel() for p in nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                                  nn.Linear(64, 3)).parameters()),
}
INPUT_SHAPES = {"lenet5": (1, 32, 32), "mlp": (2,), "alexnet": (3, 224, 224), "vgg16": (3, 224, 224),
                "resnet18": (3, 224, 224), "resnet50": (3, 224, 224), "googlenet": (3, 224, 224)}
CLASSES = {"mlp": 3, "lenet5": 10}

# The other templates, by hand: each Linear is in*out + out, each LSTM/GRU gates*H*(F + H) + 2*gates*H,
# each convolution (transposed too) Cin*Cout*k*k without bias, each batch norm 2*C. The hand-written
# modules below hold the same numbers (checked in test_new_template_equals_hand_written_pytorch).
NEW_PARAMS = {
    # Embedding 58x32 + LSTM 4*128*(32+128) + 2*4*128 + Linear 128*58 + 58
    "lstm_classifier": 58 * 32 + 4 * 128 * 160 + 2 * 4 * 128 + 128 * 58 + 58,  # 92,282
    # Embedding 5000x64 + two GRU directions of 3*64*(64+64) + 2*3*64 + Linear 128*18 + 18
    "bigru_tagger": 5000 * 64 + 2 * (3 * 64 * 128 + 2 * 3 * 64) + 128 * 18 + 18,  # 372,242
    # encoder: Embedding 58x32 + GRU 3*64*(32+64) + 2*3*64; decoder: Embedding 12x32 + the same GRU
    # + combine 128*64 + 64 + classify 64*11 + 11 (the attention has no weights)
    "seq2seq_attention": 58 * 32 + 2 * (3 * 64 * 96 + 2 * 3 * 64) + 12 * 32 + 128 * 64 + 64 + 64 * 11 + 11,  # 48,843
    # generator: 100*2048 + BN 256 + 128*64*16 + BN 128 + 64*32*16 + BN 64 + 32*1*16;
    # discriminator (counted once, shared): 1*32*16 + 32*64*16 + BN 128 + 64*128*16 + BN 256 + 128*1*16
    "dcgan": (100 * 2048 + 256 + 128 * 64 * 16 + 128 + 64 * 32 * 16 + 64 + 32 * 16)
    + (32 * 16 + 32 * 64 * 16 + 128 + 64 * 128 * 16 + 256 + 128 * 16),  # 369,600 + 166,784 = 536,384
    # fc1 784*400+400, fc21 and fc22 400*20+20, fc3 20*400+400, fc4 400*784+784
    "vae": 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784,  # 652,824
    # conv1 1*32*25+32, conv2 32*64*25+64, fc1 1024*256+256, fc2 256*64+64 (one set for the three branches)
    "siamese_triplet": 25 * 32 + 32 + 32 * 64 * 25 + 64 + 1024 * 256 + 256 + 256 * 64 + 64,  # 330,944
}
# Each Input and Target: shape without the batch axis, dtype, and for ids the number of distinct ids.
NEW_INPUTS = {
    "lstm_classifier": {"text": ((32,), "int64", 58)},
    "bigru_tagger": {"tokens": ((40,), "int64", 5000)},
    "seq2seq_attention": {"source": ((30,), "int64", 58), "decoder_input": ((10,), "int64", 12)},
    "dcgan": {"z": ((100,), "float32", None), "real": ((1, 32, 32), "float32", None)},
    "vae": {"image": ((1, 28, 28), "float32", None)},
    "siamese_triplet": {role: ((1, 28, 28), "float32", None) for role in ("anchor", "positive", "negative")},
}
NEW_TARGETS = {
    "lstm_classifier": {"label": ((), "int64", 58)},
    "bigru_tagger": {"tags": ((40,), "int64", 18)},
    "seq2seq_attention": {"target": ((10,), "int64", 11)},
    "dcgan": {}, "vae": {"target_image": ((1, 28, 28), "float32", None)}, "siamese_triplet": {},
}
NEW_NETWORKS = {"lstm_classifier": set(), "bigru_tagger": set(), "seq2seq_attention": {"encoder", "decoder"},
                "dcgan": {"generator", "discriminator"}, "vae": {"encoder", "decoder"},
                "siamese_triplet": {"embedding"}}
ALL_PARAMS = {**REFERENCE_PARAMS, **NEW_PARAMS}
ALL_INPUT_SHAPES = {**{name: (shape,) for name, shape in INPUT_SHAPES.items()},
                    **{name: tuple(s for s, _, _ in ins.values()) for name, ins in NEW_INPUTS.items()}}


def _build_script():
    spec = importlib.util.spec_from_file_location("build_templates", ROOT / "tools" / "build_templates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# =========================================================================== the new node types

def _one_node_graph(type_name: str, params: dict, shape) -> tuple[engine.Graph, str]:
    g = engine.Graph("one node")
    x = g.add_node("Input", "x", {"shape": list(shape)})
    n = g.add_node(type_name, "node", params)
    out = g.add_node("Output", "y")
    g.connect(x.id, "out", n.id, "in")
    g.connect(n.id, "out", out.id, "in")
    return g, n.id


NODE_CASES = [
    ("AdaptiveAvgPool2d", {"output_size": [6, 6]}, (3, 13, 17), lambda: nn.AdaptiveAvgPool2d((6, 6))),
    ("AdaptiveAvgPool2d", {"output_size": [2, 3]}, (4, 5, 7), lambda: nn.AdaptiveAvgPool2d((2, 3))),
    ("AdaptiveAvgPool2d", {"output_size": 1}, (2, 4, 4), lambda: nn.AdaptiveAvgPool2d(1)),
    ("AdaptiveAvgPool2d", {"output_size": [8, 8]}, (2, 5, 5), lambda: nn.AdaptiveAvgPool2d(8)),  # upsamples
    ("GlobalMaxPool2d", {}, (3, 5, 6), lambda: (lambda x: x.amax(dim=(2, 3)))),
    ("GlobalMaxPool2d", {"keepdim": True}, (3, 5, 6), lambda: nn.AdaptiveMaxPool2d(1)),
    ("MaxPool1d", {"kernel_size": 3, "stride": 2, "padding": 1}, (4, 17), lambda: nn.MaxPool1d(3, 2, 1)),
    ("MaxPool1d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, (4, 10),
     lambda: nn.MaxPool1d(3, 2, ceil_mode=True)),
    ("AvgPool1d", {"kernel_size": 2}, (3, 11), lambda: nn.AvgPool1d(2)),
    ("AvgPool1d", {"kernel_size": 3, "stride": 1, "padding": 1}, (3, 9), lambda: nn.AvgPool1d(3, 1, 1)),
    ("LocalResponseNorm", {}, (8, 5, 5), lambda: nn.LocalResponseNorm(5)),
    ("LocalResponseNorm", {"size": 3, "alpha": 0.01, "beta": 0.5, "k": 2.0}, (6, 7),
     lambda: nn.LocalResponseNorm(3, alpha=0.01, beta=0.5, k=2.0)),
]


@pytest.mark.parametrize("type_name, params, shape, reference", NODE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(NODE_CASES)])
def test_new_node_shape_rule_and_values_match_torch(type_name, params, shape, reference):
    g, nid = _one_node_graph(type_name, params, shape)
    inf = engine.infer_shapes(g)
    assert inf.problems == []
    compiled = build(g, seed=0)
    x = torch.randn(2, *shape)
    y = compiled.model(x)
    inferred = inf.shape(nid).shape
    assert inferred[0] == "N" and tuple(y.shape) == (2, *inferred[1:])
    # the compiled layer computes what torch's own layer with the same settings computes
    torch.testing.assert_close(y, reference()(x), rtol=0, atol=0)
    # and costs what the module holds
    assert inf.nodes[nid].cost.params == sum(p.numel() for p in compiled.model.parameters()) == 0
    assert inf.nodes[nid].cost.flops > 0


def test_new_nodes_are_registered_in_their_categories():
    categories = {"AdaptiveAvgPool2d": "Pooling", "GlobalMaxPool2d": "Pooling", "MaxPool1d": "Pooling",
                  "AvgPool1d": "Pooling", "LocalResponseNorm": "Normalization"}
    for type_name, category in categories.items():
        assert engine.REGISTRY[type_name].category == category


@pytest.mark.parametrize("type_name, params, shape, words", [
    ("MaxPool1d", {"kernel_size": 2}, (3, 8, 8), "(N, C, L)"),
    ("AvgPool1d", {"kernel_size": 5}, (3, 4), "does not fit the input of length 4"),
    ("MaxPool1d", {"kernel_size": 2, "padding": 2}, (3, 9), "at most half the kernel"),
    ("AdaptiveAvgPool2d", {"output_size": 2}, (3, 8), "(N, C, H, W)"),
    ("GlobalMaxPool2d", {}, (3, 8), "(N, C, H, W)"),
    ("LocalResponseNorm", {}, (8,), "(N, C, ...)"),
])
def test_new_nodes_refuse_bad_inputs_naming_the_node(type_name, params, shape, words):
    g, nid = _one_node_graph(type_name, params, shape)
    errors = engine.infer_shapes(g).errors
    assert len(errors) == 1
    assert errors[0].node == nid and words in errors[0].message and "'node'" in errors[0].message


@given(length=st.integers(1, 30), kernel=st.integers(1, 6), stride=st.integers(0, 4),
       padding=st.integers(0, 3), ceil=st.booleans(), kind=st.sampled_from(["MaxPool1d", "AvgPool1d"]))
def test_pool1d_shape_rule_agrees_with_torch(length, kernel, stride, padding, ceil, kind):
    g, nid = _one_node_graph(kind, {"kernel_size": kernel, "stride": stride, "padding": padding,
                                    "ceil_mode": ceil}, (2, length))
    inf = engine.infer_shapes(g)
    fn = F.max_pool1d if kind == "MaxPool1d" else F.avg_pool1d
    try:
        y = fn(torch.zeros(1, 2, length), kernel, stride or kernel, padding, ceil_mode=ceil)
    except RuntimeError:
        assert not inf.ok and inf.errors[0].node == nid  # torch refuses: so does the shape rule
        return
    assert inf.ok, inf.errors
    assert inf.shape(nid).shape == ("N", 2, y.shape[-1])


def test_pool1d_keeps_a_run_time_length_symbolic():
    g, nid = _one_node_graph("MaxPool1d", {"kernel_size": 2}, (4, "T"))
    inf = engine.infer_shapes(g)
    assert inf.ok and inf.shape(nid).shape == ("N", 4, "T")


# =========================================================================== the template files

def test_build_script_reproduces_the_committed_files_byte_for_byte(tmp_path):
    script = _build_script()
    assert script.main(["--out", str(tmp_path)]) == 0
    built = sorted(p.name for p in tmp_path.glob("*.dcnet"))
    committed = sorted(p.name for p in TEMPLATES.glob("*.dcnet"))
    assert built == committed, "every template is the build script's output, and nothing else"
    for name in built:
        assert (tmp_path / name).read_bytes() == (TEMPLATES / name).read_bytes(), f"{name} is stale"
    assert script.main(["--check"]) == 0
    (tmp_path / "lenet5.dcnet").write_text("{}\n")
    assert script.main(["--check", "--out", str(tmp_path)]) == 1


def test_every_reference_network_is_a_template():
    assert set(templates.template_names()) == set(ALL_PARAMS)
    assert templates.templates_dir() == Path(engine.__file__).parent.parent / "templates"


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_template_is_valid_complete_and_laid_out(name):
    graph = templates.load_template(name)
    inf = engine.infer_shapes(graph)
    assert inf.problems == [], [str(p) for p in inf.problems]  # no errors and no warnings
    assert inf.total_params == REFERENCE_PARAMS[name]
    assert graph.description.strip() and graph.name.strip()
    types = {n.type for n in graph.nodes.values()}
    assert {"Input", "Output", "Target", "CrossEntropyLoss"} <= types
    (inp,) = inf.ids_with_role("input")
    assert inf.shape(inp).shape[1:] == INPUT_SHAPES[name]
    (out,) = inf.ids_with_role("output")
    assert inf.shape(out).shape == ("N", CLASSES.get(name, 1000))
    # layout: every node placed, no two on one spot, data flowing down the canvas
    assert set(graph.layout) == set(graph.nodes)
    assert len(set(graph.layout.values())) == len(graph.nodes)
    for e in graph.edges:
        assert graph.layout[e.dst][1] > graph.layout[e.src][1], f"{name}: wire {e} points up the canvas"


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_template_compiles_runs_and_has_a_loss(name):
    compiled = build(templates.load_template(name), seed=0)
    model = compiled.model.eval()
    assert sum(p.numel() for p in model.parameters()) == REFERENCE_PARAMS[name]
    x = torch.randn(2, *INPUT_SHAPES[name])
    with torch.no_grad():
        logits = model(x)
    classes = CLASSES.get(name, 1000)
    assert logits.shape == (2, classes) and torch.isfinite(logits).all()
    loss = compiled.loss(logits, torch.tensor([0, classes - 1]))
    assert loss.ndim == 0 and torch.isfinite(loss)


def _last_linear(graph: engine.Graph) -> str:
    (out,) = [nid for nid, n in graph.nodes.items() if n.type == "Output"]
    (edge,) = graph.edges_into(out)
    assert graph.nodes[edge.src].type == "Linear"
    return edge.src


@pytest.mark.parametrize("name", ["resnet18", "googlenet"])
def test_changing_only_input_size_and_classes_reinfers_everything(name):
    graph = templates.load_template(name)
    (inp,) = [nid for nid, n in graph.nodes.items() if n.type == "Input"]
    graph.set_param(inp, "shape", [3, 32, 32])
    graph.set_param(_last_linear(graph), "out_features", 10)
    inf = engine.infer_shapes(graph)
    assert inf.problems == []
    pool = graph.by_label("avgpool").id
    channels = 512 if name == "resnet18" else 1024
    assert inf.nodes[pool].inputs["in"].shape == ("N", channels, 1, 1)
    compiled = build(graph, seed=0)
    with torch.no_grad():
        logits = compiled.model.eval()(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    assert torch.isfinite(compiled.loss(logits, torch.tensor([3, 9])))


def test_googlenet_at_28x28_runs_as_in_torch():
    # maxpool4 (2x2, ceil_mode) then sees a 1x1 input: PyTorch keeps one window, and so must the shape rule
    graph = templates.load_template("googlenet")
    graph.set_param(graph.by_label("image").id, "shape", [3, 28, 28])
    assert engine.infer_shapes(graph).ok
    with torch.no_grad():
        assert build(graph).model.eval()(torch.randn(1, 3, 28, 28)).shape == (1, 1000)


# --------------------------------------------------------------------------- against hand-written PyTorch

from benchmarks.reference_models import LeNet5, ResNet18  # noqa: E402  (hand-written references)


def _torchvision_key_to_attr(key: str) -> str:
    """'layer2.0.downsample.1.running_mean' -> 'layer2_0_downsample_1.running_mean': a template's labels
    mirror torchvision's module names, and a label becomes an attribute with '.' turned into '_'."""
    module, _, leaf = key.rpartition(".")
    return f"{module.replace('.', '_')}.{leaf}"


def test_lenet5_equals_hand_written_pytorch():
    compiled = build(templates.load_template("lenet5"), seed=3)
    reference = LeNet5()
    reference.load_state_dict(compiled.model.state_dict())  # same names: conv1, conv2, fc1, fc2, fc3
    x = torch.randn(4, 1, 32, 32)
    assert torch.equal(compiled.model(x), reference(x))


def test_resnet18_equals_hand_written_pytorch():
    compiled = build(templates.load_template("resnet18"), seed=0)
    model = compiled.model
    reference = ResNet18()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial batch-norm statistics, so a mis-wired BN cannot hide
        for m in reference.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    state = {_torchvision_key_to_attr(k): v for k, v in reference.state_dict().items()}
    assert set(state) == set(model.state_dict())
    model.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    for mode in ("eval", "train"):  # running statistics, then batch statistics
        getattr(model, mode)()
        getattr(reference, mode)()
        with torch.no_grad():
            assert torch.equal(model(x), reference(x)), mode


# =========================================================================== sequence, generative, metric learning

def _random(shape, dtype, high, gen, batch=3):
    if dtype == "int64":
        return torch.randint(0, high, (batch, *shape), generator=gen)
    if high is None and shape == (1, 28, 28):  # images and image targets: values in [0, 1]
        return torch.rand(batch, *shape, generator=gen)
    return torch.randn(batch, *shape, generator=gen)


def _assert_laid_out(graph: engine.Graph, where: str) -> None:
    """Every node placed, no two on one spot, data flowing down the canvas."""
    assert set(graph.layout) == set(graph.nodes), where
    assert len(set(graph.layout.values())) == len(graph.nodes), where
    for e in graph.edges:
        assert graph.layout[e.dst][1] > graph.layout[e.src][1], f"{where}: wire {e} points up the canvas"


@pytest.mark.parametrize("name", sorted(NEW_PARAMS))
def test_new_template_is_valid_laid_out_and_described(name):
    graph = templates.load_template(name)
    inf = engine.infer_shapes(graph)
    assert inf.problems == [], [str(p) for p in inf.problems]  # no errors and no warnings
    assert inf.total_params == NEW_PARAMS[name]
    assert graph.name.strip() and f"{NEW_PARAMS[name]:,} parameters" in graph.description
    _assert_laid_out(graph, name)
    for sub_name, sub in graph.composites.items():  # each network is clean on its own, too
        assert engine.infer_shapes(sub).problems == [], (name, sub_name)
        assert sub.description.strip()
        _assert_laid_out(sub, f"{name}/{sub_name}")
    inputs = {graph.nodes[nid].label: inf.shape(nid) for nid in inf.ids_with_role("input")}
    assert {k: (v.shape[1:], v.dtype) for k, v in inputs.items()} == \
        {k: (s, d) for k, (s, d, _) in NEW_INPUTS[name].items()}
    targets = {graph.nodes[nid].label: inf.shape(nid) for nid in inf.ids_with_role("target")}
    assert {k: (v.shape[1:], v.dtype) for k, v in targets.items()} == \
        {k: (s, d) for k, (s, d, _) in NEW_TARGETS[name].items()}
    assert inf.ids_with_role("loss")  # each trains on its own loss nodes
    from engine.training import TrainingConfig

    config = TrainingConfig.from_graph(graph)  # the stored training defaults are valid settings
    assert graph.training and config.epochs >= 1 and config.optimizer.name == "adam"


@pytest.mark.parametrize("name", sorted(NEW_PARAMS))
def test_new_template_compiles_runs_forward_and_backward(name):
    compiled = build(templates.load_template(name), seed=0)
    model = compiled.model.train()
    assert sum(p.numel() for p in model.parameters()) == NEW_PARAMS[name]
    assert set(compiled.networks) == NEW_NETWORKS[name]
    for net in compiled.networks.values():
        assert any(net is m for m in model.children())
    gen = torch.Generator().manual_seed(0)
    xs = [_random(*NEW_INPUTS[name][label], gen) for _, label in compiled.plan.inputs]
    ys = [_random(*NEW_TARGETS[name][label], gen) for _, label in compiled.plan.targets]
    outputs = model(*xs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    assert all(torch.isfinite(o).all() for o in outputs)
    loss = compiled.loss(*outputs, *ys)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    missing = [k for k, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no gradient reaches {missing}"


def test_training_defaults_fit_the_built_in_data():
    from engine.training import Trainer, load_dataset

    # the classifier trains in today's supervised mode on the 'shakespeare' windows as saved
    trainer = Trainer(templates.load_template("lstm_classifier"))
    assert trainer.task == "classification" and trainer.num_classes == 58
    # the others' data sets give exactly what their Inputs and Targets take
    dates = load_dataset("dates")
    assert dates.sample_shape == (30,) and dates.y.shape[1:] == (10,)
    assert len(dates.meta["input_vocab"]) == 58 and dates.num_classes == 11  # the start token is id 11
    for name, label in [("dcgan", "real"), ("vae", "image"), ("siamese_triplet", "anchor")]:
        data = templates.load_template(name).training["data"]
        ds = load_dataset(data["dataset"], data["options"])
        assert ds.sample_shape == NEW_INPUTS[name][label][0], name
    assert templates.load_template("seq2seq_attention").training["data"]["dataset"] == "dates"
    tagging = load_dataset(templates.load_template("bigru_tagger").training["data"]["dataset"], {"samples": 50})
    assert tagging.sample_shape == (40,) and tagging.y.shape[1:] == (40,) and tagging.num_classes == 18
    assert tagging.x.max() < 5000  # the template's Embedding has 5,000 rows


class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(58, 32)
        self.lstm = nn.LSTM(32, 128, batch_first=True)
        self.fc = nn.Linear(128, 58)

    def forward(self, text):
        _, (h, _) = self.lstm(self.embed(text))  # h: (layers, N, 128)
        return self.fc(h[-1])


class BiGRUTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5000, 64, padding_idx=0)
        self.bigru = nn.GRU(64, 64, batch_first=True, bidirectional=True)
        self.tag = nn.Linear(128, 18)

    def forward(self, tokens):
        out, _ = self.bigru(self.embed(tokens))  # (N, T, 128)
        return self.tag(out).permute(0, 2, 1)  # (N, tags, T), as cross-entropy wants


class DateEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(58, 32, padding_idx=0)
        self.gru = nn.GRU(32, 64, batch_first=True)

    def forward(self, source):
        states, h = self.gru(self.embed(source))
        return states, h  # (N, 30, 64), (1, N, 64)


class DateDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(12, 32)
        self.gru = nn.GRU(32, 64, batch_first=True)
        self.combine = nn.Linear(128, 64)
        self.classify = nn.Linear(64, 11)

    def forward(self, tokens, h, memory):
        out, _ = self.gru(self.embed(tokens), h)  # (N, 10, 64), started from the encoder's state
        weights = torch.softmax(out @ memory.transpose(1, 2) / 64 ** 0.5, dim=-1)  # (N, 10, 30)
        context = weights @ memory  # (N, 10, 64)
        return self.classify(torch.tanh(self.combine(torch.cat([out, context], dim=2))))


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = DateEncoder(), DateDecoder()

    def forward(self, source, decoder_input):
        states, h = self.encoder(source)
        return self.decoder(decoder_input, h, states).permute(0, 2, 1)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.project = nn.Linear(100, 128 * 4 * 4, bias=False)
        self.bn0 = nn.BatchNorm2d(128)
        self.deconv1 = nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.deconv2 = nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.deconv3 = nn.ConvTranspose2d(32, 1, 4, 2, 1, bias=False)

    def forward(self, z):
        x = F.relu(self.bn0(self.project(z).view(-1, 128, 4, 4)))  # (N, 128, 4, 4)
        x = F.relu(self.bn1(self.deconv1(x)))  # (N, 64, 8, 8)
        x = F.relu(self.bn2(self.deconv2(x)))  # (N, 32, 16, 16)
        return torch.tanh(self.deconv3(x))  # (N, 1, 32, 32)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 4, 2, 1, bias=False)
        self.conv2 = nn.Conv2d(32, 64, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 4, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.conv4 = nn.Conv2d(128, 1, 4, 1, 0, bias=False)

    def forward(self, x):
        x = F.leaky_relu(self.conv1(x), 0.2)  # (N, 32, 16, 16)
        x = F.leaky_relu(self.bn2(self.conv2(x)), 0.2)  # (N, 64, 8, 8)
        x = F.leaky_relu(self.bn3(self.conv3(x)), 0.2)  # (N, 128, 4, 4)
        return self.conv4(x).flatten(1)  # (N, 1)


class VAE(nn.Module):
    """The PyTorch examples' MNIST VAE (decode returns logits; the example applies the sigmoid there)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.fc4(F.relu(self.fc3(z))).view(-1, 1, 28, 28), mu, logvar


class EmbeddingNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.fc1 = nn.Linear(64 * 4 * 4, 256)
        self.fc2 = nn.Linear(256, 64)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 32, 12, 12)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 64, 4, 4)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


@pytest.mark.parametrize("name, reference", [("lstm_classifier", LSTMClassifier), ("bigru_tagger", BiGRUTagger),
                                             ("seq2seq_attention", Seq2Seq)])
def test_sequence_templates_equal_hand_written_pytorch(name, reference):
    compiled = build(templates.load_template(name), seed=5)
    ref = reference()
    assert sum(p.numel() for p in ref.parameters()) == NEW_PARAMS[name]
    ref.load_state_dict(compiled.model.state_dict())  # strict: the labels are the attribute names
    gen = torch.Generator().manual_seed(2)
    xs = [_random(*NEW_INPUTS[name][label], gen, batch=4) for _, label in compiled.plan.inputs]
    with torch.no_grad():
        torch.testing.assert_close(compiled.model(*xs), ref(*xs), rtol=1e-5, atol=1e-6)
    if name == "seq2seq_attention":  # each network also runs alone, as the exporter and trainer use it
        encoder, decoder = compiled.networks["encoder"], compiled.networks["decoder"]
        with torch.no_grad():
            states, state = encoder(xs[0])
            ref_states, h = ref.encoder(xs[0])
            torch.testing.assert_close(states, ref_states)
            torch.testing.assert_close(state, h.transpose(0, 1))  # batch first: (N, 1, 64)
            torch.testing.assert_close(decoder(xs[1], state, states), ref.decoder(xs[1], h, ref_states))


def test_dcgan_equals_hand_written_generator_and_shared_discriminator():
    compiled = build(templates.load_template("dcgan"), seed=1)
    gen_net, disc_net = compiled.networks["generator"], compiled.networks["discriminator"]
    G, D = Generator(), Discriminator()
    assert sum(p.numel() for p in G.parameters()) + sum(p.numel() for p in D.parameters()) == NEW_PARAMS["dcgan"]
    G.load_state_dict(gen_net.state_dict())
    D.load_state_dict(disc_net.state_dict())
    gen = torch.Generator().manual_seed(0)
    z, real = torch.randn(4, 100, generator=gen), torch.rand(4, 1, 32, 32, generator=gen) * 2 - 1
    for mode in ("train", "eval"):  # batch statistics, then running statistics
        for m in (compiled.model, G, D):
            getattr(m, mode)()
        with torch.no_grad():
            fake, score_fake, score_real = compiled.model(z, real)
            torch.testing.assert_close(fake, G(z), rtol=1e-5, atol=1e-6)
            assert fake.shape == (4, 1, 32, 32) and fake.abs().max() <= 1
            torch.testing.assert_close(score_fake, D(fake), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(score_real, D(real), rtol=1e-5, atol=1e-6)  # the same weights
    # one set of discriminator weights: the real branch's node has none of its own
    assert not any(k.startswith("discriminator_real") for k in compiled.model.state_dict())
    terms = compiled.loss.terms(fake, score_fake, score_real)  # the loss takes every output
    bce = F.binary_cross_entropy_with_logits
    torch.testing.assert_close(terms["d_loss"], bce(score_real, torch.ones_like(score_real))
                               + bce(score_fake, torch.zeros_like(score_fake)))
    torch.testing.assert_close(terms["g_loss"], bce(score_fake, torch.ones_like(score_fake)))


def test_vae_equals_the_pytorch_example_and_its_loss():
    compiled = build(templates.load_template("vae"), seed=2)
    ref = VAE()
    assert sum(p.numel() for p in ref.parameters()) == NEW_PARAMS["vae"]
    # labels follow the example (fc1, fc21, fc22 in the encoder; fc3, fc4 in the decoder)
    ref.load_state_dict({k.split(".", 1)[1]: v for k, v in compiled.model.state_dict().items()})
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    for mode in ("eval", "train"):  # z = mu; then one draw of eps from the same seed
        compiled.model.train(mode == "train")
        ref.train(mode == "train")
        with torch.no_grad():
            torch.manual_seed(7)
            recon, kl = compiled.model(x)
            torch.manual_seed(7)
            want, mu, logvar = ref(x)
        torch.testing.assert_close(recon, want, rtol=1e-5, atol=1e-5)
        kld = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        torch.testing.assert_close(kl, kld, rtol=1e-5, atol=1e-5)
        # the example's loss_function: BCE(sigmoid(logits), x, sum) + KLD summed over the batch
        example = F.binary_cross_entropy(torch.sigmoid(want), x, reduction="sum") + kld.sum()
        torch.testing.assert_close(compiled.loss(recon, kl, x), example, rtol=1e-4, atol=1e-3)
    z = torch.randn(2, 20)  # the decoder alone turns a latent code into an image (sampling from the prior)
    with torch.no_grad():
        torch.testing.assert_close(compiled.networks["decoder"](z), ref.fc4(F.relu(ref.fc3(z))).view(-1, 1, 28, 28))


def test_siamese_branches_share_one_embedding_network():
    compiled = build(templates.load_template("siamese_triplet"), seed=4)
    ref = EmbeddingNet()
    assert sum(p.numel() for p in ref.parameters()) == NEW_PARAMS["siamese_triplet"]
    ref.load_state_dict(compiled.networks["embedding"].state_dict())
    gen = torch.Generator().manual_seed(5)
    a, p, n = (torch.rand(3, 1, 28, 28, generator=gen) for _ in range(3))
    with torch.no_grad():
        outs = compiled.model(a, p, n)
        for got, x in zip(outs, (a, p, n)):
            torch.testing.assert_close(got, ref(x))
        torch.testing.assert_close(compiled.loss(*outs), F.triplet_margin_loss(ref(a), ref(p), ref(n), margin=1.0))


# =========================================================================== engine.templates API

def test_list_templates_reports_titles_shapes_and_counts():
    infos = {i.name: i for i in templates.list_templates()}
    assert set(infos) == set(ALL_PARAMS)
    for name, info in infos.items():
        assert info.error is None
        assert info.params == ALL_PARAMS[name]
        assert info.input_shapes == ALL_INPUT_SHAPES[name]
        assert info.title == engine.load_graph(info.path).name and info.description
    assert infos["resnet18"].title == "ResNet-18"


def test_load_template_by_name_or_path_and_unknown_names(tmp_path):
    by_name = templates.load_template("lenet5")
    by_path = templates.load_template(TEMPLATES / "lenet5.dcnet")
    assert engine.dumps(by_name) == engine.dumps(by_path)
    with pytest.raises(engine.GraphFileError) as exc:
        templates.load_template("resnet1000")
    assert "no template named 'resnet1000'" in str(exc.value) and "resnet18" in str(exc.value)
    with pytest.raises(engine.GraphFileError, match="does not exist"):
        templates.load_template(tmp_path / "missing.dcnet")


def test_a_broken_template_file_is_listed_with_its_error_not_raised(tmp_path):
    (tmp_path / "good.dcnet").write_bytes((TEMPLATES / "mlp.dcnet").read_bytes())
    (tmp_path / "broken.dcnet").write_text("{ not json")
    bad = engine.load_graph(TEMPLATES / "mlp.dcnet")
    bad.set_param(bad.by_label("point").id, "shape", [3])
    bad.set_param(bad.by_label("fc1").id, "in_features", 2)
    engine.save_graph(bad, tmp_path / "invalid.dcnet")
    infos = {i.name: i for i in templates.list_templates(tmp_path)}
    assert infos["good"].error is None and infos["good"].params == REFERENCE_PARAMS["mlp"]
    assert "not valid JSON" in infos["broken"].error and infos["broken"].params is None
    assert "expects 2 input features, got 3" in infos["invalid"].error and infos["invalid"].params is None
    assert templates.list_templates(tmp_path / "nowhere") == []


def test_listing_templates_does_not_import_torch():
    code = ("import sys, engine.templates as t; infos = t.list_templates(); "
            "assert infos and 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# =========================================================================== the command line

def test_cli_templates_lists_names_shapes_and_parameter_counts():
    run = subprocess.run([sys.executable, "-m", "engine", "templates"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    lines = {line.split()[0]: line for line in run.stdout.splitlines()[2:]}
    assert set(lines) == set(ALL_PARAMS)
    for name, line in lines.items():
        assert f"{ALL_PARAMS[name]:,}" in line
        assert ", ".join("[" + ", ".join(map(str, shape)) + "]" for shape in ALL_INPUT_SHAPES[name]) in line


def test_cli_templates_json_show_and_copy(tmp_path, capsys):
    assert cli_main(["templates", "--json"]) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert listed["vgg16"]["params"] == REFERENCE_PARAMS["vgg16"]
    assert listed["vgg16"]["input_shapes"] == [[3, 224, 224]]

    assert cli_main(["templates", "googlenet"]) == 0
    shown = capsys.readouterr().out
    assert "GoogLeNet" in shown and "6,624,904" in shown

    target = tmp_path / "mine.dcnet"
    assert cli_main(["templates", "resnet18", "-o", str(target)]) == 0
    assert target.read_bytes() == (TEMPLATES / "resnet18.dcnet").read_bytes()
    target.write_text("my own work\n")
    assert cli_main(["templates", "lenet5", "-o", str(target)]) == 2  # never overwrite silently
    assert "--force" in capsys.readouterr().err and target.read_text() == "my own work\n"
    assert cli_main(["templates", "lenet5", "-o", str(target), "--force"]) == 0
    assert engine.load_graph(target).name == "LeNet-5"

    assert cli_main(["templates", "nosuchnet"]) == 2
    err = capsys.readouterr().err
    assert "no template named 'nosuchnet'" in err and "alexnet" in err and "Traceback" not in err


@pytest.mark.parametrize("name", sorted(ALL_PARAMS))
def test_cli_summary_of_each_template(name, capsys):
    assert cli_main(["summary", str(TEMPLATES / f"{name}.dcnet")]) == 0
    out = capsys.readouterr().out
    assert f"total parameters: {ALL_PARAMS[name]:,}" in out
    assert "error" not in out and "warning" not in out


def test_lstm_classifier_exports_to_onnx(tmp_path):
    export_graph(templates.load_template("lstm_classifier"), tmp_path / "lstm.onnx")
    assert (tmp_path / "lstm.onnx").stat().st_size > 0
