"""Where tensors enter and leave: Input, Output, and Target (training labels that only loss nodes read)."""

from __future__ import annotations

from ..params import Choice, Shape
from ..spec import INPUT, OUTPUT, TARGET, NodeSpec, PortSpec
from ._common import BATCH, TensorInfo

DTYPES = ("float32", "int64")


def _source(p, ins):
    return {"out": TensorInfo((BATCH, *p["shape"]), p["dtype"])}


Input = NodeSpec(
    type="Input", category="Input/Output", role=INPUT,
    doc="A model input: one argument of forward(), shaped (N, *shape).",
    inputs=(), outputs=(PortSpec("out"),),
    params=(
        Shape("shape", [1, 28, 28], doc="size of one sample, without the batch axis"),
        Choice("dtype", "float32", doc="float32 for data, int64 for token or class ids", options=DTYPES),
    ),
    infer=_source, label_prefix="input",
)

Output = NodeSpec(
    type="Output", category="Input/Output", role=OUTPUT,
    doc="A model output: returned by forward(); loss nodes read it from this node's port.",
    inputs=(PortSpec("in"),), outputs=(PortSpec("out", "the same tensor, for loss nodes"),),
    infer=lambda p, ins: {"out": ins["in"]}, label_prefix="output",
)

Target = NodeSpec(
    type="Target", category="Input/Output", role=TARGET,
    doc="Training targets (labels or values) for loss nodes; never part of the exported model.",
    inputs=(), outputs=(PortSpec("out"),),
    params=(
        Shape("shape", [], doc="size of one target without the batch axis; [] for one class id per sample"),
        Choice("dtype", "int64", doc="int64 for class ids, float32 for values", options=DTYPES),
    ),
    infer=_source, label_prefix="target",
)

SPECS = [Input, Output, Target]
