"""The quick-add box: type part of a node type's name (or an alias, or its category), press Enter, and
the node appears where the box was opened (Tab or right-click on the canvas)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from . import theme as themes


def matches(registry, text: str) -> list:
    """Specs whose name, alias or category contains every word of ``text``; names that start with the
    text first, then names that contain it, then the rest."""
    words = text.lower().split()
    scored = []
    for spec in registry:
        hay = " ".join([spec.type, *spec.aliases, spec.category]).lower()
        if all(w in hay for w in words):
            name = spec.type.lower()
            first = words[0] if words else ""
            rank = 0 if name.startswith(first) else 1 if first in name else 2
            scored.append((rank, spec.type.lower(), spec))
    return [s for _r, _n, s in sorted(scored, key=lambda x: (x[0], x[1]))]


class NodeSearch(QtWidgets.QFrame):
    """A small floating search box with a result list."""

    chosen = QtCore.Signal(str)  # the node type picked

    def __init__(self, registry, parent=None):
        super().__init__(parent, QtCore.Qt.WindowType.Popup)
        self.registry = registry
        self.setObjectName("NodeSearch")
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.edit = QtWidgets.QLineEdit(self)
        self.edit.setPlaceholderText("Add a node: type its name…")
        self.edit.setClearButtonEnabled(True)
        self._search_icon = self.edit.addAction(themes.icon("search"),
                                                QtWidgets.QLineEdit.ActionPosition.LeadingPosition)
        self.list = QtWidgets.QListWidget(self)
        self.list.setUniformItemSizes(True)
        self.list.setMinimumHeight(220)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.edit)
        layout.addWidget(self.list)
        self.resize(300, 300)
        self.edit.textChanged.connect(self.refresh)
        self.edit.installEventFilter(self)
        self.list.itemActivated.connect(self._pick)
        self.list.itemClicked.connect(self._pick)

    def open_at(self, global_pos: QtCore.QPoint, text: str = "") -> None:
        self.edit.setText(text)
        self.refresh(text)
        screen = QtGui.QGuiApplication.screenAt(global_pos) or QtGui.QGuiApplication.primaryScreen()
        pos = QtCore.QPoint(global_pos)
        if screen is not None:
            area = screen.availableGeometry()
            pos.setX(max(area.left(), min(pos.x(), area.right() - self.width())))
            pos.setY(max(area.top(), min(pos.y(), area.bottom() - self.height())))
        self.move(pos)
        self.show()
        self.edit.setFocus()

    def refresh(self, text: str = "") -> None:
        self._search_icon.setIcon(themes.icon("search"))
        self.list.clear()
        for spec in matches(self.registry, self.edit.text()):
            item = QtWidgets.QListWidgetItem(themes.dot_icon(themes.category_color(spec.category)),
                                             f"{spec.type}    ·  {spec.category}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, spec.type)
            item.setToolTip(spec.doc)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _pick(self, item=None) -> None:
        item = item or self.list.currentItem()
        if item is None:
            return
        self.hide()
        self.chosen.emit(item.data(QtCore.Qt.ItemDataRole.UserRole))

    def eventFilter(self, obj, event):
        if obj is self.edit and event.type() == QtCore.QEvent.Type.KeyPress:
            key = event.key()
            if key in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
                self._pick()
                return True
            if key in (QtCore.Qt.Key.Key_Down, QtCore.Qt.Key.Key_Up):
                row = self.list.currentRow() + (1 if key == QtCore.Qt.Key.Key_Down else -1)
                self.list.setCurrentRow(max(0, min(row, self.list.count() - 1)))
                return True
            if key == QtCore.Qt.Key.Key_Escape:
                self.hide()
                return True
        return super().eventFilter(obj, event)
