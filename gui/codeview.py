"""Two read-only views of the network: the generated PyTorch source (exactly what the compiler runs)
and the per-layer summary table. Both refresh after an edit only while they are visible."""

from __future__ import annotations

import re

from PySide6 import QtCore, QtGui, QtWidgets

import engine

from . import theme as themes
from .document import Document

_KEYWORDS = r"\b(?:class|def|return|import|from|as|self|super|None|True|False|if|else|for|in|and|or|not|" \
            r"with|lambda|pass|raise|try|except)\b"


class PythonHighlighter(QtGui.QSyntaxHighlighter):
    def __init__(self, document):
        super().__init__(document)
        self.set_theme(themes.current())

    def set_theme(self, theme: themes.Theme) -> None:
        dark = theme.dark

        def fmt(color, bold=False, italic=False):
            f = QtGui.QTextCharFormat()
            f.setForeground(QtGui.QColor(color))
            if bold:
                f.setFontWeight(QtGui.QFont.Weight.Bold)
            f.setFontItalic(italic)
            return f
        self.rules = [
            (re.compile(_KEYWORDS), fmt("#c792ea" if dark else "#8250df", bold=True)),
            (re.compile(r"\b\d+(?:\.\d+)?(?:e[-+]?\d+)?\b"), fmt("#f78c6c" if dark else "#0550ae")),
            (re.compile(r"\b(?:nn|F|torch)\.\w+"), fmt("#82aaff" if dark else "#0969da")),
            (re.compile(r"'[^'\n]*'|\"[^\"\n]*\""), fmt("#c3e88d" if dark else "#0a3069")),
            (re.compile(r"#[^\n]*"), fmt(theme.dim, italic=True)),
        ]
        self.docstring = fmt(theme.dim, italic=True)
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        for pattern, f in self.rules:
            for m in pattern.finditer(text):
                self.setFormat(m.start(), m.end() - m.start(), f)
        # triple-quoted strings may span lines: block state 1 means "inside one"
        pos = 0
        inside = self.previousBlockState() == 1
        while True:
            if inside:
                end = text.find('"""', pos)
                if end < 0:
                    self.setFormat(pos, len(text) - pos, self.docstring)
                    self.setCurrentBlockState(1)
                    return
                self.setFormat(pos, end + 3 - pos, self.docstring)
                pos, inside = end + 3, False
            start = text.find('"""', pos)
            if start < 0:
                self.setCurrentBlockState(0)
                return
            self.setFormat(start, 3, self.docstring)
            pos, inside = start + 3, True


def _mono() -> QtGui.QFont:
    font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
    font.setPointSizeF(max(9.0, font.pointSizeF()))
    return font


class _LazyView(QtWidgets.QWidget):
    """Refreshes on change only when shown; otherwise once it next becomes visible."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc: Document | None = None
        self._stale = True
        self._timer = QtCore.QTimer(self, singleShot=True, interval=120)
        self._timer.timeout.connect(self._maybe_refresh)

    def set_document(self, doc: Document) -> None:
        if self.doc is not None:
            self.doc.changed.disconnect(self._changed)
        self.doc = doc
        doc.changed.connect(self._changed)
        self._changed()

    def _changed(self) -> None:
        self._stale = True
        self._timer.start()

    def showEvent(self, event):
        super().showEvent(event)
        self._maybe_refresh()

    def _maybe_refresh(self) -> None:
        if self._stale and self.doc is not None and self.isVisible():
            self._stale = False
            self.refresh()

    def refresh(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class CodeView(_LazyView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.text = QtWidgets.QPlainTextEdit()
        self.text.setObjectName("code")
        self.text.setReadOnly(True)
        self.text.setFont(_mono())
        self.text.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        self.highlighter = PythonHighlighter(self.text.document())
        copy = QtWidgets.QPushButton(themes.icon("copy"), "Copy")
        copy.clicked.connect(lambda: QtWidgets.QApplication.clipboard().setText(self.text.toPlainText()))
        save = QtWidgets.QPushButton(themes.icon("save"), "Save as .py…")
        save.clicked.connect(self._save)
        bar = QtWidgets.QHBoxLayout()
        self.status = QtWidgets.QLabel("")
        self.status.setProperty("role", "dim")
        bar.addWidget(self.status, 1)
        bar.addWidget(copy)
        bar.addWidget(save)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(bar)
        layout.addWidget(self.text)
        self.valid = False

    def refresh(self) -> None:
        try:
            source = engine.generate_code(self.doc.graph)
            self.valid = True
            self.status.setText("The PyTorch module this network compiles to.")
        except engine.GraphError as exc:
            self.valid = False
            lines = "\n".join(f"#   - {p.message}" for p in exc.problems)
            source = f"# No code yet: the network has {len(exc.problems)} error(s) to fix first.\n#\n{lines}\n"
            self.status.setText("Fix the errors to see the generated code.")
        bar = self.text.verticalScrollBar().value()
        self.text.setPlainText(source)
        self.text.verticalScrollBar().setValue(bar)

    def _save(self) -> None:
        from engine.fileio import write_atomic

        name = (self.doc.path.stem if self.doc.path else "model") + ".py"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save the generated code", name, "Python (*.py)")
        if path:
            try:
                write_atomic(path, self.text.toPlainText())
            except OSError as exc:
                QtWidgets.QMessageBox.warning(self, "DeepCanvas", f"Could not write {path}: {exc.strerror or exc}")


class SummaryView(_LazyView):
    COLUMNS = ("Node", "Type", "Output", "Parameters", "FLOPs / sample", "Activations / sample")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("summary")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.totals = QtWidgets.QLabel("")
        self.totals.setProperty("role", "dim")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.table)
        layout.addWidget(self.totals)

    def refresh(self) -> None:
        inf = self.doc.inference
        rows = inf.summary_rows()
        self.table.setRowCount(len(rows))
        right = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        t = themes.current()
        for r, row in enumerate(rows):
            output = ", ".join(row["output"].values()) if row["output"] else ("—" if not row["problems"] else "?")
            cells = [row["label"], row["type"], output, f"{row['params']:,}", themes.format_count(row["flops"]),
                     themes.format_bytes(row["activation_bytes"])]
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if c >= 3:
                    item.setTextAlignment(right)
                if row["problems"]:
                    item.setForeground(QtGui.QColor(t.error))
                    item.setToolTip("\n".join(row["problems"]))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.totals.setText(f"{len(rows)} nodes · {inf.total_params:,} parameters · "
                            f"{themes.format_count(inf.total_flops)} FLOPs per sample · "
                            f"{themes.format_bytes(inf.activation_bytes(1))} of activations per sample")
