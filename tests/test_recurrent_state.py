"""RNN/GRU/LSTM initial and final states (engine/nodes/recurrent.py): the optional inputs 'h0' (and 'c0'),
batch first, (N, layers*dirs, H) or (N, H) for one state; and ``return_state``, which adds the outputs
'h_n' (and 'c_n') in the same layout. Checked against torch.nn.RNN/GRU/LSTM directly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import engine
from engine.compiler import build

torch.set_num_threads(1)

N, T, F_IN, H = 3, 6, 4, 5


def _graph(kind: str, params: dict, state_shape: tuple | None):
    """Input 'x' (and Inputs 'h'/'c' wired to h0/c0 when ``state_shape`` is given) -> the node -> one Output
    per output port."""
    g = engine.Graph(f"{kind} state")
    x = g.add_node("Input", "x", {"shape": [T, F_IN]})
    node = g.add_node(kind, "rnn", {"hidden_size": H, **params})
    g.connect(x.id, "out", node.id, "in")
    if state_shape is not None:
        for label, port in [("h", "h0"), ("c", "c0")][: 2 if kind == "LSTM" else 1]:
            s = g.add_node("Input", label, {"shape": list(state_shape)})
            g.connect(s.id, "out", node.id, port)
    for port in g.output_port_names(node.id):
        out = g.add_node("Output", f"out_{port}")
        g.connect(node.id, port, out.id, "in")
    return g, node


def _reference(kind, compiled, params):
    ref = getattr(nn, kind)(F_IN, H, num_layers=params.get("num_layers", 1),
                            bidirectional=params.get("bidirectional", False), batch_first=True)
    ref.load_state_dict(compiled.model.rnn.state_dict())
    return ref.eval()


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_given_state_and_final_state_match_torch(kind, layers, bidirectional):
    params = {"num_layers": layers, "bidirectional": bidirectional, "return_state": True}
    ld = layers * (2 if bidirectional else 1)
    g, node = _graph(kind, params, (ld, H))
    inf = engine.infer_shapes(g)
    assert inf.problems == [], [str(p) for p in inf.problems]
    want_ports = ["out", "h_n", "c_n"] if kind == "LSTM" else ["out", "h_n"]
    assert g.output_port_names(node.id) == want_ports
    assert inf.shape(node.id, "h_n").shape == ("N", ld, H)
    compiled = build(g, seed=1)
    ref = _reference(kind, compiled, params)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, T, F_IN, generator=gen)
    states = [torch.randn(N, ld, H, generator=gen) for _ in range(2 if kind == "LSTM" else 1)]
    got = compiled.model.eval()(x, *states)
    hx = [s.transpose(0, 1).contiguous() for s in states]  # torch's layout: (layers*dirs, N, H)
    out, final = ref(x, tuple(hx) if kind == "LSTM" else hx[0])
    finals = list(final) if kind == "LSTM" else [final]
    torch.testing.assert_close(got[0], out)
    for mine, theirs in zip(got[1:], finals):
        torch.testing.assert_close(mine, theirs.transpose(0, 1))
    # without the given state the result differs (the state is really used) ...
    plain, _ = ref(x)
    assert not torch.allclose(plain, out)
    # ... and gradients reach it
    states = [s.requires_grad_() for s in states]
    sum(t.sum() for t in compiled.model.train()(x, *states)).backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in states)
    # the generated source, run on its own, computes the same
    namespace: dict = {}
    exec(compile(engine.generate_code(g), "<generated>", "exec"), namespace)
    standalone = namespace[compiled.plan.class_name]()
    standalone.load_state_dict(compiled.model.state_dict())
    with torch.no_grad():
        again = standalone.eval()(x, *[s.detach() for s in states])
    for a, b in zip(again, got):
        torch.testing.assert_close(a, b)
    assert inf.total_params == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_one_state_may_come_as_n_by_h_and_last_output_with_state(kind):
    g, node = _graph(kind, {"output": "last", "return_state": True}, (H,))
    inf = engine.infer_shapes(g)
    assert inf.problems == []
    assert inf.shape(node.id).shape == ("N", H) and inf.shape(node.id, "h_n").shape == ("N", 1, H)
    compiled = build(g, seed=0)
    ref = _reference(kind, compiled, {})
    x = torch.randn(N, T, F_IN)
    states = [torch.randn(N, H) for _ in range(2 if kind == "LSTM" else 1)]
    with torch.no_grad():
        got = compiled.model.eval()(x, *states)
        hx = [s.unsqueeze(0) for s in states]
        _, final = ref(x, tuple(hx) if kind == "LSTM" else hx[0])
    h_n = final[0] if kind == "LSTM" else final
    torch.testing.assert_close(got[0], h_n[-1])
    torch.testing.assert_close(got[1], h_n.transpose(0, 1))


def test_encoder_state_starts_a_decoder_as_in_hand_written_seq2seq():
    g = engine.Graph("seq2seq")
    src = g.add_node("Input", "source", {"shape": [7, 3]})
    tgt = g.add_node("Input", "target_in", {"shape": [4, 2]})
    enc = g.add_node("GRU", "encoder", {"hidden_size": 6, "num_layers": 2, "return_state": True})
    dec = g.add_node("GRU", "decoder", {"hidden_size": 6, "num_layers": 2})
    out = g.add_node("Output", "decoded")
    g.connect(src.id, "out", enc.id, "in")
    g.connect(tgt.id, "out", dec.id, "in")
    g.connect(enc.id, "h_n", dec.id, "h0")
    g.connect(dec.id, "out", out.id, "in")
    inf = engine.infer_shapes(g)
    assert inf.problems == [], [str(p) for p in inf.problems]  # the encoder's unused 'out' is no dead end
    compiled = build(g, seed=2)
    encoder, decoder = nn.GRU(3, 6, 2, batch_first=True), nn.GRU(2, 6, 2, batch_first=True)
    encoder.load_state_dict(compiled.model.encoder.state_dict())
    decoder.load_state_dict(compiled.model.decoder.state_dict())
    s, t = torch.randn(2, 7, 3), torch.randn(2, 4, 2)
    _, h = encoder(s)
    want, _ = decoder(t, h)
    torch.testing.assert_close(compiled.model(s, t), want)


@pytest.mark.parametrize("kind, params, state, wired, fragment", [
    ("GRU", {}, (2, H), ("h0",), f"expects the initial state 'h0' shaped (N, 1, {H})"),
    ("GRU", {"num_layers": 2}, (H,), ("h0",), f"shaped (N, 2, {H}) (layers * directions = 2, hidden_size = {H}), "
                                               f"got (N, {H})"),
    ("RNN", {"bidirectional": True}, (2, H + 1), ("h0",), "got (N, 2, 6)"),
    ("LSTM", {}, (1, H), ("h0",), "'h0' is wired, wire 'c0' too"),
    ("LSTM", {}, (1, H), ("c0",), "'c0' is wired, wire 'h0' too"),
])
def test_bad_states_are_refused_naming_the_node_and_port(kind, params, state, wired, fragment):
    g = engine.Graph("bad")
    x = g.add_node("Input", "x", {"shape": [T, F_IN]})
    node = g.add_node(kind, "rnn", {"hidden_size": H, **params})
    g.connect(x.id, "out", node.id, "in")
    s = g.add_node("Input", "state", {"shape": list(state)})
    for port in wired:
        g.connect(s.id, "out", node.id, port)
    out = g.add_node("Output", "y")
    g.connect(node.id, "out", out.id, "in")
    errors = engine.infer_shapes(g).errors
    assert len(errors) == 1 and errors[0].node == node.id, errors
    assert errors[0].message.startswith(f"{kind} 'rnn'") and fragment in errors[0].message, errors[0].message
    if "wire" not in fragment:
        assert errors[0].port == "h0" and "from 'state'" in errors[0].message


def test_int_state_is_refused_and_state_ports_vanish_with_return_state_off():
    g, node = _graph("GRU", {"return_state": True}, None)
    h_out = g.add_node("Output", "extra")
    g.connect(node.id, "h_n", h_out.id, "in")
    g.set_param(node.id, "return_state", False)  # the wire on the vanished port goes with it
    assert all(e.src_port != "h_n" for e in g.edges)
    assert g.output_port_names(node.id) == ["out"]
    assert engine.REGISTRY["LSTM"].to_json()["inputs"] == ["in", "h0", "c0"]
    bad = engine.Graph("int state")
    x = bad.add_node("Input", "x", {"shape": [T, F_IN]})
    s = bad.add_node("Input", "ids", {"shape": [1, H], "dtype": "int64"})
    r = bad.add_node("RNN", "rnn", {"hidden_size": H})
    o = bad.add_node("Output", "y")
    for a, b, port in [(x, r, "in"), (s, r, "h0"), (r, o, "in")]:
        bad.connect(a.id, "out", b.id, port)
    (err,) = engine.infer_shapes(bad).errors
    assert err.port == "h0" and "floating-point" in err.message
