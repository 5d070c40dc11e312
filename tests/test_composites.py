"""Composite blocks, user composites, expand/collapse, and shared weights (issue #3's engine part)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import engine
from engine.compiler import build
from engine.composites import collapse, expand


def _wrap(block_type, shape, params=None, port="x"):
    """Input -> block -> Output."""
    g = engine.Graph("wrapped")
    x = g.add_node("Input", "image", {"shape": shape}, pos=(0, 0))
    b = g.add_node(block_type, "block", params, pos=(0, 100))
    o = g.add_node("Output", "y", pos=(0, 200))
    g.connect(x.id, "out", b.id, port)
    g.connect(b.id, "out", o.id, "in")
    return g, b.id


class BasicBlock(nn.Module):
    """torchvision's BasicBlock, written out by hand."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.downsample(x))


def test_residual_block_computes_what_the_hand_written_block_computes():
    g, bid = _wrap("ResidualBlock", [8, 10, 10], {"out_channels": 16, "stride": 2, "projection": True})
    compiled = build(g, seed=3)
    ref = BasicBlock(8, 16, 2)
    names = {"downsample.0": "downsample_conv", "downsample.1": "downsample_bn"}
    state = {}
    for key, value in ref.state_dict().items():
        prefix, _, rest = key.rpartition(".")
        state["block." + names.get(prefix, prefix) + "." + rest] = value
    compiled.model.load_state_dict(state)
    for m in (compiled.model, ref):
        m.train()
    x = torch.randn(4, 8, 10, 10)
    assert torch.allclose(compiled.model(x), ref(x), atol=1e-6)
    assert compiled.inference.total_params == sum(p.numel() for p in ref.parameters())


def test_a_shortcut_that_does_not_fit_is_reported_on_the_block_with_the_inner_reason():
    g, bid = _wrap("ResidualBlock", [8, 10, 10], {"out_channels": 16, "stride": 2})
    problems = engine.infer_shapes(g).errors
    assert len(problems) == 1 and problems[0].node == bid
    assert problems[0].message.startswith("ResidualBlock 'block', inside 'ResidualBlock': Add 'add' cannot add")
    g.set_param(bid, "projection", True)
    assert engine.infer_shapes(g).ok


@pytest.mark.parametrize("block, shape, params, out_shape, n_params", [
    ("BottleneckBlock", [64, 14, 14], {"projection": True}, (256, 14, 14), 75008),
    ("InceptionModule", [192, 28, 28], {}, (256, 28, 28), 163696),  # GoogLeNet's inception (3a)
])
def test_blocks_infer_compile_and_count_like_their_modules(block, shape, params, out_shape, n_params):
    g, bid = _wrap(block, shape, params)
    inf = engine.infer_shapes(g)
    assert inf.ok, inf.problems
    assert inf.shape(bid).shape == ("N", *out_shape)
    model = build(g).model
    assert model(torch.randn(2, *shape)).shape == (2, *out_shape)
    assert inf.total_params == sum(p.numel() for p in model.parameters()) == n_params


def test_expand_then_collapse_keep_the_numbers():
    g, bid = _wrap("ResidualBlock", [4, 6, 6], {"out_channels": 4})
    x = torch.randn(3, 4, 6, 6)
    before = build(g, seed=1).model.eval()
    expected = before(x)

    new_ids = expand(g, bid)
    assert bid not in g.nodes and len(new_ids) == 7
    assert engine.infer_shapes(g).ok
    flat = build(g).model.eval()
    flat.load_state_dict({k.replace("block.", "block_"): v for k, v in before.state_dict().items()})
    assert torch.allclose(flat(x), expected)

    block = collapse(g, new_ids, "MyBlock")
    assert g.input_port_names(block) == ["x"] and g.output_port_names(block) == ["out"]
    again = engine.loads(engine.dumps(g))  # the composite is saved in the file and comes back
    assert "MyBlock" in again.composites and engine.infer_shapes(again).ok
    model = build(again).model.eval()
    model.load_state_dict({k.replace("block_", "myblock1.block_"): v for k, v in flat.state_dict().items()})
    assert torch.allclose(model(x), expected)
    assert engine.dumps(again) == engine.dumps(g)


def test_collapse_refuses_inputs_and_half_shared_selections():
    g, bid = _wrap("ResidualBlock", [4, 6, 6], {"out_channels": 4})
    with pytest.raises(engine.GraphEditError, match="Input"):
        collapse(g, ["image", bid], "Bad")
    with pytest.raises(engine.GraphEditError, match="select"):
        collapse(g, [], "Bad")
    with pytest.raises(engine.GraphEditError, match="already used"):
        collapse(g, [bid], "ResidualBlock")


def _definition(name, features=4):
    sub = engine.Graph(name)
    i = sub.add_node("Input", "x", {"shape": [features]})
    lin = sub.add_node("Linear", "fc", {"out_features": features})
    o = sub.add_node("Output", "y")
    sub.connect(i.id, "out", lin.id, "in")
    sub.connect(lin.id, "out", o.id, "in")
    return sub


def test_missing_and_recursive_definitions_are_reported_not_raised():
    g = engine.Graph("g")
    x = g.add_node("Input", "x", {"shape": [4]})
    c = g.add_node("Composite", "enc", {"definition": "nowhere"})
    o = g.add_node("Output", "o")
    g.edges.append(engine.Edge(x.id, "out", c.id, "x"))  # as a file holding a stale definition name has it
    assert any("does not define" in p.message for p in engine.infer_shapes(g).errors)
    g.edges.clear()

    loop = _definition("loop")
    g.composites["loop"] = loop
    loop.composites = g.composites
    inner = loop.add_node("Composite", "again", {"definition": "loop"})
    loop.edges = [e for e in loop.edges if e.dst != "y"]
    loop.connect("fc", "out", inner.id, "x")
    loop.connect(inner.id, "y", "y", "in")
    g.set_param(c.id, "definition", "loop")
    g.connect(x.id, "out", c.id, "x")
    g.connect(c.id, "y", o.id, "in")
    errors = engine.infer_shapes(g).errors
    assert any("contains itself" in p.message for p in errors), errors


def test_siamese_twins_share_one_set_of_weights():
    g = engine.Graph("siamese")
    ins = [g.add_node("Input", name, {"shape": [5]}) for name in ("anchor", "positive", "negative")]
    g.composites["embed"] = _definition("embed", 5)
    g.composites["embed"].composites = g.composites
    first = g.add_node("Composite", "embed_a", {"definition": "embed"})
    twins = [first] + [g.add_node("Composite", f"embed_{k}", {"definition": "embed"}) for k in "pn"]
    for twin in twins[1:]:
        g.set_shares(twin.id, first.id)
    for i, (inp, twin) in enumerate(zip(ins, twins)):
        out = g.add_node("Output", f"emb{i}")
        g.connect(inp.id, "out", twin.id, "x")
        g.connect(twin.id, "y", out.id, "in")
    inf = engine.infer_shapes(g)
    assert inf.ok, inf.problems
    compiled = build(g)
    assert inf.total_params == 30 == sum(p.numel() for p in compiled.model.parameters())
    assert list(compiled.networks) == ["embed_a"]
    a = torch.randn(2, 5)
    outs = compiled.model(a, a, a)
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[1], outs[2])
    # the file keeps the sharing
    again = engine.loads(engine.dumps(g))
    assert again.nodes["embed_p"].shares == "embed_a"


def test_sharing_rules():
    g = engine.Graph("g")
    x = g.add_node("Input", "x", {"shape": [4]})
    a = g.add_node("Linear", "a", {"out_features": 3})
    b = g.add_node("Linear", "b", {"out_features": 3})
    r = g.add_node("ReLU", "r")
    with pytest.raises(engine.GraphEditError, match="types differ"):
        g.set_shares(r.id, a.id)
    g.remove_node(r.id)
    with pytest.raises(engine.GraphEditError, match="itself"):
        g.set_shares(a.id, a.id)
    g.set_shares(b.id, a.id)
    with pytest.raises(engine.GraphEditError, match="edit that node"):
        g.set_param(b.id, "out_features", 7)
    g.set_param(a.id, "out_features", 4)
    assert g.nodes[b.id].params["out_features"] == 4  # the twin follows its owner
    o1, o2 = g.add_node("Output", "o1"), g.add_node("Output", "o2")
    for src, dst, port in [(x, a, "in"), (a, o1, "in"), (a, b, "in"), (b, o2, "in")]:
        g.connect(src.id, "out", dst.id, port)
    assert engine.infer_shapes(g).ok  # a (4 -> 4) applied twice
    g.set_param(a.id, "out_features", 3)  # now b would receive 3 features but a is built for 4
    errors = engine.infer_shapes(g).errors
    assert [p.node for p in errors] == [b.id] and "nn.Linear(3, 3)" in errors[0].message
    g.remove_node(a.id)
    assert g.nodes[b.id].shares is None


def test_gan_graph_exposes_generator_and_discriminator_by_name():
    g = engine.Graph("gan")
    z = g.add_node("Input", "z", {"shape": [4]})
    real = g.add_node("Input", "real", {"shape": [4]})
    g.composites["generator"] = _definition("generator")
    disc = _definition("discriminator")
    g.composites["discriminator"] = disc
    for sub in g.composites.values():
        sub.composites = g.composites
    gen = g.add_node("Composite", "generator", {"definition": "generator"})
    d_fake = g.add_node("Composite", "discriminator", {"definition": "discriminator"})
    d_real = g.add_node("Composite", "discriminator_real", {"definition": "discriminator"})
    g.set_shares(d_real.id, d_fake.id)
    outs = [g.add_node("Output", n) for n in ("fake", "score_fake", "score_real")]
    g.connect(z.id, "out", gen.id, "x")
    g.connect(gen.id, "y", d_fake.id, "x")
    g.connect(real.id, "out", d_real.id, "x")
    for src, out in zip((gen, d_fake, d_real), outs):
        g.connect(src.id, "y", out.id, "in")
    compiled = build(g)
    assert set(compiled.networks) == {"generator", "discriminator"}
    fake, s_fake, s_real = compiled.model(torch.randn(2, 4), torch.randn(2, 4))
    assert torch.equal(compiled.networks["discriminator"](fake), s_fake)
    # each network also stands alone in the generated code
    assert "class Generator(nn.Module)" in compiled.source and "class Discriminator(nn.Module)" in compiled.source


def test_composites_cannot_hold_losses():
    bad = _definition("bad")
    t = bad.add_node("Target", "t", {"shape": [4], "dtype": "float32"})
    loss = bad.add_node("MSELoss", "mse")
    bad.connect("y", "out", loss.id, "pred")
    bad.connect(t.id, "out", loss.id, "target")
    g = engine.Graph("g")
    g.composites["bad"] = bad
    bad.composites = g.composites
    x = g.add_node("Input", "x", {"shape": [4]})
    block = g.add_node("Composite", "block", {"definition": "bad"})
    out = g.add_node("Output", "o")
    g.connect(x.id, "out", block.id, "x")
    g.connect(block.id, "y", out.id, "in")
    assert any("loss or Target" in p.message for p in engine.infer_shapes(g).errors)


def test_gan_losses_give_each_side_its_term():
    g = engine.Graph("gan")
    z = g.add_node("Input", "z", {"shape": [3]})
    real = g.add_node("Input", "real", {"shape": [3]})
    g.composites["generator"] = _definition("generator", 3)
    disc = engine.Graph("discriminator")
    i = disc.add_node("Input", "x", {"shape": [3]})
    lin = disc.add_node("Linear", "fc", {"out_features": 1})
    o = disc.add_node("Output", "y")
    disc.connect(i.id, "out", lin.id, "in")
    disc.connect(lin.id, "out", o.id, "in")
    g.composites["discriminator"] = disc
    for sub in g.composites.values():
        sub.composites = g.composites
    gen = g.add_node("Composite", "generator", {"definition": "generator"})
    d1 = g.add_node("Composite", "discriminator", {"definition": "discriminator"})
    d2 = g.add_node("Composite", "discriminator_real", {"definition": "discriminator"})
    g.set_shares(d2.id, d1.id)
    s_fake, s_real = g.add_node("Output", "score_fake"), g.add_node("Output", "score_real")
    g.connect(z.id, "out", gen.id, "x")
    g.connect(gen.id, "y", d1.id, "x")
    g.connect(real.id, "out", d2.id, "x")
    g.connect(d1.id, "y", s_fake.id, "in")
    g.connect(d2.id, "y", s_real.id, "in")
    d_loss = g.add_node("GANLoss", "d_loss", {"side": "discriminator"})
    g_loss = g.add_node("GANLoss", "g_loss", {"side": "generator"})
    g.connect(s_fake.id, "out", d_loss.id, "fake")
    assert any("wire 'real'" in p.message for p in engine.infer_shapes(g).errors)
    g.connect(s_real.id, "out", d_loss.id, "real")
    g.connect(s_fake.id, "out", g_loss.id, "fake")
    compiled = build(g)
    fake_scores, real_scores = compiled.model(torch.randn(4, 3), torch.randn(4, 3))
    terms = compiled.loss.terms(fake_scores, real_scores)
    bce = F.binary_cross_entropy_with_logits
    ones, zeros = torch.ones_like(fake_scores), torch.zeros_like(fake_scores)
    assert torch.allclose(terms["d_loss"], bce(real_scores, ones) + bce(fake_scores, zeros))
    assert torch.allclose(terms["g_loss"], bce(fake_scores, ones))
    assert torch.allclose(compiled.loss(fake_scores, real_scores), terms["d_loss"] + terms["g_loss"])


def _cell_graph(cell_type, features, hidden):
    g = engine.Graph("cell")
    ports = ["x", "h", "c"] if cell_type == "LSTMCell" else ["x", "h"]
    cell = g.add_node(cell_type, "cell", {"hidden_size": hidden})
    for port in ports:
        inp = g.add_node("Input", f"{port}_in", {"shape": [features if port == "x" else hidden]})
        g.connect(inp.id, "out", cell.id, port)
    for port in g.output_port_names(cell.id):
        out = g.add_node("Output", f"{port}_out")
        g.connect(cell.id, port, out.id, "in")
    return g


def test_lstm_cell_from_gates_computes_torch_lstm_cell():
    torch.manual_seed(0)
    ref = nn.LSTMCell(5, 7)
    compiled = build(_cell_graph("LSTMCell", 5, 7))
    cell = compiled.networks["cell"]
    H = 7
    with torch.no_grad():  # torch orders the gates i, f, g, o in weight_ih / weight_hh
        for k, gate in enumerate(["input_gate", "forget_gate", "candidate", "output_gate"]):
            lin = getattr(cell, f"{gate}_linear")
            rows = slice(k * H, (k + 1) * H)
            lin.weight.copy_(torch.cat([ref.weight_ih[rows], ref.weight_hh[rows]], dim=1))
            lin.bias.copy_(ref.bias_ih[rows] + ref.bias_hh[rows])
    x, h, c = torch.randn(3, 5), torch.randn(3, 7), torch.randn(3, 7)
    h_next, c_next = compiled.model(x, h, c)
    h_ref, c_ref = ref(x, (h, c))
    assert torch.allclose(h_next, h_ref, atol=1e-6) and torch.allclose(c_next, c_ref, atol=1e-6)


def test_gru_cell_from_gates_computes_torch_gru_cell():
    torch.manual_seed(0)
    ref = nn.GRUCell(4, 6)
    compiled = build(_cell_graph("GRUCell", 4, 6))
    cell = compiled.networks["cell"]
    H = 6
    with torch.no_grad():  # torch orders the gates r, z, n
        for k, gate in enumerate(["reset_gate", "update_gate"]):
            lin = getattr(cell, f"{gate}_linear")
            rows = slice(k * H, (k + 1) * H)
            lin.weight.copy_(torch.cat([ref.weight_ih[rows], ref.weight_hh[rows]], dim=1))
            lin.bias.copy_(ref.bias_ih[rows] + ref.bias_hh[rows])
        rows = slice(2 * H, 3 * H)
        cell.candidate_x.weight.copy_(ref.weight_ih[rows])
        cell.candidate_x.bias.copy_(ref.bias_ih[rows])
        cell.candidate_h.weight.copy_(ref.weight_hh[rows])
        cell.candidate_h.bias.copy_(ref.bias_hh[rows])
    x, h = torch.randn(3, 4), torch.randn(3, 6)
    assert torch.allclose(compiled.model(x, h), ref(x, h), atol=1e-6)


def test_instances_follow_an_edit_of_their_definition():
    """Renaming a composite's Input or Output moves every instance's wires; a removed port's wires go."""
    from engine.composites import instances, port_labels, rename_definition, sync_instances
    from engine.templates import template_path

    g = engine.load_graph(template_path("siamese_triplet"))
    found = instances(g, "embedding")
    assert [nid for _, nid in found] == ["embedding", "embedding_positive", "embedding_negative"]
    sub = g.composites["embedding"]
    (inp,) = [n for n in sub.nodes.values() if n.type == "Input"]
    (out,) = [n for n in sub.nodes.values() if n.type == "Output"]
    before = port_labels(sub)
    sub.set_label(inp.id, "pixels")
    sub.set_label(out.id, "vector")
    assert sync_instances(g, "embedding", before) == []
    for _, nid in found:
        assert [e.dst_port for e in g.edges_into(nid)] == ["pixels"]
        assert {e.src_port for e in g.edges_from(nid)} == {"vector"}
    assert engine.infer_shapes(g).ok
    before = port_labels(sub)
    sub.remove_node(out.id)
    dropped = sync_instances(g, "embedding", before)
    assert len(dropped) == 3 and all(e.src_port == "vector" for e in dropped)
    assert not any(e.src in {i for _, i in found} for e in g.edges)
    assert all(g.edges_into(nid) for _, nid in found)  # the inputs stay wired
    # renaming the definition renames every instance's reference, and refuses a taken name
    assert rename_definition(g, "embedding", "tower") == 3
    assert "tower" in g.composites and g.composites["tower"].name == "tower"
    assert all(g.nodes[nid].params["definition"] == "tower" for _, nid in found)
    with pytest.raises(engine.GraphEditError, match="already used"):
        rename_definition(g, "tower", "Conv2d")
