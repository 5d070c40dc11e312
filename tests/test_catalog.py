"""The node catalog (engine/nodes/conv, norm, shape, recurrent, attention, generative and the additions to
activations, merge and losses), each node tested against PyTorch as the oracle:

- the inferred output shapes equal the shapes the compiled model really produces,
- the analytic parameter count equals the built module's,
- the code generate_code writes runs on its own and computes what the compiled model computes,
- bad inputs get a message that names the node and says what was expected.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import engine
from engine.compiler import build

torch.set_num_threads(1)

BATCH = 3
RUNTIME = {"T": 7, "L": 9}  # sizes given to run-time axes when the model runs


# ---------------------------------------------------------------- helpers

def single_node_graph(type_name: str, params: dict, inputs: dict) -> tuple[engine.Graph, engine.Node]:
    """Input nodes (one per port, ``inputs`` maps port -> shape or (shape, dtype)) -> the node -> one Output
    per output port."""
    g = engine.Graph(f"{type_name} check")
    sources = {}
    for port, spec in inputs.items():
        shape, dtype = spec if len(spec) == 2 and spec[1] in ("float32", "int64") else (spec, "float32")
        sources[port] = g.add_node("Input", f"in_{port}", {"shape": list(shape), "dtype": dtype})
    node = g.add_node(type_name, "node", params)
    for port, src in sources.items():
        g.connect(src.id, "out", node.id, port)
    for port in g.output_port_names(node.id):
        out = g.add_node("Output", f"out_{port}")
        g.connect(node.id, port, out.id, "in")
    return g, node


def concrete(shape: tuple) -> tuple:
    return tuple(BATCH if d == "N" else RUNTIME.get(d, d) for d in shape)


def make_inputs(compiled) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    tensors = []
    for nid, _ in compiled.plan.inputs:
        t = compiled.inference.shape(nid)
        shape = concrete(t.shape)
        if t.dtype == "int64":
            tensors.append(torch.randint(0, 5, shape, generator=gen))
        else:
            tensors.append(torch.randn(shape, generator=gen))
    return tensors


def run_generated_source(graph: engine.Graph, compiled, xs):
    """Execute generate_code's text in a fresh namespace (as a user would run the saved file)."""
    source = engine.generate_code(graph)
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = namespace[compiled.plan.class_name]()
    model.eval()
    return model(*xs)


def check_node(type_name: str, params: dict, inputs: dict, expect: dict | None = None):
    """Infer, build and run one node; compare shapes, parameter count and the generated code's result.
    ``expect`` maps output port -> the shape inference must give (symbolic axes as written)."""
    g, node = single_node_graph(type_name, params, inputs)
    inf = engine.infer_shapes(g)
    assert inf.ok, [str(p) for p in inf.errors]
    if expect is not None:
        assert {p: inf.shape(node.id, p).shape for p in expect} == expect
    compiled = build(g, seed=0)
    model = compiled.model.eval()
    xs = make_inputs(compiled)
    with torch.no_grad():
        result = model(*xs)
        again = run_generated_source(g, compiled, xs)
    results = result if isinstance(result, tuple) else (result,)
    agains = again if isinstance(again, tuple) else (again,)
    ports = g.output_port_names(node.id)
    assert len(results) == len(ports)
    for port, real, other in zip(ports, results, agains):
        want = inf.shape(node.id, port)
        got = tuple(real.shape)
        assert len(got) == len(want.shape), (port, got, want)
        for axis, (w, r) in enumerate(zip(concrete(want.shape), got)):
            if w != "?":  # '?' marks a size only known at run time
                assert w == r, f"{type_name} {params} port {port}: inferred {want}, got {got}"
        assert str(real.dtype) == f"torch.{want.dtype}"
        torch.testing.assert_close(real, other)
    n_params = sum(p.numel() for p in model.parameters())
    assert inf.nodes[node.id].cost.params == n_params, f"{type_name} {params}"
    return g, node, compiled, xs, results


def shape_error(type_name: str, params: dict, inputs: dict) -> str:
    g, node = single_node_graph(type_name, params, inputs)
    problems = [p for p in engine.infer_shapes(g).errors if p.node == node.id]
    assert problems, f"{type_name} {params} {inputs} was accepted"
    message = problems[0].message
    assert message.startswith(f"{g.nodes[node.id].type} 'node'"), message
    return message


# ---------------------------------------------------------------- shapes, parameter counts, generated code

CASES = [
    # Conv1d
    ("Conv1d", {"out_channels": 8, "kernel_size": 3}, {"in": (4, 20)}, {"out": ("N", 8, 18)}),
    ("Conv1d", {"out_channels": 6, "kernel_size": 5, "stride": 2, "padding": 2, "dilation": 2, "groups": 2,
                "bias": False}, {"in": (4, 21)}, {"out": ("N", 6, 9)}),
    ("Conv1d", {"out_channels": 4, "kernel_size": 5, "padding": "same"}, {"in": (3, "T")}, {"out": ("N", 4, "T")}),
    ("Conv1d", {"in_channels": 3, "out_channels": 2, "kernel_size": 2, "padding": "valid"}, {"in": (3, 5)},
     {"out": ("N", 2, 4)}),
    # ConvTranspose2d
    ("ConvTranspose2d", {"out_channels": 8}, {"in": (3, 7, 7)}, {"out": ("N", 8, 14, 14)}),
    ("ConvTranspose2d", {"out_channels": 4, "kernel_size": [3, 5], "stride": [2, 3], "padding": [1, 2],
                         "output_padding": [1, 2], "groups": 2}, {"in": (6, 5, 6)}, {"out": ("N", 4, 10, 18)}),
    ("ConvTranspose2d", {"out_channels": 2, "kernel_size": 3, "stride": 1, "padding": 0, "dilation": 2,
                         "output_padding": 1, "bias": False}, {"in": (2, 4, 4)}, {"out": ("N", 2, 9, 9)}),
    # Upsample
    ("Upsample", {}, {"in": (2, 4, 5)}, {"out": ("N", 2, 8, 10)}),
    ("Upsample", {"scale_factor": 1.5, "mode": "bilinear", "align_corners": True}, {"in": (2, 5, 3)},
     {"out": ("N", 2, 7, 4)}),
    ("Upsample", {"size": [7, 9], "mode": "bilinear"}, {"in": (1, 3, 3)}, {"out": ("N", 1, 7, 9)}),
    # Embedding
    ("Embedding", {"num_embeddings": 50, "embedding_dim": 8}, {"in": ((5,), "int64")}, {"out": ("N", 5, 8)}),
    ("Embedding", {"num_embeddings": 20, "embedding_dim": 4, "padding_idx": 0}, {"in": (("T",), "int64")},
     {"out": ("N", "T", 4)}),
    ("Embedding", {"num_embeddings": 6, "embedding_dim": 3}, {"in": ((), "int64")}, {"out": ("N", 3)}),
    # LayerNorm, GroupNorm, Dropout2d
    ("LayerNorm", {}, {"in": (10,)}, {"out": ("N", 10)}),
    ("LayerNorm", {"axes": 3, "eps": 1e-6}, {"in": (4, 5, 5)}, {"out": ("N", 4, 5, 5)}),
    ("LayerNorm", {"axes": 2, "bias": False}, {"in": ("T", 3, 3)}, {"out": ("N", "T", 3, 3)}),
    ("LayerNorm", {"elementwise_affine": False}, {"in": (3, 8)}, {"out": ("N", 3, 8)}),
    ("GroupNorm", {"num_groups": 2}, {"in": (4, 5, 5)}, {"out": ("N", 4, 5, 5)}),
    ("GroupNorm", {"num_groups": 3, "affine": False, "eps": 1e-3}, {"in": (6, "T")}, {"out": ("N", 6, "T")}),
    ("Dropout2d", {"p": 0.3}, {"in": (3, 4, 4)}, {"out": ("N", 3, 4, 4)}),
    # activations
    ("LeakyReLU", {"negative_slope": 0.2}, {"in": (5,)}, {"out": ("N", 5)}),
    ("ELU", {"alpha": 0.5}, {"in": (2, 3)}, {"out": ("N", 2, 3)}),
    ("ELU", {}, {"in": (4,)}, {"out": ("N", 4)}),
    ("GELU", {"approximate": "tanh"}, {"in": ("T", 4)}, {"out": ("N", "T", 4)}),
    ("GELU", {}, {"in": (4,)}, {"out": ("N", 4)}),
    ("SiLU", {}, {"in": (3, 2, 2)}, {"out": ("N", 3, 2, 2)}),
    ("LogSoftmax", {"dim": 1}, {"in": (3, 4, 5)}, {"out": ("N", 3, 4, 5)}),
    # Reshape, Permute
    ("Reshape", {}, {"in": (3, 4, 4)}, {"out": ("N", 48)}),
    ("Reshape", {"shape": [4, -1]}, {"in": (3, 4, 4)}, {"out": ("N", 4, 12)}),
    ("Reshape", {"shape": [1, 28, 28]}, {"in": (784,)}, {"out": ("N", 1, 28, 28)}),
    ("Reshape", {"shape": [-1, 2]}, {"in": ("T", 6)}, {"out": ("N", "?", 2)}),
    ("Reshape", {"shape": []}, {"in": (1,)}, {"out": ("N",)}),
    ("Permute", {}, {"in": (3, 5)}, {"out": ("N", 5, 3)}),
    ("Permute", {"dims": [2, 3, 1]}, {"in": (3, 4, 5)}, {"out": ("N", 4, 5, 3)}),
    ("Permute", {"dims": [2, 1]}, {"in": ("T", 6)}, {"out": ("N", 6, "T")}),
    # Multiply
    ("Multiply", {}, {"in1": (3, 4), "in2": (1, 4)}, {"out": ("N", 3, 4)}),
    ("Multiply", {"inputs": 3}, {"in1": (2, 1, 5), "in2": (2, 3, 1), "in3": (1, 1, 5)}, {"out": ("N", 2, 3, 5)}),
    # Split
    ("Split", {}, {"in": (6, 4)}, {"out1": ("N", 3, 4), "out2": ("N", 3, 4)}),
    ("Split", {"parts": 3, "dim": -1}, {"in": (4, 10)}, {"out1": ("N", 4, 4), "out2": ("N", 4, 3),
                                                          "out3": ("N", 4, 3)}),
    ("Split", {"parts": 3, "sizes": [1, 2, 3]}, {"in": (6,)}, {"out1": ("N", 1), "out2": ("N", 2),
                                                                "out3": ("N", 3)}),
    ("Split", {"dim": 1}, {"in": ("T", 4)}, {"out1": ("N", "?", 4), "out2": ("N", "?", 4)}),
    # recurrent
    ("RNN", {"hidden_size": 5}, {"in": ("T", 3)}, {"out": ("N", "T", 5)}),
    ("RNN", {"hidden_size": 5, "nonlinearity": "relu", "output": "last", "bias": False}, {"in": (4, 3)},
     {"out": ("N", 5)}),
    ("LSTM", {"hidden_size": 6, "num_layers": 2, "dropout": 0.1, "bidirectional": True}, {"in": ("T", 4)},
     {"out": ("N", "T", 12)}),
    ("LSTM", {"hidden_size": 6, "output": "last", "bidirectional": True}, {"in": (5, 4)}, {"out": ("N", 12)}),
    ("GRU", {"hidden_size": 4, "num_layers": 3, "output": "last"}, {"in": ("T", 2)}, {"out": ("N", 4)}),
    ("GRU", {"hidden_size": 4, "bidirectional": True, "input_size": 2}, {"in": (6, 2)}, {"out": ("N", 6, 8)}),
    # attention
    ("ScaledDotProductAttention", {}, {"query": (5, 8), "key": (7, 8), "value": (7, 6)}, {"out": ("N", 5, 6)}),
    ("ScaledDotProductAttention", {"causal": True, "dropout": 0.1},
     {"query": (2, "T", 4), "key": (2, "T", 4), "value": (2, "T", 4)}, {"out": ("N", 2, "T", 4)}),
    ("MultiheadAttention", {"num_heads": 4}, {"query": ("T", 16), "key": ("T", 16), "value": ("T", 16)},
     {"out": ("N", "T", 16)}),
    ("MultiheadAttention", {"num_heads": 2, "return_weights": True, "bias": False, "dropout": 0.1},
     {"query": (5, 8), "key": (7, 6), "value": (7, 10)}, {"out": ("N", 5, 8), "weights": ("N", 5, 7)}),
    ("AdditiveAttention", {"attention_dim": 5}, {"query": (6,), "keys": ("T", 10)}, {"context": ("N", 10)}),
    ("AdditiveAttention", {"attention_dim": 3, "return_weights": True},
     {"query": (6,), "keys": (4, 10), "values": (4, 2)}, {"context": ("N", 2), "weights": ("N", 4)}),
    # generative
    ("Reparameterize", {}, {"mu": (8,), "logvar": (8,)}, {"z": ("N", 8), "kl": ("N",)}),
    ("GramMatrix", {}, {"in": (3, 4, 5)}, {"out": ("N", 3, 3)}),
    ("GramMatrix", {}, {"in": (4, "L")}, {"out": ("N", 4, 4)}),
]


@pytest.mark.parametrize("type_name, params, inputs, expect", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_inferred_shapes_and_params_match_torch(type_name, params, inputs, expect):
    check_node(type_name, params, inputs, expect)


def test_every_catalog_type_is_covered():
    from engine.nodes import activations, attention, conv, generative, losses, merge, norm, recurrent, shape
    ours = {s.type for m in (conv, norm, shape, recurrent, attention, generative) for s in m.SPECS}
    ours |= {"LeakyReLU", "ELU", "GELU", "SiLU", "LogSoftmax", "Multiply"}
    assert ours - {s.type for s in activations.SPECS + merge.SPECS} == {
        s.type for m in (conv, norm, shape, recurrent, attention, generative) for s in m.SPECS}
    covered = {c[0] for c in CASES} | {t for t, *_ in LOSS_CASES}
    assert ours - covered == set()
    new_losses = {"L1Loss", "BCEWithLogitsLoss", "BCELoss", "NLLLoss", "KLDivLoss", "TripletMarginLoss",
                  "TermLoss"}
    assert new_losses <= {s.type for s in losses.SPECS} and new_losses <= covered


def test_layer_norm_over_equal_axes_keeps_the_whole_shape_in_code():
    # spec.render_value writes (5, 5) as 5 (right for a kernel size); a normalised shape needs all of it
    g, node = single_node_graph("LayerNorm", {"axes": 2}, {"in": (3, 5, 5)})
    assert "nn.LayerNorm((5, 5))" in engine.generate_code(g)


# ---------------------------------------------------------------- costs against torch's FLOP counter

@pytest.mark.parametrize("type_name, params, inputs", [
    ("Conv1d", {"out_channels": 6, "kernel_size": 5, "stride": 2, "padding": 1, "groups": 2, "bias": False},
     {"in": (4, 21)}),
    ("ConvTranspose2d", {"out_channels": 4, "kernel_size": 3, "stride": 2, "groups": 2, "bias": False},
     {"in": (6, 5, 6)}),
    ("GramMatrix", {}, {"in": (3, 4, 5)}),
])
def test_flops_match_torch_flop_counter(type_name, params, inputs):
    from torch.utils.flop_counter import FlopCounterMode

    g, node = single_node_graph(type_name, params, inputs)
    compiled = build(g)
    xs = make_inputs(compiled)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        compiled.model(*xs)
    assert compiled.inference.nodes[node.id].cost.flops * BATCH == counter.get_total_flops()


# ---------------------------------------------------------------- recurrent layers against torch.nn directly

@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True), (3, False)])
def test_recurrent_outputs_match_torch_module(kind, layers, bidirectional):
    params = {"hidden_size": 5, "num_layers": layers, "bidirectional": bidirectional}
    seq = check_node(kind, {**params, "output": "sequence"}, {"in": ("T", 3)})
    last = check_node(kind, {**params, "output": "last"}, {"in": ("T", 3)})
    reference = getattr(torch.nn, kind)(3, 5, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    reference.load_state_dict(seq[2].model.node.state_dict())
    reference.eval()
    x = seq[3][0]
    with torch.no_grad():
        out, state = reference(x)
    h_n = state[0] if kind == "LSTM" else state
    torch.testing.assert_close(seq[4][0], out)
    if bidirectional:  # the last layer's forward and backward final states, side by side
        want = torch.cat([h_n[-2], h_n[-1]], dim=1)
        torch.testing.assert_close(want[:, :5], out[:, -1, :5])  # forward direction ends at the last step
        torch.testing.assert_close(want[:, 5:], out[:, 0, 5:])  # backward direction ends at the first
    else:
        want = h_n[-1]
        torch.testing.assert_close(want, out[:, -1])
    reference.load_state_dict(last[2].model.node.state_dict())
    with torch.no_grad():
        out, state = reference(last[3][0])
    h_n = state[0] if kind == "LSTM" else state
    want = torch.cat([h_n[-2], h_n[-1]], dim=1) if bidirectional else h_n[-1]
    torch.testing.assert_close(last[4][0], want)


def test_rnn_sequence_length_may_differ_between_calls():
    *_, compiled, _, _ = check_node("GRU", {"hidden_size": 4}, {"in": ("T", 2)})
    for steps in (1, 5, 11):
        assert compiled.model(torch.randn(2, steps, 2)).shape == (2, steps, 4)


# ---------------------------------------------------------------- attention against hand-written formulas

def test_additive_attention_matches_bahdanau_formula():
    *_, compiled, xs, results = check_node("AdditiveAttention", {"attention_dim": 3, "return_weights": True},
                                           {"query": (6,), "keys": (4, 5), "values": (4, 2)})
    m = compiled.model.node
    q, k, v = xs
    energy = torch.tanh((q @ m.query.weight.T)[:, None, :] + k @ m.key.weight.T + m.key.bias)  # (N, T, A)
    weights = torch.softmax((energy @ m.score.weight.T).squeeze(-1), dim=1)
    context = (weights[:, :, None] * v).sum(1)
    torch.testing.assert_close(results[1], weights)
    torch.testing.assert_close(results[0], context)
    torch.testing.assert_close(results[1].sum(1), torch.ones(BATCH))


def test_scaled_dot_product_attention_matches_formula_and_causal_mask():
    *_, xs, results = check_node("ScaledDotProductAttention", {"causal": True},
                                 {"query": (5, 4), "key": (5, 4), "value": (5, 3)})
    q, k, v = xs
    scores = q @ k.transpose(1, 2) / math.sqrt(4)
    scores = scores.masked_fill(torch.ones(5, 5).triu(1).bool(), float("-inf"))
    torch.testing.assert_close(results[0], torch.softmax(scores, -1) @ v)


def test_attention_dropout_is_off_in_eval_mode():
    g, node = single_node_graph("ScaledDotProductAttention", {"dropout": 0.9},
                                {"query": (3, 4), "key": (3, 4), "value": (3, 4)})
    compiled = build(g)
    xs = make_inputs(compiled)
    model = compiled.model.eval()
    torch.testing.assert_close(model(*xs), model(*xs))
    assert not torch.equal(model.train()(*xs), model.eval()(*xs))


# ---------------------------------------------------------------- the sampler and its KL term

def test_reparameterize_kl_matches_torch_distributions():
    *_, compiled, xs, (z, kl) = check_node("Reparameterize", {}, {"mu": (6,), "logvar": (6,)})
    mu, logvar = xs
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(q, p).sum(1))
    torch.testing.assert_close(z, mu)  # eval mode: the mean


def test_reparameterize_samples_in_training_mode():
    g, node = single_node_graph("Reparameterize", {}, {"mu": (4,), "logvar": (4,)})
    model = build(g).model.train()
    mu, logvar = torch.randn(BATCH, 4), torch.randn(BATCH, 4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        z, _ = model(mu, logvar)
        torch.manual_seed(5)
        eps = torch.randn_like(mu)
    torch.testing.assert_close(z, mu + eps * torch.exp(0.5 * logvar))
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    z, kl = model(mu, logvar)
    (z.sum() + kl.sum()).backward()
    assert mu.grad is not None and logvar.grad is not None


def test_reparameterize_exports_without_randomness_in_eval_mode():
    g, node = single_node_graph("Reparameterize", {}, {"mu": (4,), "logvar": (4,)})
    model = build(g).model.eval()
    exported = torch.export.export(model, (torch.randn(2, 4), torch.randn(2, 4)))
    ops = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert not any("randn" in op for op in ops), ops


def test_vae_loss_is_reconstruction_plus_weighted_kl():
    g = engine.Graph("tiny VAE")
    x = g.add_node("Input", "x", {"shape": [6]})
    mu = g.add_node("Linear", "mu", {"out_features": 2})
    logvar = g.add_node("Linear", "logvar", {"out_features": 2})
    sample = g.add_node("Reparameterize", "sample")
    dec = g.add_node("Linear", "decoder", {"out_features": 6})
    recon = g.add_node("Output", "recon")
    kl_out = g.add_node("Output", "kl")
    target = g.add_node("Target", "image", {"shape": [6], "dtype": "float32"})
    mse = g.add_node("MSELoss", "reconstruction")
    term = g.add_node("TermLoss", "kl_term", {"weight": 0.5})
    for a, pa, b, pb in [(x, "out", mu, "in"), (x, "out", logvar, "in"), (mu, "out", sample, "mu"),
                         (logvar, "out", sample, "logvar"), (sample, "z", dec, "in"), (dec, "out", recon, "in"),
                         (sample, "kl", kl_out, "in"), (recon, "out", mse, "pred"), (target, "out", mse, "target"),
                         (kl_out, "out", term, "term")]:
        g.connect(a.id, pa, b.id, pb)
    compiled = build(g)
    model, loss = compiled.model.eval(), compiled.loss
    data = torch.randn(4, 6)
    recon_t, kl_t = model(data)
    assert kl_t.shape == (4,)
    want = F.mse_loss(recon_t, data) + 0.5 * kl_t.mean()
    torch.testing.assert_close(loss(recon_t, kl_t, data), want)


# ---------------------------------------------------------------- loss nodes against torch.nn.functional

def _probs(shape):
    return torch.rand(shape) * 0.9 + 0.05


LOSS_CASES = [
    ("L1Loss", {}, {"pred": ((5,), "float32"), "target": ((5,), "float32")},
     lambda a, b: F.l1_loss(a, b)),
    ("L1Loss", {"reduction": "sum", "weight": 2.0}, {"pred": ((2, 3), "float32"), "target": ((2, 3), "float32")},
     lambda a, b: 2.0 * F.l1_loss(a, b, reduction="sum")),
    ("BCEWithLogitsLoss", {}, {"pred": ((4,), "float32"), "target": ((4,), "float32")},
     lambda a, b: F.binary_cross_entropy_with_logits(a, b)),
    ("BCELoss", {"reduction": "sum"}, {"pred": ((4,), "float32"), "target": ((4,), "float32")},
     lambda a, b: F.binary_cross_entropy(a, b, reduction="sum")),
    ("NLLLoss", {}, {"pred": ((5,), "float32"), "target": ((), "int64")},
     lambda a, b: F.nll_loss(a, b)),
    ("NLLLoss", {"reduction": "sum"}, {"pred": ((5, 3), "float32"), "target": ((3,), "int64")},
     lambda a, b: F.nll_loss(a, b, reduction="sum")),
    ("KLDivLoss", {}, {"pred": ((5,), "float32"), "target": ((5,), "float32")},
     lambda a, b: F.kl_div(a, b, reduction="batchmean")),
    ("KLDivLoss", {"reduction": "sum", "log_target": True},
     {"pred": ((5,), "float32"), "target": ((5,), "float32")},
     lambda a, b: F.kl_div(a, b, reduction="sum", log_target=True)),
    ("TermLoss", {}, {"term": ((), "float32")}, lambda a: a.mean()),
    ("TermLoss", {"reduction": "sum", "weight": 0.1}, {"term": ((3,), "float32")}, lambda a: 0.1 * a.sum()),
    ("TripletMarginLoss", {}, {"anchor": ((4,), "float32"), "positive": ((4,), "float32"),
                               "negative": ((4,), "float32")},
     lambda a, p, n: F.triplet_margin_loss(a, p, n)),
    ("TripletMarginLoss", {"margin": 0.3, "p": 1.0, "reduction": "sum"},
     {"anchor": ((4,), "float32"), "positive": ((4,), "float32"), "negative": ((4,), "float32")},
     lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=0.3, p=1.0, reduction="sum")),
]


def loss_graph(type_name, params, ports):
    """Each 'pred'-like port is fed by Input -> Output; 'target' by a Target node."""
    g = engine.Graph(f"{type_name} check")
    loss = g.add_node(type_name, "loss", params)
    for port, (shape, dtype) in ports.items():
        if port == "target":
            src = g.add_node("Target", "t", {"shape": list(shape), "dtype": dtype})
        else:
            x = g.add_node("Input", f"in_{port}", {"shape": list(shape), "dtype": dtype})
            src = g.add_node("Output", f"out_{port}")
            g.connect(x.id, "out", src.id, "in")
        g.connect(src.id, "out", loss.id, port)
    return g, loss


@pytest.mark.parametrize("type_name, params, ports, reference", LOSS_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(LOSS_CASES)])
def test_loss_nodes_match_torch_functional(type_name, params, ports, reference):
    g, node = loss_graph(type_name, params, ports)
    compiled = build(g)
    assert compiled.inference.ok
    gen = torch.Generator().manual_seed(3)
    values = []
    for port, (shape, dtype) in ports.items():
        full = (BATCH, *shape)
        if dtype == "int64":
            values.append(torch.randint(0, 5, full, generator=gen))
        elif type_name in ("BCELoss", "BCEWithLogitsLoss") or (type_name == "KLDivLoss" and port == "target"):
            values.append(torch.rand(full, generator=gen) * 0.9 + 0.05)
        elif type_name in ("NLLLoss", "KLDivLoss"):
            values.append(torch.log_softmax(torch.randn(full, generator=gen), 1))
        else:
            values.append(torch.randn(full, generator=gen))
    outputs = compiled.model(*values[:len(compiled.plan.outputs)])
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    got = compiled.loss(*outputs, *values[len(compiled.plan.outputs):])
    torch.testing.assert_close(got, reference(*values))
    # and the same from the code a user saves
    namespace: dict = {}
    exec(compile(engine.generate_code(g), "<generated>", "exec"), namespace)
    again = namespace[f"{compiled.plan.class_name}Loss"]()(*outputs, *values[len(compiled.plan.outputs):])
    torch.testing.assert_close(again, got)


def test_loss_inputs_must_come_from_output_or_target_nodes():
    g = engine.Graph()
    x = g.add_node("Input", "x", {"shape": [3]})
    out = g.add_node("Output", "y")
    g.connect(x.id, "out", out.id, "in")
    term = g.add_node("TermLoss", "term")
    g.connect(x.id, "out", term.id, "term")
    messages = [p.message for p in engine.infer_shapes(g).errors]
    assert any("must come from an Output or a Target node" in m for m in messages), messages


# ---------------------------------------------------------------- messages for bad input

ERRORS = [
    ("Conv1d", {}, {"in": (784,)}, "expects a 3-D input (N, C, L), got (N, 784)"),
    ("Conv1d", {"in_channels": 3}, {"in": (4, 10)}, "expects 3 input channels, got 4"),
    ("Conv1d", {"kernel_size": 7}, {"in": (2, 5)}, "the kernel of 7 (dilation 1) does not fit the input length 5"),
    ("Conv1d", {"padding": "same", "stride": 2}, {"in": (2, 5)}, "padding='same' needs stride 1"),
    ("Conv1d", {"groups": 3}, {"in": (4, 5)}, "groups=3 must divide both the input channels (4)"),
    ("Conv1d", {}, {"in": ((2, 5), "int64")}, "expects floating-point values, got int64"),
    ("ConvTranspose2d", {}, {"in": (3, 5)}, "expects a 4-D input (N, C, H, W), got (N, 3, 5)"),
    ("ConvTranspose2d", {"stride": 1, "output_padding": 1}, {"in": (3, 5, 5)},
     "output_padding [1, 1] must be smaller than the stride [1, 1] or the dilation [1, 1]"),
    ("ConvTranspose2d", {"kernel_size": 1, "stride": 1, "padding": 2}, {"in": (3, 3, 3)},
     "padding [2, 2] is too large for the 1x1 kernel on the 3x3 input"),
    ("Upsample", {}, {"in": (784,)}, "expects a 4-D input (N, C, H, W), got (N, 784)"),
    ("Upsample", {"size": [4, 0]}, {"in": (1, 2, 2)}, "size [4, 0] must give both height and width"),
    ("Upsample", {"align_corners": True}, {"in": (1, 2, 2)}, "align_corners only applies to mode 'bilinear'"),
    ("Embedding", {}, {"in": (10,)}, "expects int64 token ids, got float32 (N, 10); set the Input's dtype"),
    ("Embedding", {"num_embeddings": 5, "padding_idx": 5}, {"in": ((3,), "int64")},
     "padding_idx 5 must be less than num_embeddings 5"),
    ("LayerNorm", {"axes": 3}, {"in": (4, 4)}, "normalises over the last 3 axes, but the input (N, 4, 4) has only 2"),
    ("LayerNorm", {"axes": 2}, {"in": ("T", 4)}, "needs a fixed number of values along each normalised axis"),
    ("GroupNorm", {"num_groups": 3}, {"in": (4, 2, 2)}, "num_groups=3 must divide the 4 channels"),
    ("GroupNorm", {"num_channels": 8}, {"in": (4, 2, 2)}, "expects 8 input channels, got 4"),
    ("Dropout2d", {}, {"in": (10,)}, "expects a 4-D input (N, C, H, W), got (N, 10)"),
    ("LeakyReLU", {}, {"in": ((3,), "int64")}, "expects floating-point values, got int64 (N, 3)"),
    ("LogSoftmax", {"dim": 0}, {"in": (3,)}, "cannot take the softmax across the batch axis"),
    ("Reshape", {"shape": [5, 5]}, {"in": (3, 4, 4)},
     "cannot reshape (N, 3, 4, 4) (48 values per sample) to (N, 5, 5) (25 values)"),
    ("Reshape", {"shape": [5, -1]}, {"in": (48,)}, "48 is not a multiple of 5"),
    ("Reshape", {"shape": [-1, -1]}, {"in": (48,)}, "at most one -1"),
    ("Reshape", {"shape": [4, 4]}, {"in": ("T", 4)}, "the input has the run-time axis 'T'; put -1"),
    ("Permute", {"dims": [1, 2]}, {"in": (3, 4, 5)}, "dims [1, 2] must list each of the axes 1, 2, 3 once"),
    ("Permute", {"dims": [2, 2]}, {"in": (3, 4)}, "must list each of the axes 1, 2 once"),
    ("Multiply", {}, {"in1": (3, 4), "in2": (5,)}, "cannot multiply (N, 3, 4) and (N, 5): axis 2 is 4"),
    ("Split", {"dim": 0}, {"in": (4,)}, "cannot split along the batch axis"),
    ("Split", {"parts": 3, "sizes": [1, 2]}, {"in": (3,)}, "sizes [1, 2] has 2 entries but parts is 3"),
    ("Split", {"sizes": [1, 2]}, {"in": (4,)}, "sizes [1, 2] add up to 3, but axis 1 of (N, 4) has 4"),
    ("Split", {"parts": 5}, {"in": (3,)}, "cannot split axis 1 of (N, 3) (3 long) into 5 parts"),
    ("LSTM", {}, {"in": (10,)}, "expects a 3-D input (N, T, features) (batch first), got (N, 10)"),
    ("GRU", {"dropout": 0.2}, {"in": (5, 3)}, "dropout=0.2 acts between stacked layers and needs num_layers of 2"),
    ("RNN", {"input_size": 4}, {"in": (5, 3)}, "expects 4 input features per time step, got 3"),
    ("LSTM", {}, {"in": (5, "F")}, "needs a fixed number of features per time step"),
    ("ScaledDotProductAttention", {}, {"query": (5, 8), "key": (7, 4), "value": (7, 4)},
     "key (N, 7, 4) must have the query's feature size 8"),
    ("ScaledDotProductAttention", {}, {"query": (8,), "key": (7, 8), "value": (7, 4)},
     "expects a query of at least 3 axes (N, ..., length, features), got (N, 8)"),
    ("ScaledDotProductAttention", {}, {"query": (5, 8), "key": (7, 8), "value": (6, 4)},
     "value (N, 6, 4) must have as many positions as the key (N, 7, 8)"),
    ("MultiheadAttention", {"num_heads": 3}, {"query": (5, 8), "key": (5, 8), "value": (5, 8)},
     "num_heads=3 must divide embed_dim 8"),
    ("MultiheadAttention", {}, {"query": (8,), "key": (5, 8), "value": (5, 8)},
     "expects a 3-D query (N, length, features) (batch first), got (N, 8)"),
    ("MultiheadAttention", {}, {"query": (5, 8), "key": (5, 8), "value": (6, 8)},
     "key (N, 5, 8) and value (N, 6, 8) must have the same length"),
    ("AdditiveAttention", {}, {"query": (5, 6), "keys": (5, 6)}, "expects a 2-D query (N, features)"),
    ("AdditiveAttention", {}, {"query": (6,), "keys": (5, 6), "values": (4, 6)},
     "values (N, 4, 6) must have as many steps as the keys (N, 5, 6)"),
    ("Reparameterize", {}, {"mu": (4,), "logvar": (5,)}, "logvar (N, 5) must be shaped like mu (N, 4)"),
    ("GramMatrix", {}, {"in": (10,)}, "expects feature maps (N, C, H, W) (or (N, C, L)), got (N, 10)"),
]


@pytest.mark.parametrize("type_name, params, inputs, fragment", ERRORS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERRORS)])
def test_bad_inputs_get_a_clear_message(type_name, params, inputs, fragment):
    message = shape_error(type_name, params, inputs)
    assert fragment in message, message


def test_shape_errors_name_the_sending_node():
    message = shape_error("Conv1d", {}, {"in": (784,)})
    assert message == "Conv1d 'node' expects a 3-D input (N, C, L), got (N, 784) from 'in_in'"


@pytest.mark.parametrize("type_name, port, ports, fragment", [
    ("NLLLoss", "target", {"pred": ((5,), "float32"), "target": ((5,), "int64")},
     "class ids for log-probabilities (N, 5) must be shaped (N), got (N, 5)"),
    ("NLLLoss", "target", {"pred": ((5,), "float32"), "target": ((), "float32")},
     "expects int64 class ids as the target, got float32"),
    ("BCELoss", "target", {"pred": ((5,), "float32"), "target": ((4,), "float32")},
     "pred (N, 5) and target (N, 4) must have the same shape"),
    ("TripletMarginLoss", "negative", {"anchor": ((4,), "float32"), "positive": ((4,), "float32"),
                                       "negative": ((3,), "float32")},
     "negative (N, 3) must be shaped like the anchor (N, 4)"),
    ("TermLoss", "term", {"term": ((), "int64")}, "expects floating-point values, got int64"),
])
def test_loss_nodes_refuse_mismatched_inputs(type_name, port, ports, fragment):
    g, node = loss_graph(type_name, {}, ports)
    problems = [p for p in engine.infer_shapes(g).errors if p.node == node.id]
    assert problems and fragment in problems[0].message, [p.message for p in problems]
    assert problems[0].port == port


@pytest.mark.parametrize("type_name, param, value, fragment", [
    ("Reshape", "shape", [0, 3], "every value must be at least 1 (or -1 for worked out from the rest), got [0, 3]"),
    ("Reshape", "shape", "4x4", "expected a list of whole numbers such as [2, 3], got '4x4' (text)"),
    ("Permute", "dims", [2.5, 1], "expected a list of whole numbers"),
    ("Split", "parts", 1, "must be at least 2, got 1"),
    ("LSTM", "output", "all", "must be one of 'sequence', 'last'; got 'all' (text)"),
    ("Conv1d", "padding", "full", "expected a whole number or a list of 1, got 'full' (text)"),
    ("Upsample", "mode", "bicubic", "must be one of 'nearest', 'bilinear'"),
    ("Embedding", "padding_idx", -2, "must be at least 0 (or -1 for none), got -2"),
])
def test_bad_params_are_refused_with_the_reason(type_name, param, value, fragment):
    g = engine.Graph()
    node = g.add_node(type_name)
    with pytest.raises(engine.ParamError) as exc:
        g.set_param(node.id, param, value)
    assert fragment in str(exc.value)


# ---------------------------------------------------------------- output ports that follow a param

def test_split_has_one_output_port_per_part_and_drops_wires_of_vanished_ports():
    g, node = single_node_graph("Split", {"parts": 3}, {"in": (6,)})
    assert g.output_port_names(node.id) == ["out1", "out2", "out3"]
    assert engine.REGISTRY["Split"].to_json()["outputs"] == ["out1", "out2"]  # the default
    assert engine.infer_shapes(g).ok
    g.set_param(node.id, "parts", 2)
    assert g.output_port_names(node.id) == ["out1", "out2"]
    assert [e.src_port for e in g.edges_from(node.id)] == ["out1", "out2"]
    g.remove_node("out_out3")
    assert engine.infer_shapes(g).ok


def test_a_broken_port_count_falls_back_to_the_default_ports():
    g, node = single_node_graph("Split", {}, {"in": (6,)})
    g.nodes[node.id].params["parts"] = "many"  # as a hand-edited file might have it
    assert g.output_port_names(node.id) == ["out1", "out2"]
    problems = engine.infer_shapes(g).errors
    assert any(p.param == "parts" for p in problems)


def test_attention_weights_port_follows_return_weights():
    g = engine.Graph()
    node = g.add_node("MultiheadAttention")
    assert g.output_port_names(node.id) == ["out"]
    g.set_param(node.id, "return_weights", True)
    assert g.output_port_names(node.id) == ["out", "weights"]
    node = g.add_node("AdditiveAttention", params={"return_weights": True})
    assert g.output_port_names(node.id) == ["context", "weights"]


def test_multi_output_node_feeds_several_layers_in_generated_code():
    g = engine.Graph("split and join")
    x = g.add_node("Input", "x", {"shape": [6, 4]})
    split = g.add_node("Split", "split", {"parts": 3})
    mul = g.add_node("Multiply", "gate")
    add = g.add_node("Add", "add")
    out = g.add_node("Output", "y")
    g.connect(x.id, "out", split.id, "in")
    g.connect(split.id, "out1", mul.id, "in1")
    g.connect(split.id, "out2", mul.id, "in2")
    g.connect(mul.id, "out", add.id, "in1")
    g.connect(split.id, "out3", add.id, "in2")
    g.connect(add.id, "out", out.id, "in")
    model = build(g).model
    data = torch.randn(2, 6, 4)
    a, b, c = data.split(2, dim=1)
    torch.testing.assert_close(model(data), a * b + c)
    assert "torch.tensor_split(x, 3, dim=1)" in engine.generate_code(g)


# ---------------------------------------------------------------- small networks made of catalog nodes

def test_text_classifier_and_tagger_share_a_recurrent_layer_with_a_run_time_length():
    g = engine.Graph("classifier and tagger")
    ids = g.add_node("Input", "tokens", {"shape": ["T"], "dtype": "int64"})
    emb = g.add_node("Embedding", "embed", {"num_embeddings": 30, "embedding_dim": 8, "padding_idx": 0})
    seq = g.add_node("GRU", "encoder", {"hidden_size": 6, "bidirectional": True, "num_layers": 2})
    last = g.add_node("LSTM", "summary", {"hidden_size": 5, "output": "last"})
    cls = g.add_node("Linear", "classify", {"out_features": 3})
    tag = g.add_node("Linear", "tag", {"out_features": 4})
    out_cls, out_tag = g.add_node("Output", "label_scores"), g.add_node("Output", "tag_scores")
    for a, b in [(ids, emb), (emb, seq), (seq, last), (last, cls), (cls, out_cls), (seq, tag), (tag, out_tag)]:
        g.connect(a.id, "out", b.id, "in")
    inf = engine.infer_shapes(g)
    assert inf.ok, [str(p) for p in inf.errors]
    assert inf.shape(cls.id).shape == ("N", 3) and inf.shape(tag.id).shape == ("N", "T", 4)
    again = engine.loads(engine.dumps(g))  # the .dcnet round trip keeps it intact
    assert engine.generate_code(again) == engine.generate_code(g)
    model = build(g).model
    scores, tags = model(torch.randint(0, 30, (2, 9)))
    assert scores.shape == (2, 3) and tags.shape == (2, 9, 4)
    (scores.sum() + tags.sum()).backward()


def test_conv_decoder_from_a_latent_vector():
    g = engine.Graph("decoder")
    nodes = [g.add_node("Input", "z", {"shape": [16]}),
             g.add_node("Linear", "fc", {"out_features": 8 * 4 * 4}),
             g.add_node("Reshape", "grid", {"shape": [8, 4, 4]}),
             g.add_node("ConvTranspose2d", "up1", {"out_channels": 4}),
             g.add_node("GroupNorm", "gn", {"num_groups": 2}),
             g.add_node("LeakyReLU", "act", {"negative_slope": 0.2}),
             g.add_node("Upsample", "up2", {"mode": "bilinear"}),
             g.add_node("Conv2d", "to_rgb", {"out_channels": 3, "padding": 1}),
             g.add_node("Output", "image")]
    for a, b in zip(nodes, nodes[1:]):
        g.connect(a.id, "out", b.id, "in")
    compiled = build(g)
    assert compiled.inference.shape("to_rgb").shape == ("N", 3, 16, 16)
    assert compiled.model(torch.randn(2, 16)).shape == (2, 3, 16, 16)
    assert compiled.inference.total_params == sum(p.numel() for p in compiled.model.parameters())
