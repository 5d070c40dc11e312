"""Nodes that join branches: Add (residual connections), Multiply (gates) and Concat (inception, U-Net skips)."""

from __future__ import annotations

from ..params import Int
from ..spec import NodeSpec, PortSpec
from ._common import Cost, ShapeError, TensorInfo, axis_index, format_shape, numel


def _numbered_inputs(p) -> tuple[PortSpec, ...]:
    return tuple(PortSpec(f"in{i}") for i in range(1, p["inputs"] + 1))


def _inputs_param():
    return Int("inputs", 2, min=2, max=16, doc="how many tensors to join")


def _elementwise_infer(verb: str):
    def infer(p, ins):
        tensors = list(ins.items())
        dtype = tensors[0][1].dtype
        shape = tensors[0][1].shape
        for port, t in tensors[1:]:
            if t.dtype != dtype:
                raise ShapeError(f"cannot {verb} {dtype} and {t.dtype} tensors", port)
            shape = _broadcast(shape, t.shape, port, verb)
        return {"out": TensorInfo(shape, dtype)}
    return infer


_add_infer = _elementwise_infer("add")


def _broadcast(a: tuple, b: tuple, port: str, verb: str = "add") -> tuple:
    """PyTorch broadcasting, with a message that points at the axis that disagrees."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            axis = max(len(a), len(b)) - i
            raise ShapeError(f"cannot {verb} {format_shape(a)} and {format_shape(b)}: axis {axis} is {da} on one "
                             f"side and {db} on the other", port)
    return tuple(reversed(out))


Add = NodeSpec(
    type="Add", category="Merge",
    doc="Element-wise sum of its inputs (shapes must match or broadcast): the join of a residual block.",
    inputs=_numbered_inputs, params=(_inputs_param(),), infer=_add_infer,
    forward=lambda p, args, mod: " + ".join(args),
    cost=lambda p, ins, outs: Cost(0, (len(ins) - 1) * numel(outs["out"].shape)),
)

Multiply = NodeSpec(
    type="Multiply", category="Merge",
    doc="Element-wise product of its inputs (shapes must match or broadcast): gates, attention masks, "
        "feature-wise scaling.",
    inputs=_numbered_inputs, params=(_inputs_param(),), infer=_elementwise_infer("multiply"),
    forward=lambda p, args, mod: " * ".join(args),
    cost=lambda p, ins, outs: Cost(0, (len(ins) - 1) * numel(outs["out"].shape)), label_prefix="mul",
)


Subtract = NodeSpec(
    type="Subtract", category="Merge",
    doc="Element-wise difference in1 - in2 (shapes must match or broadcast).",
    inputs=(PortSpec("in1", "minuend"), PortSpec("in2", "subtrahend")), infer=_elementwise_infer("subtract"),
    forward=lambda p, args, mod: f"{args[0]} - {args[1]}",
    cost=lambda p, ins, outs: Cost(0, numel(outs["out"].shape)), label_prefix="sub",
)


def _concat_infer(p, ins):
    tensors = list(ins.items())
    first = tensors[0][1]
    axis = axis_index(p["dim"], first.rank)
    if axis == 0:
        raise ShapeError("cannot concatenate along the batch axis (dim 0)")
    total = 0
    for port, t in tensors:
        if t.rank != first.rank or t.dtype != first.dtype:
            raise ShapeError(f"all inputs need the same number of axes and dtype; in1 is {first} {first.dtype}, "
                             f"{port} is {t} {t.dtype}", port)
        for i, (da, db) in enumerate(zip(first.shape, t.shape)):
            if i != axis and da != db:
                raise ShapeError(f"inputs must agree on every axis except dim {p['dim']}; in1 is {first}, "
                                 f"{port} is {t} (axis {i} differs)", port)
        d = t.shape[axis]
        total = "?" if not isinstance(d, int) or total == "?" else total + d
    shape = list(first.shape)
    shape[axis] = total
    return {"out": TensorInfo(tuple(shape), first.dtype)}


Concat = NodeSpec(
    type="Concat", category="Merge",
    doc="Join inputs along one axis (channels by default), e.g. the branches of an inception module.",
    inputs=_numbered_inputs,
    params=(_inputs_param(), Int("dim", 1, doc="the axis to join along (1 = channels)")),
    infer=_concat_infer,
    forward=lambda p, args, mod: f"torch.cat([{', '.join(args)}], dim={p['dim']})",
    cost=lambda p, ins, outs: Cost(0, 0), label_prefix="cat",
)

SPECS = [Add, Multiply, Subtract, Concat]
