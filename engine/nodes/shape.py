"""Nodes that rearrange a tensor without computing: Reshape, Permute and Split (one output per part).
(Flatten lives in layers.py.)"""

from __future__ import annotations

from ..params import Int, IntList
from ..spec import NodeSpec, PortSpec
from ._common import BATCH, Cost, ShapeError, TensorInfo, axis_index, format_shape


def _fixed_size(shape: tuple):
    """Values per sample, or the first run-time axis name when there is one."""
    n = 1
    for d in shape[1:]:
        if not isinstance(d, int):
            return d
        n *= d
    return n


# ---------------------------------------------------------------- Reshape

def _reshape_infer(p, ins):
    t = ins["in"]
    target = p["shape"]
    if target.count(-1) > 1:
        raise ShapeError(f"shape {list(target)} may contain at most one -1 (the axis worked out from the rest)")
    known = 1
    for d in target:
        if d != -1:
            known *= d
    size = _fixed_size(t.shape)
    want = format_shape((BATCH, *target))
    if not isinstance(size, int):
        if -1 not in target:
            raise ShapeError(f"cannot reshape {t} to the fixed shape {want}: the input has the run-time axis "
                             f"{size!r}; put -1 where that axis should go", "in")
        return {"out": TensorInfo((BATCH, *("?" if d == -1 else d for d in target)), t.dtype)}
    if -1 in target:
        if size % known:
            raise ShapeError(f"cannot reshape {t} ({size} values per sample) to {want}: {size} is not a "
                             f"multiple of {known}", "in")
        return {"out": TensorInfo((BATCH, *(size // known if d == -1 else d for d in target)), t.dtype)}
    if known != size:
        raise ShapeError(f"cannot reshape {t} ({size} values per sample) to {want} ({known} values)", "in")
    return {"out": TensorInfo((BATCH, *target), t.dtype)}


def _reshape_forward(p, args, mod):
    x = args[0]
    dims = "".join(f", {d}" for d in p["shape"])
    return f"{x}.reshape({x}.shape[0]{dims})"


Reshape = NodeSpec(
    type="Reshape", category="Shape",
    doc="Give each sample a new shape with the same number of values, e.g. (N, 784) -> (N, 1, 28, 28). "
        "One size may be -1: it is worked out from the others. The batch axis is kept.",
    params=(IntList("shape", [-1], min=1, special={-1: "worked out from the rest"},
                    doc="the new shape of one sample, without the batch axis"),),
    infer=_reshape_infer, forward=_reshape_forward, cost=lambda p, ins, outs: Cost(),
)


# ---------------------------------------------------------------- Permute

def _permute_infer(p, ins):
    t = ins["in"]
    dims = p["dims"]
    axes = list(range(1, t.rank))
    if sorted(dims) != axes:
        raise ShapeError(f"dims {list(dims)} must list each of the axes {', '.join(map(str, axes)) or 'none'} once: "
                         f"the non-batch axes of the {t.rank}-D input {t} (the batch axis 0 stays first)", "in")
    return {"out": TensorInfo((t.shape[0], *(t.shape[d] for d in dims)), t.dtype)}


Permute = NodeSpec(
    type="Permute", category="Shape",
    doc="Reorder the non-batch axes, e.g. dims [2, 1] turns (N, T, F) into (N, F, T) for a Conv1d, and "
        "[2, 3, 1] turns (N, C, H, W) into (N, H, W, C). Axis 0 (the batch) stays first.",
    params=(IntList("dims", [2, 1], min=1, doc="the input axes in their new order (1 = the axis after the "
                                                "batch)"),),
    infer=_permute_infer,
    forward=lambda p, args, mod: f"{args[0]}.permute(0, {', '.join(map(str, p['dims']))})",
    cost=lambda p, ins, outs: Cost(),
)


# ---------------------------------------------------------------- Split

def _split_outputs(p) -> tuple[PortSpec, ...]:
    return tuple(PortSpec(f"out{i}", f"part {i}") for i in range(1, p["parts"] + 1))


def _split_infer(p, ins):
    t = ins["in"]
    axis = axis_index(p["dim"], t.rank)
    if axis == 0:
        raise ShapeError("cannot split along the batch axis (dim 0)")
    k, sizes, size = p["parts"], p["sizes"], t.shape[axis]
    if sizes:
        if len(sizes) != k:
            raise ShapeError(f"sizes {list(sizes)} has {len(sizes)} entries but parts is {k}; give one size "
                             "per part (or none for equal parts)")
        if isinstance(size, int) and sum(sizes) != size:
            raise ShapeError(f"sizes {list(sizes)} add up to {sum(sizes)}, but axis {axis} of {t} has {size}",
                             "in")
        lengths = list(sizes)
    elif isinstance(size, int):
        if size < k:
            raise ShapeError(f"cannot split axis {axis} of {t} ({size} long) into {k} parts", "in")
        lengths = [size // k + (1 if i < size % k else 0) for i in range(k)]
    else:
        lengths = ["?"] * k
    outs = {}
    for i, n in enumerate(lengths, 1):
        shape = list(t.shape)
        shape[axis] = n
        outs[f"out{i}"] = TensorInfo(tuple(shape), t.dtype)
    return outs


def _split_forward(p, args, mod):
    if p["sizes"]:
        return f"torch.split({args[0]}, {list(p['sizes'])}, dim={p['dim']})"
    return f"torch.tensor_split({args[0]}, {p['parts']}, dim={p['dim']})"


Split = NodeSpec(
    type="Split", category="Shape",
    doc="Cut a tensor into parts along one axis, one output port per part (out1, out2, ...): equal parts "
        "(when the length does not divide, the first parts are one longer) or the given sizes.",
    outputs=_split_outputs,
    params=(
        Int("parts", 2, min=2, max=16, doc="how many parts, i.e. output ports"),
        Int("dim", 1, doc="the axis to cut (1 = channels or the axis after the batch)"),
        IntList("sizes", [], min=1, doc="length of each part, one per part; empty = equal parts"),
    ),
    infer=_split_infer, forward=_split_forward, cost=lambda p, ins, outs: Cost(),
)

SPECS = [Reshape, Permute, Split]
