"""The loss-surface playground: a surface as a log-coloured contour map, every method's path from the
same start moving live (each in its colour), and f − f* against the step beside it.

The walking is ``engine.optlab.Walker`` (torch.optim steps on the surface as a torch function); this
view only holds widgets. A QTimer steps every walker (as many steps as the set speed and the time
since the last frame call for) and updates persistent curves with ``setData``; a click on the map moves the start point and starts again.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from engine import optlab

from .. import theme as themes
from .widgets import SciSpinBox, legend, styled_plot, swatch

FRAME_MS = 33  # ~30 frames a second
GAP_FLOOR = 1e-15  # f − f* below this is drawn at this height on the log axis


class MethodCard(QtWidgets.QFrame):
    """One method: on/off, its colour, the update rule as the textbook writes it, its hyperparameters."""

    changed = QtCore.Signal()

    def __init__(self, method: optlab.Method, parent=None):
        super().__init__(parent)
        self.method = method
        self.setProperty("role", "card")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(3)
        head = QtWidgets.QHBoxLayout()
        self.check = QtWidgets.QCheckBox(method.label)
        self.check.setIcon(swatch(method.color))
        self.check.setChecked(True)
        self.check.setObjectName(f"method_{method.key}")
        f = self.check.font()
        f.setBold(True)
        self.check.setFont(f)
        self.check.toggled.connect(self.changed)
        head.addWidget(self.check)
        head.addStretch(1)
        lay.addLayout(head)
        self.rule = QtWidgets.QLabel(method.rule)
        self.rule.setObjectName(f"rule_{method.key}")
        mono = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.rule.setFont(mono)
        self.rule.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rule.setToolTip(f"{method.label}'s update rule, for a parameter w with gradient g "
                             "(the mini-batch's on a stochastic surface); α is the learning rate")
        lay.addWidget(self.rule)
        if method.source:
            src = QtWidgets.QLabel(method.source)
            src.setProperty("role", "dim")
            lay.addWidget(src)
        self.hint = QtWidgets.QLabel()
        self.hint.setProperty("role", "warning")
        self.hint.setWordWrap(True)
        self.hint.hide()
        lay.addWidget(self.hint)
        grid = QtWidgets.QGridLayout()
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(3)
        self.spins: dict[str, SciSpinBox] = {}
        for i, key in enumerate(method.params):
            h = optlab.HYPERS[key]
            label = QtWidgets.QLabel(h.symbol)
            label.setToolTip(h.doc)
            spin = SciSpinBox(h.lo, h.hi, 0.0, h.log)
            spin.setToolTip(f"{h.symbol}: {h.doc}")
            spin.setObjectName(f"{method.key}_{key}")
            spin.valueChanged.connect(self.changed)
            grid.addWidget(label, i // 3, 2 * (i % 3))
            grid.addWidget(spin, i // 3, 2 * (i % 3) + 1)
            self.spins[key] = spin
        grid.setColumnStretch(6, 1)
        lay.addLayout(grid)

    @property
    def enabled(self) -> bool:
        return self.check.isChecked()

    def values(self) -> dict[str, float]:
        return {k: s.value() for k, s in self.spins.items()}

    def set_values(self, values: dict[str, float]) -> None:
        for k, spin in self.spins.items():
            if k in values:
                blocker = QtCore.QSignalBlocker(spin)
                spin.setValue(values[k])
                del blocker


class SurfacePlayground(QtWidgets.QWidget):
    """Controls on the left; the contour map and the loss plot on the right."""

    status = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.walkers: dict[str, optlab.Walker] = {}
        self.error = ""
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self.tick)
        self._build()
        self.set_surface("quadratic")

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        t = themes.current()
        controls = QtWidgets.QWidget()
        form_lay = QtWidgets.QVBoxLayout(controls)
        form_lay.setContentsMargins(8, 8, 8, 8)
        self.surface_box = QtWidgets.QComboBox()
        self.surface_box.setObjectName("surface")
        for s in optlab.SURFACES.values():
            self.surface_box.addItem(s.title, s.key)
        self.surface_box.currentIndexChanged.connect(
            lambda _: self.set_surface(self.surface_box.currentData()))
        form_lay.addWidget(self.surface_box)
        self.formula = QtWidgets.QLabel()
        self.formula.setWordWrap(True)
        self.formula.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        form_lay.addWidget(self.formula)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        self.note.setProperty("role", "dim")
        form_lay.addWidget(self.note)

        form = QtWidgets.QFormLayout()
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        start_row = QtWidgets.QHBoxLayout()
        self.start_x = SciSpinBox(-1e6, 1e6, 0.0)
        self.start_y = SciSpinBox(-1e6, 1e6, 0.0)
        self.start_x.setObjectName("start_x")
        self.start_y.setObjectName("start_y")
        for s in (self.start_x, self.start_y):
            s.valueChanged.connect(self.restart)
            start_row.addWidget(s)
        start_w = QtWidgets.QWidget()
        start_w.setLayout(start_row)
        start_row.setContentsMargins(0, 0, 0, 0)
        start_w.setToolTip("Where every method starts; click on the map to move it")
        form.addRow("Start (x, y)", start_w)
        self.max_steps = QtWidgets.QSpinBox()
        self.max_steps.setRange(1, 100_000)
        self.max_steps.setObjectName("max_steps")
        form.addRow("Steps", self.max_steps)
        self.speed = QtWidgets.QSpinBox()
        self.speed.setRange(1, 5000)
        self.speed.setValue(60)
        self.speed.setObjectName("speed")
        self.speed.setToolTip("Steps each method takes per second while running")
        form.addRow("Steps per second", self.speed)
        self.noise = SciSpinBox(0.0, 100.0, 0.0)
        self.noise.setObjectName("noise")
        self.noise.setToolTip("Standard deviation of the example terms ξᵢ: 0 gives every method the exact gradient; "
                              "above 0 each step sees a mini-batch's gradient")
        self.noise.valueChanged.connect(self.restart)
        form.addRow("Gradient noise σ", self.noise)
        self.examples = QtWidgets.QSpinBox()
        self.examples.setRange(1, 100_000)
        self.examples.setValue(64)
        self.examples.setToolTip("Examples N the stochastic loss averages over (batch GD uses all of them)")
        self.examples.valueChanged.connect(self.restart)
        form.addRow("Examples N", self.examples)
        self.mini_batch = QtWidgets.QSpinBox()
        self.mini_batch.setRange(1, 100_000)
        self.mini_batch.setValue(8)
        self.mini_batch.setObjectName("mini_batch")
        self.mini_batch.setToolTip("Examples per step for mini-batch GD and the other methods (SGD takes one)")
        self.mini_batch.valueChanged.connect(self.restart)
        form.addRow("Mini-batch size", self.mini_batch)
        form_lay.addLayout(form)

        buttons = QtWidgets.QHBoxLayout()
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.setObjectName("run")
        self.run_button.setCheckable(True)
        self.run_button.toggled.connect(self._run_toggled)
        self.step_button = QtWidgets.QPushButton("Step")
        self.step_button.setToolTip("One step of every method")
        self.step_button.clicked.connect(lambda: self.advance(1))
        self.restart_button = QtWidgets.QPushButton("Restart")
        self.restart_button.clicked.connect(self.restart)
        for b in (self.run_button, self.step_button, self.restart_button):
            buttons.addWidget(b)
        form_lay.addLayout(buttons)
        self.step_label = QtWidgets.QLabel()
        self.step_label.setProperty("role", "dim")
        form_lay.addWidget(self.step_label)

        self.cards: dict[str, MethodCard] = {}
        for m in optlab.METHODS.values():
            card = MethodCard(m)
            card.changed.connect(self.restart)
            self.cards[m.key] = card
            form_lay.addWidget(card)
        form_lay.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(400)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        # ---- the map
        self.map = styled_plot("", "x", "y")
        self.map.setObjectName("surface_map")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(optlab.colormap_lut())
        self.image.setZValue(-10)
        self.map.addItem(self.image)
        self.isocurves: list[pg.IsocurveItem] = []
        self.minima = pg.ScatterPlotItem(symbol="+", size=14, pen=pg.mkPen("#ffffff", width=2), brush=None)
        self.map.addItem(self.minima)
        self.start_marker = pg.ScatterPlotItem(symbol="o", size=12, pen=pg.mkPen("#ffffff", width=2),
                                               brush=pg.mkBrush(0, 0, 0, 0))
        self.map.addItem(self.start_marker)
        self.map.getPlotItem().setAspectLocked(False)
        self.map.scene().sigMouseClicked.connect(self._clicked)
        self.map.setToolTip("Click to start every method from there; drag to pan, wheel to zoom")

        self.loss_plot = styled_plot("", "step", "f(w) − f*  (log scale)")
        self.loss_plot.setObjectName("loss_plot")
        self.loss_plot.getPlotItem().setLogMode(y=True)
        legend(self.loss_plot)
        self.paths: dict[str, pg.PlotDataItem] = {}
        self.heads: dict[str, pg.ScatterPlotItem] = {}
        self.losses: dict[str, pg.PlotDataItem] = {}
        for m in optlab.METHODS.values():
            pen = pg.mkPen(m.color, width=2)
            self.paths[m.key] = self.map.plot([], [], pen=pen)
            head = pg.ScatterPlotItem(size=10, pen=pg.mkPen(t.base, width=1), brush=pg.mkBrush(m.color))
            self.map.addItem(head)
            self.heads[m.key] = head
            self.losses[m.key] = self.loss_plot.plot([], [], pen=pen, name=m.label)

        plots = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        plots.addWidget(self.map)
        plots.addWidget(self.loss_plot)
        plots.setStretchFactor(0, 3)
        plots.setStretchFactor(1, 2)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(plots)
        split.setStretchFactor(1, 1)
        split.setSizes([420, 900])
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

    # ------------------------------------------------------------------ state
    @property
    def surface(self) -> optlab.Surface:
        return optlab.SURFACES[self.surface_box.currentData()]

    def set_surface(self, key: str) -> None:
        """Show a surface with its default start, steps, noise and learning rates, and start over."""
        s = optlab.SURFACES[key]
        if self.surface_box.currentData() != key:
            blocker = QtCore.QSignalBlocker(self.surface_box)
            self.surface_box.setCurrentIndex(self.surface_box.findData(key))
            del blocker
        self.formula.setText(s.formula)
        self.note.setText(s.note)
        with _quiet(self.start_x, self.start_y, self.max_steps, self.noise, *self.cards.values()):
            self.start_x.setValue(s.start[0])
            self.start_y.setValue(s.start[1])
            self.max_steps.setValue(s.steps)
            self.noise.setValue(s.noise)
            for key_, card in self.cards.items():
                card.set_values(s.default_values(key_))
                if key_ in ("sgd", "mini-batch-gd"):  # without noise they retrace batch GD's path
                    card.check.setChecked(s.noise > 0)
        self._draw_surface(s)
        self.restart()

    def _draw_surface(self, s: optlab.Surface) -> None:
        xs, ys, z = s.grid(220, 220)
        levels = optlab.log_levels(s, z)
        lo, hi = float(levels.min()), float(levels.max())
        self.image.setImage(levels, levels=(lo, hi), autoLevels=False)
        x0, x1 = s.x_range
        y0, y1 = s.y_range
        self.image.setRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
        for c in self.isocurves:
            if c.scene() is not None:
                c.scene().removeItem(c)
        self.isocurves = []
        contour_pen = pg.mkPen(QtGui.QColor(255, 255, 255, 70), width=1)
        for level in np.linspace(lo, hi, 16)[1:-1]:  # evenly spaced in log(f − f*)
            c = pg.IsocurveItem(levels, float(level), pen=contour_pen, axisOrder="row-major")
            c.setParentItem(self.image)
            self.isocurves.append(c)
        self.minima.setData([m[0] for m in s.minima], [m[1] for m in s.minima])
        vb = self.map.getPlotItem().getViewBox()
        # limits first: the previous surface's limits would clamp the new range
        vb.setLimits(xMin=x0 - (x1 - x0), xMax=x1 + (x1 - x0), yMin=y0 - (y1 - y0), yMax=y1 + (y1 - y0))
        vb.setRange(xRange=s.x_range, yRange=s.y_range, padding=0)
        self.map.getPlotItem().setTitle(f"{s.title}: {s.formula}", color=themes.current().text, size="10pt")

    def start(self) -> tuple[float, float]:
        return self.start_x.value(), self.start_y.value()

    def restart(self) -> None:
        """Every enabled method back to the start with the current settings."""
        self.walkers = {}
        self.error = ""
        try:
            problem = optlab.Problem(self.surface, self.noise.value(), self.examples.value(), seed=0)
            for key, card in self.cards.items():
                if card.enabled:
                    self.walkers[key] = optlab.Walker(problem, key, card.values(), self.start(),
                                                      self.mini_batch.value())
        except ValueError as exc:  # ConfigError too: a value the trainer's config refuses, named
            self.error = str(exc).replace("the training configuration has problems:\n", "").strip()
        stochastic = self.noise.value() > 0
        self.examples.setEnabled(stochastic)
        self.mini_batch.setEnabled(stochastic)
        for key in ("sgd", "mini-batch-gd"):
            hint = self.cards[key].hint
            hint.setText("With gradient noise 0 every step sees the exact gradient, so this takes batch GD's "
                         "steps; set a noise σ (or pick the stochastic surface) to see it differ.")
            hint.setVisible(not stochastic)
        self.start_marker.setData([self.start()[0]], [self.start()[1]])
        self._redraw()
        if self.error:
            self.run_button.setChecked(False)
            self.status.emit(self.error)

    # ------------------------------------------------------------------ running
    def _run_toggled(self, on: bool) -> None:
        if on and self._finished():
            self.restart()
        self.run_button.setText("Pause" if on else "Run")
        if on:
            self._last_tick, self._carry = time.monotonic(), 1.0  # the first frame takes a step at once
            self.timer.start()
        else:
            self.timer.stop()

    def run(self) -> None:
        self.run_button.setChecked(True)

    def pause(self) -> None:
        self.run_button.setChecked(False)

    @property
    def running(self) -> bool:
        return self.timer.isActive()

    def _finished(self) -> bool:
        limit = self.max_steps.value()
        return all(w.done or w.trajectory.steps >= limit for w in self.walkers.values())

    def advance(self, k: int) -> None:
        limit = self.max_steps.value()
        for w in self.walkers.values():
            w.step(max(0, min(k, limit - w.trajectory.steps)))
        self._redraw()

    def tick(self) -> None:
        """Steps in proportion to the time since the last frame, so the walk keeps its speed however fast
        the plots repaint."""
        now = time.monotonic()
        due = self.speed.value() * (now - self._last_tick) + self._carry
        self._last_tick = now
        k = min(int(due), max(1, self.speed.value() // 5))  # after a stall, no jump of more than 0.2 s
        self._carry = due - int(due) if k == int(due) else 0.0
        if k:
            self.advance(k)
        if self._finished():
            self.pause()

    def steps_taken(self) -> int:
        return max((w.trajectory.steps for w in self.walkers.values()), default=0)

    def _redraw(self) -> None:
        s = self.surface
        for key in optlab.METHODS:
            w = self.walkers.get(key)
            if w is None:
                self.paths[key].setData([], [])
                self.heads[key].setData([], [])
                self.losses[key].setData([], [])
                self._rename(key, optlab.METHODS[key].label + " (off)")
                continue
            pts = np.asarray(w.trajectory.points, dtype=np.float64)
            self.paths[key].setData(pts[:, 0], pts[:, 1])
            self.heads[key].setData([pts[-1, 0]], [pts[-1, 1]])
            gap = np.maximum(np.asarray(w.trajectory.losses) - s.min_value, GAP_FLOOR)
            self.losses[key].setData(np.arange(len(gap)), gap)
            label = optlab.METHODS[key].label
            if w.trajectory.diverged is not None:
                label += f" (diverged at step {w.trajectory.diverged})"
            self._rename(key, label)
        n = self.steps_taken()
        self.step_label.setText(self.error or f"step {n} of {self.max_steps.value()}")
        self.step_label.setProperty("role", "error" if self.error else "dim")
        self.step_label.style().polish(self.step_label)

    def _rename(self, key: str, text: str) -> None:
        leg = self.loss_plot.getPlotItem().legend
        for sample, label in leg.items:
            if sample.item is self.losses[key]:
                if label.text != text:
                    label.setText(text)
                return

    def _clicked(self, event) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton or event.double():
            return
        vb = self.map.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        p = vb.mapSceneToView(event.scenePos())
        self.set_start(p.x(), p.y())

    def set_start(self, x: float, y: float) -> None:
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        with _quiet(self.start_x, self.start_y):
            self.start_x.setValue(round(x, 4))
            self.start_y.setValue(round(y, 4))
        self.restart()
        self.status.emit(f"Every method now starts at ({x:.3g}, {y:.3g})")

    def stop(self) -> None:
        self.pause()


class _quiet:
    """Block the signals of some widgets for a while (no restart per field while a surface is set)."""

    def __init__(self, *widgets):
        self.widgets = widgets

    def __enter__(self):
        self.blockers = [QtCore.QSignalBlocker(w) for w in self.widgets]
        for card in self.widgets:
            if isinstance(card, MethodCard):
                self.blockers += [QtCore.QSignalBlocker(s) for s in card.spins.values()]

    def __exit__(self, *exc):
        for b in self.blockers:
            b.unblock()
        self.blockers = []
