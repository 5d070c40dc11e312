"""Importing ONNX's recurrent ops (LSTM, GRU, RNN) and the layouts around them.

ONNX runs a recurrent op time-major: X is (T, N, F), Y is (T, directions, N, H), Y_h is (directions, N,
H), and exporters wrap the op in Transposes, Reshapes, Squeezes and Gathers to get back to PyTorch's
batch-first tensors. DeepCanvas has no node for a time-major tensor, and needs none: a recurrent node
takes (N, T, F) and gives either the output sequence (N, T, H * directions) or the last hidden state
(N, H * directions).

So a tensor in such a layout is kept as a ``View``: the DeepCanvas value it rearranges plus its axes,
each a group of named atoms (``n``, ``t``, ``d``, ``h``, ...). Transpose, Squeeze, Unsqueeze, Reshape,
Gather, Slice and Concat (of the per-layer final states) act on the atoms; once a View's axes are the
layout of the value it rearranges, it *is* that value again; a recurrent op takes a View that is its
batch-first input seen time-major. One ONNX op becomes one node with ``num_layers=1`` (a stack of ops,
a stack of nodes: the same weights and outputs), gate order and biases converted to PyTorch's. Its
output is the sequence when anything reads Y, else the last hidden state; the final states (Y_h, Y_c)
come from the node's h_n / c_n ports when the sequence is read too. Initial states are zeros (absent,
or made at run time) or another node's final state; anything else is listed as unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .spec import BATCH, TensorInfo

# ONNX gate order -> PyTorch gate order, as block indices
GATE_ORDER = {"LSTM": [0, 2, 3, 1],  # ONNX i, o, f, c  -> torch i, f, g, o
              "GRU": [1, 0, 2],      # ONNX z, r, h     -> torch r, z, n
              "RNN": [0]}
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


class Unsupported(Exception):
    pass


@dataclass
class View:
    """A tensor that rearranges ``base``, a value of the DeepCanvas graph (None for a stack of parts)."""

    base: Any
    sizes: dict[str, Any]  # atom -> size (int or a symbolic name)
    layout: list[tuple]  # the base's own axes, as atom groups
    axes: list[tuple]  # this tensor's axes
    parts: list["View"] = field(default_factory=list)  # a Concat of per-layer final states along axis 0

    def size(self, group: tuple):
        """The size of an axis made of these atoms: an int, a run-time axis name, or '?' (mixed)."""
        symbolic = [self.sizes[a] for a in group if not isinstance(self.sizes[a], int)]
        fixed = int(np.prod([self.sizes[a] for a in group if isinstance(self.sizes[a], int)]))
        if not symbolic:
            return fixed
        return symbolic[0] if len(symbolic) == 1 and fixed == 1 else "?"

    def _norm(self, groups) -> list[tuple]:
        """Axes with their size-1 atoms left out (an axis of size 1 stays, as ())."""
        return [tuple(a for a in g if self.sizes.get(a) != 1) for g in groups]

    def resolved(self) -> bool:
        return not self.parts and self._norm(self.axes) == self._norm(self.layout)

    def with_axes(self, axes) -> "View":
        return View(self.base, self.sizes, self.layout, list(axes))

    def is_time_major_input(self) -> bool:
        """(T, N, rest) of a batch-first (N, T, rest) value: what a layout-0 recurrent op reads."""
        lay = self._norm(self.layout)
        return not self.parts and len(lay) >= 2 and self._norm(self.axes) == [lay[1], lay[0], *lay[2:]]


def view_of_value(value, perm: list[int]) -> View:
    """A plain batch-first value seen through a Transpose that moves the batch axis."""
    atoms = [f"a{i}" for i in range(value.info.rank)]
    sizes = {a: (d if isinstance(d, int) else str(d)) for a, d in zip(atoms, value.info.shape)}
    layout = [(a,) for a in atoms]
    return View(value, sizes, layout, [layout[p] for p in perm])


def base_value(builder, view: View):
    """The DeepCanvas value a View rearranges."""
    return view.base


# ----------------------------------------------------------------------------- ops on views
def transpose(view: View, perm: list[int]) -> View:
    if view.parts:
        raise Unsupported("a transpose of stacked final states has no equivalent")
    if len(perm) != len(view.axes):
        raise Unsupported(f"perm {perm} does not fit a {len(view.axes)}-D tensor")
    return view.with_axes([view.axes[p] for p in perm])


def squeeze(view: View, axes: list[int] | None) -> View:
    if view.parts:
        raise Unsupported("a squeeze of stacked final states has no equivalent")
    rank = len(view.axes)
    drop = sorted(a % rank for a in axes) if axes is not None else [i for i, g in enumerate(view.axes)
                                                                      if view.size(g) == 1]
    if any(view.size(view.axes[a]) != 1 for a in drop):
        raise Unsupported("squeeze of an axis whose size is not 1")
    return view.with_axes([g for i, g in enumerate(view.axes) if i not in drop])


def unsqueeze(view: View, axes: list[int]) -> View:
    rank = len(view.axes) + len(axes)
    where = sorted(a % rank for a in axes)
    out, it = [], iter(view.axes)
    for i in range(rank):
        out.append(() if i in where else next(it))
    return view.with_axes(out)


def reshape(view: View, target: list[int], allowzero: bool) -> View:
    """Merge neighbouring axes (or add or drop size-1 axes) as the target shape says."""
    if view.parts:
        raise Unsupported("a reshape of stacked final states has no equivalent")
    groups = list(view.axes)
    out, i = [], 0
    for k, e in enumerate(target):
        if e == 0 and not allowzero:
            if i >= len(groups):
                raise Unsupported(f"reshape target {target} copies an axis the tensor lacks")
            out.append(groups[i])
            i += 1
            continue
        while i < len(groups) and view.size(groups[i]) == 1 and e != 1:
            i += 1  # size-1 axes can vanish
        if i >= len(groups):
            if e == 1:
                out.append(())
                continue
            raise Unsupported(f"reshape target {target} has more values than the tensor")
        size = view.size(groups[i])
        if e == -1:
            if not isinstance(size, int) or k == len(target) - 1:
                if k == len(target) - 1:
                    merged = tuple(a for g in groups[i:] for a in g)
                    out.append(merged)
                    i = len(groups)
                else:
                    out.append(groups[i])
                    i += 1
                continue
            raise Unsupported(f"reshape target {target}: cannot tell which axes -1 stands for")
        if size == e:
            out.append(groups[i])
            i += 1
            continue
        if e == 1:
            out.append(())
            continue
        merged, prod, j = [], 1, i
        while j < len(groups) and isinstance(view.size(groups[j]), int) and prod < e:
            prod *= view.size(groups[j])
            merged.extend(groups[j])
            j += 1
        if prod != e:
            raise Unsupported(f"reshape target {target} splits or mixes axes in a way no node expresses")
        out.append(tuple(merged))
        i = j
    if any(view.size(g) != 1 for g in groups[i:]):
        raise Unsupported(f"reshape target {target} drops axes that are not of size 1")
    return view.with_axes(out)


def select(view: View, axis: int, start: int, stop: int, keep_axis: bool) -> View:
    """Gather (one index, the axis goes) or Slice (a range, the axis stays) along ``axis``."""
    rank = len(view.axes) if not view.parts else len(view.parts[0].axes)
    axis %= rank
    if view.parts:
        if axis != 0:
            raise Unsupported("stacked final states can only be picked along their first axis")
        offset = 0
        for part in view.parts:
            n = part.size(part.axes[0])
            if offset <= start and stop <= offset + n:
                return select(part, 0, start - offset, stop - offset, keep_axis)
            offset += n
        raise Unsupported("a pick across the final states of several layers has no equivalent")
    size = view.size(view.axes[axis])
    if not isinstance(size, int):
        if start == 0 and stop >= (1 << 40) and keep_axis:
            return view
        raise Unsupported("a slice of a run-time axis has no equivalent")
    if start == 0 and stop >= size and keep_axis:
        return view
    if stop - start == 1 and size == 1:
        return view if keep_axis else view.with_axes([g for i, g in enumerate(view.axes) if i != axis])
    raise Unsupported("picking one direction or one step of a recurrent output has no equivalent")


def concat(views: list[View], axis: int) -> View:
    if axis != 0 or any(v.parts for v in views):
        raise Unsupported("only the final states of stacked layers can be concatenated (along axis 0)")
    return View(None, {}, [], [], parts=list(views))


# ----------------------------------------------------------------------------- the op itself
def _state(builder, name: str, layout: int, what: str):
    """An initial state: None for zeros; else the batch-first (N, layers*dirs, H) value it comes from."""
    if not name or name in builder.zeros or (name in builder.consts and not np.any(builder.consts[name])):
        return None
    if layout == 1 and name in builder.values:
        return builder.values[name]
    view = builder.views.get(name)
    if view is not None and layout == 0 and view.is_time_major_input():
        return view.base
    raise Unsupported(f"its {what} is not zeros nor a batch-first (N, directions, H) state seen time-major")


def convert(builder, node, source, layout: int) -> None:
    """Make the node for an ONNX LSTM/GRU/RNN op reading ``source`` (N, T, F), and Views of its outputs."""
    from .onnx_tidy import attr

    op = node.op_type
    ins = list(node.input) + [""] * (8 - len(node.input))
    w = builder.c(ins[1], "the input weights")
    r = builder.c(ins[2], "the recurrent weights")
    b = builder.c(ins[3], "the biases", required=False)
    if ins[4]:
        raise Unsupported("per-sample sequence lengths (sequence_lens) have no equivalent")
    h0 = _state(builder, ins[5], layout, "initial hidden state")
    c0 = _state(builder, ins[6], layout, "initial cell state") if op == "LSTM" else None
    if op == "LSTM" and (h0 is None) != (c0 is None):
        raise Unsupported("an initial hidden state without an initial cell state (or the reverse) has no equivalent")
    if op == "LSTM" and ins[7]:
        raise Unsupported("peephole connections (P) have no equivalent")
    if attr(node, "clip") is not None:
        raise Unsupported("cell clipping (clip) has no equivalent")
    direction = attr(node, "direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "bidirectional"):
        raise Unsupported(f"direction={direction} has no equivalent (forward or bidirectional)")
    acts = [a.decode() if isinstance(a, bytes) else a for a in (attr(node, "activations") or [])]
    params: dict[str, Any] = {}
    if op == "LSTM":
        if int(attr(node, "input_forget", 0)):
            raise Unsupported("coupled input and forget gates (input_forget=1) have no equivalent")
        if acts and [a.lower() for a in acts] not in (["sigmoid", "tanh", "tanh"] * 2, ["sigmoid", "tanh", "tanh"]):
            raise Unsupported(f"activations {acts} differ from PyTorch's LSTM")
    elif op == "GRU":
        if not int(attr(node, "linear_before_reset", 0)):
            raise Unsupported("linear_before_reset=0 (the original GRU formula) differs from PyTorch's GRU")
        if acts and [a.lower() for a in acts] not in (["sigmoid", "tanh"] * 2, ["sigmoid", "tanh"]):
            raise Unsupported(f"activations {acts} differ from PyTorch's GRU")
    else:
        kinds = {a.lower() for a in acts} or {"tanh"}
        if len(kinds) != 1 or not kinds <= {"tanh", "relu"}:
            raise Unsupported(f"activations {acts} have no equivalent (tanh or relu)")
        params["nonlinearity"] = kinds.pop()
    dirs, gh, _ = w.shape
    h = int(attr(node, "hidden_size", r.shape[-1]))
    g = GATES[op]
    if gh != g * h or dirs != (2 if direction == "bidirectional" else 1):
        raise Unsupported(f"weights of shape {list(w.shape)} do not fit hidden_size {h}")
    order = GATE_ORDER[op]

    def torch_order(m):  # (g*h, ...) in ONNX gate order -> PyTorch's
        return np.concatenate([m[k * h:(k + 1) * h] for k in order], axis=0)

    weights = {}
    for d in range(dirs):
        sfx = "_reverse" if d == 1 else ""
        weights[f"weight_ih_l0{sfx}"] = torch_order(w[d])
        weights[f"weight_hh_l0{sfx}"] = torch_order(r[d])
        if b is not None:
            weights[f"bias_ih_l0{sfx}"] = torch_order(b[d][:g * h])
            weights[f"bias_hh_l0{sfx}"] = torch_order(b[d][g * h:])
    outs = (list(node.output) + ["", "", ""])[:3]
    used = [bool(name) and bool(builder.readers.get(name)) or name in builder.outputs_of_graph for name in outs]
    if op != "LSTM":
        used[2] = False
    # One node per op: the sequence if anything reads it, else the last hidden state; the final states
    # of every direction come from the node's h_n (and c_n) when the sequence is needed too.
    output = "sequence" if used[0] or not used[1] else "last"
    return_state = used[2] or (used[0] and used[1])
    params.update(hidden_size=h, num_layers=1, bidirectional=dirs == 2, bias=b is not None, output=output,
                  return_state=return_state)
    sources = [source] + ([h0] if h0 is not None else []) + ([c0] if c0 is not None else [])
    made = builder.add(node, op, params, sources, weights, outputs=[])
    t_ = source.info.shape[1]
    sizes = {"n": BATCH, "t": t_ if isinstance(t_, int) else str(t_), "d": dirs, "h": h}
    state_axes = [("d",), ("n",), ("h",)] if layout == 0 else [("n",), ("d",), ("h",)]
    if used[0]:
        builder.set_view(outs[0], View(made["out"], sizes, [("n",), ("t",), ("d", "h")],
                                       [("t",), ("d",), ("n",), ("h",)] if layout == 0
                                       else [("n",), ("t",), ("d",), ("h",)]))
    if used[1]:
        if return_state:
            builder.set_view(outs[1], View(made["h_n"], sizes, [("n",), ("d",), ("h",)], state_axes))
        else:
            builder.set_view(outs[1], View(made["out"], sizes, [("n",), ("d", "h")], state_axes))
    if used[2]:
        builder.set_view(outs[2], View(made["c_n"], sizes, [("n",), ("d",), ("h",)], state_axes))


def info_of(view: View) -> TensorInfo:  # for messages
    return TensorInfo(tuple(view.size(g) for g in view.axes))


__all__ = ["View", "Unsupported", "convert", "transpose", "squeeze", "unsqueeze", "reshape",
           "select", "concat", "view_of_value", "base_value", "GATE_ORDER"]
