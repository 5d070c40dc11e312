"""The registry of node types, built from each family's explicit list of specs."""

from __future__ import annotations

from ..spec import Registry
from . import activations, io, layers, losses, merge
from . import pooling
from . import blocks

REGISTRY = Registry([*io.SPECS, *layers.SPECS, *activations.SPECS, *merge.SPECS, *losses.SPECS,
                     *pooling.SPECS,
                     *blocks.SPECS])

__all__ = ["REGISTRY"]
