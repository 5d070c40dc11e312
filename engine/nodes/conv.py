"""Convolutions beyond Conv2d: 1-D convolution over sequences, transposed (up-)convolution, and upsampling.
(Conv2d lives in layers.py.)"""

from __future__ import annotations

import math

from ..params import Bool, Choice, Float, Int, Ints, Padding
from ..spec import Call, NodeSpec
from ._common import BATCH, Cost, ShapeError, TensorInfo, call_module, concrete, expect_float, expect_rank, numel, \
    window_out
from ._emit import auto_size, kwargs_if

AUTO = {0: "auto"}


def _groups_check(g: int, cin: int, cout: int) -> None:
    if cin % g or cout % g:
        raise ShapeError(f"groups={g} must divide both the input channels ({cin}) and out_channels ({cout})", "in")


# ---------------------------------------------------------------- Conv1d

def _conv1d_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (3,), "(N, C, L)")
    cin = auto_size(p, "in_channels", concrete(t.shape[1], "input channels"), "channels")
    _groups_check(p["groups"], cin, p["out_channels"])
    k, s, d, pad = p["kernel_size"], p["stride"], p["dilation"], p["padding"]
    if pad == "same":
        if s != 1:
            raise ShapeError("padding='same' needs stride 1 (PyTorch does not support it with a stride)")
        length = t.shape[2]
    else:
        length = window_out(t.shape[2], k, s, 0 if pad == "valid" else pad[0], d)
    if length == 0:
        raise ShapeError(f"the kernel of {k} (dilation {d}) does not fit the input length {t.shape[2]} with "
                         f"padding {pad if isinstance(pad, str) else pad[0]}", "in")
    return {"out": TensorInfo((BATCH, p["out_channels"], length), t.dtype)}


def _conv1d_module(p, ins):
    pad = p["padding"]
    kw = {"kernel_size": p["kernel_size"]}
    kw.update(kwargs_if(stride=(p["stride"], 1), padding=(pad if isinstance(pad, str) else pad[0], 0),
                        dilation=(p["dilation"], 1), groups=(p["groups"], 1), bias=(p["bias"], True)))
    if kw.get("padding") == "valid":
        del kw["padding"]
    return Call("nn.Conv1d", (ins["in"].shape[1], p["out_channels"]), kw)


def _conv1d_cost(p, ins, outs):
    cin, cout, g = ins["in"].shape[1], p["out_channels"], p["groups"]
    per_out = (cin // g) * p["kernel_size"]
    return Cost(cout * per_out + (cout if p["bias"] else 0), numel(outs["out"].shape) * 2 * per_out)


Conv1d = NodeSpec(
    type="Conv1d", category="Convolution",
    doc="1-D convolution along a sequence shaped (N, C, L), e.g. audio or text features (channels first).",
    params=(
        Int("in_channels", 0, min=1, special=AUTO, doc="channels arriving (auto = from the wire)"),
        Int("out_channels", 16, min=1, doc="filters, i.e. channels produced"),
        Int("kernel_size", 3, min=1, doc="filter length"),
        Int("stride", 1, min=1, doc="step between filter positions"),
        Padding("padding", 0, n=1, min=0, doc="zeros added on each side; 'same' keeps L"),
        Int("dilation", 1, min=1, doc="spacing between filter taps"),
        Int("groups", 1, min=1, doc="split channels into groups convolved separately (depthwise = C)"),
        Bool("bias", True, doc="learn an additive bias per filter (off before BatchNorm)"),
    ),
    infer=_conv1d_infer, module=_conv1d_module, forward=call_module, cost=_conv1d_cost, label_prefix="conv",
)


# ---------------------------------------------------------------- ConvTranspose2d

def _deconv_out(size, k: int, s: int, pad: int, out_pad: int, d: int):
    if not isinstance(size, int):
        return size
    return (size - 1) * s - 2 * pad + d * (k - 1) + out_pad + 1


def _deconv_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (4,), "(N, C, H, W)")
    cin = auto_size(p, "in_channels", concrete(t.shape[1], "input channels"), "channels")
    _groups_check(p["groups"], cin, p["out_channels"])
    k, s, pad, op, d = p["kernel_size"], p["stride"], p["padding"], p["output_padding"], p["dilation"]
    for axis in range(2):
        if op[axis] >= max(s[axis], d[axis]):
            raise ShapeError(f"output_padding {list(op)} must be smaller than the stride {list(s)} or the "
                             f"dilation {list(d)} on each axis")
    hw = tuple(_deconv_out(t.shape[2 + a], k[a], s[a], pad[a], op[a], d[a]) for a in range(2))
    if any(isinstance(v, int) and v < 1 for v in hw):
        raise ShapeError(f"padding {list(pad)} is too large for the {k[0]}x{k[1]} kernel on the "
                         f"{t.shape[2]}x{t.shape[3]} input: the output would be {hw[0]}x{hw[1]}", "in")
    return {"out": TensorInfo((BATCH, p["out_channels"], *hw), t.dtype)}


def _deconv_module(p, ins):
    kw = {"kernel_size": p["kernel_size"]}
    kw.update(kwargs_if(stride=(p["stride"], (1, 1)), padding=(p["padding"], (0, 0)),
                        output_padding=(p["output_padding"], (0, 0)), groups=(p["groups"], 1),
                        bias=(p["bias"], True), dilation=(p["dilation"], (1, 1))))
    return Call("nn.ConvTranspose2d", (ins["in"].shape[1], p["out_channels"]), kw)


def _deconv_cost(p, ins, outs):
    cin, cout, g = ins["in"].shape[1], p["out_channels"], p["groups"]
    kh, kw = p["kernel_size"]
    per_in = (cout // g) * kh * kw  # each input value is scattered into this many outputs
    weights = cin * per_in + (cout if p["bias"] else 0)
    return Cost(weights, numel(ins["in"].shape) * 2 * per_in)


ConvTranspose2d = NodeSpec(
    type="ConvTranspose2d", category="Convolution",
    doc="Transposed 2-D convolution ('deconvolution'): learns to upsample (N, C, H, W), as in DCGAN "
        "generators and U-Net decoders. Out = (In - 1) * stride - 2 * padding + dilation * (kernel - 1) "
        "+ output_padding + 1.",
    params=(
        Int("in_channels", 0, min=1, special=AUTO, doc="channels arriving (auto = from the wire)"),
        Int("out_channels", 16, min=1, doc="channels produced"),
        Ints("kernel_size", 4, n=2, min=1, doc="filter height and width"),
        Ints("stride", 2, n=2, min=1, doc="upsampling factor (step between filter positions in the output)"),
        Ints("padding", 1, n=2, min=0, doc="rows and columns trimmed from each side of the output"),
        Ints("output_padding", 0, n=2, min=0, doc="extra rows and columns added on one side (picks among "
             "the sizes a stride makes ambiguous); smaller than the stride or dilation"),
        Ints("dilation", 1, n=2, min=1, doc="spacing between filter taps"),
        Int("groups", 1, min=1, doc="split channels into groups convolved separately"),
        Bool("bias", True, doc="learn an additive bias per output channel (off before BatchNorm)"),
    ),
    infer=_deconv_infer, module=_deconv_module, forward=call_module, cost=_deconv_cost,
    aliases=("Deconv2d",), label_prefix="deconv",
)


# ---------------------------------------------------------------- Upsample

def _upsample_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    expect_rank(t, (4,), "(N, C, H, W)")
    size = p["size"]
    if size != (0, 0):
        if 0 in size:
            raise ShapeError(f"size {list(size)} must give both height and width (or 0 for both to use "
                             "scale_factor)")
        hw = size
    else:
        s = p["scale_factor"]
        hw = tuple(math.floor(d * s) if isinstance(d, int) else d for d in t.shape[2:])
        if any(isinstance(v, int) and v < 1 for v in hw):
            raise ShapeError(f"scale_factor {s} shrinks the {t.shape[2]}x{t.shape[3]} input to nothing", "in")
    return {"out": TensorInfo((*t.shape[:2], *hw), t.dtype)}


def _upsample_module(p, ins):
    kw = {"size": p["size"]} if p["size"] != (0, 0) else {"scale_factor": p["scale_factor"]}
    kw["mode"] = p["mode"]
    if p["mode"] == "bilinear" and p["align_corners"]:
        kw["align_corners"] = True
    return Call("nn.Upsample", (), kw)


def _upsample_infer_checked(p, ins):
    if p["align_corners"] and p["mode"] != "bilinear":
        raise ShapeError("align_corners only applies to mode 'bilinear'")
    return _upsample_infer(p, ins)


Upsample = NodeSpec(
    type="Upsample", category="Convolution",
    doc="Resize images (N, C, H, W) by a scale factor or to a fixed size, without weights: nearest "
        "neighbour or bilinear. Often followed by a Conv2d in decoders.",
    params=(
        Float("scale_factor", 2.0, min=0.0, min_exclusive=True, doc="multiply H and W by this (sizes are "
              "rounded down); used when size is 0"),
        Ints("size", 0, n=2, min=0, doc="fixed output height and width (0 = use scale_factor)"),
        Choice("mode", "nearest", doc="how new pixels are filled in", options=("nearest", "bilinear")),
        Bool("align_corners", False, doc="bilinear only: align the corner pixels of input and output"),
    ),
    infer=_upsample_infer_checked, module=_upsample_module, forward=call_module,
    cost=lambda p, ins, outs: Cost(0, numel(outs["out"].shape) * (1 if p["mode"] == "nearest" else 8)),
    label_prefix="up",
)

SPECS = [Conv1d, ConvTranspose2d, Upsample]
