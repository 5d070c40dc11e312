"""Activation functions. Parameter-free ones compile to torch functions in forward()."""

from __future__ import annotations

from ..params import Choice, Float, Int
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



def _float_infer(p, ins):
    expect_float(ins["in"])
    return pass_through(p, ins)


def _kw(**pairs) -> str:
    """', name=value' for each (value, default) pair whose value is not the default."""
    return "".join(f", {k}={v!r}" for k, (v, default) in pairs.items() if v != default)


LeakyReLU = NodeSpec(
    type="LeakyReLU", category="Activations",
    doc="x for x >= 0, negative_slope * x below: a ReLU whose negative side still passes a gradient (DCGAN's "
        "discriminator uses 0.2).",
    params=(Float("negative_slope", 0.01, min=0.0, doc="slope for negative inputs"),),
    infer=_float_infer,
    forward=lambda p, args, mod: f"F.leaky_relu({args[0]}, negative_slope={p['negative_slope']!r})",
    cost=elementwise_cost(2), label_prefix="lrelu",
)

ELU = NodeSpec(
    type="ELU", category="Activations",
    doc="x for x > 0, alpha * (exp(x) - 1) below: smooth, with negative outputs that pull the mean to 0.",
    params=(Float("alpha", 1.0, min=0.0, doc="the value approached for very negative inputs is -alpha"),),
    infer=_float_infer,
    forward=lambda p, args, mod: f"F.elu({args[0]}{_kw(alpha=(p['alpha'], 1.0))})",
    cost=elementwise_cost(4),
)

GELU = NodeSpec(
    type="GELU", category="Activations",
    doc="x * Phi(x) (Phi: the standard normal CDF), element-wise: the activation of BERT and GPT.",
    params=(Choice("approximate", "none", doc="'tanh' uses the faster tanh approximation (GPT-2)",
                   options=("none", "tanh")),),
    infer=_float_infer,
    forward=lambda p, args, mod: f"F.gelu({args[0]}{_kw(approximate=(p['approximate'], 'none'))})",
    cost=elementwise_cost(8),
)

SiLU = NodeSpec(
    type="SiLU", category="Activations", doc="x * sigmoid(x), element-wise (also called Swish).",
    infer=_float_infer, forward=lambda p, args, mod: f"F.silu({args[0]})", cost=elementwise_cost(5),
    aliases=("Swish",),
)

LogSoftmax = NodeSpec(
    type="LogSoftmax", category="Activations",
    doc="log(softmax(x)) along one axis, computed stably: the input NLLLoss and KLDivLoss expect.",
    params=(Int("dim", -1, doc="the axis whose probabilities are taken (-1 = last)"),),
    infer=_softmax_infer,
    forward=lambda p, args, mod: f"F.log_softmax({args[0]}, dim={p['dim']})",
    cost=elementwise_cost(5),
)

SPECS = [ReLU, Sigmoid, Tanh, Softmax, LeakyReLU, ELU, GELU, SiLU, LogSoftmax]
