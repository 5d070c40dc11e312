"""Optimizers on the user's own network: the graph on the canvas trained once per run (optimizer,
batching mode, batch size, learning rate), all from the same initial weights and the same data order,
one after another or in parallel; train (solid) and dev (dashed) curves overlaid with a legend, and a
table of each run's final metrics, time and best epoch.

The work is ``engine.optlab.Comparison`` in a background thread; a QTimer reads its outcomes (pull,
not push), so training never waits for the window.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine import optlab

from .. import theme as themes
from .widgets import SciSpinBox, legend, styled_plot, swatch

POLL_MS = 100
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")  # engine.training.config
BATCHING = ("mini-batch", "batch", "stochastic")
DEFAULT_RUNS = ("sgd", "momentum", "rmsprop", "adam")
RESULT_COLUMNS = ("Run", "Status", "Progress", "Train loss", "Train acc", "Dev loss", "Dev acc", "Time (s)",
                  "Best epoch")
MAX_DEFAULT_EPOCHS = 10


class RunRow:
    """The widgets of one run in the runs table."""

    def __init__(self, table: QtWidgets.QTableWidget, row: int, optimizer: str, batching: str, batch_size: int,
                 lr: float, lr_for: Callable[[str], float]):
        self.optimizer = QtWidgets.QComboBox()
        self.optimizer.addItems(OPTIMIZERS)
        self.optimizer.setCurrentText(optimizer)
        self.batching = QtWidgets.QComboBox()
        self.batching.addItems(BATCHING)
        self.batching.setCurrentText(batching)
        self.batch_size = QtWidgets.QSpinBox()
        self.batch_size.setRange(1, 1_000_000)
        self.batch_size.setValue(batch_size)
        self.lr = SciSpinBox(1e-7, 100.0, lr, log=True)
        self.lr.setToolTip("learning rate α")
        for col, w in enumerate((self.optimizer, self.batching, self.batch_size, self.lr)):
            table.setCellWidget(row, col, w)
        self.optimizer.currentTextChanged.connect(lambda name: self.lr.setValue(lr_for(name)))
        self.batching.currentTextChanged.connect(lambda mode: self.batch_size.setEnabled(mode == "mini-batch"))
        self.batch_size.setEnabled(batching == "mini-batch")

    def spec(self) -> optlab.RunSpec:
        mode = self.batching.currentText()
        return optlab.RunSpec(self.optimizer.currentText(), mode,
                              self.batch_size.value() if mode == "mini-batch" else None, self.lr.value())


class NetworkComparison(QtWidgets.QWidget):
    status = QtCore.Signal(str)
    finished = QtCore.Signal()

    def __init__(self, graph_source: Callable[[], object] | None = None, parent=None):
        super().__init__(parent)
        self.graph_source = graph_source
        self.comparison: optlab.Comparison | None = None
        self.thread: threading.Thread | None = None
        self.worker_error = ""
        self._drawn: dict[int, int] = {}
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self._build()
        self.refresh()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        left = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(left)
        lay.setContentsMargins(8, 8, 8, 8)
        self.graph_label = QtWidgets.QLabel()
        self.graph_label.setProperty("role", "heading")
        self.graph_label.setWordWrap(True)
        lay.addWidget(self.graph_label)
        explain = QtWidgets.QLabel("Each run trains the network on the canvas from the same initial weights and "
                                   "sees the training examples in the same order; only the optimizer, the batching "
                                   "and the learning rate differ. Other settings come from the network's training "
                                   "settings.")
        explain.setWordWrap(True)
        explain.setProperty("role", "dim")
        lay.addWidget(explain)
        form = QtWidgets.QFormLayout()
        self.dataset = QtWidgets.QComboBox()
        self.dataset.setEditable(True)
        self.dataset.setObjectName("dataset")
        self.dataset.setToolTip("A built-in data set or the path of your data file/folder")
        from engine.training.datasets import BUILTINS

        self.dataset.addItems(list(BUILTINS))
        form.addRow("Data set", self.dataset)
        self.epochs = QtWidgets.QSpinBox()
        self.epochs.setRange(1, 100_000)
        self.epochs.setObjectName("epochs")
        form.addRow("Epochs", self.epochs)
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Fixes the initial weights, the data split and the order of the examples")
        form.addRow("Seed", self.seed)
        self.parallel = QtWidgets.QCheckBox("Train the runs at the same time")
        self.parallel.setObjectName("parallel")
        self.parallel.setToolTip("Two runs at a time in threads; they share the processor, so each takes longer "
                                 "than alone (compare times from one-after-another runs)")
        form.addRow("", self.parallel)
        lay.addLayout(form)

        self.runs = QtWidgets.QTableWidget(0, 4)
        self.runs.setObjectName("runs")
        self.runs.setHorizontalHeaderLabels(["Optimizer", "Batching", "Batch size", "Learning rate"])
        self.runs.verticalHeader().setVisible(True)
        self.runs.horizontalHeader().setStretchLastSection(True)
        self.runs.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs.setMinimumHeight(170)
        self.rows: list[RunRow] = []
        lay.addWidget(self.runs, 1)
        row_buttons = QtWidgets.QHBoxLayout()
        add = QtWidgets.QPushButton("Add run")
        add.clicked.connect(lambda: self.add_run("adam", "mini-batch"))
        remove = QtWidgets.QPushButton("Remove run")
        remove.clicked.connect(self.remove_selected)
        row_buttons.addWidget(add)
        row_buttons.addWidget(remove)
        row_buttons.addStretch(1)
        lay.addLayout(row_buttons)
        buttons = QtWidgets.QHBoxLayout()
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.setObjectName("run_comparison")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setObjectName("stop_comparison")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.save_button = QtWidgets.QPushButton("Save results…")
        self.save_button.setEnabled(False)
        self.save_button.setToolTip("Write curves.csv, summary.csv and curves.png to a folder (as "
                                    "`deepcanvas compare-optimizers` does)")
        self.save_button.clicked.connect(self._save_clicked)
        for b in (self.run_button, self.stop_button, self.save_button):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("comparison_message")
        self.message.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.message)

        right = QtWidgets.QWidget()
        rlay = QtWidgets.QVBoxLayout(right)
        rlay.setContentsMargins(0, 0, 0, 0)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Show"))
        self.metric = QtWidgets.QComboBox()
        self.metric.addItem("Loss", "loss")
        self.metric.addItem("Accuracy", "accuracy")
        self.metric.currentIndexChanged.connect(self._redraw_all)
        top.addWidget(self.metric)
        hint = QtWidgets.QLabel("solid: train   dashed: dev")
        hint.setProperty("role", "dim")
        top.addWidget(hint)
        top.addStretch(1)
        rlay.addLayout(top)
        self.plot = styled_plot("", "epoch", "loss")
        self.plot.setObjectName("comparison_plot")
        legend(self.plot)
        rlay.addWidget(self.plot, 1)
        self.results = QtWidgets.QTableWidget(0, len(RESULT_COLUMNS))
        self.results.setObjectName("results")
        self.results.setHorizontalHeaderLabels(RESULT_COLUMNS)
        self.results.verticalHeader().setVisible(False)
        self.results.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.horizontalHeader().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.results.setMinimumHeight(150)

        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([460, 860])
        vsplit = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        vsplit.addWidget(split)
        vsplit.addWidget(self.results)
        vsplit.setStretchFactor(0, 3)
        vsplit.setStretchFactor(1, 1)
        vsplit.setSizes([640, 240])
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(vsplit)
        self.curves: dict[tuple[int, str], pg.PlotDataItem] = {}

    # ------------------------------------------------------------------ the graph and the runs
    def graph(self):
        return self.graph_source() if self.graph_source is not None else None

    def base_config(self):
        from engine.training import TrainingConfig

        graph = self.graph()
        return TrainingConfig.from_graph(graph) if graph is not None else TrainingConfig()

    def refresh(self) -> None:
        """Take the network's name and training settings (data set, epochs, batch size, seed) again."""
        if self.running:
            return
        graph = self.graph()
        self.graph_label.setText(f"Network: {graph.name}" if graph is not None else "No network open")
        if graph is not None and graph is getattr(self, "_graph", None) and self.rows:
            return  # the same document: keep the runs and settings the user set
        self._graph = graph
        try:
            cfg = self.base_config()
        except ValueError as exc:  # a training section the config refuses: say so, keep defaults
            from engine.training import TrainingConfig

            cfg = TrainingConfig()
            self._say(f"The network's training settings have problems; using the defaults. {exc}", error=True)
        self._graph_config = cfg
        self.dataset.setCurrentText(cfg.data.dataset)
        self.epochs.setValue(min(cfg.epochs, MAX_DEFAULT_EPOCHS))
        self.epochs.setToolTip(f"Passes over the training set (the network's own setting is {cfg.epochs})")
        self.seed.setValue(cfg.seed)
        self.runs.setRowCount(0)
        self.rows = []
        for name in DEFAULT_RUNS:
            self.add_run(name, cfg.batching)

    def lr_for(self, name: str) -> float:
        cfg = getattr(self, "_graph_config", None)
        if cfg is not None and cfg.optimizer.name == name:
            return cfg.optimizer.lr
        return optlab.STARTING_LR.get(name, 0.001)

    def add_run(self, optimizer: str, batching: str, batch_size: int | None = None, lr: float | None = None) -> None:
        cfg = getattr(self, "_graph_config", None)
        size = batch_size or (cfg.batch_size if cfg is not None else 64)
        row = self.runs.rowCount()
        self.runs.insertRow(row)
        self.rows.append(RunRow(self.runs, row, optimizer, batching, size,
                                lr if lr is not None else self.lr_for(optimizer), self.lr_for))

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.runs.selectedIndexes()} or {self.runs.currentRow()}, reverse=True)
        for r in rows:
            if 0 <= r < len(self.rows):
                self.runs.removeRow(r)
                del self.rows[r]

    def specs(self) -> list[optlab.RunSpec]:
        return [r.spec() for r in self.rows]

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> bool:
        """Set up the comparison from the form and train it in the background; False (with the reason
        shown) when it cannot start."""
        if self.running:
            return False
        graph = self.graph()
        if graph is None:
            return self._say("Open or draw a network first.", error=True)
        over = {"epochs": self.epochs.value(), "seed": self.seed.value()}
        dataset = self.dataset.currentText().strip()
        base_cfg = self._graph_config if getattr(self, "_graph_config", None) else None
        if dataset:
            over["data.dataset"] = dataset
            if base_cfg is None or dataset != base_cfg.data.dataset:
                over["data.options"] = {}  # options in the file belong to the file's data set
        try:
            base = self.base_config().with_overrides(over)
            self.comparison = optlab.Comparison(graph, self.specs(), base)
        except ValueError as exc:  # ConfigError, ComparisonError: each names the setting and the run
            return self._say(str(exc).replace("the training configuration has problems:\n", ""), error=True)
        self.worker_error = ""
        self._drawn = {}
        self._reset_plot()
        self._fill_results()
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.save_button.setEnabled(False)
        self._say(f"Preparing {len(self.comparison.runs)} runs (loading the data, compiling the network)…")
        parallel = self.parallel.isChecked()
        self.thread = threading.Thread(target=self._work, args=(self.comparison, parallel), daemon=True,
                                       name="optlab-comparison")
        self.thread.start()
        self.timer.start()
        return True

    def _work(self, comparison: optlab.Comparison, parallel: bool) -> None:
        try:
            comparison.run(parallel=parallel)
        except Exception as exc:  # GraphError, DataError, SetupError, ...: shown in the window, never raised
            self.worker_error = str(exc) or type(exc).__name__

    def stop(self) -> None:
        if self.comparison is not None:
            self.comparison.stop()
            self._say("Stopping after the current step…")

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the background work ends (tests, closing the window)."""
        if self.thread is not None:
            self.thread.join(timeout)
        self.poll()
        return not self.running

    def poll(self) -> None:
        c = self.comparison
        if c is None:
            return
        for o in c.outcomes:
            history = list(o.history)  # (the worker appends to it meanwhile: draw and count the same epochs)
            if self._drawn.get(o.index) != len(history):
                self._draw_run(o, history)
                self._drawn[o.index] = len(history)
        self._fill_results()
        if not self.running:
            self.timer.stop()
            self.run_button.setEnabled(True)
            self.stop_button.setEnabled(False)
            done = [o for o in c.outcomes if o.history]
            self.save_button.setEnabled(bool(done))
            if self.worker_error:
                self._say(f"The comparison could not run: {self.worker_error}", error=True)
            else:
                states = ", ".join(f"{sum(o.status == s for o in c.outcomes)} {s}"
                                   for s in ("finished", "early-stopped", "stopped", "skipped", "failed")
                                   if any(o.status == s for o in c.outcomes))
                failed = [o for o in c.outcomes if o.status == "failed"]
                extra = f" {failed[0].label}: {failed[0].reason}" if failed else ""
                self._say(f"Done in {c.seconds:.1f} s: {states}.{extra}", error=bool(failed))
            self.finished.emit()
        else:
            running = [o for o in c.outcomes if o.status == "running"]
            if running:
                self._say("Training " + ", ".join(o.label for o in running) + "…")

    # ------------------------------------------------------------------ drawing
    def _reset_plot(self) -> None:
        item = self.plot.getPlotItem()
        for curve in self.curves.values():
            item.removeItem(curve)
        self.curves = {}
        if item.legend is not None:
            item.legend.clear()

    def _keys(self) -> tuple[str, str]:
        if self.metric.currentData() == "accuracy":
            return "train_accuracy", "dev_accuracy"
        return "train_loss", "dev_loss"

    def _draw_run(self, o: optlab.RunOutcome, history: list[dict] | None = None) -> None:
        history = list(o.history) if history is None else history
        train_key, dev_key = self._keys()
        for key, style in ((train_key, QtCore.Qt.PenStyle.SolidLine), (dev_key, QtCore.Qt.PenStyle.DashLine)):
            pairs = [(h["epoch"], h.get(key)) for h in history if h.get(key) is not None]
            curve = self.curves.get((o.index, key))
            if curve is None:
                pen = pg.mkPen(o.color, width=2, style=style)
                name = o.label if style == QtCore.Qt.PenStyle.SolidLine else None
                curve = self.plot.plot([], [], pen=pen, name=name, symbol="o", symbolSize=4,
                                       symbolBrush=o.color, symbolPen=None)
                self.curves[(o.index, key)] = curve
            curve.setData([p[0] for p in pairs], [p[1] for p in pairs])

    def _redraw_all(self) -> None:
        self._reset_plot()
        self.plot.getPlotItem().setLabel("left", self.metric.currentText().lower(), color=themes.current().dim)
        if self.comparison is not None:
            for o in self.comparison.outcomes:
                self._draw_run(o)

    def _fill_results(self) -> None:
        c = self.comparison
        if c is None:
            return
        self.results.setRowCount(len(c.outcomes))
        for row, o in enumerate(c.outcomes):
            f = o.final
            progress = f"{o.steps:,} / {o.total_steps:,} steps" if o.total_steps else ""
            cells = [o.label, o.status + (f": {o.reason}" if o.status == "failed" else ""), progress,
                     _num(f.get("train_loss")), _pct(f.get("train_accuracy")), _num(f.get("dev_loss")),
                     _pct(f.get("dev_accuracy")), f"{o.seconds:.2f}" if o.seconds else "",
                     str(o.best_epoch) if o.best_epoch else ""]
            for col, text in enumerate(cells):
                item = self.results.item(row, col)
                if item is None:
                    item = QtWidgets.QTableWidgetItem()
                    if col > 1:
                        item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                    self.results.setItem(row, col, item)
                if item.text() != text:
                    item.setText(text)
                if col == 0:
                    item.setIcon(swatch(o.color))
                    item.setToolTip(f"{o.optimizer}, {o.batching}, batch {o.batch_size}, lr {o.lr:g}")
        self.results.resizeColumnsToContents()
        self.results.horizontalHeader().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)

    # ------------------------------------------------------------------ saving
    def _save_clicked(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Save the comparison to a folder")
        if folder:
            self.save_results(folder)

    def save_results(self, folder: str | Path) -> list[Path]:
        if self.comparison is None:
            return []
        try:
            files = self.comparison.write(folder)
        except OSError as exc:
            self._say(f"Could not write to {folder}: {exc.strerror or exc}", error=True)
            return []
        self._say("Wrote " + ", ".join(f.name for f in files) + f" to {folder}")
        return files

    def _say(self, text: str, error: bool = False) -> bool:
        self.message.setText(text)
        self.message.setProperty("role", "error" if error else "dim")
        self.message.style().polish(self.message)
        self.status.emit(text)
        return False


def _num(v) -> str:
    return f"{v:.4f}" if v is not None else ""


def _pct(v) -> str:
    return f"{v:.1%}" if v is not None else ""
