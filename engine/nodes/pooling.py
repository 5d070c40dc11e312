"""More pooling and a local normalisation: adaptive and global pooling, 1-D pooling over sequences, and
AlexNet's local response normalisation. (MaxPool2d, AvgPool2d and GlobalAvgPool2d live in layers.py.)"""

from __future__ import annotations

from ..params import Bool, Float, Int, Ints
from ..spec import Call, NodeSpec
from .layers import _global_pool_infer
from ._common import (Cost, ShapeError, TensorInfo, call_module, expect_float, expect_rank, numel,
                      pass_through, window_out)


# ---------------------------------------------------------------- AdaptiveAvgPool2d

def _adaptive_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (4,), "(N, C, H, W)")
    return {"out": TensorInfo((*t.shape[:2], *p["output_size"]), t.dtype)}


def _adaptive_cost(p, ins, outs):
    # Every input value is summed into at least one window; windows overlap when the output is larger
    # than the input, so count the larger of the two.
    return Cost(0, max(numel(ins["in"].shape), numel(outs["out"].shape)))


AdaptiveAvgPool2d = NodeSpec(
    type="AdaptiveAvgPool2d", category="Pooling",
    doc="Average-pool to a fixed output height and width whatever the input size (AlexNet and VGG use (7, 7) "
        "or (6, 6) before the classifier, so they also run on other image sizes).",
    params=(Ints("output_size", 1, n=2, min=1, doc="output height and width"),),
    infer=_adaptive_infer,
    module=lambda p, ins: Call("nn.AdaptiveAvgPool2d", (tuple(p["output_size"]),)),
    forward=call_module, cost=_adaptive_cost, label_prefix="avgpool",
)


# ---------------------------------------------------------------- GlobalMaxPool2d

GlobalMaxPool2d = NodeSpec(
    type="GlobalMaxPool2d", category="Pooling",
    doc="Largest value over all of H and W: (N, C, H, W) -> (N, C).",
    params=(Bool("keepdim", False, doc="keep H and W as size-1 axes: (N, C, 1, 1)"),),
    infer=_global_pool_infer,
    forward=lambda p, args, mod: f"torch.amax({args[0]}, dim=(2, 3){', keepdim=True' if p['keepdim'] else ''})",
    cost=lambda p, ins, outs: Cost(0, numel(ins["in"].shape)),
    aliases=("GlobalMaxPooling",), label_prefix="gmp",
)


# ---------------------------------------------------------------- MaxPool1d, AvgPool1d

def _pool1d_params():
    return (
        Int("kernel_size", 2, min=1, doc="window length"),
        Int("stride", 0, min=0, doc="step between windows (0 = the kernel size)"),
        Int("padding", 0, min=0, doc="padding on each end; at most half the kernel"),
        Bool("ceil_mode", False, doc="round the output length up instead of down"),
    )


def _stride1d(p) -> int:
    return p["stride"] or p["kernel_size"]


def _pool1d_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (3,), "(N, C, L)")
    k, s, pad = p["kernel_size"], _stride1d(p), p["padding"]
    if pad * 2 > k:
        raise ShapeError(f"padding {pad} must be at most half the kernel size {k}")
    length = window_out(t.shape[2], k, s, pad, 1, p["ceil_mode"])
    if length == 0:
        raise ShapeError(f"the window of {k} does not fit the input of length {t.shape[2]}", "in")
    return {"out": TensorInfo((*t.shape[:2], length), t.dtype)}


def _pool1d_module(cls: str):
    def module(p, ins):
        kw = {"kernel_size": p["kernel_size"]}
        if _stride1d(p) != p["kernel_size"]:
            kw["stride"] = _stride1d(p)
        if p["padding"]:
            kw["padding"] = p["padding"]
        if p["ceil_mode"]:
            kw["ceil_mode"] = True
        return Call(cls, (), kw)
    return module


def _pool1d_cost(p, ins, outs):
    return Cost(0, numel(outs["out"].shape) * p["kernel_size"])


MaxPool1d = NodeSpec(
    type="MaxPool1d", category="Pooling", doc="Largest value in each window along L, per channel: (N, C, L).",
    params=_pool1d_params(), infer=_pool1d_infer, module=_pool1d_module("nn.MaxPool1d"),
    forward=call_module, cost=_pool1d_cost, label_prefix="pool",
)
AvgPool1d = NodeSpec(
    type="AvgPool1d", category="Pooling", doc="Mean of each window along L, per channel: (N, C, L).",
    params=_pool1d_params(), infer=_pool1d_infer, module=_pool1d_module("nn.AvgPool1d"),
    forward=call_module, cost=_pool1d_cost, label_prefix="pool",
)


# ---------------------------------------------------------------- LocalResponseNorm

def _lrn_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    if t.rank < 3:
        raise ShapeError(f"expects channels and at least one spatial axis (N, C, ...), got {t}", "in")
    return pass_through(p, ins)


def _lrn_module(p, ins):
    kw = {}
    if p["alpha"] != 1e-4:
        kw["alpha"] = p["alpha"]
    if p["beta"] != 0.75:
        kw["beta"] = p["beta"]
    if p["k"] != 1.0:
        kw["k"] = p["k"]
    return Call("nn.LocalResponseNorm", (p["size"],), kw)


LocalResponseNorm = NodeSpec(
    type="LocalResponseNorm", category="Normalization",
    doc="Divide each value by (k + alpha/size * sum of squares over `size` neighbouring channels)^beta. "
        "AlexNet: size 5, beta 0.75, k 2, alpha 5e-4 (the paper's 1e-4, which it does not divide by size). "
        "No learned parameters.",
    params=(
        Int("size", 5, min=1, doc="neighbouring channels summed over"),
        Float("alpha", 1e-4, min=0.0, doc="scale of the sum of squares (divided by size)"),
        Float("beta", 0.75, min=0.0, doc="exponent"),
        Float("k", 1.0, min=0.0, doc="additive constant (AlexNet uses 2)"),
    ),
    infer=_lrn_infer, module=_lrn_module, forward=call_module,
    cost=lambda p, ins, outs: Cost(0, numel(ins["in"].shape) * (2 * p["size"] + 4)), label_prefix="lrn",
)

SPECS = [AdaptiveAvgPool2d, GlobalMaxPool2d, MaxPool1d, AvgPool1d, LocalResponseNorm]
