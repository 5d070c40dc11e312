"""Typed parameter descriptors: plain data that the palette, the property editor, the validator, the
compiler, the code generator and the docs all read.

A descriptor knows its default, its range or choices and a one-line doc, and turns a raw value (as it
came from a file or a widget) into a clean Python value, or raises ``ParamError`` with a message that
says what was expected and what arrived. Values are always JSON-native (int, float, bool, str, list).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class ParamError(ValueError):
    """A parameter value that does not fit its descriptor. The message names no node: callers add it."""


# No size, count or axis anywhere in a network comes near this; anything above it is a typo, and
# PyTorch itself cannot take it (it needs a C int64, and memory).
MAX_INT = 2**31 - 1


def _check_magnitude(value: int) -> None:
    if abs(value) > MAX_INT:
        raise ParamError(f"{str(value)[:12]}{'...' if len(str(value)) > 12 else ''} is far too large "
                         f"(at most {MAX_INT})")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"{value!r} (text)"
    if isinstance(value, bool):
        return f"{value!r} (a boolean)"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Param:
    """Base of all descriptors. ``kind`` tells a GUI which widget to make."""

    name: str
    default: Any
    doc: str = ""
    kind = "any"

    def coerce(self, value: Any) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def describe_range(self) -> str:
        """A short human text of what is allowed, for docs and tooltips."""
        return ""

    def to_json(self) -> dict:
        """The descriptor as plain data (for docs, GUIs written in other languages, `deepcanvas nodes --json`)."""
        return {"name": self.name, "kind": self.kind, "default": self.default, "doc": self.doc,
                "allowed": self.describe_range()}


@dataclass(frozen=True)
class Int(Param):
    """An integer in [min, max]. ``special`` names values with a meaning, e.g. {0: "auto"}."""

    min: int | None = None
    max: int | None = None
    special: dict[int, str] = field(default_factory=dict)
    kind = "int"

    def coerce(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value):
            raise ParamError(f"expected a whole number, got {_describe(value)}")
        _check_magnitude(value)
        if value in self.special:
            return value
        if self.min is not None and value < self.min:
            raise ParamError(f"must be at least {self.min}{self._special_hint()}, got {value}")
        if self.max is not None and value > self.max:
            raise ParamError(f"must be at most {self.max}, got {value}")
        return value

    def _special_hint(self) -> str:
        return "".join(f" (or {k} for {v})" for k, v in self.special.items())

    def describe_range(self) -> str:
        lo = "-inf" if self.min is None else str(self.min)
        hi = "inf" if self.max is None else str(self.max)
        return f"integer in [{lo}, {hi}]{self._special_hint()}"


@dataclass(frozen=True)
class Float(Param):
    """A finite real number in [min, max] (or (min, max] when ``min_exclusive``)."""

    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    kind = "float"

    def coerce(self, value: Any) -> float:
        if not (_is_int(value) or isinstance(value, float)):
            raise ParamError(f"expected a number, got {_describe(value)}")
        try:
            value = float(value)
        except OverflowError:
            raise ParamError(f"must be a finite number, got an integer too large ({str(value)[:12]}...)") from None
        if not math.isfinite(value):
            raise ParamError(f"must be a finite number, got {value}")
        if self.min is not None:
            if self.min_exclusive and value <= self.min:
                raise ParamError(f"must be greater than {self.min}, got {value}")
            if not self.min_exclusive and value < self.min:
                raise ParamError(f"must be at least {self.min}, got {value}")
        if self.max is not None and value > self.max:
            raise ParamError(f"must be at most {self.max}, got {value}")
        return value

    def describe_range(self) -> str:
        lo = "-inf" if self.min is None else repr(self.min)
        hi = "inf" if self.max is None else repr(self.max)
        return f"number in {'(' if self.min_exclusive else '['}{lo}, {hi}]"


@dataclass(frozen=True)
class Bool(Param):
    kind = "bool"

    def coerce(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ParamError(f"expected true or false, got {_describe(value)}")
        return value

    def describe_range(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Choice(Param):
    """One of a fixed list of strings."""

    options: tuple[str, ...] = ()
    kind = "choice"

    def coerce(self, value: Any) -> str:
        if value not in self.options:
            raise ParamError(f"must be one of {', '.join(map(repr, self.options))}; got {_describe(value)}")
        return value

    def describe_range(self) -> str:
        return "one of " + ", ".join(self.options)


@dataclass(frozen=True)
class Ints(Param):
    """``n`` integers (a kernel size, a stride). A single integer means the same value on every axis."""

    n: int = 2
    min: int = 0
    kind = "ints"

    def coerce(self, value: Any) -> tuple[int, ...]:
        if _is_int(value):
            value = [value] * self.n
        if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
            raise ParamError(f"expected a whole number or a list of {self.n}, got {_describe(value)}")
        if len(value) != self.n:
            raise ParamError(f"expected {self.n} values, got {len(value)}")
        for v in value:
            _check_magnitude(v)
            if v < self.min:
                raise ParamError(f"every value must be at least {self.min}, got {list(value)}")
        return tuple(value)

    def describe_range(self) -> str:
        return f"whole number >= {self.min}, or a list of {self.n}"


@dataclass(frozen=True)
class Padding(Ints):
    """Convolution padding: integers as in :class:`Ints`, or 'same' / 'valid'."""

    kind = "padding"

    def coerce(self, value: Any):
        if value in ("same", "valid"):
            return value
        return super().coerce(value)

    def describe_range(self) -> str:
        return f"'same', 'valid', a whole number >= 0 or a list of {self.n}"


@dataclass(frozen=True)
class IntList(Param):
    """Any number of whole numbers (split sizes, an order of axes, a target shape), each at least ``min``;
    ``special`` names values allowed below it, e.g. {-1: "inferred"}. A single number means a list of one."""

    min: int = 0
    max_len: int = 16
    special: dict[int, str] = field(default_factory=dict)
    kind = "intlist"

    def coerce(self, value: Any) -> tuple[int, ...]:
        if _is_int(value):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
            raise ParamError(f"expected a list of whole numbers such as [2, 3], got {_describe(value)}")
        if len(value) > self.max_len:
            raise ParamError(f"expected at most {self.max_len} values, got {len(value)}")
        for v in value:
            _check_magnitude(v)
            if v < self.min and v not in self.special:
                raise ParamError(f"every value must be at least {self.min}{self._special_hint()}, got {list(value)}")
        return tuple(value)

    def _special_hint(self) -> str:
        return "".join(f" (or {k} for {v})" for k, v in self.special.items())

    def describe_range(self) -> str:
        return f"list of whole numbers >= {self.min}{self._special_hint()}, at most {self.max_len}"


@dataclass(frozen=True)
class Shape(Param):
    """A per-sample tensor shape (the batch axis is not written): positive integers, or a name such as
    'T' for an axis whose size is only known at run time (a sequence length)."""

    kind = "shape"

    def coerce(self, value: Any) -> tuple:
        if _is_int(value) or isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ParamError(f"expected a list of sizes such as [1, 28, 28], got {_describe(value)}")
        out = []
        for v in value:
            if _is_int(v):
                _check_magnitude(v)
                if v < 1:
                    raise ParamError(f"sizes must be at least 1, got {list(value)}")
                out.append(v)
            elif isinstance(v, str) and v.isidentifier() and v != "N":
                out.append(v)
            else:
                raise ParamError(f"each size must be a positive whole number or a name like 'T', got {_describe(v)}")
        return tuple(out)

    def describe_range(self) -> str:
        return "list of sizes without the batch axis, e.g. [1, 28, 28]; [] for one value per sample"


@dataclass(frozen=True)
class Text(Param):
    kind = "text"
    max_len: int = 2000

    def coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ParamError(f"expected text, got {_describe(value)}")
        if len(value) > self.max_len:
            raise ParamError(f"must be at most {self.max_len} characters")
        return value
