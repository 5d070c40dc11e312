"""Small helpers the node specs share: shape checks with good messages, and common emitters."""

from __future__ import annotations

from ..spec import BATCH, Cost, ShapeError, TensorInfo, format_shape, numel


def one_input(ins: dict) -> TensorInfo:
    return ins["in"]


def expect_rank(t: TensorInfo, ranks: tuple[int, ...], layout: str, port: str = "in") -> None:
    """Refuse an input whose number of axes (batch included) is not one of ``ranks``."""
    if t.rank not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        raise ShapeError(f"expects a {want} input {layout}, got {t}", port)


def expect_float(t: TensorInfo, port: str = "in") -> None:
    if not t.dtype.startswith("float"):
        raise ShapeError(f"expects floating-point values, got {t.dtype} {t}", port)


def concrete(dim, what: str, port: str = "in") -> int:
    """An axis whose size a layer needs to know when it is built (features, channels)."""
    if not isinstance(dim, int):
        raise ShapeError(f"needs a fixed number of {what}, but that axis has the run-time size {dim!r}", port)
    return dim


def pass_through(p, ins) -> dict:
    """The output is shaped like the single input (activations, dropout, normalisation)."""
    return {"out": ins["in"]}


def call_module(p, args, mod) -> str:
    return f"{mod}({args[0]})"


def elementwise_cost(per_element: int = 1):
    def cost(p, ins, outs) -> Cost:
        return Cost(0, per_element * numel(outs["out"].shape))
    return cost


def axis_index(dim: int, rank: int, what: str = "dim") -> int:
    """Resolve a possibly negative axis against a rank, refusing the batch axis and out-of-range axes."""
    idx = dim + rank if dim < 0 else dim
    if not 0 <= idx < rank:
        raise ShapeError(f"{what}={dim} is out of range for a {rank}-D input")
    return idx


def window_out(size, kernel: int, stride: int, pad: int, dilation: int = 1, ceil_mode: bool = False):
    """Output length of a convolution or pooling window along one axis (PyTorch's formula)."""
    if not isinstance(size, int):
        return size  # a run-time axis stays symbolic: '?' arithmetic is not worth pretending
    span = dilation * (kernel - 1) + 1
    num = size + 2 * pad - span
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:  # the last window must start inside the input
        out -= 1
    return max(out, 0)  # 0: the window does not fit


__all__ = ["BATCH", "Cost", "ShapeError", "TensorInfo", "format_shape", "numel", "one_input", "expect_rank",
           "expect_float", "concrete", "pass_through", "call_module", "elementwise_cost", "axis_index",
           "window_out"]
