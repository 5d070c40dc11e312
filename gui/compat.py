"""Compatibility fixes for NodeGraphQt 0.6.44 on PySide6 6.4 and later, in one place.

NodeGraphQt reaches Qt enum members through instances (``self.NoButtons``, ``self.ItemIsMovable``,
``self.PopupCompletion``). PySide6 6.4+ only exposes them on the enum classes, so those lines raise
``AttributeError`` (see ../shared/STACK.md, pitfall 2). Setting the members as class attributes on the
NodeGraphQt classes that use them makes the shortcut lookups resolve again. Nothing else is changed.

Call :func:`apply` once before any NodeGraphQt widget is created; it is idempotent. Every fix is listed
in ``FIXES`` so a test can check each one took effect.
"""

from __future__ import annotations

from PySide6 import QtWidgets

# (module, class name, attribute, value): the attribute NodeGraphQt reads on ``self``.
FIXES = (
    ("NodeGraphQt.custom_widgets.properties_bin.prop_widgets_base", "PropSpinBox", "NoButtons",
     QtWidgets.QAbstractSpinBox.ButtonSymbols.NoButtons),
    ("NodeGraphQt.custom_widgets.properties_bin.prop_widgets_base", "PropDoubleSpinBox", "NoButtons",
     QtWidgets.QAbstractSpinBox.ButtonSymbols.NoButtons),
    ("NodeGraphQt.qgraphics.node_backdrop", "BackdropNodeItem", "ItemIsMovable",
     QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIsMovable),
    ("NodeGraphQt.widgets.tab_search", "TabSearchCompleter", "PopupCompletion",
     QtWidgets.QCompleter.CompletionMode.PopupCompletion),
)

_applied = False


def apply() -> None:
    """Install every fix in ``FIXES`` (once)."""
    global _applied
    if _applied:
        return
    import importlib

    for module_name, class_name, attr, value in FIXES:
        cls = getattr(importlib.import_module(module_name), class_name, None)
        if cls is not None and attr not in vars(cls):
            setattr(cls, attr, value)
    _applied = True
