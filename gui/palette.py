"""The palette: every node type from the engine's registry, by category, searchable. Drag a type onto
the canvas, or double-click it (or press Enter) to add it in the middle of the view."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from . import theme as themes
from .canvas import NODE_MIME

TYPE_ROLE = QtCore.Qt.ItemDataRole.UserRole


class _Tree(QtWidgets.QTreeWidget):
    def mimeTypes(self):
        return [NODE_MIME, "text/plain"]

    def mimeData(self, items):
        names = [it.data(0, TYPE_ROLE) for it in items if it.data(0, TYPE_ROLE)]
        data = QtCore.QMimeData()
        data.setData(NODE_MIME, " ".join(names).encode())
        data.setText(" ".join(names))
        return data


class Palette(QtWidgets.QWidget):
    """Node types grouped by category, with a filter box."""

    add_requested = QtCore.Signal(str)  # a type to add in the middle of the canvas

    def __init__(self, registry, parent=None):
        super().__init__(parent)
        self.registry = registry
        self.filter = QtWidgets.QLineEdit(self)
        self.filter.setPlaceholderText("Search layers…")
        self.filter.setClearButtonEnabled(True)
        self._search_icon = self.filter.addAction(themes.icon("search"),
                                                  QtWidgets.QLineEdit.ActionPosition.LeadingPosition)
        self.tree = _Tree(self)
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QtWidgets.QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setIndentation(12)
        self.tree.setRootIsDecorated(True)
        self.tree.setAnimated(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree)
        self.filter.textChanged.connect(self.apply_filter)
        self.tree.itemActivated.connect(self._activated)
        self.rebuild()

    def rebuild(self) -> None:
        self._search_icon.setIcon(themes.icon("search"))
        self.tree.clear()
        for category, specs in self.registry.by_category().items():
            head = QtWidgets.QTreeWidgetItem(self.tree, [category])
            head.setIcon(0, themes.dot_icon(themes.category_color(category)))
            head.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled)
            font = head.font(0)
            font.setBold(True)
            head.setFont(0, font)
            for spec in sorted(specs, key=lambda s: s.type.lower()):
                item = QtWidgets.QTreeWidgetItem(head, [spec.type])
                item.setData(0, TYPE_ROLE, spec.type)
                params = ", ".join(p.name for p in spec.params) or "none"
                item.setToolTip(0, f"<b>{spec.type}</b><br>{spec.doc}<br><i>params: {params}</i>")
                item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled | QtCore.Qt.ItemFlag.ItemIsSelectable
                              | QtCore.Qt.ItemFlag.ItemIsDragEnabled)
            head.setExpanded(True)
        self.apply_filter(self.filter.text())

    def item_for(self, type_name: str) -> QtWidgets.QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            head = self.tree.topLevelItem(i)
            for j in range(head.childCount()):
                if head.child(j).data(0, TYPE_ROLE) == type_name:
                    return head.child(j)
        return None

    def apply_filter(self, text: str) -> None:
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            head = self.tree.topLevelItem(i)
            shown = 0
            for j in range(head.childCount()):
                item = head.child(j)
                spec = self.registry.get(item.data(0, TYPE_ROLE))
                hay = " ".join([spec.type, *spec.aliases, spec.category, spec.doc]).lower()
                visible = all(w in hay for w in words)
                item.setHidden(not visible)
                shown += visible
            head.setHidden(shown == 0)
            if words:
                head.setExpanded(True)

    def _activated(self, item, _column=0) -> None:
        name = item.data(0, TYPE_ROLE)
        if name:
            self.add_requested.emit(name)
