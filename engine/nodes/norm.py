"""Normalisation that does not depend on the batch (LayerNorm, GroupNorm) and channel-wise dropout.
(BatchNorm and Dropout live in layers.py.)"""

from __future__ import annotations

from ..params import Bool, Float, Int
from ..spec import Call, NodeSpec
from ._common import Cost, ShapeError, call_module, concrete, expect_float, expect_rank, numel, pass_through
from ._emit import ExactCall, auto_size, kwargs_if


def _eps():
    return Float("eps", 1e-5, min=0.0, min_exclusive=True, doc="added to the variance for stability")


# ---------------------------------------------------------------- LayerNorm

def _normalized_shape(p, t) -> tuple:
    return t.shape[t.rank - p["axes"]:]


def _layernorm_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    k = p["axes"]
    if k > t.rank - 1:
        raise ShapeError(f"normalises over the last {k} axes, but the input {t} has only {t.rank - 1} besides "
                         "the batch axis", "in")
    for d in _normalized_shape(p, t):
        concrete(d, "values along each normalised axis")
    return pass_through(p, ins)


def _layernorm_module(p, ins):
    shape = _normalized_shape(p, ins["in"])
    kw = kwargs_if(eps=(p["eps"], 1e-5), elementwise_affine=(p["elementwise_affine"], True))
    if p["elementwise_affine"] and not p["bias"]:
        kw["bias"] = False
    return ExactCall("nn.LayerNorm", (shape[0] if len(shape) == 1 else shape,), kw)


def _layernorm_cost(p, ins, outs):
    size = 1
    for d in _normalized_shape(p, ins["in"]):
        size *= d
    weights = size * (1 + int(p["bias"])) if p["elementwise_affine"] else 0
    return Cost(weights, 5 * numel(ins["in"].shape))


LayerNorm = NodeSpec(
    type="LayerNorm", category="Normalization",
    doc="Normalise each sample over its last `axes` axes to mean 0 and variance 1, then learn a scale and "
        "shift per value: the normalisation of transformers (axes=1) and of some CNNs (axes=3: C, H, W).",
    params=(
        Int("axes", 1, min=1, max=8, doc="how many trailing axes to normalise over (1 = the features)"),
        _eps(),
        Bool("elementwise_affine", True, doc="learn a scale (and shift) per normalised value"),
        Bool("bias", True, doc="learn the shift too (with elementwise_affine)"),
    ),
    infer=_layernorm_infer, module=_layernorm_module, forward=call_module, cost=_layernorm_cost,
    label_prefix="ln",
)


# ---------------------------------------------------------------- GroupNorm

def _groupnorm_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    if t.rank < 2:
        raise ShapeError(f"expects an input with a channel axis (N, C, ...), got {t}", "in")
    c = auto_size(p, "num_channels", concrete(t.shape[1], "channels"), "channels")
    if c % p["num_groups"]:
        raise ShapeError(f"num_groups={p['num_groups']} must divide the {c} channels", "in")
    return pass_through(p, ins)


GroupNorm = NodeSpec(
    type="GroupNorm", category="Normalization",
    doc="Split the channels of (N, C, ...) into groups and normalise each group of each sample; works at "
        "any batch size, unlike BatchNorm. num_groups=1 is LayerNorm over (C, H, W); num_groups=C is "
        "InstanceNorm.",
    params=(
        Int("num_groups", 2, min=1, doc="groups the channels are split into; must divide the channels"),
        Int("num_channels", 0, min=1, special={0: "auto"}, doc="channels (auto = from the wire)"),
        _eps(),
        Bool("affine", True, doc="learn a scale (gamma) and shift (beta) per channel"),
    ),
    infer=_groupnorm_infer,
    module=lambda p, ins: Call("nn.GroupNorm", (p["num_groups"], ins["in"].shape[1]),
                               kwargs_if(eps=(p["eps"], 1e-5), affine=(p["affine"], True))),
    forward=call_module,
    cost=lambda p, ins, outs: Cost(2 * ins["in"].shape[1] if p["affine"] else 0, 5 * numel(ins["in"].shape)),
    label_prefix="gn",
)


# ---------------------------------------------------------------- Dropout2d

def _dropout2d_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (4,), "(N, C, H, W)")
    return pass_through(p, ins)


Dropout2d = NodeSpec(
    type="Dropout2d", category="Regularization",
    doc="While training, zero whole channels of (N, C, H, W) with probability p and scale the rest by "
        "1/(1-p); neighbouring pixels are correlated, so dropping single values regularises little.",
    params=(Float("p", 0.5, min=0.0, max=1.0, doc="probability of dropping a channel"),),
    infer=_dropout2d_infer,
    module=lambda p, ins: Call("nn.Dropout2d", (p["p"],)),
    forward=call_module, cost=lambda p, ins, outs: Cost(0, numel(outs["out"].shape)), label_prefix="drop",
)

SPECS = [LayerNorm, GroupNorm, Dropout2d]
