"""Attention: scaled dot-product (no weights of its own), multi-head (transformers) and additive
(Bahdanau) attention over encoder states. Sequences are batch-first, (N, T, features)."""

from __future__ import annotations

from ..params import Bool, Float, Int
from ..spec import Call, NodeSpec, PortSpec
from ._common import Cost, ShapeError, TensorInfo, concrete, expect_float, format_shape
from ._emit import ExactCall, auto_size, kwargs_if, product, size_or_one


def _dropout_arg(p) -> str:
    """Functional dropout runs in eval mode too unless told otherwise."""
    return f", dropout_p=({p['dropout']!r} if self.training else 0.0)" if p["dropout"] else ""


def _weights_outputs(main: str, doc: str):
    def outputs(p) -> tuple[PortSpec, ...]:
        ports = (PortSpec(main, doc),)
        if p["return_weights"]:
            ports += (PortSpec("weights", "the attention weights (each row sums to 1)"),)
        return ports
    return outputs


# ---------------------------------------------------------------- ScaledDotProductAttention

def _sdpa_infer(p, ins):
    q, k, v = ins["query"], ins["key"], ins["value"]
    for port, t in (("query", q), ("key", k), ("value", v)):
        expect_float(t, port)
        if t.rank < 3:
            raise ShapeError(f"expects a {port} of at least 3 axes (N, ..., length, features), got {t}", port)
    lead = q.shape[:-2]
    for port, t in (("key", k), ("value", v)):
        if t.shape[:-2] != lead:
            raise ShapeError(f"{port} {t} must have the same leading axes {format_shape(lead)} as the query {q}",
                             port)
    if k.shape[-1] != q.shape[-1]:
        raise ShapeError(f"key {k} must have the query's feature size {q.shape[-1]} (query {q})", "key")
    if v.shape[-2] != k.shape[-2]:
        raise ShapeError(f"value {v} must have as many positions as the key {k} (axis {k.rank - 2})", "value")
    return {"out": TensorInfo((*q.shape[:-1], v.shape[-1]), q.dtype)}


def _sdpa_forward(p, args, mod):
    causal = ", is_causal=True" if p["causal"] else ""
    return f"F.scaled_dot_product_attention({', '.join(args)}{_dropout_arg(p)}{causal})"


def _sdpa_cost(p, ins, outs):
    q, k, v = ins["query"], ins["key"], ins["value"]
    lead = product(q.shape[1:-2])
    ls, s = size_or_one(q.shape[-2]), size_or_one(k.shape[-2])
    e, ev = size_or_one(q.shape[-1]), size_or_one(v.shape[-1])
    return Cost(0, lead * (2 * ls * s * e + 5 * ls * s + 2 * ls * s * ev))


ScaledDotProductAttention = NodeSpec(
    type="ScaledDotProductAttention", category="Attention",
    doc="softmax(Q K^T / sqrt(E)) V over (N, ..., L, E) queries and (N, ..., S, E) keys and values; no "
        "weights of its own. Wire one tensor to all three ports for self-attention. (ONNX: the dynamo "
        "exporter translates only 4-D (N, heads, L, E) inputs; export 3-D ones with the legacy exporter.)",
    inputs=(PortSpec("query", "(N, ..., L, E)"), PortSpec("key", "(N, ..., S, E)"),
            PortSpec("value", "(N, ..., S, Ev)")),
    params=(
        Bool("causal", False, doc="each position attends only to itself and earlier ones (a decoder's mask)"),
        Float("dropout", 0.0, min=0.0, max=1.0, doc="dropout on the attention weights while training"),
    ),
    infer=_sdpa_infer, forward=_sdpa_forward, cost=_sdpa_cost, label_prefix="attn",
)


# ---------------------------------------------------------------- MultiheadAttention

def _mha_infer(p, ins):
    q, k, v = ins["query"], ins["key"], ins["value"]
    for port, t in (("query", q), ("key", k), ("value", v)):
        expect_float(t, port)
        if t.rank != 3:
            raise ShapeError(f"expects a 3-D {port} (N, length, features) (batch first), got {t}", port)
    e = auto_size(p, "embed_dim", concrete(q.shape[2], "query features", "query"), "query features", "query")
    concrete(k.shape[2], "key features", "key")
    concrete(v.shape[2], "value features", "value")
    if e % p["num_heads"]:
        raise ShapeError(f"num_heads={p['num_heads']} must divide embed_dim {e}", "query")
    if k.shape[1] != v.shape[1]:
        raise ShapeError(f"key {k} and value {v} must have the same length", "value")
    outs = {"out": TensorInfo(q.shape, q.dtype)}
    if p["return_weights"]:
        outs["weights"] = TensorInfo((q.shape[0], q.shape[1], k.shape[1]), q.dtype)
    return outs


def _mha_module(p, ins):
    e, kdim, vdim = ins["query"].shape[2], ins["key"].shape[2], ins["value"].shape[2]
    kw = kwargs_if(dropout=(p["dropout"], 0.0), bias=(p["bias"], True), kdim=(kdim, e), vdim=(vdim, e))
    kw["batch_first"] = True
    return Call("nn.MultiheadAttention", (e, p["num_heads"]), kw)


def _mha_forward(p, args, mod):
    if p["return_weights"]:
        return f"{mod}({', '.join(args)})"
    return f"{mod}({', '.join(args)}, need_weights=False)[0]"


def _mha_cost(p, ins, outs):
    e, kdim, vdim = ins["query"].shape[2], ins["key"].shape[2], ins["value"].shape[2]
    ls, s = size_or_one(ins["query"].shape[1]), size_or_one(ins["key"].shape[1])
    weights = e * e + e * kdim + e * vdim + e * e + (4 * e if p["bias"] else 0)
    macs = ls * e * e + s * e * kdim + s * e * vdim + 2 * ls * s * e + ls * e * e
    return Cost(weights, 2 * macs + 5 * p["num_heads"] * ls * s)


MultiheadAttention = NodeSpec(
    type="MultiheadAttention", category="Attention",
    doc="Multi-head attention as in transformers: project query, key and value, attend in num_heads "
        "heads, project back. Batch first: query (N, L, E), key and value (N, S, ...). Wire one tensor "
        "to all three ports for self-attention.",
    inputs=(PortSpec("query", "(N, L, E)"), PortSpec("key", "(N, S, kdim)"), PortSpec("value", "(N, S, vdim)")),
    outputs=_weights_outputs("out", "(N, L, E)"),
    params=(
        Int("embed_dim", 0, min=1, special={0: "auto"}, doc="query features E (auto = from the wire)"),
        Int("num_heads", 4, min=1, doc="heads; must divide embed_dim"),
        Float("dropout", 0.0, min=0.0, max=1.0, doc="dropout on the attention weights while training"),
        Bool("bias", True, doc="learn biases in the projections"),
        Bool("return_weights", False, doc="add an output 'weights' (N, L, S), averaged over the heads"),
    ),
    infer=_mha_infer, module=_mha_module, forward=_mha_forward, cost=_mha_cost, label_prefix="mha",
)


# ---------------------------------------------------------------- AdditiveAttention

def _additive_infer(p, ins):
    q, keys = ins["query"], ins["keys"]
    values = ins.get("values", keys)
    for port, t in (("query", q), ("keys", keys), ("values", values)):
        expect_float(t, port)
    if q.rank != 2:
        raise ShapeError(f"expects a 2-D query (N, features), e.g. a decoder state, got {q}", "query")
    for port, t in (("keys", keys), ("values", values)):
        if t.rank != 3:
            raise ShapeError(f"expects 3-D {port} (N, T, features) (batch first), got {t}", port)
    concrete(q.shape[1], "query features", "query")
    concrete(keys.shape[2], "key features", "keys")
    concrete(values.shape[2], "value features", "values")
    if values.shape[1] != keys.shape[1]:
        raise ShapeError(f"values {values} must have as many steps as the keys {keys}", "values")
    outs = {"context": TensorInfo((q.shape[0], values.shape[2]), q.dtype)}
    if p["return_weights"]:
        outs["weights"] = TensorInfo((q.shape[0], keys.shape[1]), q.dtype)
    return outs


def _additive_module(p, ins):
    a = p["attention_dim"]
    return ExactCall("nn.ModuleDict", ({
        "query": Call("nn.Linear", (ins["query"].shape[1], a), {"bias": False}),
        "key": Call("nn.Linear", (ins["keys"].shape[2], a)),
        "score": Call("nn.Linear", (a, 1), {"bias": False}),
    },))


def _additive_forward(p, args, mod):
    q, keys = args[0], args[1]
    values = args[2] if len(args) > 2 else keys
    # score_t = v . tanh(W_q q + W_k k_t), softmax over t, context = sum_t weight_t * value_t
    weights = f"F.softmax({mod}.score(torch.tanh({mod}.query({q}).unsqueeze(1) + {mod}.key({keys}))).squeeze(2), dim=1)"
    if p["return_weights"]:
        return f"(lambda w: (torch.bmm(w.unsqueeze(1), {values}).squeeze(1), w))({weights})"
    return f"torch.bmm({weights}.unsqueeze(1), {values}).squeeze(1)"


def _additive_cost(p, ins, outs):
    a, hq, hk = p["attention_dim"], ins["query"].shape[1], ins["keys"].shape[2]
    hv = ins.get("values", ins["keys"]).shape[2]
    t = size_or_one(ins["keys"].shape[1])
    weights = hq * a + hk * a + a + a
    return Cost(weights, 2 * hq * a + t * (2 * hk * a + 4 * a + 5 + 2 * hv))


AdditiveAttention = NodeSpec(
    type="AdditiveAttention", category="Attention",
    doc="Bahdanau attention: score each encoder state k_t against a query q (a decoder state) with "
        "v . tanh(W_q q + W_k k_t), softmax over t, and return the weighted sum of the values: query "
        "(N, Hq), keys (N, T, Hk) -> context (N, Hv). The values default to the keys.",
    inputs=(PortSpec("query", "(N, Hq), e.g. the decoder state"), PortSpec("keys", "(N, T, Hk) encoder states"),
            PortSpec("values", "(N, T, Hv); the keys when not wired", optional=True)),
    outputs=_weights_outputs("context", "(N, Hv)"),
    params=(
        Int("attention_dim", 64, min=1, doc="size of the scoring layer"),
        Bool("return_weights", False, doc="add an output 'weights' (N, T): how much each step counted"),
    ),
    infer=_additive_infer, module=_additive_module, forward=_additive_forward, cost=_additive_cost,
    aliases=("BahdanauAttention",), label_prefix="attn",
)

SPECS = [ScaledDotProductAttention, MultiheadAttention, AdditiveAttention]
