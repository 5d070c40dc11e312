"""The pre-flight panel: what training this network will cost at a chosen batch size, before it runs.

From the engine's inference: parameters, forward FLOPs per step, and activation memory; from those, an
estimate of training memory (weights, their gradients and two Adam moments: 4 x the weights; the saved
activations and their gradients: 2 x the activations) and whether it fits the GPU (or, without one,
the machine's memory), with the largest batch that would.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from . import theme as themes
from .device import DeviceInfo
from .document import Document

BYTES_PER_PARAM = 4   # float32
HEADROOM = 0.9        # leave 10% of the device for the framework and fragmentation


def estimate(inf, batch: int) -> dict:
    """The pre-flight figures for a batch size (plain numbers, for the panel and for tests)."""
    weights = inf.total_params * BYTES_PER_PARAM
    act = inf.activation_bytes(batch)
    per_sample = inf.activation_bytes(1)
    return {
        "params": inf.total_params, "weights_bytes": weights,
        "flops": inf.total_flops * batch, "activation_bytes": act,
        "training_bytes": 4 * weights + 2 * act, "per_sample_bytes": 2 * per_sample,
    }


def max_batch(fig: dict, memory: int) -> int:
    room = memory * HEADROOM - 4 * fig["weights_bytes"]
    if fig["per_sample_bytes"] <= 0:
        return 0
    return max(0, int(room // fig["per_sample_bytes"]))


class PreflightPanel(QtWidgets.QScrollArea):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.doc: Document | None = None
        self.device: DeviceInfo | None = None
        self.batch = QtWidgets.QSpinBox()
        self.batch.setObjectName("batch_size")
        self.batch.setRange(1, 1 << 20)
        self.batch.setValue(64)
        self.batch.setAccelerated(True)
        self.batch.valueChanged.connect(self.refresh)
        form = QtWidgets.QFormLayout()
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        form.addRow("batch size", self.batch)
        self.values: dict[str, QtWidgets.QLabel] = {}
        for key, title in (("params", "parameters"), ("flops", "forward FLOPs / step"),
                           ("activations", "activation memory"), ("training", "training memory (est.)")):
            label = QtWidgets.QLabel("-")
            label.setObjectName(f"pf_{key}")
            label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.values[key] = label
            form.addRow(title, label)
        self.partial = QtWidgets.QLabel("So far: the network has errors, so these count only what is known.")
        self.partial.setProperty("role", "warning")
        self.partial.setWordWrap(True)
        self.partial.hide()
        self.device_label = QtWidgets.QLabel("Looking for a GPU…")
        self.device_label.setProperty("role", "dim")
        self.device_label.setWordWrap(True)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.verdict = QtWidgets.QLabel("")
        self.verdict.setObjectName("pf_verdict")
        self.verdict.setWordWrap(True)
        self.note = QtWidgets.QLabel("Training memory = 4 x weights (weights, gradients, Adam moments) + "
                                     "2 x activations (kept for the backward pass, and their gradients); "
                                     "float32.")
        self.note.setWordWrap(True)
        self.note.setProperty("role", "dim")
        body = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(body)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(8)
        layout.addLayout(form)
        layout.addWidget(self.partial)
        layout.addWidget(self.device_label)
        layout.addWidget(self.bar)
        layout.addWidget(self.verdict)
        layout.addWidget(self.note)
        layout.addStretch(1)
        self.setWidget(body)

    def set_document(self, doc: Document) -> None:
        if self.doc is not None:
            self.doc.changed.disconnect(self.refresh)
        self.doc = doc
        doc.changed.connect(self.refresh)
        batch = doc.graph.training.get("batch_size") if isinstance(doc.graph.training, dict) else None
        if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0:
            self.batch.setValue(batch)
        self.refresh()

    def set_device(self, info: DeviceInfo) -> None:
        self.device = info
        self.refresh()

    def figures(self) -> dict:
        return estimate(self.doc.inference, self.batch.value())

    def refresh(self) -> None:
        if self.doc is None:
            return
        inf = self.doc.inference
        fig = self.figures()
        self.partial.setVisible(not inf.ok)
        self.values["params"].setText(f"{fig['params']:,} ({themes.format_bytes(fig['weights_bytes'])})")
        self.values["flops"].setText(themes.format_count(fig["flops"]))
        self.values["activations"].setText(themes.format_bytes(fig["activation_bytes"]))
        self.values["training"].setText(themes.format_bytes(fig["training_bytes"]))
        dev = self.device
        t = themes.current()
        if dev is None:
            self.device_label.setText("Looking for a GPU…")
            self.bar.hide()
            self.verdict.setText("")
            return
        mem = dev.memory
        where = f"{dev.name}" if dev.is_gpu else "no GPU: training runs on the CPU"
        self.device_label.setText(f"Device: {where}" + (f" · {themes.format_bytes(mem)}" if mem else "")
                                  + (f" ({dev.detail})" if dev.detail else ""))
        if not mem:
            self.bar.hide()
            self.verdict.setText("")
            return
        share = fig["training_bytes"] / mem
        self.bar.show()
        self.bar.setValue(min(1000, int(share * 1000)))
        self.bar.setFormat(f"{share:.1%} of {'GPU' if dev.is_gpu else 'system'} memory")
        fits = fig["training_bytes"] <= mem * HEADROOM
        room = "the GPU" if dev.is_gpu else "this machine's memory"
        if fits:
            self.verdict.setText(f"Fits in {room} at batch {self.batch.value():,} "
                                 f"(up to about {max_batch(fig, mem):,}).")
            self.verdict.setStyleSheet(f"color: {t.ok};")
        else:
            best = max_batch(fig, mem)
            hint = f"; a batch of about {best:,} would fit" if best else "; even one sample does not fit"
            self.verdict.setText(f"Does not fit in {room}: needs {themes.format_bytes(fig['training_bytes'])}"
                                 f"{hint}.")
            self.verdict.setStyleSheet(f"color: {t.error};")
