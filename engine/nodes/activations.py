"""Activation functions. Parameter-free ones compile to torch functions in forward()."""

from __future__ import annotations

from ..params import Int
from ..spec import NodeSpec, ShapeError
from ._common import axis_index, elementwise_cost, expect_float, pass_through


def _activation(type_name: str, doc: str, expr: str, flops: int = 1) -> NodeSpec:
    def infer(p, ins):
        expect_float(ins["in"])
        return pass_through(p, ins)

    return NodeSpec(
        type=type_name, category="Activations", doc=doc, infer=infer,
        forward=lambda p, args, mod: expr.format(x=args[0]), cost=elementwise_cost(flops),
    )


ReLU = _activation("ReLU", "max(0, x), element-wise.", "F.relu({x})")
Sigmoid = _activation("Sigmoid", "1 / (1 + exp(-x)), element-wise; squashes to (0, 1).", "torch.sigmoid({x})", 4)
Tanh = _activation("Tanh", "Hyperbolic tangent, element-wise; squashes to (-1, 1).", "torch.tanh({x})", 4)


def _softmax_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    if axis_index(p["dim"], t.rank) == 0:
        raise ShapeError("cannot take the softmax across the batch axis (dim 0)")
    return {"out": t}


Softmax = NodeSpec(
    type="Softmax", category="Activations",
    doc="exp(x) / sum(exp(x)) along one axis: turns scores into probabilities.",
    params=(Int("dim", -1, doc="the axis that sums to 1 (-1 = last)"),),
    infer=_softmax_infer,
    forward=lambda p, args, mod: f"F.softmax({args[0]}, dim={p['dim']})",
    cost=elementwise_cost(5),
)

SPECS = [ReLU, Sigmoid, Tanh, Softmax]
