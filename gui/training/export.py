"""The export dialog: the network as a verified ONNX file (``engine.export``: exported, tidied, checked by
``onnx.checker`` and run by onnxruntime against PyTorch; the report shows each check and the largest
difference), as PyTorch source (``engine.generate_code``), or the trained checkpoint of a run.

The weights are those of the chosen run (when it trained this very network) or the seeded initial
weights. ONNX export takes seconds, so it runs in a background thread; the dialog stays responsive.

A run trained on standardized inputs (``data.standardize``) keeps the training set's mean and std
(``run.input_norm``); its weights only fit inputs standardized so. Both the ONNX file and the PyTorch source
get the standardization built in (they take raw inputs), the report says so, and a checkpoint saved from
the run's final weights carries it, as the trainer's own checkpoints do.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from .. import theme as themes


def _safe_name(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name.strip())
    return keep.strip("_") or "network"


class ExportDialog(QtWidgets.QDialog):
    """``controller`` gives the runs; ``doc`` the network. ``pick_path`` is replaceable in tests."""

    onnx_done = QtCore.Signal(object)  # ExportReport, or an error message (str)

    def __init__(self, doc, controller, parent=None, folder: str | Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export — DeepCanvas")
        self.setObjectName("export_dialog")
        self.doc = doc
        self.controller = controller
        self.folder = Path(folder) if folder else Path.cwd()
        self.report = None
        self.error = ""
        self._done: threading.Event | None = None  # set when the export job ends
        base = _safe_name(doc.graph.name)

        self.weights = QtWidgets.QComboBox()
        self.weights.setObjectName("export_weights")
        self._runs = []
        try:
            from engine.training.trainer import network_hash
            here = network_hash(doc.graph)
        except Exception:
            here = None
        mine = [r for r in reversed(controller.runs) if r.weights is not None and r.network == here]
        # the newest run that did not fail comes first: it is the one exported by default
        for run in [r for r in mine if r.status != "failed"] + [r for r in mine if r.status == "failed"]:
            self.weights.addItem(f"trained: run {run.number} ({run.status}, epoch {run.weights_epoch})")
            self._runs.append(run)
        self.weights.addItem("initial weights (seeded, untrained)")
        self._runs.append(None)

        self.onnx_path = QtWidgets.QLineEdit(str(self.folder / f"{base}.onnx"))
        self.onnx_path.setObjectName("export_onnx_path")
        self.opset = QtWidgets.QSpinBox()
        self.opset.setRange(9, 20)
        self.opset.setValue(18)
        self.opset.setToolTip("ONNX opset: 18 and up use the torch.export exporter; below 18 the TorchScript one")
        self.batch = QtWidgets.QComboBox()
        self.batch.addItems(["dynamic", "1"])
        self.batch.setEditable(True)
        self.batch.setToolTip("The batch axis: dynamic (any size), or a fixed size")
        self.onnx_button = QtWidgets.QPushButton("Export ONNX")
        self.onnx_button.setObjectName("export_onnx")
        self.onnx_button.setDefault(True)
        self.onnx_button.clicked.connect(self.export_onnx)
        self.busy = QtWidgets.QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(6)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.verdict = QtWidgets.QLabel("Verified before it is written: onnx.checker (full check), then onnxruntime "
                                        "against PyTorch on random inputs at two batch sizes.")
        self.verdict.setObjectName("export_verdict")
        self.verdict.setWordWrap(True)
        self.details = QtWidgets.QPlainTextEdit()
        self.details.setObjectName("export_report")
        self.details.setReadOnly(True)
        self.details.setMinimumHeight(150)
        self.details.setPlaceholderText("The verification report appears here.")

        self.code_path = QtWidgets.QLineEdit(str(self.folder / f"{base}.py"))
        self.code_path.setObjectName("export_code_path")
        self.code_button = QtWidgets.QPushButton("Save PyTorch code")
        self.code_button.setObjectName("export_code")
        self.code_button.clicked.connect(self.export_code)
        self.ckpt_path = QtWidgets.QLineEdit(str(self.folder / f"{base}.pt"))
        self.ckpt_path.setObjectName("export_ckpt_path")
        self.ckpt_button = QtWidgets.QPushButton("Save checkpoint")
        self.ckpt_button.setObjectName("export_ckpt")
        self.ckpt_button.clicked.connect(self.export_checkpoint)
        self.other = QtWidgets.QLabel("")
        self.other.setObjectName("export_other")
        self.other.setWordWrap(True)

        form = QtWidgets.QFormLayout()
        form.addRow("weights", self.weights)
        onnx_box = QtWidgets.QGroupBox("ONNX")
        of = QtWidgets.QGridLayout(onnx_box)
        of.addWidget(QtWidgets.QLabel("file"), 0, 0)
        of.addWidget(self.onnx_path, 0, 1, 1, 3)
        of.addWidget(self._browse(self.onnx_path, "ONNX (*.onnx)"), 0, 4)
        of.addWidget(QtWidgets.QLabel("opset"), 1, 0)
        of.addWidget(self.opset, 1, 1)
        of.addWidget(QtWidgets.QLabel("batch"), 1, 2)
        of.addWidget(self.batch, 1, 3)
        of.addWidget(self.onnx_button, 1, 4)
        of.addWidget(self.busy, 2, 0, 1, 5)
        of.addWidget(self.verdict, 3, 0, 1, 5)
        of.addWidget(self.details, 4, 0, 1, 5)
        other_box = QtWidgets.QGroupBox("PyTorch")
        og = QtWidgets.QGridLayout(other_box)
        og.addWidget(QtWidgets.QLabel("source"), 0, 0)
        og.addWidget(self.code_path, 0, 1)
        og.addWidget(self._browse(self.code_path, "Python (*.py)"), 0, 2)
        og.addWidget(self.code_button, 0, 3)
        og.addWidget(QtWidgets.QLabel("checkpoint"), 1, 0)
        og.addWidget(self.ckpt_path, 1, 1)
        og.addWidget(self._browse(self.ckpt_path, "Checkpoint (*.pt)"), 1, 2)
        og.addWidget(self.ckpt_button, 1, 3)
        og.addWidget(self.other, 2, 0, 1, 4)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(onnx_box, 1)
        layout.addWidget(other_box)
        layout.addWidget(buttons)
        self.weights.currentIndexChanged.connect(self._weights_changed)
        self._weights_changed()
        self.onnx_done.connect(self._onnx_finished)
        self.resize(720, 560)

    def _browse(self, edit: QtWidgets.QLineEdit, filter_: str) -> QtWidgets.QToolButton:
        button = QtWidgets.QToolButton()
        button.setText("…")

        def pick():
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export — DeepCanvas", edit.text(), filter_)
            if path:
                edit.setText(path)
        button.clicked.connect(pick)
        return button

    @property
    def run(self):
        i = self.weights.currentIndex()
        return self._runs[i] if 0 <= i < len(self._runs) else None

    def _weights_changed(self) -> None:
        run = self.run
        has_ckpt = run is not None and bool(self._checkpoint_file(run))
        self.ckpt_button.setEnabled(run is not None)
        self.ckpt_button.setToolTip("" if run is not None else "Train the network first: a checkpoint holds the "
                                                                "trained weights")
        if run is None:
            self.other.setText("No trained weights chosen: the ONNX file gets the seeded initial weights.")
        elif not has_ckpt:
            self.other.setText(f"Run {run.number} wrote no checkpoint file; its final weights are saved instead.")
        else:
            self.other.setText("")
        if run is not None and run.input_norm:
            self.other.setText(" ".join(filter(None, [
                self.other.text(), f"Run {run.number} trained on standardized inputs: the ONNX file and the code "
                                   "standardize raw inputs with the training set's mean and std."])))
        self.other.setStyleSheet("")

    # ------------------------------------------------------------------ ONNX
    def export_onnx(self) -> None:
        if self._done is not None and not self._done.is_set():
            return
        path = Path(self.onnx_path.text().strip())
        if not self.may_write(path):
            return
        run = self.run
        weights = run.weights if run is not None else None
        source = f"run {run.number} (epoch {run.weights_epoch})" if run is not None else None
        input_norm = run.input_norm if run is not None else None  # the weights only fit standardized inputs
        batch_text = self.batch.currentText().strip()
        batch = "dynamic" if batch_text == "dynamic" else batch_text
        try:
            batch = batch if batch == "dynamic" else int(batch)
        except ValueError:
            self._onnx_finished(f"batch: '{batch_text}' is neither 'dynamic' nor a whole number")
            return
        graph = self.doc.graph.copy()
        opset = self.opset.value()
        from .warmup import EXPORT, ensure_imported
        ensure_imported(EXPORT, say=self.verdict.setText)  # before the thread starts (see warmup)
        self.onnx_button.setEnabled(False)
        self.busy.show()
        self.verdict.setText(f"Exporting {graph.name} and verifying it with onnxruntime…")
        self.verdict.setStyleSheet("")

        def work():
            try:
                from engine.export import export_graph
                report = export_graph(graph, path, weights=weights, weights_source=source, input_norm=input_norm,
                                      opset=opset, batch=batch)
                self.onnx_done.emit(report)
            except Exception as exc:  # ExportError, GraphError, WeightsError: their messages name the node
                self.onnx_done.emit(f"{exc}")
        self._done = threading.Event()

        def job():
            try:
                work()
            finally:
                self._done.set()
        from .compute import submit
        submit(job)

    def _onnx_finished(self, outcome) -> None:
        t = themes.current()
        self.busy.hide()
        self.onnx_button.setEnabled(True)
        if isinstance(outcome, str):
            self.report, self.error = None, outcome
            self.verdict.setText(f"Not exported: {outcome.splitlines()[0] if outcome else 'failed'}")
            self.verdict.setStyleSheet(f"color: {t.error};")
            self.details.setPlainText(outcome)
            return
        self.report, self.error = outcome, ""
        r = outcome
        ok = r.ok
        self.verdict.setText(f"{'✓' if ok else '✗'} {Path(r.path).name}: onnx.checker passed · onnxruntime matches "
                             f"PyTorch at batches {', '.join(str(c.batch) for c in r.checks)} · max |difference| "
                             f"{r.max_diff:.2e} (tolerance {r.tolerance:g})")
        self.verdict.setStyleSheet(f"color: {t.ok if ok else t.error};")
        self.details.setPlainText(r.text())

    def wait(self, timeout: float = 120.0) -> None:
        """Block until the export thread ends (tests only; the app never waits)."""
        if self._done is not None:
            self._done.wait(timeout)
        QtCore.QCoreApplication.processEvents()

    # ------------------------------------------------------------------ PyTorch
    def export_code(self) -> None:
        from engine.codegen import generate_code
        from engine.fileio import write_atomic

        path = Path(self.code_path.text().strip())
        run = self.run
        norm = run.input_norm if run is not None else None
        if problem := unwritable(path):
            self._say(f"Code not saved: {problem}", error=True)
            return
        if not self.may_write(path):
            return
        try:
            source = generate_code(self.doc.graph, input_norm=norm)
            write_atomic(path, source)
        except Exception as exc:
            self._say(f"Code not saved: {exc}", error=True)
            return
        inside = (f"; inputs standardized inside the model with the training set's mean and std (from run "
                  f"{run.number})") if norm else ""
        self._say(f"✓ Saved the PyTorch code to {path} ({len(source.splitlines())} lines){inside}")

    def _checkpoint_file(self, run) -> str:
        files = run.result.checkpoints if run is not None and run.result is not None else {}
        for kind in ("final", "best", "last"):
            if files.get(kind) and Path(files[kind]).is_file():
                return files[kind]
        return ""

    def export_checkpoint(self) -> None:
        run = self.run
        if run is None:
            return
        path = Path(self.ckpt_path.text().strip())
        src = self._checkpoint_file(run)
        if problem := unwritable(path):
            self._say(f"Checkpoint not saved: {problem}", error=True)
            return
        if not self.may_write(path):
            return
        try:
            if src:
                tmp = path.with_name(f".{path.name}.tmp")
                shutil.copyfile(src, tmp)
                tmp.replace(path)
                what = f"the checkpoint of run {run.number} ({Path(src).name}: weights, optimizer and history)"
            else:
                import torch
                tmp = path.with_name(f".{path.name}.tmp")
                # with the standardization, as the trainer's checkpoints: an export from this file needs it
                torch.save({"model": run.weights, "input_norm": run.input_norm or {}}, tmp)
                tmp.replace(path)
                what = f"the final weights of run {run.number}"
        except OSError as exc:
            self._say(f"Checkpoint not saved: cannot write {path}: {exc.strerror or exc}", error=True)
            return
        self._say(f"✓ Saved {what} to {path}; load it with torch.load(..., weights_only=True)")

    def may_write(self, path: Path) -> bool:
        """Whether to write ``path``: yes when there is no file there, else the user is asked (through the
        main window's ``ask``, which tests replace)."""
        if not path.is_file():
            return True
        ask = getattr(self.parent(), "ask", None)
        if ask is None:
            box = QtWidgets.QMessageBox.question(self, "Replace the file?", f"{path} exists. Replace it?")
            return box == QtWidgets.QMessageBox.StandardButton.Yes
        return ask("Replace the file?", f"{path} exists. Replace it?", ["Replace", "Cancel"]) == "Replace"

    def _say(self, text: str, error: bool = False) -> None:
        t = themes.current()
        self.other.setText(text)
        self.other.setStyleSheet(f"color: {t.error if error else t.ok};")


def unwritable(path: Path) -> str:
    """Why a file cannot be written at ``path`` as typed in the dialog, or ''."""
    if not path.name or str(path) == ".":
        return "give a file name"
    if path.is_dir():
        return f"{path} is a folder: give a file name in it"
    if not path.parent.is_dir():
        return f"cannot write {path}: the folder {path.parent} does not exist"
    return ""
