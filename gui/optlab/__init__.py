"""The optimizer lab: why momentum, RMSprop and Adam beat plain gradient descent, on 2-D loss surfaces
(``surface``) and on the network being edited (``network``), in one window (``window``). The work is
``engine.optlab``; these modules only show it."""

from .window import OptimizerLab

__all__ = ["OptimizerLab"]
