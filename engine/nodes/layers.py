"""Dense, convolution, pooling, reshaping, normalisation and dropout layers."""

from __future__ import annotations

from ..params import Bool, Float, Int, Ints, Padding
from ..spec import Call, NodeSpec
from ._common import (BATCH, Cost, ShapeError, TensorInfo, axis_index, call_module, concrete,
                      elementwise_cost, expect_float, expect_rank, numel, pass_through, window_out)

AUTO = {0: "auto"}


def _auto_size(p: dict, key: str, arriving: int, what: str) -> int:
    """A size param that is 0 ("auto") takes what arrives; a set one must match it."""
    want = p[key]
    if want and want != arriving:
        raise ShapeError(f"expects {want} input {what}, got {arriving}", "in")
    return arriving


# ---------------------------------------------------------------- Linear

def _linear_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    if t.rank < 2:
        raise ShapeError(f"expects an input with a feature axis (N, features), got {t}", "in")
    fin = concrete(t.shape[-1], "input features")
    _auto_size(p, "in_features", fin, "features")
    return {"out": TensorInfo((*t.shape[:-1], p["out_features"]), t.dtype)}


def _linear_cost(p, ins, outs):
    fin, fout = ins["in"].shape[-1], p["out_features"]
    rows = numel(ins["in"].shape) // fin
    return Cost(fin * fout + (fout if p["bias"] else 0), rows * fout * (2 * fin))


Linear = NodeSpec(
    type="Linear", category="Layers", doc="Fully connected layer: y = x W^T + b over the last axis.",
    params=(
        Int("in_features", 0, min=1, special=AUTO, doc="features arriving (auto = from the wire)"),
        Int("out_features", 10, min=1, doc="features produced"),
        Bool("bias", True, doc="learn an additive bias"),
    ),
    infer=_linear_infer,
    module=lambda p, ins: Call("nn.Linear", (ins["in"].shape[-1], p["out_features"]),
                               {} if p["bias"] else {"bias": False}),
    forward=call_module, cost=_linear_cost, aliases=("Dense",), label_prefix="fc",
)


# ---------------------------------------------------------------- Conv2d

def _conv2d_geometry(p, t: TensorInfo):
    k, s, d = p["kernel_size"], p["stride"], p["dilation"]
    pad = p["padding"]
    if pad == "valid":
        pad = (0, 0)
    out_hw = []
    for axis, size in enumerate(t.shape[2:]):
        if pad == "same":
            out_hw.append(size)
        else:
            out_hw.append(window_out(size, k[axis], s[axis], pad[axis], d[axis]))
    return tuple(out_hw)


def _conv2d_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (4,), "(N, C, H, W)")
    cin = _auto_size(p, "in_channels", concrete(t.shape[1], "input channels"), "channels")
    g = p["groups"]
    if cin % g or p["out_channels"] % g:
        raise ShapeError(f"groups={g} must divide both the input channels ({cin}) and out_channels "
                         f"({p['out_channels']})", "in")
    if p["padding"] == "same" and p["stride"] != (1, 1):
        raise ShapeError("padding='same' needs stride 1 (PyTorch does not support it with a stride)")
    h, w = _conv2d_geometry(p, t)
    if h == 0 or w == 0:
        k = p["kernel_size"]
        raise ShapeError(f"the {k[0]}x{k[1]} kernel (dilation {p['dilation'][0]}) does not fit the "
                         f"{t.shape[2]}x{t.shape[3]} input with padding {p['padding']}", "in")
    return {"out": TensorInfo((BATCH, p["out_channels"], h, w), t.dtype)}


def _conv_kwargs(p) -> dict:
    kw = {"kernel_size": p["kernel_size"]}
    if p["stride"] != (1, 1):
        kw["stride"] = p["stride"]
    if p["padding"] not in ((0, 0), "valid"):
        kw["padding"] = p["padding"]
    if p["dilation"] != (1, 1):
        kw["dilation"] = p["dilation"]
    if p["groups"] != 1:
        kw["groups"] = p["groups"]
    if not p["bias"]:
        kw["bias"] = False
    return kw


def _conv2d_cost(p, ins, outs):
    cin, cout, g = ins["in"].shape[1], p["out_channels"], p["groups"]
    kh, kw = p["kernel_size"]
    per_out = (cin // g) * kh * kw
    weights = cout * per_out + (cout if p["bias"] else 0)
    return Cost(weights, numel(outs["out"].shape) * 2 * per_out)


Conv2d = NodeSpec(
    type="Conv2d", category="Convolution", doc="2-D convolution over images shaped (N, C, H, W).",
    params=(
        Int("in_channels", 0, min=1, special=AUTO, doc="channels arriving (auto = from the wire)"),
        Int("out_channels", 16, min=1, doc="filters, i.e. channels produced"),
        Ints("kernel_size", 3, n=2, min=1, doc="filter height and width"),
        Ints("stride", 1, n=2, min=1, doc="step between filter positions"),
        Padding("padding", 0, n=2, min=0, doc="zeros added on each side; 'same' keeps H and W"),
        Ints("dilation", 1, n=2, min=1, doc="spacing between filter taps"),
        Int("groups", 1, min=1, doc="split channels into groups convolved separately (depthwise = C)"),
        Bool("bias", True, doc="learn an additive bias per filter (off before BatchNorm)"),
    ),
    infer=_conv2d_infer,
    module=lambda p, ins: Call("nn.Conv2d", (ins["in"].shape[1], p["out_channels"]), _conv_kwargs(p)),
    forward=call_module, cost=_conv2d_cost, label_prefix="conv",
)


# ---------------------------------------------------------------- pooling

def _pool_params(default_kernel=2):
    return (
        Ints("kernel_size", default_kernel, n=2, min=1, doc="window height and width"),
        Ints("stride", 0, n=2, min=0, doc="step between windows (0 = the kernel size)"),
        Ints("padding", 0, n=2, min=0, doc="padding on each side; at most half the kernel"),
        Bool("ceil_mode", False, doc="round the output size up instead of down"),
    )


def _stride(p):
    return tuple(s or k for s, k in zip(p["stride"], p["kernel_size"]))


def _pool_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (4,), "(N, C, H, W)")
    k, s, pad = p["kernel_size"], _stride(p), p["padding"]
    if any(pd * 2 > kk for pd, kk in zip(pad, k)):
        raise ShapeError(f"padding {list(pad)} must be at most half the kernel size {list(k)}")
    hw = tuple(window_out(size, k[i], s[i], pad[i], 1, p["ceil_mode"]) for i, size in enumerate(t.shape[2:]))
    if 0 in hw:
        raise ShapeError(f"the {k[0]}x{k[1]} window does not fit the {t.shape[2]}x{t.shape[3]} input", "in")
    return {"out": TensorInfo((*t.shape[:2], *hw), t.dtype)}


def _pool_module(cls):
    def module(p, ins):
        kw = {"kernel_size": p["kernel_size"]}
        if _stride(p) != p["kernel_size"]:
            kw["stride"] = _stride(p)
        if p["padding"] != (0, 0):
            kw["padding"] = p["padding"]
        if p["ceil_mode"]:
            kw["ceil_mode"] = True
        return Call(cls, (), kw)
    return module


def _pool_cost(p, ins, outs):
    kh, kw = p["kernel_size"]
    return Cost(0, numel(outs["out"].shape) * kh * kw)


MaxPool2d = NodeSpec(
    type="MaxPool2d", category="Pooling", doc="Largest value in each window, per channel.",
    params=_pool_params(), infer=_pool_infer, module=_pool_module("nn.MaxPool2d"),
    forward=call_module, cost=_pool_cost, label_prefix="pool",
)
AvgPool2d = NodeSpec(
    type="AvgPool2d", category="Pooling", doc="Mean of each window, per channel (LeNet's subsampling).",
    params=_pool_params(), infer=_pool_infer, module=_pool_module("nn.AvgPool2d"),
    forward=call_module, cost=_pool_cost, label_prefix="pool",
)


def _global_pool_infer(p, ins):
    """Global pooling over H and W (average or max): (N, C, H, W) -> (N, C), or (N, C, 1, 1) with keepdim."""
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (4,), "(N, C, H, W)")
    return {"out": TensorInfo(t.shape[:2] + ((1, 1) if p["keepdim"] else ()), t.dtype)}


GlobalAvgPool2d = NodeSpec(
    type="GlobalAvgPool2d", category="Pooling",
    doc="Mean over all of H and W: (N, C, H, W) -> (N, C), as before a ResNet's classifier.",
    params=(Bool("keepdim", False, doc="keep H and W as size-1 axes: (N, C, 1, 1)"),),
    infer=_global_pool_infer,
    forward=lambda p, args, mod: f"{args[0]}.mean(dim=(2, 3){', keepdim=True' if p['keepdim'] else ''})",
    cost=lambda p, ins, outs: Cost(0, numel(ins["in"].shape)),
    aliases=("GlobalAveragePooling",), label_prefix="gap",
)


# ---------------------------------------------------------------- reshaping

def _flatten_infer(p, ins):
    t = ins["in"]
    start = axis_index(p["start_dim"], t.rank, "start_dim")
    end = axis_index(p["end_dim"], t.rank, "end_dim")
    if start == 0:
        raise ShapeError("cannot flatten the batch axis (start_dim must be 1 or more)")
    if end < start:
        raise ShapeError(f"end_dim ({p['end_dim']}) comes before start_dim ({p['start_dim']}) for a {t.rank}-D input")
    middle = t.shape[start:end + 1]
    size = 1
    for d in middle:
        if not isinstance(d, int):
            size = "?"
            break
        size *= d
    return {"out": TensorInfo((*t.shape[:start], size, *t.shape[end + 1:]), t.dtype)}


def _flatten_forward(p, args, mod):
    if p["end_dim"] == -1:
        return f"torch.flatten({args[0]}, {p['start_dim']})"
    return f"torch.flatten({args[0]}, {p['start_dim']}, {p['end_dim']})"


Flatten = NodeSpec(
    type="Flatten", category="Shape", doc="Merge axes into one, e.g. (N, 16, 5, 5) -> (N, 400) before a Linear.",
    params=(Int("start_dim", 1, doc="first axis to merge (1 = just after the batch)"),
            Int("end_dim", -1, doc="last axis to merge (-1 = the last)")),
    infer=_flatten_infer, forward=_flatten_forward, cost=lambda p, ins, outs: Cost(),
)


# ---------------------------------------------------------------- normalisation and dropout

def _batchnorm(type_name: str, ranks: tuple[int, ...], layout: str, doc: str, aliases=()) -> NodeSpec:
    def infer(p, ins):
        t = ins["in"]
        expect_float(t)
        expect_rank(t, ranks, layout)
        _auto_size(p, "num_features", concrete(t.shape[1], "channels"), "channels")
        return {"out": t}

    def module(p, ins):
        kw = {}
        if p["eps"] != 1e-5:
            kw["eps"] = p["eps"]
        if p["momentum"] != 0.1:
            kw["momentum"] = p["momentum"]
        if not p["affine"]:
            kw["affine"] = False
        return Call(f"nn.{type_name}", (ins["in"].shape[1],), kw)

    return NodeSpec(
        type=type_name, category="Normalization", doc=doc,
        params=(
            Int("num_features", 0, min=1, special=AUTO, doc="channels (auto = from the wire)"),
            Float("eps", 1e-5, min=0.0, min_exclusive=True, doc="added to the variance for stability"),
            Float("momentum", 0.1, min=0.0, max=1.0, doc="weight of each batch in the running statistics"),
            Bool("affine", True, doc="learn a scale (gamma) and shift (beta) per channel"),
        ),
        infer=infer, module=module, forward=call_module,
        cost=lambda p, ins, outs: Cost(2 * ins["in"].shape[1] if p["affine"] else 0, 2 * numel(ins["in"].shape)),
        aliases=aliases, label_prefix="bn",
    )


BatchNorm2d = _batchnorm("BatchNorm2d", (4,), "(N, C, H, W)",
                         "Normalise each channel over the batch and H, W; learn scale and shift.",
                         aliases=("BatchNorm",))
BatchNorm1d = _batchnorm("BatchNorm1d", (2, 3), "(N, C) or (N, C, L)",
                         "Normalise each feature over the batch (and length); learn scale and shift.")


def _dropout_infer(p, ins):
    expect_float(ins["in"])
    return pass_through(p, ins)


Dropout = NodeSpec(
    type="Dropout", category="Regularization",
    doc="While training, zero each value with probability p and scale the rest by 1/(1-p).",
    params=(Float("p", 0.5, min=0.0, max=1.0, doc="probability of dropping a value"),),
    infer=_dropout_infer,
    module=lambda p, ins: Call("nn.Dropout", (p["p"],)),
    forward=call_module, cost=elementwise_cost(1), label_prefix="drop",
)

SPECS = [Linear, Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten, BatchNorm1d, BatchNorm2d, Dropout]
