"""The Samples tab: what the model does with real examples while it trains, from the trainer's
``Samples`` events (``engine.training.trainer.Samples``; ``kind`` says what they hold):

- ``predictions`` (supervised): a few dev examples with the model's answer and confidence, green when
  right and red when wrong;
- ``generated`` (a GAN): a grid of images the generator made from fixed noise, so the same cell shows
  the same latent code improving epoch after epoch;
- ``reconstructions`` (a VAE): each input above its reconstruction, and samples from the prior when
  the event carries them (any kind whose name contains "sample").

Any other kind is shown as a grid of whatever image-like tensors it carries.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtWidgets

from .. import theme as themes
from . import images

CELL = 72


def _image_like(t) -> bool:
    return t is not None and hasattr(t, "shape") and len(t) > 0 and images.as_image(images.to_numpy(t)[0]) is not None


class SamplesView(QtWidgets.QScrollArea):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.body = QtWidgets.QWidget()
        self.layout_ = QtWidgets.QVBoxLayout(self.body)
        self.layout_.setContentsMargins(10, 8, 10, 8)
        self.title = QtWidgets.QLabel("Samples appear here while a run trains.")
        self.title.setObjectName("samples_title")
        self.title.setProperty("role", "dim")
        self.layout_.addWidget(self.title)
        self.grid_host = QtWidgets.QWidget()
        self.grid = QtWidgets.QGridLayout(self.grid_host)
        self.grid.setSpacing(6)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.layout_.addWidget(self.grid_host)
        self.layout_.addStretch(1)
        self.setWidget(self.body)
        self.cells: list[QtWidgets.QWidget] = []
        self.kind = ""

    def clear(self, text: str = "Samples appear here while a run trains.") -> None:
        for cell in self.cells:
            cell.deleteLater()
        self.cells = []
        self.kind = ""
        self.title.setText(text)

    def show_samples(self, run, event) -> None:
        for cell in self.cells:
            self.grid.removeWidget(cell)
            cell.deleteLater()
        self.cells = []
        self.kind = event.kind
        if event.kind == "predictions":
            self._predictions(run, event)
        elif event.kind == "reconstructions":
            self._reconstructions(run, event)
        else:
            self._generated(run, event)

    # ------------------------------------------------------------------ kinds
    def _cell(self, tensor, caption: str, color: str | None = None, tip: str = "", dataset=None) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(2)
        pic = QtWidgets.QLabel()
        pic.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        pix = images.pixmap(tensor, CELL) if tensor is not None else None
        if pix is not None:
            pic.setPixmap(pix)
            pic.setFixedSize(CELL, CELL)
        elif tensor is not None:
            pic.setText(images.describe(tensor, dataset))
            pic.setWordWrap(True)
            pic.setMinimumWidth(CELL)
        v.addWidget(pic)
        text = QtWidgets.QLabel(caption)
        text.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        text.setWordWrap(True)
        if color:
            text.setStyleSheet(f"color: {color}; font-size: 8pt;")
        else:
            text.setStyleSheet("font-size: 8pt;")
        v.addWidget(text)
        box.setToolTip(tip)
        self.cells.append(box)
        return box

    def _place(self, widgets, columns: int) -> None:
        for i, w in enumerate(widgets):
            r, c = divmod(i, columns)
            self.grid.addWidget(w, r, c)

    def _columns(self, k: int) -> int:
        fit = max(1, (self.viewport().width() - 20) // (CELL + 8))
        return max(1, min(k, fit, 16))

    def _predictions(self, run, e) -> None:
        t = themes.current()
        labels = e.labels
        classify = e.confidences is not None

        def name(c):
            c = int(c)
            return labels[c] if labels and 0 <= c < len(labels) else str(c)

        inputs, preds = images.to_numpy(e.inputs), images.to_numpy(e.predictions)
        targets = images.to_numpy(e.targets) if e.targets is not None else None
        conf = images.to_numpy(e.confidences) if classify else None
        per_example = classify and preds.ndim == 1 and targets is not None
        cells = []
        for i in range(len(inputs)):
            if per_example:
                pred, true = int(preds[i]), int(targets[i])
                ok = pred == true
                caption = f"{name(pred)} ({float(conf[i]):.0%})" + ("" if ok else f"\ntrue {name(true)}")
                cells.append(self._cell(inputs[i], caption, t.ok if ok else t.error,
                                        f"predicted {name(pred)}, true {name(true)}", run.dataset))
            else:
                p = preds[i]
                y = targets[i] if targets is not None else None
                caption = f"{float(p):.3g}\ntrue {float(y):.3g}" if np.size(p) == 1 and y is not None else ""
                cells.append(self._cell(inputs[i], caption, None, "", run.dataset))
        self._place(cells, self._columns(len(cells)))
        right = int((preds == targets).sum()) if per_example else 0
        tally = f" · {right} of {len(inputs)} right" if per_example else ""
        self.title.setText(f"Run {run.number}, epoch {e.epoch}: dev examples and the model's answers{tally}")

    def _generated(self, run, e) -> None:
        source = e.predictions if _image_like(e.predictions) else e.inputs
        source = images.to_numpy(source) if source is not None else None
        k = len(source) if source is not None else 0
        cols = max(1, math.ceil(math.sqrt(k))) if k else 1
        cells = [self._cell(source[i], "") for i in range(k)]
        self._place(cells, cols)
        what = "generated from fixed noise" if e.kind == "generated" else e.kind
        self.title.setText(f"Run {run.number}, epoch {e.epoch}: {k} images {what}")

    def _reconstructions(self, run, e) -> None:
        originals, recon = images.to_numpy(e.inputs), images.to_numpy(e.predictions)
        k = len(originals)
        cols = self._columns(k)
        cells = []
        for i in range(k):
            cells.append(self._cell(originals[i], "input"))
        for i in range(k):
            cells.append(self._cell(recon[i], "reconstruction"))
        # inputs on one row, their reconstructions on the row below
        for i in range(k):
            r, c = divmod(i, cols)
            self.grid.addWidget(cells[i], 2 * r, c)
            self.grid.addWidget(cells[k + i], 2 * r + 1, c)
        extra = getattr(e, "samples", None)
        if extra is not None and _image_like(extra):
            extra = images.to_numpy(extra)
            row = 2 * math.ceil(k / cols) + 1
            label = QtWidgets.QLabel("samples from the prior N(0, I):")
            label.setProperty("role", "dim")
            self.cells.append(label)
            self.grid.addWidget(label, row, 0, 1, cols)
            for i in range(len(extra)):
                r, c = divmod(i, cols)
                self.grid.addWidget(self._cell(extra[i], ""), row + 1 + r, c)
        self.title.setText(f"Run {run.number}, epoch {e.epoch}: inputs (top) and their reconstructions (below)")
