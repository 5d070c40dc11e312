"""Helpers shared by the catalog's node families (conv, norm, shape, recurrent, attention, generative)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..spec import Call, ShapeError, render_value


def auto_size(p: dict, key: str, arriving: int, what: str, port: str = "in") -> int:
    """A size param that is 0 ("auto") takes what arrives; a set one must match it."""
    want = p[key]
    if want and want != arriving:
        raise ShapeError(f"expects {want} input {what}, got {arriving}", port)
    return arriving


def render_exact(value: Any) -> str:
    """Like ``spec.render_value`` but a tuple is written out in full (render_value writes (8, 8) as 8,
    right for a kernel size, wrong for a normalised shape), and nested calls and dicts are allowed."""
    if isinstance(value, Call):
        return value.render()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render_value(k)}: {render_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(render_exact(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return render_value(value)


@dataclass(frozen=True)
class ExactCall(Call):
    """A constructor call whose arguments render with :func:`render_exact`."""

    def render(self) -> str:
        parts = [render_exact(a) for a in self.args]
        parts += [f"{k}={render_exact(v)}" for k, v in self.kwargs.items()]
        return f"{self.func}({', '.join(parts)})"


def size_or_one(d) -> int:
    """For costs: a run-time axis counts as 1 (costs are per sample, per step of a run-time axis)."""
    return d if isinstance(d, int) else 1


def product(dims) -> int:
    n = 1
    for d in dims:
        n *= size_or_one(d)
    return n


def kwargs_if(**pairs) -> dict:
    """Keyword arguments whose value differs from the default: kwargs_if(stride=(s, 1)) keeps stride
    only when s != 1. Each value is a (value, default) pair."""
    return {k: v for k, (v, default) in pairs.items() if v != default}


__all__ = ["auto_size", "render_exact", "ExactCall", "size_or_one", "product", "kwargs_if"]
