"""Sequence models: the token Embedding that usually feeds them, and the recurrent layers RNN, LSTM, GRU.

Sequences are batch-first, (N, T, features), and T may be a run-time axis (a name such as 'T' in the
Input's shape). A recurrent node gives either the whole output sequence (N, T, H * directions), for a
tagger or a stacked model, or the last hidden state (N, H * directions), for a classifier.

States are batch-first too. A recurrent node may start from a given state instead of zeros: the
optional input 'h0' (and 'c0' for an LSTM, which needs both) takes (N, layers * directions, H), or
(N, H) for a one-layer, one-direction node; torch's own layout, (layers * directions, N, H), is that
transposed. With ``return_state`` the node also gives its final state in the same layout on outputs
'h_n' (and 'c_n'), so an encoder's state can start a decoder (sequence-to-sequence models).
"""

from __future__ import annotations

from ..params import Bool, Choice, Float, Int
from ..spec import Call, NodeSpec, PortSpec
from ._common import BATCH, Cost, ShapeError, TensorInfo, call_module, concrete, expect_float, expect_rank
from ._emit import auto_size, kwargs_if, size_or_one

# ---------------------------------------------------------------- Embedding


def _embedding_infer(p, ins):
    t = ins["in"]
    if t.dtype != "int64":
        raise ShapeError(f"expects int64 token ids, got {t.dtype} {t}; set the Input's dtype to int64", "in")
    if p["padding_idx"] >= p["num_embeddings"]:
        raise ShapeError(f"padding_idx {p['padding_idx']} must be less than num_embeddings "
                         f"{p['num_embeddings']}")
    return {"out": TensorInfo((*t.shape, p["embedding_dim"]), "float32")}


Embedding = NodeSpec(
    type="Embedding", category="Layers",
    doc="Look up a learned vector for each int64 id: (N, T) ids -> (N, T, embedding_dim). Ids must lie in "
        "[0, num_embeddings).",
    params=(
        Int("num_embeddings", 1000, min=1, doc="vocabulary size: ids run from 0 to this - 1"),
        Int("embedding_dim", 64, min=1, doc="length of each vector"),
        Int("padding_idx", -1, min=0, special={-1: "none"}, doc="an id whose vector stays zero and is not "
            "trained (padding)"),
    ),
    infer=_embedding_infer,
    module=lambda p, ins: Call("nn.Embedding", (p["num_embeddings"], p["embedding_dim"]),
                               kwargs_if(padding_idx=(p["padding_idx"], -1))),
    forward=call_module,
    cost=lambda p, ins, outs: Cost(p["num_embeddings"] * p["embedding_dim"], 0),
    label_prefix="embed",
)


# ---------------------------------------------------------------- RNN, LSTM, GRU

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _rnn_params(kind: str) -> tuple:
    params = [
        Int("input_size", 0, min=1, special={0: "auto"}, doc="features per time step (auto = from the wire)"),
        Int("hidden_size", 64, min=1, doc="size of the hidden state H"),
        Int("num_layers", 1, min=1, max=16, doc="stacked layers (a deep RNN); each reads the previous one's "
            "outputs"),
        Bool("bidirectional", False, doc="also run a second layer backwards in time; outputs are 2H wide"),
        Float("dropout", 0.0, min=0.0, max=1.0, doc="dropout on the outputs of each layer but the last (needs "
              "num_layers >= 2)"),
        Bool("bias", True, doc="learn bias terms"),
        Choice("output", "sequence", options=("sequence", "last"),
               doc="'sequence': every step's output (N, T, H*dirs), for taggers and stacking; 'last': the "
                   "last layer's final hidden state (N, H*dirs), forward and backward concatenated, for "
                   "classifiers"),
        Bool("return_state", False,
             doc="also give the final state of every layer and direction on 'h_n'" + (" and 'c_n'" if kind == "LSTM"
                 else "") + ", shaped (N, layers*dirs, H): what starts a decoder through its 'h0'"),
    ]
    if kind == "RNN":
        params.insert(4, Choice("nonlinearity", "tanh", options=("tanh", "relu"),
                                doc="the activation of the hidden state"))
    return tuple(params)


def _dirs(p) -> int:
    return 2 if p["bidirectional"] else 1


def _state_ports(kind: str) -> tuple[str, ...]:
    return ("h0", "c0") if kind == "LSTM" else ("h0",)


def _input_ports(kind: str) -> tuple[PortSpec, ...]:
    ports = [PortSpec("in", "the sequence (N, T, features), batch first")]
    ports.append(PortSpec("h0", "initial hidden state (N, layers*dirs, H), or (N, H) for one layer and one "
                                "direction; zeros when not wired", optional=True))
    if kind == "LSTM":
        ports.append(PortSpec("c0", "initial cell state, shaped like h0 (wire both or neither)", optional=True))
    return tuple(ports)


def _output_ports(kind: str):
    def outputs(p) -> tuple[PortSpec, ...]:
        ports = (PortSpec("out", "the output sequence (N, T, H*dirs) or the last hidden state (N, H*dirs)"),)
        if p["return_state"]:
            ports += (PortSpec("h_n", "final hidden state of every layer and direction (N, layers*dirs, H)"),)
            if kind == "LSTM":
                ports += (PortSpec("c_n", "final cell state (N, layers*dirs, H)"),)
        return ports
    return outputs


def _check_state(p, ins, port: str) -> None:
    """An initial state must be batch first, (N, layers*dirs, H), or (N, H) when that is one state."""
    s, ld, h = ins[port], p["num_layers"] * _dirs(p), p["hidden_size"]
    expect_float(s, port)
    if s.shape[1:] == (ld, h) or (ld == 1 and s.shape[1:] == (h,)):
        return
    also = f" or (N, {h})" if ld == 1 else ""
    raise ShapeError(f"expects the initial state '{port}' shaped (N, {ld}, {h}) (layers * directions = {ld}, "
                     f"hidden_size = {h}){also}, got {s}", port)


def _rnn_infer(kind: str):
    def infer(p, ins):
        t = ins["in"]
        expect_float(t)
        expect_rank(t, (3,), "(N, T, features) (batch first)")
        auto_size(p, "input_size", concrete(t.shape[2], "features per time step"), "features per time step")
        if p["dropout"] and p["num_layers"] == 1:
            raise ShapeError(f"dropout={p['dropout']} acts between stacked layers and needs num_layers of 2 or more")
        if kind == "LSTM" and ("h0" in ins) != ("c0" in ins):
            have, missing = ("h0", "c0") if "h0" in ins else ("c0", "h0")
            raise ShapeError(f"starts from a given state only with both h0 and c0: '{have}' is wired, wire "
                             f"'{missing}' too (or neither, for zeros)")
        for port in _state_ports(kind):
            if port in ins:
                _check_state(p, ins, port)
        width = p["hidden_size"] * _dirs(p)
        shape = (BATCH, t.shape[1], width) if p["output"] == "sequence" else (BATCH, width)
        outs = {"out": TensorInfo(shape, t.dtype)}
        if p["return_state"]:
            state = TensorInfo((BATCH, p["num_layers"] * _dirs(p), p["hidden_size"]), t.dtype)
            outs["h_n"] = state
            if kind == "LSTM":
                outs["c_n"] = state
        return outs
    return infer


def _rnn_module(kind: str):
    def module(p, ins):
        kw = kwargs_if(num_layers=(p["num_layers"], 1), nonlinearity=(p.get("nonlinearity", "tanh"), "tanh"),
                       bias=(p["bias"], True))
        kw["batch_first"] = True
        kw.update(kwargs_if(dropout=(p["dropout"], 0.0), bidirectional=(p["bidirectional"], False)))
        return Call(f"nn.{kind}", (ins["in"].shape[2], p["hidden_size"]), kw)
    return module


def _rnn_forward(kind: str):
    def forward(p, args, mod):
        ld, h = p["num_layers"] * _dirs(p), p["hidden_size"]
        # Given states arrive batch first, (N, ld, H) or (N, H); torch wants (ld, N, H), contiguous.
        states = [f"{a}.reshape(-1, {ld}, {h}).transpose(0, 1).contiguous()" for a in args[1:]]
        if kind == "LSTM" and states:
            call = f"{mod}({args[0]}, ({states[0]}, {states[1]}))"
        elif states:
            call = f"{mod}({args[0]}, {states[0]})"
        else:
            call = f"{mod}({args[0]})"

        def last(h_n: str) -> str:
            # h_n is (num_layers * dirs, N, H); the last layer's states are its last dirs rows.
            return f"{h_n}[-2:].transpose(0, 1).flatten(1)" if p["bidirectional"] else f"{h_n}[-1]"

        if p["return_state"]:  # one call, then the main output and the final state(s), batch first
            main = "o" if p["output"] == "sequence" else last("s[0]" if kind == "LSTM" else "s")
            final = ["s[0].transpose(0, 1)", "s[1].transpose(0, 1)"] if kind == "LSTM" else ["s.transpose(0, 1)"]
            return f"(lambda o, s: ({main}, {', '.join(final)}))(*{call})"
        if p["output"] == "sequence":
            return f"{call}[0]"
        return last(f"{call}[1][0]" if kind == "LSTM" else f"{call}[1]")
    return forward


def _rnn_weights(kind: str, p, features: int) -> int:
    g, h, dirs = GATES[kind], p["hidden_size"], _dirs(p)
    total = 0
    for layer in range(p["num_layers"]):
        fin = features if layer == 0 else h * dirs
        total += dirs * (g * h * (fin + h) + (2 * g * h if p["bias"] else 0))
    return total


def _rnn_cost(kind: str):
    def cost(p, ins, outs):
        t = ins["in"]
        steps = size_or_one(t.shape[1])
        g, h, dirs = GATES[kind], p["hidden_size"], _dirs(p)
        macs = 0
        for layer in range(p["num_layers"]):
            fin = t.shape[2] if layer == 0 else h * dirs
            macs += dirs * g * h * (fin + h)
        return Cost(_rnn_weights(kind, p, t.shape[2]), steps * 2 * macs)
    return cost


def _recurrent(kind: str, doc: str) -> NodeSpec:
    return NodeSpec(
        type=kind, category="Recurrent", doc=doc, inputs=_input_ports(kind), outputs=_output_ports(kind),
        params=_rnn_params(kind), infer=_rnn_infer(kind), module=_rnn_module(kind), forward=_rnn_forward(kind),
        cost=_rnn_cost(kind),
    )


_STATE_DOC = ("; may start from a given state instead of zeros ({ports}: batch first, (N, layers*dirs, H), or "
              "(N, H) for one layer and direction) and give its final one (return_state), e.g. an encoder's "
              "final state starting a decoder")

RNN = _recurrent("RNN", "Elman recurrent layer over (N, T, features): h_t = tanh(W x_t + U h_(t-1) + b). "
                        "Gives the output sequence or the last hidden state" + _STATE_DOC.format(ports="h0") + ".")
LSTM = _recurrent("LSTM", "Long short-term memory over (N, T, features): gated memory cells that keep "
                          "information over long sequences. Gives the output sequence or the last hidden "
                          "state" + _STATE_DOC.format(ports="h0 and c0") + ".")
GRU = _recurrent("GRU", "Gated recurrent unit over (N, T, features): an LSTM with fewer gates and no separate "
                        "cell. Gives the output sequence or the last hidden state" + _STATE_DOC.format(ports="h0")
                        + ".")

SPECS = [Embedding, RNN, LSTM, GRU]
