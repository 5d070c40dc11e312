"""The Results tab, after a run: the metrics of each split, the dev set's confusion matrix (click a cell to
see its examples, highest loss first), precision / recall / F1 per class, the gallery of misclassified
examples, and the bias/variance doctor (type the human-level error; it names the avoidable bias, the
variance and the next step). Everything shown comes from ``Trainer.report`` and
``engine.inspect.example_results``; the doctor is ``engine.training.doctor.diagnose``.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from engine.training.doctor import chance_error, diagnose

from .. import theme as themes
from . import images

GALLERY = 60  # examples shown at once
MARGIN_TOP = 30  # pixels above the confusion matrix for its title and column labels
MARGIN_LEFT = 40  # pixels left of the confusion matrix for the row labels and the rows' title
ROWS_TITLE = "true ↓"  # over the row labels, beside the columns' "predicted →"
UPRIGHT_LABELS = 18  # pixels more above the confusion matrix when its column labels stand upright


def ink_on(fill: QtGui.QColor) -> QtGui.QColor:
    """Black or white, whichever reads on ``fill`` (by its relative luminance): the theme's text colour
    read dark grey on the saturated red and green cells of the light theme."""
    def linear(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    lum = 0.2126 * linear(fill.red()) + 0.7152 * linear(fill.green()) + 0.0722 * linear(fill.blue())
    # (the luminance where black and white have the same contrast against it: sqrt(1.05 * 0.05) - 0.05)
    return QtGui.QColor("#000000" if lum > 0.179 else "#ffffff")


def label_points(side: float) -> float:
    """The confusion matrix's font size for cells of ``side`` pixels."""
    return max(6.0, min(9.0, side / 3.2))


class ConfusionMatrix(QtWidgets.QWidget):
    """Rows: true class; columns: predicted class. Colour: the share of the row (recall on the diagonal)."""

    cell_clicked = QtCore.Signal(int, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("confusion_matrix")
        self.matrix = np.zeros((0, 0), dtype=int)
        self.labels: list[str] = []
        self.selected: tuple[int, int] | None = None
        self._geometry_cache = None
        self.empty_text = "No confusion matrix yet"
        self.setMinimumSize(160, 120)
        self.setMouseTracking(True)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    def set_matrix(self, matrix, labels: list[str]) -> None:
        self.matrix = np.asarray(matrix, dtype=int)
        self.labels = labels
        self.selected = None
        self._geometry_cache = None
        self.update()

    def _geometry(self):
        k = len(self.matrix)
        key = (self.width(), self.height())  # (set_matrix clears the cache)
        if self._geometry_cache is None or self._geometry_cache[0] != key:
            margin_l, margin_t = MARGIN_LEFT, MARGIN_TOP
            side = self._side(k, margin_l, margin_t)
            if self._labels_overlap(k, side):  # the column labels then stand upright above their columns
                margin_t = MARGIN_TOP + UPRIGHT_LABELS
                side = self._side(k, margin_l, margin_t)
            self._geometry_cache = (key, (k, margin_l, margin_t, side))
        return self._geometry_cache[1]

    def _side(self, k: int, margin_l: int, margin_t: int) -> float:
        return max(1.0, min((self.width() - margin_l - 6) / max(k, 1), (self.height() - margin_t - 6) / max(k, 1)))

    def _labels_overlap(self, k: int, side: float) -> bool:
        font = QtGui.QFont(self.font())
        font.setPointSizeF(label_points(side))
        metrics = QtGui.QFontMetricsF(font)
        return any(metrics.horizontalAdvance(self._name(c)[:4]) > side - 2 for c in range(k))

    def _name(self, c: int) -> str:
        return self.labels[c] if c < len(self.labels) else str(c)

    def cell_rect(self, i: int, j: int) -> QtCore.QRectF:
        k, ml, mt, side = self._geometry()
        return QtCore.QRectF(ml + j * side, mt + i * side, side, side)

    def cell_at(self, pos: QtCore.QPointF) -> tuple[int, int] | None:
        k, ml, mt, side = self._geometry()
        j, i = int((pos.x() - ml) // side), int((pos.y() - mt) // side)
        if 0 <= i < k and 0 <= j < k and pos.x() >= ml and pos.y() >= mt:
            return i, j
        return None

    def mousePressEvent(self, event) -> None:
        cell = self.cell_at(event.position())
        if cell is not None:
            self.selected = cell
            self.update()
            self.cell_clicked.emit(*cell)

    def mouseMoveEvent(self, event) -> None:
        cell = self.cell_at(event.position())
        if cell is None:
            self.setToolTip("")
            return
        i, j = cell
        n = int(self.matrix[i, j])
        row = max(int(self.matrix[i].sum()), 1)
        name = self._name
        self.setToolTip(f"true {name(i)}, predicted {name(j)}: {n} ({n / row:.0%} of the true {name(i)}s)"
                        "\nclick to see them")

    def paintEvent(self, event) -> None:
        t = themes.current()
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, False)
        k, ml, mt, side = self._geometry()
        if k == 0:
            p.setPen(QtGui.QColor(t.dim))
            p.drawText(QtCore.QRectF(self.rect()).adjusted(8, 8, -8, -8),
                       QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextWordWrap, self.empty_text)
            return
        rows = self.matrix.sum(1, keepdims=True).clip(min=1)
        share = self.matrix / rows
        ok, bad, base = QtGui.QColor(t.ok), QtGui.QColor(t.error), QtGui.QColor(t.base)
        font = p.font()
        font.setPointSizeF(label_points(side))
        p.setFont(font)
        for i in range(k):
            for j in range(k):
                r = self.cell_rect(i, j)
                tone = ok if i == j else bad
                a = float(share[i, j]) if i == j else min(1.0, float(share[i, j]) * 2.5)
                color = QtGui.QColor(
                    int(base.red() + (tone.red() - base.red()) * a), int(base.green() + (tone.green() - base.green()) * a),
                    int(base.blue() + (tone.blue() - base.blue()) * a))
                p.fillRect(r, color)
                if side >= 16 and self.matrix[i, j]:
                    p.setPen(ink_on(color))
                    p.drawText(r, QtCore.Qt.AlignmentFlag.AlignCenter, str(int(self.matrix[i, j])))
        p.setPen(QtGui.QPen(QtGui.QColor(t.border), 1))
        p.drawRect(QtCore.QRectF(ml, mt, k * side, k * side))
        p.setPen(QtGui.QColor(t.dim))
        if side >= 10:
            upright = mt > MARGIN_TOP
            for c in range(k):
                name = self._name(c)
                if upright:
                    p.save()
                    p.translate(ml + c * side, mt - 2)
                    p.rotate(-90)
                    p.drawText(QtCore.QRectF(0, 0, mt - 16, side),
                               QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter, name[:5])
                    p.restore()
                else:
                    p.drawText(QtCore.QRectF(ml + c * side, mt - 16, side, 14), QtCore.Qt.AlignmentFlag.AlignCenter,
                               name[:4])
                p.drawText(QtCore.QRectF(0, mt + c * side, ml - 4, side),
                           QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter, name[:4])
        p.drawText(QtCore.QRectF(ml, 0, k * side, 13), QtCore.Qt.AlignmentFlag.AlignCenter, "predicted →")
        # the rows' title, in the corner over the row labels (level with the columns' labels)
        corner = QtCore.QRectF(0, mt - 16, ml - 2, 14) if mt == MARGIN_TOP else QtCore.QRectF(0, 0, ml - 2, mt - 2)
        p.drawText(corner, QtCore.Qt.AlignmentFlag.AlignRight | (QtCore.Qt.AlignmentFlag.AlignVCenter if mt == MARGIN_TOP
                   else QtCore.Qt.AlignmentFlag.AlignBottom), ROWS_TITLE)
        if self.selected is not None:
            p.setPen(QtGui.QPen(QtGui.QColor(t.accent), 2.5))
            p.drawRect(self.cell_rect(*self.selected).adjusted(1, 1, -1, -1))
        p.end()


class Doctor(QtWidgets.QFrame):
    """The bias/variance doctor. ``human_changed`` carries the human-level error (a fraction) typed."""

    human_changed = QtCore.Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("doctor")
        self.setProperty("role", "card")
        self.errors: tuple[float, float, float | None] | None = None
        self.chance: float | None = None  # the train error of always answering the most frequent class
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        head = QtWidgets.QLabel("Bias / variance doctor")
        head.setStyleSheet("font-weight: 600;")
        layout.addWidget(head)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("human-level error"))
        self.human = QtWidgets.QDoubleSpinBox()
        self.human.setObjectName("doctor_human_error")
        self.human.setRange(0.0, 100.0)
        self.human.setDecimals(2)
        self.human.setSingleStep(0.5)
        self.human.setSuffix(" %")
        self.human.setKeyboardTracking(False)
        self.human.setToolTip("The error a person (or the best known system) makes on this task: a proxy for the "
                              "Bayes error. Avoidable bias = train error - human-level error.")
        self.human.valueChanged.connect(self._changed)
        row.addWidget(self.human)
        row.addStretch(1)
        layout.addLayout(row)
        self.figures = QtWidgets.QLabel()
        self.figures.setObjectName("doctor_figures")
        self.figures.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.figures.setWordWrap(True)  # (a long line must not widen the window past the screen)
        layout.addWidget(self.figures)
        self.verdict = QtWidgets.QLabel()
        self.verdict.setObjectName("doctor_verdict")
        self.verdict.setWordWrap(True)
        layout.addWidget(self.verdict)
        self.remedies = QtWidgets.QLabel()
        self.remedies.setObjectName("doctor_remedies")
        self.remedies.setWordWrap(True)
        self.remedies.setTextFormat(QtCore.Qt.TextFormat.RichText)
        layout.addWidget(self.remedies)
        layout.addStretch(1)
        self.diagnosis = None

    def set_errors(self, train: float, dev: float, test: float | None, human: float | None,
                   chance: float | None = None) -> None:
        self.errors = (train, dev, test)
        self.chance = chance
        blocker = QtCore.QSignalBlocker(self.human)
        self.human.setValue((human or 0.0) * 100)
        del blocker
        self.refresh()

    def _changed(self, _value: float) -> None:
        self.refresh()
        self.human_changed.emit(self.human.value() / 100)

    def refresh(self) -> None:
        if self.errors is None:
            self.figures.setText("Train a classifier to see its avoidable bias and variance.")
            self.verdict.setText("")
            self.remedies.setText("")
            return
        t = themes.current()
        train, dev, test = self.errors
        d = diagnose(train, dev, self.human.value() / 100, test, chance_error=self.chance)
        self.diagnosis = d

        def pct(v):
            return f"{v * 100:.1f}%"
        rows = [("train error", pct(d.train_error)), ("dev error", pct(d.dev_error))]
        if d.test_error is not None:
            rows.append(("test error", pct(d.test_error)))
        rows += [("avoidable bias", f"<b>{pct(d.avoidable_bias)}</b>"), ("variance", f"<b>{pct(d.variance)}</b>")]
        self.figures.setText("<table cellspacing='0' cellpadding='1'>" + "".join(
            f"<tr><td style='color:{t.dim}; padding-right:10px'>{a}</td><td>{b}</td></tr>" for a, b in rows)
            + "</table>")
        color = {"bias": t.warning, "variance": t.warning, "none": t.ok}.get(d.problem, t.text)
        self.verdict.setText(d.message)
        self.verdict.setStyleSheet(f"color: {color};")
        items = "".join(f"<li>{r}</li>" for r in d.remedies)
        notes = "".join(f"<p style='color:{t.dim}'>{n}</p>" for n in d.notes)
        step = f"<b>Next step:</b> {d.remedies[0]}" if d.remedies else ""
        self.remedies.setText(f"{step}<ul style='margin-left:-20px'>{items}</ul>{notes}" if items else notes)


class ResultsView(QtWidgets.QWidget):
    """The whole tab. ``show_run`` fills it from a finished run."""

    human_error_changed = QtCore.Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.run = None
        self.summary = QtWidgets.QLabel("Results appear here when a run ends.")
        self.summary.setObjectName("results_summary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.matrix = ConfusionMatrix()
        self.matrix.cell_clicked.connect(self.show_cell)
        self.per_class = QtWidgets.QTableWidget(0, 5)
        self.per_class.setObjectName("per_class_table")
        self.per_class.setHorizontalHeaderLabels(["class", "precision", "recall", "F1", "support"])
        self.per_class.verticalHeader().hide()
        self.per_class.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.per_class.setAlternatingRowColors(True)
        # compact rows: the dock is about 250 pixels high at the window's default size, and a classifier's
        # ten classes and their average should show without scrolling
        rows = self.per_class.verticalHeader()
        rows.setMinimumSectionSize(self.fontMetrics().height() + 2)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 4)
        header = self.per_class.horizontalHeader()
        header.setMinimumSectionSize(30)
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)  # ("macro avg")
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)  # ("precision")
        self.doctor = Doctor()
        self.doctor.human_changed.connect(self.human_error_changed)
        self.gallery_title = QtWidgets.QLabel("Misclassified dev examples")
        self.gallery_title.setObjectName("gallery_title")
        self.gallery_title.setStyleSheet("font-weight: 600;")
        self.gallery_title.setWordWrap(True)
        self.gallery = QtWidgets.QListWidget()
        self.gallery.setObjectName("mistakes_gallery")
        self.gallery.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QtCore.QSize(56, 56))
        self.gallery.setGridSize(QtCore.QSize(92, 100))
        self.gallery.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.gallery.setMovement(QtWidgets.QListView.Movement.Static)
        self.gallery.setWordWrap(True)
        self.all_mistakes = QtWidgets.QPushButton("All mistakes")
        self.all_mistakes.clicked.connect(self.show_mistakes)

        left = QtWidgets.QWidget()
        lv = QtWidgets.QVBoxLayout(left)
        lv.setContentsMargins(8, 6, 4, 6)
        lv.addWidget(self.summary)
        lv.addWidget(self.matrix, 1)
        middle = QtWidgets.QWidget()
        mv = QtWidgets.QVBoxLayout(middle)
        mv.setContentsMargins(4, 6, 4, 6)
        mv.addWidget(self.per_class, 1)
        # The doctor beside the table, not under it (the two shared one column: the table showed one row of
        # eleven and the remedies were cut off at the dock's default height); it scrolls within its column.
        self.doctor_scroll = QtWidgets.QScrollArea()
        self.doctor_scroll.setObjectName("doctor_scroll")
        self.doctor_scroll.setWidgetResizable(True)
        self.doctor_scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.doctor_scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.doctor_scroll.setWidget(self.doctor)
        doctor_box = QtWidgets.QWidget()
        dv = QtWidgets.QVBoxLayout(doctor_box)
        dv.setContentsMargins(4, 6, 4, 6)
        dv.addWidget(self.doctor_scroll)
        right = QtWidgets.QWidget()
        rv = QtWidgets.QVBoxLayout(right)
        rv.setContentsMargins(4, 6, 8, 6)
        head = QtWidgets.QHBoxLayout()
        head.addWidget(self.gallery_title, 1)
        head.addWidget(self.all_mistakes)
        rv.addLayout(head)
        rv.addWidget(self.gallery, 1)
        # (the run's figures and the matrix scroll together where the dock is too low for both)
        left_scroll = QtWidgets.QScrollArea()
        left_scroll.setObjectName("results_left_scroll")
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        left_scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setWidget(left)
        left = left_scroll
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.setObjectName("results_split")
        split.setChildrenCollapsible(False)
        for pane in (left, middle, doctor_box, right):
            split.addWidget(pane)
        split.setSizes([270, 340, 320, 350])
        split.setStretchFactor(3, 1)
        # Every pane scrolls or shrinks: the tab asks for no height of its own (a filled tab asked the
        # dock for more, and the dock grew at a run's end, the canvas shrinking under the user).
        for pane in (left, middle, doctor_box, right):
            pane.setMinimumHeight(0)
        self.split = split
        self.panes = (left, middle, doctor_box, right)
        # Sideways, the four panes scroll together where the tab is narrower than they can be read at (see
        # keep_table_readable); up and down each pane scrolls on its own.
        self.split_scroll = QtWidgets.QScrollArea()
        self.split_scroll.setObjectName("results_scroll")
        self.split_scroll.setWidgetResizable(True)
        self.split_scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.split_scroll.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.split_scroll.setWidget(split)
        self.split_scroll.setMinimumSize(0, 0)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.split_scroll)
        self.doctor.refresh()

    def keep_table_readable(self) -> None:
        """The per-class table as wide as its columns need (the class's name, "precision", and "0.000" under
        "recall", "F1", "support"): in a 1280-pixel window the splitter squeezed it and its figures read
        "0....", "1....". (Called once the window's default layout is made, which it leaves as it was.)"""
        fm, pad = self.per_class.fontMetrics(), 12
        bold = QtGui.QFont(self.per_class.font())
        bold.setBold(True)
        figure = max(fm.horizontalAdvance(t) for t in ("recall", "support", "0.000")) + pad
        self.per_class.setMinimumWidth(QtGui.QFontMetrics(bold).horizontalAdvance("macro avg") + pad
                                       + fm.horizontalAdvance("precision") + pad + 3 * figure + 4)
        # ... and the other panes as wide as they read at (a ten-class matrix, the doctor's figures and
        # remedies, a column of the gallery with its button): narrower, the tab scrolls sideways (at 1024
        # pixels the matrix showed one column and the doctor a word a line).
        em = fm.horizontalAdvance("m")
        for pane, ems in zip((self.panes[0], self.panes[2], self.panes[3]), (21, 22, 17)):
            pane.setMinimumWidth(ems * em)

    # ------------------------------------------------------------------ filling
    def clear(self) -> None:
        self.run = None
        self.matrix.empty_text = "No confusion matrix yet"
        self.summary.setText("Results appear here when a run ends.")
        self.matrix.set_matrix(np.zeros((0, 0)), [])
        self.per_class.setRowCount(0)
        self.gallery.clear()
        self.doctor.errors = None
        self.doctor.refresh()

    def show_run(self, run) -> None:
        self.run = run
        report = run.report
        if not report:
            self.clear()
            self.run = run
            self.summary.setText(f"Run {run.number} {run.status}: no evaluation" + (f" ({run.error})" if run.error
                                                                                    else ""))
            return
        if report.get("task") not in ("classification", "regression"):
            self._show_headline(run, report)
            return
        self.matrix.empty_text = "No confusion matrix yet"
        t = themes.current()
        rows = []
        for split in ("train", "dev", "test"):
            m = report.get(split)
            if not m or not m.get("examples"):
                continue
            if "accuracy" in m:
                rows.append(f"<td>{split}</td><td>{m['accuracy']:.1%}</td><td>{m['loss']:.4g}</td>"
                            f"<td style='color:{t.dim}'>{m['examples']:,}</td>")
            else:
                rows.append(f"<td>{split}</td><td>{m.get('mse', float('nan')):.4g}</td><td>{m['loss']:.4g}</td>"
                            f"<td style='color:{t.dim}'>{m['examples']:,}</td>")
        classify = report.get("task") == "classification"
        head = "<tr style='color:%s'><td></td><td>%s</td><td>loss</td><td>examples</td></tr>" % (
            t.dim, "accuracy" if classify else "MSE")
        status = run.status if run.status != "finished" else f"finished in {run.result.seconds:.1f} s" \
            if run.result else run.status
        dev = report.get("dev") or {}
        ignored = ""
        if dev.get("ignored"):  # a tagger's padding: the loss's ignore_index counts in no figure
            names = report.get("classes") or []
            i = dev.get("ignore_index")
            if isinstance(i, int) and i >= 0:
                name = names[i] if i < len(names) else str(i)
                what = f"Targets of class {html.escape(name)} (the loss's ignore_index)"
            else:
                what = "Targets with a negative class id (-100: what the loss ignores)"
            ignored = (f"<p style='color:{t.dim}'>{what} are left out of every figure: {dev['ignored']:,} in "
                       "dev.</p>")
        self.summary.setText(f"<b>Run {run.number}</b> · {status} · {report.get('dataset', '')}"
                             f"<table cellpadding='2'>{head}" + "".join(f"<tr>{r}</tr>" for r in rows) + "</table>"
                             + ignored)
        classes = report.get("classes") or []
        matrix = dev.get("confusion_matrix")
        if classify and matrix:
            labels = [shown_label(classes[i]) if i < len(classes) else str(i) for i in range(len(matrix))]
            self.matrix.set_matrix(matrix, labels)
            self._fill_per_class(dev, labels)
        else:
            self.matrix.set_matrix(np.zeros((0, 0)), [])
            self.per_class.setRowCount(0)
        train, test = report.get("train") or {}, report.get("test") or {}
        if classify and "error" in train and "error" in dev:
            human = run.config.get("human_error")
            self.doctor.set_errors(train["error"], dev["error"], test.get("error"), human,
                                   chance_error(train.get("confusion_matrix")))
        else:
            self.doctor.errors = None
            self.doctor.refresh()
            if not classify:
                self.doctor.figures.setText("The doctor reads error rates (classification); for values compare the "
                                            "MSE of train and dev above: a large gap is variance, a large train MSE "
                                            "is bias.")
        self.show_mistakes()

    def _show_headline(self, run, report: dict) -> None:
        """A run of a generative or embedding mode (a GAN, a VAE, a triplet network): its mode's headline,
        the loss of each split and its terms and metrics; the confusion matrix and the doctor are for
        classifiers, and say so."""
        t = themes.current()
        mode = report.get("mode") or report.get("task") or "this"
        splits = [s for s in ("train", "dev", "test") if (report.get(s) or {}).get("examples")]
        names: list[str] = []  # the loss terms and metrics, in their order of appearance
        for split in splits:
            for key in ("terms", "metrics"):
                names += [n for n in (report[split].get(key) or {}) if n not in names]

        def cell(v):
            return f"{v:.4g}" if isinstance(v, (int, float)) else ""
        head = "".join(f"<td>{n}</td>" for n in ["", "loss", *names, "examples"])
        rows = []
        for split in splits:
            m = report[split]
            extra = {**(m.get("terms") or {}), **(m.get("metrics") or {})}
            rows.append(f"<td>{split}</td><td>{cell(m.get('loss'))}</td>"
                        + "".join(f"<td>{cell(extra.get(n))}</td>" for n in names)
                        + f"<td style='color:{t.dim}'>{m['examples']:,}</td>")
        status = run.status if run.status != "finished" else f"finished in {run.result.seconds:.1f} s" \
            if run.result else run.status
        self.summary.setText(f"<b>Run {run.number}</b> · {status} · {report.get('dataset', '')} · {mode} mode"
                             f"<table cellpadding='2'><tr style='color:{t.dim}'>{head}</tr>"
                             + "".join(f"<tr>{r}</tr>" for r in rows) + "</table>"
                             + (f"<p style='color:{t.dim}'>Its samples are in the Samples tab.</p>"
                                if run.samples is not None or report.get("samples") else ""))
        self.matrix.empty_text = (f"The confusion matrix is for classifiers: a {mode} run has none. "
                                  "Its losses are above and on the Curves tab.")
        self.matrix.set_matrix(np.zeros((0, 0)), [])
        self.per_class.setRowCount(0)
        self.doctor.errors = None
        self.doctor.refresh()
        self.doctor.figures.setText(f"The doctor reads a classifier's error rates; a {mode} run has none. Compare "
                                    "its train and dev losses above: a dev loss well above the train loss is "
                                    "variance.")
        self.show_mistakes()

    def _fill_per_class(self, dev: dict, labels: list[str]) -> None:
        rows = dev.get("per_class") or []
        self.per_class.setRowCount(len(rows) + 1)
        for i, r in enumerate(rows):
            values = [labels[i], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"])]
            for j, v in enumerate(values):
                item = QtWidgets.QTableWidgetItem(v)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                self.per_class.setItem(i, j, item)
        macro = dev.get("macro") or {}
        values = ["macro avg", f"{macro.get('precision', 0):.3f}", f"{macro.get('recall', 0):.3f}",
                  f"{macro.get('f1', 0):.3f}", str(sum(r["support"] for r in rows))]
        for j, v in enumerate(values):
            item = QtWidgets.QTableWidgetItem(v)
            item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            font = item.font()
            font.setBold(True)
            item.setFont(font)
            self.per_class.setItem(len(rows), j, item)

    # ------------------------------------------------------------------ gallery
    def _label(self, c: int) -> str:
        ex = self.run.examples if self.run else None
        classes = ex.classes if ex is not None else None
        return shown_label(classes[c]) if classes and 0 <= c < len(classes) else str(c)

    def _fill_gallery(self, rows, title: str) -> None:
        self.gallery.clear()
        self.gallery_title.setText(title)
        ex = self.run.examples
        ds = self.run.dataset
        tokens = ds is not None and getattr(ds, "kind", "") == "tokens"
        for r in rows[:GALLERY]:
            idx = int(ex.indices[r])
            sample = ds.example(idx) if ds is not None else None
            true, pred = int(ex.true[r]), int(ex.predicted[r])
            where = ex.where(r)  # per-position targets: which word, character or pixel
            text = f"{self._label(true)} → {self._label(pred)}" + (f" · {ex.where(r, True)}" if where else "") + \
                   f"\nloss {ex.loss[r]:.2f}"
            item = QtWidgets.QListWidgetItem(text)
            pix = images.pixmap(sample, 56) if sample is not None and not tokens else None
            if pix is not None:
                item.setIcon(QtGui.QIcon(pix))
            elif sample is not None:
                # the position bracketed in the input where the input has one per position (a tagger's words)
                shape = tuple(getattr(sample, "shape", ()))
                aligned = ex.per_position and len(shape) > 0 and int(np.prod(ex.target_shape)) == int(np.prod(shape))
                mark = int(ex.positions[r]) if aligned else None
                shown = images.describe(sample, ds, 30 if mark is None else 24, mark)
                if ex.per_position and not aligned and len(ex.target_shape) == 1 and ex.classes:
                    # a decoder's output (seq2seq): the target sequence, the position bracketed
                    ids = np.asarray(ds.target(idx)).reshape(-1)
                    shown += "\n= " + marked([self._label(int(c)) for c in ids], int(ex.positions[r]))
                item.setText(f"{shown}\n{text}")
            item.setToolTip(f"data set example #{idx}{', ' + where if where else ''}: true {self._label(true)}, "
                            f"predicted {self._label(pred)} with probability {ex.confidence[r]:.1%}, "
                            f"loss {ex.loss[r]:.3f}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, idx)
            self.gallery.addItem(item)

    def show_mistakes(self) -> None:
        ex = self.run.examples if self.run else None
        if ex is None:
            self.gallery.clear()
            self.gallery_title.setText("Misclassified dev examples (classification only)")
            return
        rows = ex.mistakes()
        what = "positions" if ex.per_position else "examples"
        self._fill_gallery(rows, f"Misclassified dev {what}: {len(rows):,}{self._capped(ex)}, highest loss first")

    def show_cell(self, true: int, predicted: int) -> None:
        ex = self.run.examples if self.run else None
        if ex is None:
            return
        rows = ex.cell(true, predicted)
        what = "correct" if true == predicted else "mistaken"
        self._fill_gallery(rows, f"true {self._label(true)}, predicted {self._label(predicted)}: {len(rows):,} {what}"
                                 f"{self._capped(ex)}, highest loss first")

    @staticmethod
    def _capped(ex) -> str:
        return f" among the {len(ex.true):,} positions of highest loss (of {ex.total:,})" if ex.capped else ""

    def gallery_indices(self) -> list[int]:
        return [self.gallery.item(i).data(QtCore.Qt.ItemDataRole.UserRole) for i in range(self.gallery.count())]


def shown_label(label: str) -> str:
    """A class name as shown: a blank one (a next-character model's '\n' and ' ') as its repr."""
    return label if label.strip() else repr(label)


def marked(labels: list[str], mark: int, limit: int = 24) -> str:
    """A sequence of class names (a decoder's target) with the one at ``mark`` bracketed, cut to about
    ``limit`` characters around it."""
    sep = "" if all(len(t) == 1 for t in labels) else " "
    parts = list(labels)
    parts[mark] = f"[{parts[mark]}]"
    lo = hi = mark
    while True:
        grew = False
        for i in (lo - 1, hi + 1):
            if 0 <= i < len(parts) and len(sep.join(parts[min(lo, i):max(hi, i) + 1])) <= limit:
                lo, hi, grew = min(lo, i), max(hi, i), True
        if not grew:
            break
    return ("…" if lo > 0 else "") + sep.join(parts[lo:hi + 1]) + ("…" if hi < len(parts) - 1 else "")
