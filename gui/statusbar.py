"""The status bar: whether the network is valid, its totals, the device, and passing messages."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from . import theme as themes
from .device import DeviceInfo
from .document import Document


class StatusBar(QtWidgets.QStatusBar):
    problems_clicked = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.validity = QtWidgets.QPushButton()
        self.validity.setObjectName("status_validity")
        self.validity.setFlat(True)
        self.validity.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        self.validity.clicked.connect(self.problems_clicked)
        self.totals = QtWidgets.QLabel()
        self.totals.setObjectName("status_totals")
        self.device = QtWidgets.QLabel("device: looking…")
        self.device.setObjectName("status_device")
        for w in (self.validity, self.totals, self.device):
            self.addPermanentWidget(w)
        self.doc: Document | None = None

    def set_document(self, doc: Document) -> None:
        if self.doc is not None:
            self.doc.changed.disconnect(self.refresh)
        self.doc = doc
        doc.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        inf = self.doc.inference
        t = themes.current()
        n_err = len(inf.errors)
        if not self.doc.graph.nodes:
            self.validity.setText("Empty")
            self.validity.setIcon(themes.icon("node", t.dim))
            self.validity.setStyleSheet(f"color: {t.dim}; border: none;")
        elif n_err:
            self.validity.setText(f"{n_err} error{'s' if n_err != 1 else ''}")
            self.validity.setIcon(themes.icon("error", t.error))
            self.validity.setStyleSheet(f"color: {t.error}; border: none; font-weight: 600;")
        else:
            warn = len(inf.warnings)
            self.validity.setText("Valid" + (f" · {warn} warning{'s' if warn != 1 else ''}" if warn else ""))
            self.validity.setIcon(themes.icon("ok", t.ok))
            self.validity.setStyleSheet(f"color: {t.ok}; border: none; font-weight: 600;")
        self.validity.setToolTip("Show the problems panel")
        self.totals.setText(f"{len(self.doc.graph.nodes)} nodes · {inf.total_params:,} params · "
                            f"{themes.format_count(inf.total_flops)} FLOPs/sample")
        self.totals.setToolTip(f"shape inference took {self.doc.last_inference_ms:.1f} ms")

    def set_device(self, info: DeviceInfo) -> None:
        self.device.setText(("GPU: " if info.is_gpu else "") + info.short)
        tip = info.detail
        if info.memory:
            tip = f"{themes.format_bytes(info.memory)} {'GPU' if info.is_gpu else 'system'} memory; {tip}"
        self.device.setToolTip(tip)
