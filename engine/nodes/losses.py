"""Loss nodes. They read model outputs (from Output nodes) and targets (from Target nodes) and compile
to a separate loss module for the trainer, so an exported model never carries its loss. Several loss
nodes in one graph are summed, each times its weight."""

from __future__ import annotations

from ..params import Choice, Float
from ..spec import LOSS, NodeSpec, PortSpec
from ._common import Cost, ShapeError, TensorInfo, expect_float, numel

LOSS_PORTS = (PortSpec("pred", "model output"), PortSpec("target", "what it should have been"))


def _weight():
    return Float("weight", 1.0, min=0.0, doc="this term's weight in the total loss")


def _reduction():
    return Choice("reduction", "mean", doc="how the per-element losses are combined", options=("mean", "sum"))


def _mse_infer(p, ins):
    pred, target = ins["pred"], ins["target"]
    expect_float(pred, "pred")
    expect_float(target, "target")
    if pred.shape != target.shape:
        raise ShapeError(f"pred {pred} and target {target} must have the same shape", "target")
    return {}


def _kw(p, **extra) -> str:
    parts = [f"{k}={v!r}" for k, v in extra.items()]
    if p["reduction"] != "mean":
        parts.append(f"reduction={p['reduction']!r}")
    return "".join(", " + s for s in parts)


MSELoss = NodeSpec(
    type="MSELoss", category="Loss", role=LOSS, doc="Mean squared error between prediction and target.",
    inputs=LOSS_PORTS, outputs=(), params=(_weight(), _reduction()), infer=_mse_infer,
    forward=lambda p, args, mod: f"F.mse_loss({args[0]}, {args[1]}{_kw(p)})",
    cost=lambda p, ins, outs: Cost(0, 3 * numel(ins["pred"].shape)),
)


def _ce_infer(p, ins):
    pred, target = ins["pred"], ins["target"]
    expect_float(pred, "pred")
    if pred.rank < 2:
        raise ShapeError(f"expects class scores (N, classes), got {pred}", "pred")
    if target.dtype == "int64":
        want = (pred.shape[0], *pred.shape[2:])
        if target.shape != want:
            raise ShapeError(f"class ids for scores {pred} must be shaped {TensorInfo(want)}, got {target}",
                             "target")
    elif target.shape != pred.shape:
        raise ShapeError(f"class probabilities must be shaped like the scores {pred}, got {target}", "target")
    return {}


def _ce_forward(p, args, mod):
    extra = {"label_smoothing": p["label_smoothing"]} if p["label_smoothing"] else {}
    return f"F.cross_entropy({args[0]}, {args[1]}{_kw(p, **extra)})"


CrossEntropyLoss = NodeSpec(
    type="CrossEntropyLoss", category="Loss", role=LOSS,
    doc="Softmax cross-entropy of raw class scores (logits) against class ids or probabilities.",
    inputs=(PortSpec("pred", "raw class scores (logits), no softmax"), PortSpec("target", "class ids")),
    outputs=(),
    params=(_weight(), _reduction(),
            Float("label_smoothing", 0.0, min=0.0, max=1.0, doc="mix this much of a uniform target in")),
    infer=_ce_infer, forward=_ce_forward,
    cost=lambda p, ins, outs: Cost(0, 4 * numel(ins["pred"].shape)), label_prefix="ce",
)

SPECS = [MSELoss, CrossEntropyLoss]
