"""Sequence models: the token Embedding that usually feeds them, and the recurrent layers RNN, LSTM, GRU.

Sequences are batch-first, (N, T, features), and T may be a run-time axis (a name such as 'T' in the
Input's shape). A recurrent node gives either the whole output sequence (N, T, H * directions), for a
tagger or a stacked model, or the last hidden state (N, H * directions), for a classifier.
"""

from __future__ import annotations

from ..params import Bool, Choice, Float, Int
from ..spec import Call, NodeSpec
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
    ]
    if kind == "RNN":
        params.insert(4, Choice("nonlinearity", "tanh", options=("tanh", "relu"),
                                doc="the activation of the hidden state"))
    return tuple(params)


def _dirs(p) -> int:
    return 2 if p["bidirectional"] else 1


def _rnn_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (3,), "(N, T, features) (batch first)")
    auto_size(p, "input_size", concrete(t.shape[2], "features per time step"), "features per time step")
    if p["dropout"] and p["num_layers"] == 1:
        raise ShapeError(f"dropout={p['dropout']} acts between stacked layers and needs num_layers of 2 or more")
    width = p["hidden_size"] * _dirs(p)
    shape = (BATCH, t.shape[1], width) if p["output"] == "sequence" else (BATCH, width)
    return {"out": TensorInfo(shape, t.dtype)}


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
        if p["output"] == "sequence":
            return f"{mod}({args[0]})[0]"
        # h_n is (num_layers * dirs, N, H); the last layer's states are its last dirs rows.
        h_n = f"{mod}({args[0]})[1][0]" if kind == "LSTM" else f"{mod}({args[0]})[1]"
        if p["bidirectional"]:
            return f"{h_n}[-2:].transpose(0, 1).flatten(1)"
        return f"{h_n}[-1]"
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
        type=kind, category="Recurrent", doc=doc, params=_rnn_params(kind), infer=_rnn_infer,
        module=_rnn_module(kind), forward=_rnn_forward(kind), cost=_rnn_cost(kind),
    )


RNN = _recurrent("RNN", "Elman recurrent layer over (N, T, features): h_t = tanh(W x_t + U h_(t-1) + b). "
                        "Gives the output sequence or the last hidden state.")
LSTM = _recurrent("LSTM", "Long short-term memory over (N, T, features): gated memory cells that keep "
                          "information over long sequences. Gives the output sequence or the last hidden "
                          "state.")
GRU = _recurrent("GRU", "Gated recurrent unit over (N, T, features): an LSTM with fewer gates and no separate "
                        "cell. Gives the output sequence or the last hidden state.")

SPECS = [Embedding, RNN, LSTM, GRU]
