"""The template browser: every template in the library with a preview of its diagram, its description,
input shape and parameter count. Opening one gives a new, untitled graph to start from."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

import engine
from engine.graph import Graph

from . import theme as themes

CARD_W, CARD_H = 190.0, 50.0


def list_templates(folder=None) -> list:
    """The library's templates (``engine.templates``), or the ``.dcnet`` files of a folder."""
    from engine import templates
    return templates.list_templates(folder)


def load_template(name_or_path) -> Graph:
    from engine import templates
    return templates.load_template(name_or_path)


class GraphPreview(QtWidgets.QWidget):
    """A graph's layout drawn small: wires, and a coloured box per node."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.graph: Graph | None = None
        self.setMinimumSize(260, 260)

    def set_graph(self, graph: Graph | None) -> None:
        self.graph = graph
        self.update()

    def paintEvent(self, event):
        t = themes.current()
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QtGui.QColor(t.canvas))
        g = self.graph
        if g is None or not g.layout:
            p.setPen(QtGui.QColor(t.dim))
            p.drawText(self.rect(), QtCore.Qt.AlignmentFlag.AlignCenter, "no preview")
            return
        xs = [x for x, _ in g.layout.values()]
        ys = [y for _, y in g.layout.values()]
        box = QtCore.QRectF(min(xs), min(ys), max(xs) - min(xs) + CARD_W, max(ys) - min(ys) + CARD_H)
        margin = 12
        scale = min((self.width() - 2 * margin) / box.width(), (self.height() - 2 * margin) / box.height(), 1.0)
        ox = (self.width() - box.width() * scale) / 2 - box.left() * scale
        oy = (self.height() - box.height() * scale) / 2 - box.top() * scale

        def at(nid, dy):
            x, y = g.layout[nid]
            return QtCore.QPointF(ox + (x + CARD_W / 2) * scale, oy + (y + dy) * scale)
        p.setPen(QtGui.QPen(QtGui.QColor(t.wire), max(0.6, 1.6 * scale)))
        for e in g.edges:
            if e.src in g.layout and e.dst in g.layout:
                a, b = at(e.src, CARD_H), at(e.dst, 0)
                path = QtGui.QPainterPath(a)
                mid = (a.y() + b.y()) / 2
                path.cubicTo(QtCore.QPointF(a.x(), mid), QtCore.QPointF(b.x(), mid), b)
                p.drawPath(path)
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        for nid, (x, y) in g.layout.items():
            node = g.nodes.get(nid)
            spec = g.registry.get(node.type) if node else None
            color = QtGui.QColor(themes.category_color(spec.category) if spec else t.error)
            rect = QtCore.QRectF(ox + x * scale, oy + y * scale, CARD_W * scale, CARD_H * scale)
            p.setBrush(QtGui.QColor(t.node))
            p.drawRoundedRect(rect, 4 * scale + 1, 4 * scale + 1)
            p.setBrush(color)
            p.drawRoundedRect(QtCore.QRectF(rect.left(), rect.top(), max(2.0, 10 * scale), rect.height()), 2, 2)
            if scale > 0.45 and node is not None:
                p.setPen(QtGui.QColor(t.text))
                p.drawText(rect.adjusted(14 * scale, 0, 0, 0), QtCore.Qt.AlignmentFlag.AlignVCenter, node.label)
                p.setPen(QtCore.Qt.PenStyle.NoPen)


class TemplateBrowser(QtWidgets.QDialog):
    """Pick a template; ``chosen_graph`` holds the loaded copy after ``accept``."""

    def __init__(self, parent=None, folder=None):
        super().__init__(parent)
        self.setWindowTitle("Templates — DeepCanvas")
        self.resize(880, 560)
        self.chosen_graph: Graph | None = None
        self.chosen_name = ""
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("template_list")
        self.list.setMinimumWidth(220)
        self.preview = GraphPreview()
        self.title = QtWidgets.QLabel()
        self.title.setProperty("role", "heading")
        self.description = QtWidgets.QLabel()
        self.description.setWordWrap(True)
        self.details = QtWidgets.QLabel()
        self.details.setObjectName("template_details")
        self.details.setProperty("role", "dim")
        self.details.setWordWrap(True)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.open_button = buttons.addButton("Open as new graph", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self.open_button.setDefault(True)
        buttons.accepted.connect(self._open)
        buttons.rejected.connect(self.reject)
        right = QtWidgets.QVBoxLayout()
        right.addWidget(self.title)
        right.addWidget(self.description)
        right.addWidget(self.details)
        right.addWidget(self.preview, 1)
        split = QtWidgets.QHBoxLayout()
        split.addWidget(self.list)
        split.addLayout(right, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(split, 1)
        layout.addWidget(buttons)
        self.infos = list_templates(folder)
        for info in self.infos:
            item = QtWidgets.QListWidgetItem(themes.icon("templates"), info.title)
            item.setData(QtCore.Qt.ItemDataRole.UserRole, info.name)
            item.setToolTip(str(info.path))
            self.list.addItem(item)
        self.list.currentRowChanged.connect(self._show)
        self.list.itemDoubleClicked.connect(lambda _item: self._open())
        if self.infos:
            self.list.setCurrentRow(0)
        else:
            self.title.setText("No templates")
            self.description.setText("The template folder has no .dcnet files.")
            self.open_button.setEnabled(False)

    def select(self, name: str) -> None:
        for i, info in enumerate(self.infos):
            if info.name == name:
                self.list.setCurrentRow(i)

    def _show(self, row: int) -> None:
        if row < 0:
            return
        info = self.infos[row]
        self.title.setText(info.title)
        self.description.setText(info.description or "")
        shapes = ", ".join("(N, " + ", ".join(map(str, s)) + ")" for s in info.input_shapes) or "—"
        params = f"{info.params:,}" if info.params is not None else "?"
        text = f"input {shapes} · {params} parameters · {info.nodes} nodes"
        if info.error:
            text += f"\nProblem: {info.error}"
        self.details.setText(text)
        try:
            self.preview.set_graph(engine.load_graph(info.path))
        except engine.GraphFileError:
            self.preview.set_graph(None)

    def _open(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        info = self.infos[row]
        try:
            self.chosen_graph = load_template(Path(info.path))
        except engine.GraphFileError as exc:
            QtWidgets.QMessageBox.warning(self, "DeepCanvas", str(exc))
            return
        self.chosen_name = info.name
        self.accept()
