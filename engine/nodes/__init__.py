"""The registry of node types, built from each family's explicit list of specs."""

from __future__ import annotations

from ..spec import Registry
from . import activations, io, layers, losses, merge
from . import pooling
from . import blocks
from . import attention, conv, generative, norm, recurrent, shape

REGISTRY = Registry([*io.SPECS, *layers.SPECS, *activations.SPECS, *merge.SPECS, *losses.SPECS,
                     *pooling.SPECS,
                     *blocks.SPECS,
                     *conv.SPECS, *norm.SPECS, *shape.SPECS, *recurrent.SPECS, *attention.SPECS,
                     *generative.SPECS])

__all__ = ["REGISTRY"]
