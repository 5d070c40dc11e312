"""Puts training into the main window: the Training dock (bottom, next to Problems), the Preview dock
(right, next to Pre-flight), training health on the canvas, and the Train menu (Train, Pause/Resume,
Stop, Export…, show health). The main window only creates a ``TrainingUI`` and passes it the document
like any panel."""

from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

from .controller import SHARED_SLOWDOWN, RunController
from .dock import STAGGER_MS, TrainingDock
from .health import HealthOverlay
from .preview import PreviewPanel

HEALTH_EVERY = 2.0  # seconds between canvas health updates during a run (the cards repaint in Python)

ACTIONS = {
    # name: (text, shortcut, tip)
    "train": ("&Train", "F5", "Train the network on the canvas with its training settings"),
    "pause": ("&Pause / Resume", "F6", "Pause the run after the current step, or resume it"),
    "stop": ("&Stop", "Shift+F5", "End the run after the current step"),
    "export": ("&Export…", "Ctrl+E", "Export to ONNX (verified), PyTorch code, or the trained checkpoint"),
    "health": ("Training &Health on Canvas", "", "Tint layers by gradient norm, show dead ReLUs and where a NaN "
                                                  "appeared"),
}


STOP_AND_CLOSE = "Stop and Close"


class TrainingUI(QtCore.QObject):
    def __init__(self, window, runs_dir=None):
        super().__init__(window)
        self.window = window
        self.controller = RunController(runs_dir, self)
        self.dock_widget = TrainingDock(self.controller)
        self.preview = PreviewPanel(self.controller)
        self.health = HealthOverlay(window.canvas, self)
        self.doc = None
        self._last_health = 0.0

        area = QtCore.Qt.DockWidgetArea
        self.dock = self._dock("training", "Training", self.dock_widget, area.BottomDockWidgetArea)
        self.preview_dock = self._dock("preview", "Preview", self.preview, area.RightDockWidgetArea)
        problems = window.docks.get("problems")
        if problems is not None:
            window.tabifyDockWidget(problems, self.dock)
        preflight = window.docks.get("preflight")
        if preflight is not None:
            window.tabifyDockWidget(preflight, self.preview_dock)
            preflight.raise_()
        self.dock.raise_()
        window.resizeDocks([self.dock], [400], QtCore.Qt.Orientation.Vertical)

        self.actions: dict[str, QtGui.QAction] = {}
        for name, (text, key, tip) in ACTIONS.items():
            action = QtGui.QAction(text, window)
            action.setObjectName(f"action_train_{name}")
            if key:
                action.setShortcut(QtGui.QKeySequence(key))
            action.setStatusTip(tip)
            action.setToolTip(f"{tip} ({key})" if key else tip)
            window.addAction(action)
            self.actions[name] = action
        self.actions["health"].setCheckable(True)
        self.actions["health"].setChecked(True)
        self.actions["train"].triggered.connect(self.start)
        self.actions["pause"].triggered.connect(self.controller.toggle_pause)
        self.actions["stop"].triggered.connect(self.controller.stop)
        self.actions["export"].triggered.connect(self.open_export)
        self.actions["health"].toggled.connect(self.health.set_enabled)
        self.menu = QtWidgets.QMenu("T&rain", window)
        self.menu.setObjectName("menu_train")
        for name in ("train", "pause", "stop", None, "export", None, "health"):
            self.menu.addAction(self.actions[name]) if name else self.menu.addSeparator()
        bar = window.menuBar()
        titles = {a.text().replace("&", ""): a for a in bar.actions()}
        before = titles.get("Tools") or titles.get("Help")  # after View, before Tools and Help
        bar.insertMenu(before, self.menu) if before is not None else bar.addMenu(self.menu)
        panels = getattr(window, "panels_menu", None)
        if panels is not None:
            panels.addAction(self.dock.toggleViewAction())
            panels.addAction(self.preview_dock.toggleViewAction())

        window.canvas.selection_changed.connect(self.preview.show_selection)
        self.preview_dock.visibilityChanged.connect(self.preview.set_shown)
        self.dock.visibilityChanged.connect(lambda shown: shown and self.dock_widget.plots.schedule())
        self.controller.started.connect(self._started)
        self.controller.updated.connect(self._updated)
        self.controller.finished.connect(self._finished)
        self.dock_widget.runs.chosen.connect(self._show_health)
        self.controller.runs_changed.connect(self._runs_changed)
        self._actions()

    def _dock(self, name: str, title: str, widget, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self.window)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.window.addDockWidget(area, dock)
        return dock

    def let_panels_shrink(self, height: int) -> None:
        """The panels that scroll (the settings, the preview) may be as low as ``height`` from now on: once
        the window's default layout is made (see MainWindow._let_panels_shrink)."""
        self.dock_widget.let_shrink(height)
        self.preview.let_shrink(height)

    # ------------------------------------------------------------------ the window's panel protocol
    def set_document(self, doc) -> None:
        self.doc = doc
        self.dock_widget.set_document(doc)
        self.preview.set_document(doc)
        self.health.watch(doc)

    def shutdown(self) -> None:
        self.controller.shutdown()

    def confirm_close(self) -> bool:
        """True when the window may close: no run is training, or the user chose to stop it."""
        run = self.controller.current if self.controller.running else None
        if run is None:
            return True
        where = f"epoch {max(run.epoch, 1)}" + (f" of {run.info.epochs}" if run.info is not None else "")
        kept = f" in {run.run_dir}" if run.run_dir else ""
        answer = self.window.ask(
            "A run is training",
            f"Run {run.number} is training ({where}). Closing the window stops it; the weights it has "
            f"reached are kept in its checkpoint (final.pt{kept}).", [STOP_AND_CLOSE, "Cancel"])
        return answer == STOP_AND_CLOSE

    # ------------------------------------------------------------------ actions
    def start(self):
        if not self.dock.isVisible() or self.dock.visibleRegion().isEmpty():  # (hidden, or tabbed away)
            # Only then: on a dock already in front, show() and raise_() lay the main window out again and
            # repaint the whole dock, 5-10 ms of the click's own time, when the event loop waits longest.
            self.dock.show()
            self.dock.raise_()
        run = self.dock_widget.start()
        if run is None and not self.controller.running:
            self.window.flash(self.dock_widget.status.text().splitlines()[0])
        return run

    def open_export(self):
        from .export import ExportDialog

        folder = self.doc.path.parent if self.doc is not None and self.doc.path else None
        dialog = ExportDialog(self.doc, self.controller, self.window, folder)
        dialog.show()
        return dialog

    def _actions(self) -> None:
        running = self.controller.running
        self.actions["train"].setEnabled(not running)
        self.actions["pause"].setEnabled(running)
        self.actions["stop"].setEnabled(running)

    def _started(self, run) -> None:
        self._actions()
        self.health.clear()

    def _updated(self, run, changes) -> None:
        if "state" in changes:
            self._actions()
        now = time.perf_counter()
        every = HEALTH_EVERY * (SHARED_SLOWDOWN if self.controller.shares_cores else 1)
        if "health" in changes and run is self.controller.current and now - self._last_health >= every:
            self._last_health = now
            self._show_health(run)

    def _finished(self, run) -> None:
        self._actions()
        # The canvas repaints its cards for the final health after the dock's panels (see dock.STAGGER_MS).
        QtCore.QTimer.singleShot(3 * STAGGER_MS, lambda: run is self.controller.current and self._show_health(run))
        msg = f"Run {run.number} {run.status}" + (f": {run.error}" if run.error else "")
        self.window.flash(msg.splitlines()[0])

    def _runs_changed(self) -> None:
        """The run whose health the canvas shows was removed: the newest run kept is shown, or none."""
        if self.health.run is not None and self.health.run not in self.controller.runs:
            self.health.clear()
            name = self.doc.graph.name if self.doc is not None else None
            same = [r for r in self.controller.runs if r.graph_name == name]  # (another network's marks
            if same:                                                          # would land on this one's ids)
                self._show_health(same[-1])

    def _show_health(self, run) -> None:
        if run is None or (not run.grad_norms and run.health is None and run.nonfinite is None):
            return
        self.health.show_run(run)
