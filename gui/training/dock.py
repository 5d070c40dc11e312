"""The Training dock: the settings on the left with Start, Pause/Resume and Stop and a progress bar with
the ETA; on the right the live curves with the list of kept runs (tick a run to overlay it), the
samples, and the results of the run chosen in the list."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as themes
from .plots import LivePlots
from .results import ResultsView
from .runs import Run, format_seconds
from .samples import SamplesView
from .settings import SettingsForm

PROGRESS_EVERY = 0.5  # seconds between progress-bar updates
# ... while a CPU run trains on every core (RunController.shares_cores): each update repaints the bar, the
# live line and what lies under them, in the run's time.
SHARED_PROGRESS_EVERY = 1.0
# Seconds between updates of the running run's line in the runs list from its epochs (its best dev figure;
# a change of state shows at once): the list lays out and repaints every run's item for each change.
RUNS_LIST_EVERY = 2.0
STAGGER_MS = 40  # milliseconds between the panels filled at a run's end (results, then samples)
# The least height of the plots (the tool bar above them and two rows of two plots): about 40 pixels of
# curve in each plot between its title and its axis; a lower dock scrolls them.
PLOTS_MIN_HEIGHT = 250
PANE_MIN_HEIGHT = 32  # the least height of the plots' scroll area


class ProgressBar(QtWidgets.QProgressBar):
    """A progress bar that repaints with the rest of the window. Qt's ``QProgressBar.setValue`` repaints
    at once, synchronously, and with it whatever the bar overlaps (the plots: milliseconds of Python
    each time); here the change is painted at the next paint event instead."""

    def setValue(self, value: int) -> None:
        self.setUpdatesEnabled(False)  # repaint() does nothing now; re-enabling schedules an update()
        try:
            super().setValue(value)
        finally:
            self.setUpdatesEnabled(True)

    def text(self) -> str:
        """The text on the bar, cut to its width with an ellipsis (the whole of it is the tooltip): in the
        narrow settings column the run's progress line ran past the bar and wrapped under it."""
        return self.fontMetrics().elidedText(super().text(), QtCore.Qt.TextElideMode.ElideRight,
                                             max(self.width() - 8, 0))


class StatusLine(QtWidgets.QWidget):
    """One line of text that changes every half second during a run (its loss and accuracy). A QLabel
    whose text changes asks the whole window for a new layout each time (the main window then lays out
    and animates every dock); this line keeps its size and only repaints itself."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._text = ""
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().height() + 4)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.setToolTip(text)
            self.update()

    def paintEvent(self, event) -> None:
        p = QtGui.QPainter(self)
        p.setPen(self.palette().color(QtGui.QPalette.ColorRole.WindowText))
        fm = self.fontMetrics()
        p.drawText(self.rect(), QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter,
                   fm.elidedText(self._text, QtCore.Qt.TextElideMode.ElideRight, self.width()))


class MessageArea(QtWidgets.QScrollArea):
    """The run's status message in an area of its own, ``LINES`` lines high whatever the message: a long
    one (a failure's reason) scrolls inside it; it neither squeezes the settings above nor makes the dock
    grow (which shrank the canvas at a run's end)."""

    LINES = 3

    def __init__(self, label: QtWidgets.QLabel, parent=None):
        super().__init__(parent)
        self.setObjectName("train_status_area")
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        label.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setWidget(label)
        self.viewport().setAutoFillBackground(False)
        label.setAutoFillBackground(False)
        self.setFixedHeight(label.fontMetrics().lineSpacing() * self.LINES + 4)


class UpDownScroll(QtWidgets.QScrollArea):
    """Scrolls its widget up and down only, where it is lower than the widget's minimum height; as wide
    as the widget's minimum width, ``PANE_MIN_HEIGHT`` high at the least."""

    def __init__(self, widget: QtWidgets.QWidget, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(widget)

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(self.widget().minimumSizeHint().width(), PANE_MIN_HEIGHT)


def _swatch(color: str) -> QtGui.QIcon:
    pix = QtGui.QPixmap(14, 14)
    pix.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pix)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setBrush(QtGui.QColor(color))
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.drawRoundedRect(QtCore.QRectF(1, 3, 12, 8), 3, 3)
    p.end()
    return QtGui.QIcon(pix)


def run_summary(run: Run) -> str:
    best = ""
    if run.epochs:
        last = run.epochs[-1]
        if last.dev_accuracy is not None:
            best = f" · dev acc {max(e.dev_accuracy for e in run.epochs if e.dev_accuracy is not None):.1%}"
        elif last.dev_loss is not None:
            best = f" · dev loss {min(e.dev_loss for e in run.epochs if e.dev_loss is not None):.4g}"
    return f"{run.status}{best}"


class RunsList(QtWidgets.QListWidget):
    """Every kept run: tick to overlay it, click to show its gradients, samples and results."""

    chosen = QtCore.Signal(object)

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.setObjectName("runs_list")
        self.controller = controller
        self.setWordWrap(True)
        self.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemChanged.connect(self._ticked)
        self.currentItemChanged.connect(lambda item, _: item is not None and self.chosen.emit(self._run(item)))
        self._filling = False
        self._refreshed: dict[int, float] = {}  # run number -> when its line was last refreshed for its epochs
        controller.runs_changed.connect(self.fill)
        controller.updated.connect(self._updated)
        controller.finished.connect(self.refresh_run)

    def _updated(self, run: Run, changes) -> None:
        if changes & {"state", "result"}:
            self.refresh_run(run)
        elif "epochs" in changes:
            now = time.perf_counter()
            if now - self._refreshed.get(run.number, -RUNS_LIST_EVERY) >= RUNS_LIST_EVERY:
                self._refreshed[run.number] = now
                self.refresh_run(run)

    def _run(self, item) -> Run | None:
        number = item.data(QtCore.Qt.ItemDataRole.UserRole)
        return next((r for r in self.controller.runs if r.number == number), None)

    def fill(self) -> None:
        self._filling = True
        current = self.currentItem().data(QtCore.Qt.ItemDataRole.UserRole) if self.currentItem() else None
        try:
            self.clear()
            for run in reversed(self.controller.runs):
                item = QtWidgets.QListWidgetItem(_swatch(run.color), "")
                item.setData(QtCore.Qt.ItemDataRole.UserRole, run.number)
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(QtCore.Qt.CheckState.Checked if run.visible else QtCore.Qt.CheckState.Unchecked)
                self._text(item, run)
                self.addItem(item)
                if run.number == current:
                    self.setCurrentItem(item)
        finally:
            self._filling = False

    def _text(self, item, run: Run) -> None:
        text = f"{run.label}\n{run_summary(run)}"
        if text == item.text():
            return  # (the list would lay out and repaint every item for it)
        item.setText(text)
        files = f"\nFiles: {run.run_dir} (checkpoints best.pt and final.pt, metrics.jsonl, report.json)" \
            if run.run_dir else ""
        item.setToolTip(f"{text}\n" + (run.error or "") + files +
                        "\nTick to overlay on the plots; click to see its results; right-click to open its "
                        "folder or remove it")

    def refresh_run(self, run: Run) -> None:
        for i in range(self.count()):
            item = self.item(i)
            if item.data(QtCore.Qt.ItemDataRole.UserRole) == run.number:
                self._filling = True
                try:
                    self._text(item, run)
                finally:
                    self._filling = False

    def _ticked(self, item) -> None:
        if self._filling:
            return
        run = self._run(item)
        if run is not None:
            self.controller.set_visible(run, item.checkState() == QtCore.Qt.CheckState.Checked)

    def _menu(self, pos) -> None:
        item = self.itemAt(pos)
        run = self._run(item) if item else None
        if run is not None:
            menu = self.run_menu(run)
            menu.exec(self.mapToGlobal(pos))
            menu.deleteLater()  # (kept, it held the run, weights and all, after the run was removed)

    def run_menu(self, run: Run) -> QtWidgets.QMenu:
        """A run's menu: its folder (its checkpoints, metrics and report; the app keeps a session's runs in
        a temporary folder, so that a user can open it, or copy its path, to keep or use the files), and
        Remove."""
        menu = QtWidgets.QMenu(self)
        folder = Path(run.run_dir) if run.run_dir else None
        there = folder is not None and folder.is_dir()
        open_folder = menu.addAction("Open Run Folder")
        open_folder.triggered.connect(lambda: QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(folder))))
        copy_path = menu.addAction("Copy Folder Path")
        copy_path.triggered.connect(lambda: QtWidgets.QApplication.clipboard().setText(str(folder)))
        for action in (open_folder, copy_path):
            action.setEnabled(there)
        menu.addSeparator()
        remove = menu.addAction("Remove run")
        remove.setEnabled(not (run is self.controller.current and self.controller.running))
        number = run.number  # (looked up when chosen: the menu holds no run)
        remove.triggered.connect(lambda: [self.controller.remove(r) for r in self.controller.runs
                                          if r.number == number])
        return menu


class TrainingDock(QtWidgets.QWidget):
    """The dock's content. ``start`` trains the document's network with its saved settings."""

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.setObjectName("training_dock")
        self.controller = controller
        self.doc = None
        self.focus: Run | None = None
        self._last_progress = 0.0

        self.settings = SettingsForm()
        self.start_button = QtWidgets.QPushButton("Train")
        self.start_button.setObjectName("train_start")
        self.start_button.setToolTip("Train the network on the canvas with these settings (F5)")
        self.pause_button = QtWidgets.QPushButton("Pause")
        self.pause_button.setObjectName("train_pause")
        self.pause_button.setToolTip("Pause after the current step; press again to resume (F6)")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setObjectName("train_stop")
        self.stop_button.setToolTip("End the run after the current step; the results are computed (Shift+F5)")
        style = self.style()
        self.start_button.setIcon(style.standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MediaPlay))
        self.pause_button.setIcon(style.standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MediaPause))
        self.stop_button.setIcon(style.standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MediaStop))
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(controller.toggle_pause)
        self.stop_button.clicked.connect(controller.stop)
        self.progress = ProgressBar()
        self.progress.setObjectName("train_progress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.status = QtWidgets.QLabel("Ready: press Train to train this network.")
        self.status.setObjectName("train_status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.live = StatusLine()  # the running run's loss and accuracy
        self.live.setObjectName("train_live")
        policy = self.live.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # (its line stays: shown at a run's start, it made the dock grow)
        self.live.setSizePolicy(policy)
        self.live.hide()
        self._error_shown = False

        buttons = QtWidgets.QHBoxLayout()
        buttons.setSpacing(4)
        for b in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        left = QtWidgets.QWidget()
        lv = QtWidgets.QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 4)
        lv.setSpacing(4)
        lv.addWidget(self.settings, 1)
        controls = QtWidgets.QVBoxLayout()
        controls.setContentsMargins(8, 0, 8, 0)
        controls.addLayout(buttons)
        controls.addWidget(self.progress)
        controls.addWidget(self.live)
        self.status_area = MessageArea(self.status)
        controls.addWidget(self.status_area)
        lv.addLayout(controls)

        self.plots = LivePlots(controller)
        self.runs = RunsList(controller)
        self.runs.chosen.connect(self.set_focus)
        runs_box = QtWidgets.QWidget()
        rv = QtWidgets.QVBoxLayout(runs_box)
        rv.setContentsMargins(4, 4, 4, 4)
        title = QtWidgets.QLabel("Runs")
        title.setStyleSheet("font-weight: 600;")
        rv.addWidget(title)
        rv.addWidget(self.runs, 1)
        # The four plots keep the height at which each shows its title, its ticks and some curve (squeezed
        # into a low dock they were a few pixels each, tick labels over each other); below it they scroll.
        # The scroll area asks the dock for no height of its own.
        self.plots.setMinimumHeight(PLOTS_MIN_HEIGHT)
        self.plots_scroll = UpDownScroll(self.plots)
        self.plots_scroll.setObjectName("plots_scroll")
        curves = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        curves.addWidget(self.plots_scroll)
        curves.addWidget(runs_box)
        curves.setStretchFactor(0, 1)
        curves.setSizes([900, 230])
        self.samples = SamplesView()
        self.results = ResultsView()
        self.results.human_error_changed.connect(self._human_error)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setObjectName("training_tabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(curves, "Curves")
        self.tabs.addTab(self.samples, "Samples")
        self.tabs.addTab(self.results, "Results")

        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.setObjectName("training_split")
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setSizes([330, 1100])
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

        controller.say = self._say
        controller.started.connect(self._started)
        controller.updated.connect(self._updated)
        controller.finished.connect(self._finished)
        controller.runs_changed.connect(self._runs_changed)
        self._controls()

    def let_shrink(self, height: int) -> None:
        """The settings may be as low as ``height`` (they scroll): their scroll bar's minimum made the dock's
        (with the buttons and the message under them, about 230 pixels: a Problems dock tabbed with this one
        could not be lower either)."""
        self.settings.setMinimumHeight(height)
        self.results.keep_table_readable()

    DEFAULT_HEIGHT = 400  # pixels: the dock's height before the user sets one

    def sizeHint(self) -> QtCore.QSize:
        # The dock's height is the user's: nothing in it asks for more as runs come and go (every pane
        # that can grow, the status message, the results, scrolls within itself), and this is the height
        # it starts at.
        return QtCore.QSize(super().sizeHint().width(), self.DEFAULT_HEIGHT)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not getattr(self, "_sized", False):
            self._sized = True
            QtCore.QTimer.singleShot(0, self._first_height)

    def _first_height(self) -> None:
        """The first time the dock shows, in a window with no layout saved (a first start, a fresh
        profile): ``DEFAULT_HEIGHT``, at most two fifths of the window; the dock no longer asks for more
        height than it needs, so the window would give it just that. A saved layout keeps its height."""
        dock, window = self.parentWidget(), self.window()
        settings = getattr(window, "settings", None)
        if not isinstance(dock, QtWidgets.QDockWidget) or not isinstance(window, QtWidgets.QMainWindow) \
                or dock.isFloating() or not isinstance(settings, QtCore.QSettings) \
                or settings.value("window/state") is not None:
            return
        height = min(self.DEFAULT_HEIGHT, int(window.height() * 0.4))
        if dock.height() < height:
            window.resizeDocks([dock], [height], QtCore.Qt.Orientation.Vertical)

    # ------------------------------------------------------------------ document
    def set_document(self, doc) -> None:
        self.doc = doc
        self.settings.set_document(doc)
        self.plots.label_of = self._label

    def _label(self, nid: str) -> str:
        node = self.doc.graph.nodes.get(nid) if self.doc is not None else None
        return node.label if node is not None else nid

    # ------------------------------------------------------------------ controls
    def start(self) -> Run | None:
        if self.controller.running or self.doc is None:
            return None
        inf = self.doc.inference
        if not inf.ok:
            first = inf.errors[0]
            where = f"'{self.doc.graph.nodes[first.node].label}': " if first.node in self.doc.graph.nodes else ""
            self._say(f"The network has {len(inf.errors)} error(s); fix them first ({where}{first.message})",
                      error=True)
            return None
        try:
            config = self.settings.config()
        except ValueError as exc:
            self._say(str(exc), error=True)
            return None
        return self.controller.start(self.doc.graph, config)

    def _controls(self) -> None:
        run = self.controller.current
        running = self.controller.running
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running and run is not None and run.status in ("running", "paused"))
        self.stop_button.setEnabled(running)
        paused = run is not None and run.status == "paused"
        self.pause_button.setText("Resume" if paused else "Pause")
        icon = QtWidgets.QStyle.StandardPixmap.SP_MediaPlay if paused else QtWidgets.QStyle.StandardPixmap.SP_MediaPause
        self.pause_button.setIcon(self.style().standardIcon(icon))

    def _say(self, text: str, error: bool = False) -> None:
        if text != self.status.text():
            self.status.setText(text)
            self.status_area.verticalScrollBar().setValue(0)
        if error != self._error_shown:  # (a style sheet re-polishes the label: only on a change)
            self._error_shown = error
            self.status.setStyleSheet(f"color: {themes.current().error};" if error else "")

    # ------------------------------------------------------------------ run events
    def _started(self, run: Run) -> None:
        self.focus = run
        self.samples.clear("Samples appear here at the end of the first epochs.")
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self._say(f"Run {run.number}: starting ({run.change})")
        self.tabs.setCurrentIndex(0)
        self._controls()

    def _updated(self, run: Run, changes) -> None:
        if run is self.controller.current:
            now = time.perf_counter()
            every = SHARED_PROGRESS_EVERY if self.controller.shares_cores else PROGRESS_EVERY
            if changes & {"state", "phase"} or now - self._last_progress >= every:
                self._last_progress = now
                self._progress(run)
            if changes & {"state", "phase"}:
                self._controls()
        if "samples" in changes and run is self.focus and run.samples is not None:
            self.samples.show_samples(run, run.samples)

    def _progress(self, run: Run) -> None:
        total = run.total_steps
        if total:
            self.progress.setValue(int(1000 * min(run.step, total) / total))
        eta = run.eta
        if run.status in ("running", "paused", "stopping") and run.info is not None:
            speed = f"{run.examples_per_second:,.0f} ex/s" if run.examples_per_second else ""
            # (the ETA before the speed: the bar cuts its text at its width)
            line = (f"epoch {max(run.epoch, 1)}/{run.info.epochs} · step {run.step:,}/{total:,}"
                    + (f" · ETA {format_seconds(eta)}" if run.status == "running" else "")
                    + (f" · {speed}" if speed else ""))
            self.progress.setFormat(line)
            self.progress.setToolTip(line)
            acc = f", accuracy {run.train_accuracy:.1%}" if run.train_accuracy is not None else ""
            loss = f"train loss {run.train_loss:.4g}{acc}" if run.train_loss is not None else "first steps…"
            state = {"paused": "paused", "stopping": "stopping after this step"}.get(run.status, loss)
            self.live.setText(state)
            if self.live.isHidden():
                self.live.show()
            self._say(f"Run {run.number} on {run.info.device}: {run.change}")  # (once: same text after)
        elif run.phase:
            self.progress.setFormat(run.phase)
            self._say(f"Run {run.number}: {run.phase}")
            if not self.live.isHidden():  # (training is over: its last state, "paused" say, no longer holds)
                self.live.hide()

    def _finished(self, run: Run) -> None:
        self._controls()
        self.live.hide()
        self.live.setText("")
        total = run.total_steps
        self.progress.setValue(1000 if run.status == "finished" else int(1000 * run.step / total) if total else 0)
        self.progress.setFormat(f"{run.status} · step {run.step:,}/{total:,}" if total else run.status)
        if run.status == "failed":
            where = f" First non-finite value: '{self._label(run.nonfinite.node)}' ({run.nonfinite.where})." \
                if run.nonfinite is not None else ""
            error = run.error.rstrip()
            self._say(f"Run {run.number} failed: {error}{'' if error.endswith(('.', '!', '?')) else '.'}{where}",
                      error=True)
        else:
            secs = f" in {format_seconds(run.result.seconds)}" if run.result else ""
            reason = f" ({run.result.reason})" if run.result and run.result.reason else ""
            notes = ("\n" + "; ".join(run.notes)) if run.notes else ""
            self._say(f"Run {run.number} {run.status}{secs}{reason}.{notes}")
        self.set_focus(run)
        # The Results tab comes forward for a classifier's or a regression's evaluation; a GAN's or a VAE's
        # run has no confusion matrix or doctor to show: its curves and samples stay where they are.
        if run.report and run.report.get("task") in ("classification", "regression"):
            self.tabs.setCurrentWidget(self.results)

    def _runs_changed(self) -> None:
        """The run shown was removed: the newest run kept is shown instead (its results if it has ended),
        or nothing (the Results tab kept showing the removed run, with nothing chosen in the list)."""
        if self.focus is None or self.focus in self.controller.runs:
            return
        self.focus = None
        self.results.clear()
        self.samples.clear()
        if self.controller.runs:
            run = self.controller.runs[-1]
            self.set_focus(run)
            with QtCore.QSignalBlocker(self.runs):  # (the list marks it, as a click would have: the newest, on top)
                self.runs.setCurrentRow(0)

    def set_focus(self, run: Run | None) -> None:
        if run is None:
            return
        self.focus = run
        self.plots.set_focus(run)
        # The results and the samples follow a moment apart, each after the event loop has gone idle once
        # (a zero-delay call would run straight after the plots' repaint, before any waiting input): a
        # run that just ended fills all three, and together they would hold the event loop too long.
        if run.done:
            QtCore.QTimer.singleShot(STAGGER_MS, lambda: self.focus is run and self.results.show_run(run))
        if run.samples is not None:
            QtCore.QTimer.singleShot(2 * STAGGER_MS, lambda: self.focus is run and
                                     self.samples.show_samples(run, run.samples))

    def _human_error(self, value: float) -> None:
        """The doctor's human-level error is a setting: saved with the graph."""
        if self.doc is None:
            return
        try:
            self.settings.set_value("human_error", round(float(value), 6))
        except ValueError:
            pass
        if self.focus is not None:
            self.focus.config["human_error"] = value
