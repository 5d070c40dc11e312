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
    """A graph's layout drawn small: wires, and a coloured box per node with its label. A network
    too tall for the box is drawn at a readable scale, to scroll through (see ``PreviewArea``)."""

    MAX_SCALE = 0.6
    MIN_SCALE = 0.32

    def __init__(self, parent=None):
        super().__init__(parent)
        self.graph: Graph | None = None
        self.scale = 1.0
        self._box = QtCore.QRectF()
        self.setMinimumSize(260, 200)

    def set_graph(self, graph: Graph | None, width: int | None = None, height: int | None = None) -> None:
        self.graph = graph
        if graph is not None and graph.layout:
            xs = [x for x, _ in graph.layout.values()]
            ys = [y for _, y in graph.layout.values()]
            self._box = QtCore.QRectF(min(xs), min(ys), max(xs) - min(xs) + CARD_W, max(ys) - min(ys) + CARD_H)
            width = width or self.width()
            height = height or self.height()
            fit = min((width - 24) / self._box.width(), (height - 24) / self._box.height())
            width_fit = (width - 24) / self._box.width()
            self.scale = min(self.MAX_SCALE, max(fit, min(width_fit, self.MIN_SCALE)))
            self.setMinimumHeight(max(200, int(self._box.height() * self.scale + 24)))
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
        box, scale = self._box, self.scale
        ox = (self.width() - box.width() * scale) / 2 - box.left() * scale
        oy = max(12.0, (self.height() - box.height() * scale) / 2) - box.top() * scale

        def at(nid, dy):
            x, y = g.layout[nid]
            return QtCore.QPointF(ox + (x + CARD_W / 2) * scale, oy + (y + dy) * scale)
        p.setPen(QtGui.QPen(QtGui.QColor(t.wire), max(0.8, 2.0 * scale)))
        for e in g.edges:
            if e.src in g.layout and e.dst in g.layout:
                a, b = at(e.src, CARD_H), at(e.dst, 0)
                path = QtGui.QPainterPath(a)
                mid = (a.y() + b.y()) / 2
                path.cubicTo(QtCore.QPointF(a.x(), mid), QtCore.QPointF(b.x(), mid), b)
                p.drawPath(path)
        font = p.font()
        font.setPointSizeF(max(6.0, 10.0 * scale / 0.6))
        p.setFont(font)
        for nid, (x, y) in g.layout.items():
            node = g.nodes.get(nid)
            spec = g.registry.get(node.type) if node else None
            color = QtGui.QColor(themes.category_color(spec.category) if spec else t.error)
            rect = QtCore.QRectF(ox + x * scale, oy + y * scale, CARD_W * scale, CARD_H * scale)
            p.setPen(QtGui.QPen(QtGui.QColor(t.node_border), 1))
            p.setBrush(QtGui.QColor(t.node))
            p.drawRoundedRect(rect, 4, 4)
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawRoundedRect(QtCore.QRectF(rect.left(), rect.top(), max(3.0, 6 * scale), rect.height()), 2, 2)
            if scale >= self.MIN_SCALE and node is not None:
                p.setPen(QtGui.QColor(t.text))
                text_rect = rect.adjusted(10 * scale + 4, 0, -3, 0)
                text = p.fontMetrics().elidedText(node.label, QtCore.Qt.TextElideMode.ElideRight,
                                                  int(text_rect.width()))
                p.drawText(text_rect, QtCore.Qt.AlignmentFlag.AlignVCenter, text)


class PreviewArea(QtWidgets.QScrollArea):
    """Scrolls a tall preview; a short one is centred."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.preview = GraphPreview()
        self.setWidget(self.preview)
        self.setWidgetResizable(True)
        self.setMinimumSize(300, 260)

    def set_graph(self, graph: Graph | None) -> None:
        vp = self.viewport().size()
        self.preview.set_graph(graph, vp.width(), vp.height())
        self.verticalScrollBar().setValue(0)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.preview.graph is not None:
            self.preview.set_graph(self.preview.graph, self.viewport().width(), self.viewport().height())


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
        self.preview_area = PreviewArea()
        self.preview = self.preview_area.preview
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
        right.addWidget(self.preview_area, 1)
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
            self.preview_area.set_graph(engine.load_graph(info.path))
        except engine.GraphFileError:
            self.preview_area.set_graph(None)

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
