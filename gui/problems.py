"""The problems panel: every error and warning from shape inference, each with the node it names and
its one-click fixes. Clicking a problem selects its node on the canvas."""

from __future__ import annotations

from typing import Callable

from PySide6 import QtCore, QtWidgets

from engine.fixes import fixes_for

from . import theme as themes
from .document import Document

NODE_ROLE = QtCore.Qt.ItemDataRole.UserRole


class ProblemsPanel(QtWidgets.QWidget):
    node_clicked = QtCore.Signal(str)

    def __init__(self, apply_fix: Callable, parent=None):
        super().__init__(parent)
        self.doc: Document | None = None
        self.apply_fix = apply_fix
        self.summary = QtWidgets.QLabel()
        self.summary.setObjectName("problems_summary")
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Problem", "Node", "Fix"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setWordWrap(True)
        self.tree.setUniformRowHeights(False)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.summary)
        layout.addWidget(self.tree)
        self.tree.itemClicked.connect(self._clicked)
        self.tree.itemActivated.connect(self._clicked)
        self._key = None

    def set_document(self, doc: Document) -> None:
        if self.doc is not None:
            self.doc.changed.disconnect(self.refresh)
        self.doc = doc
        doc.changed.connect(self.refresh)
        self._key = None
        self.refresh()

    def refresh(self) -> None:
        inf, g = self.doc.inference, self.doc.graph
        key = tuple((p.severity, p.message, p.node) for p in inf.problems)
        if key == self._key:
            return
        self._key = key
        t = themes.current()
        self.tree.clear()
        n_err, n_warn = len(inf.errors), len(inf.warnings)
        if not inf.problems:
            self.summary.setText("No problems: the network is valid.")
            self.summary.setProperty("role", "ok")
        else:
            parts = []
            if n_err:
                parts.append(f"{n_err} error{'s' if n_err != 1 else ''}")
            if n_warn:
                parts.append(f"{n_warn} warning{'s' if n_warn != 1 else ''}")
            self.summary.setText(", ".join(parts))
            self.summary.setProperty("role", "error" if n_err else "warning")
        self.summary.style().unpolish(self.summary)
        self.summary.style().polish(self.summary)
        for p in sorted(inf.problems, key=lambda p: p.severity != "error"):
            label = g.nodes[p.node].label if p.node in g.nodes else ""
            item = QtWidgets.QTreeWidgetItem(self.tree, [p.message, label, ""])
            item.setIcon(0, themes.icon("error" if p.severity == "error" else "warning",
                                        t.error if p.severity == "error" else t.warning))
            item.setToolTip(0, p.message)
            item.setData(0, NODE_ROLE, p.node)
            fixes = fixes_for(g, p, inf)
            if fixes:
                box = QtWidgets.QWidget()
                lay = QtWidgets.QHBoxLayout(box)
                lay.setContentsMargins(2, 1, 2, 1)
                for fix in fixes:
                    button = QtWidgets.QPushButton(themes.icon("fix", t.accent), fix.title)
                    button.setProperty("fix", True)
                    button.setToolTip(fix.detail)
                    button.clicked.connect(lambda _=False, f=fix: self.apply_fix(f))
                    lay.addWidget(button)
                self.tree.setItemWidget(item, 2, box)

    def fix_buttons(self) -> list[QtWidgets.QPushButton]:
        return self.tree.findChildren(QtWidgets.QPushButton)

    def _clicked(self, item, _column=0) -> None:
        nid = item.data(0, NODE_ROLE)
        if nid:
            self.node_clicked.emit(nid)
