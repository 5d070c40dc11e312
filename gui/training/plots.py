"""Live training curves (pyqtgraph): loss, accuracy, learning rate and per-layer gradient norms, against
the step or the epoch, with every kept run overlaid in its own colour.

The curves are persistent ``PlotDataItem`` objects fed with NumPy views of the run's growing arrays
(``runs.Series``); the controller's 10 Hz timer says what changed and only those curves get new data,
and only while the plots are on screen. Each plot clips to the view and downsamples by peaks, so a run
of a million steps draws as fast as one of a thousand (pyqtgraph's scrolling-plots recipe).

Drawing must neither stall the window nor slow training down: pyqtgraph paints in Python, in the UI
thread, and on a machine whose every core trains each millisecond of it is taken from the run. So:

- the axes keep their range while the data stays inside it (x: the run's length, known when it starts;
  y: widened or narrowed only when the data leaves the range or fills less than a third of it), so an
  update repaints the curves and not the axes (re-laying out tick labels is most of a plot's cost);
- there is no grid (a grid is drawn by the axes over the whole plot, so it would repaint them too);
- while a run trains, redraws are spaced so that the time spent drawing (the ``setData`` calls and every
  paint of the plots, all measured) stays within ``DRAW_BUDGET`` of the wall-clock time (under a third of
  that, ``SHARED_DRAW_BUDGET``, while the run trains on every core of the machine), at most at 25 Hz:
  each draw and each paint pushes the next redraw back by its cost over the budget (no credit builds up
  while nothing is drawn).
"""

from __future__ import annotations

import bisect
import functools
import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as themes
from .runs import Run, Series

LAYER_COLORS = ("#4c9aff", "#f0508c", "#3ecf8e", "#f0b429", "#b57cf0", "#20b2a0", "#f06a4a", "#9aa83a",
                "#38bdf8", "#fb7185", "#a3e635", "#c084fc")
SMOOTH = 0.9  # exponential moving average of the per-step loss (the raw curve stays faint behind it)
DRAW_BUDGET = 0.01  # share of wall-clock time the plots may take while a run trains
# ... while it trains on every core of this machine (a CPU run): each millisecond drawn is taken from it.
# An update of a run's curves costs 6-8 ms with its paint, with 7 runs kept on the plots (MarkScatter, and
# the legends' entries as pictures, took 1-2 ms off each paint): one every 2-3 s (the first after a run's
# first points, which cost more, 4-5 s later). With half a per cent the plots took 45 of the window's
# 79 ms per 6-second run (benchmarks/README.md, the evening of 2026-11-27).
SHARED_DRAW_BUDGET = 0.003
MIN_INTERVAL = 0.04  # seconds: 25 Hz at most
MAX_INTERVAL = 5.0  # seconds: the curves move at least this often, whatever the cost
# Curves with a point per step (thousands of points) are drawn one pixel wide: Qt's raster engine draws
# a 1-pixel pen on a fast path and strokes anything wider, six times slower here (7 ms against 1.2 ms
# for 16,000 steps), and that repaint happens in the UI thread while a run trains.
STEP_WIDTH = 1.0
# Per-epoch curves (dev loss, accuracy) mark each point while they have at most this many; beyond, a line
# says as much (the marks run together), and marks are most of what such a curve costs to update and paint.
MARKED_POINTS = 30
# Peak downsampling keeps each pixel column's lowest and highest point, whatever the factor; pyqtgraph's
# default (5 bins a pixel) drew ten points a pixel: a one-example-per-step run's raw loss, a band of
# noise, was 5,300 points at 14,000 steps, and that curve a quarter of the window's time during the run.
DOWNSAMPLE_FACTOR = 1.0
HEADROOM = 1.05  # the x axis grows before a run reaches its end
# A run that has ended keeps its curves as pictures (Qt's item cache, in device pixels: the same look),
# painted again only when the axes' ranges or the plot's size change. Every update of the running run's
# curves repaints the whole plot, and without the pictures each kept run's curves were drawn again each
# time: with 15 runs overlaid, the plots' paints took 65 ms of the window's time per 6-second run
# against 25 ms with them.
KEPT_CACHE = QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
LIVE_CACHE = QtWidgets.QGraphicsItem.CacheMode.NoCache
AXIS_TITLE_WIDTH = 14  # pixels the y axes' titles take beside their tick labels
SLICE = 0.01  # seconds of drawing per turn of the event loop while a run trains; the rest at the next turn


class TimedLayout(pg.GraphicsLayoutWidget):
    """A layout widget that measures each of its paints: ``on_paint(seconds)`` is called after it."""

    on_paint = None

    def paintEvent(self, event) -> None:
        t = time.perf_counter()
        super().paintEvent(event)
        if self.on_paint is not None:
            self.on_paint(time.perf_counter() - t)


class QuietViewBox(pg.ViewBox):
    """pyqtgraph's view box repaints itself, and with it every curve in its plot, whenever an item joins
    it or a curve's data changes, so that its next paint refits the range to the data. These plots fit
    their ranges themselves, auto-range off (it comes back on from the plot's menu, and refits then): the
    repaint refitted nothing, and with runs kept on the plots it drew all of their curves again, each
    time a run's curves were made or a hidden one was given data."""

    fit_requested = QtCore.Signal()  # a double-click: the plot fits its curves again (after a zoom or pan)

    def queueUpdateAutoRange(self) -> None:
        if any(self.state["autoRange"]):
            super().queueUpdateAutoRange()

    def mouseClickEvent(self, ev) -> None:
        if ev.double() and ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self.fit_requested.emit()
            return
        super().mouseClickEvent(ev)


class CachedAxis(pg.AxisItem):
    """pyqtgraph's axis, painted from a picture of it in device pixels (Qt's item cache) until its ticks,
    range, pens, font or size change. The axes' tick marks reach into the plot, so every update of a
    curve repainted the axes beside it: three quarters of the plots' painting time while a run trained
    (44 of 55 ms per 6-second run), their tick labels laid out as text each time. pyqtgraph drops its
    own picture of the axis (``picture = None``) whenever any of those change; that also drops Qt's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setCacheMode(KEPT_CACHE)

    def boundingRect(self) -> QtCore.QRectF:
        # A pixel more each way: the axis line's last pixel lies half outside pyqtgraph's rectangle, and
        # the cached picture, cut to it, lost the plot's corner pixel.
        return super().boundingRect().adjusted(-1, -1, 1, 1)

    @property
    def picture(self):
        return self.__dict__.get("_picture")

    @picture.setter
    def picture(self, value) -> None:
        self.__dict__["_picture"] = value
        if value is None:
            self.update()  # (coalesced by Qt: one repaint, with the cache redrawn)


class LogAxis(CachedAxis):
    """pyqtgraph's axis, with a log scale's in-between ticks thinned to what the axis's length can label
    apart: 2 to 9 in each decade, else 2 and 5, else 3, else the decades alone. pyqtgraph marks and labels each of 2 to 9
    wherever fewer than three decades show, and over a decade and a half in the 100 pixels of a small
    plot their labels ran into each other."""

    STEPS = ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 5), (1, 3))

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        ticks = super().logTickValues(minVal, maxVal, size, stdTicks)
        if not ticks or ticks[-1][0] is not None:  # (no in-between ticks: whole decades only)
            return ticks
        per_decade = size / max(maxVal - minVal, 1e-12)  # pixels
        font = self.style.get("tickFont") or self.font()
        metrics = QtGui.QFontMetricsF(font)
        if self.orientation in ("left", "right"):
            room = metrics.height() + 2
        else:  # (a label as wide as the longest at either end of the axis, and a space)
            room = max(metrics.horizontalAdvance(t) for t in self.logTickStrings([minVal, maxVal], 1, 1)) \
                + metrics.horizontalAdvance("  ")
        steps = next((s for s in self.STEPS if np.diff(np.log10(s + (10,))).min() * per_decade >= room), (1,))
        wanted = np.log10(steps)
        major = np.array([v for _, values in ticks[:-1] for v in values])  # (whole decades, labelled already)
        minor = [x for x in ticks[-1][1] if np.isclose(x - math.floor(x + 1e-9), wanted, atol=1e-6).any()
                 and not np.isclose(x, major, atol=1e-6).any()]
        return ticks[:-1] + [(None, minor)]

    def logTickStrings(self, values, scale, spacing):
        """Plain numbers from 0.0001 to 99,999 (20, 300, 0.002; pyqtgraph writes 2·10¹, 3·10², 0.002),
        pyqtgraph's powers of ten beyond."""
        plain = super().logTickStrings(values, scale, spacing)
        out = []
        for v, text in zip(10 ** np.asarray(values, dtype=float) * scale, plain):
            if 1e-4 <= abs(v) < 1e5:
                text = f"{float(f'{v:.1g}'):g}"  # (one significant digit, as pyqtgraph's: a tick is a round value)
            out.append(text)
        return out


class MarkScatter(pg.ScatterPlotItem):
    """pyqtgraph's scatter (a curve's marks at its points), its rectangle kept until its data, its marks'
    size or the view's transform change. Qt asks each item for its rectangle several times a paint, and
    pyqtgraph's scatter works it out in Python each time (the marks' size in pixels mapped through the
    view's transform): with 15 runs kept on the plots, their marked per-epoch curves took more than half
    of each repaint of the plots (2.1 of 3.9 ms), the time of every update of a running run's curves."""

    _rect: tuple | None = None  # (key, rectangle)

    def boundingRect(self) -> QtCore.QRectF:
        key = (self.dataBounds(0), self.dataBounds(1), self._maxSpotPxWidth)
        if self._rect is None or self._rect[0] != key:
            self._rect = (key, super().boundingRect())
        return QtCore.QRectF(self._rect[1])

    def viewTransformChanged(self) -> None:
        self._rect = None
        super().viewTransformChanged()


class RunCurve(pg.PlotDataItem):
    """pyqtgraph's curve with its marks drawn by a :class:`MarkScatter`, which does its data over only
    when a change of the view's range changes what it shows.

    pyqtgraph works out the points a curve shows (clipped to the view, downsampled to the plot's width,
    the values cut at a million view heights) again, and gives them to the line and to the marks, at
    every change of the view's x range, and of its y range too (for that cut). With 25 runs kept, the x
    axis's refit at a run's end took 90 ms (150 curves, the marks' scatters made again), and each change
    of the y range while a run trained did the same for every curve of its plot. Here, where the clip,
    the downsampling step and the cut come out as they did for the points shown (the usual case: a kept
    run's curve lies wholly inside the view before and after; the marked per-epoch curves have a few
    dozen points), the curve keeps them; the view's new transform still moves and scales them. Where
    they do change, the work waits its turn in :data:`REFITS` once a turn's share is spent."""

    _made: tuple | None = None  # (the display key, the display data it was made for)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        plain, self.scatter = self.scatter, MarkScatter()
        plain.setParentItem(None)
        self.scatter.setParentItem(self)
        self.scatter.sigClicked.connect(self.scatterClicked)
        self.scatter.sigHovered.connect(self.sigPointsHovered)
        self.updateItems(styleUpdate=True)

    def display_key(self) -> tuple | None:
        """What pyqtgraph's choice of the points shown depends on in the view as it is now, worked out as
        its ``_getDisplayDataset`` does: (downsampling step, clip indices or None); None where that is
        not known without doing it (no data mapped yet, or the range cut would apply)."""
        data, view = self._datasetMapped, self.getViewBox()
        if data is None or view is None or data.x is None:
            return None
        x, rect = data.x, view.viewRect()
        ds = self.opts["downsample"] if isinstance(self.opts["downsample"], int) else 1
        if self.opts["autoDownsample"]:
            finite = x if data.xAllFinite else x[np.isfinite(x)]
            if len(finite) > 1:
                dx = float(finite[-1] - finite[0]) / (len(finite) - 1)
                width = view.width()
                if dx != 0.0 and width != 0.0:
                    step = max(1.0, abs(rect.width() / dx / (width * self.opts["autoDownsampleFactor"])))
                    if math.isfinite(step):
                        ds = int(step)
            if math.isclose(ds, self._adsLastValue, rel_tol=0.01):
                ds = self._adsLastValue
        clip = None
        if self.opts["clipToView"] and not view.autoRangeEnabled()[0] and len(x) > 1:
            x0 = min(max(bisect.bisect_left(x, rect.left()) - ds, 0), len(x))
            x1 = min(max(bisect.bisect_left(x, rect.right()) + ds, x0), len(x))
            clip = (x0, x1)
        limit = self.opts["dynamicRangeLimit"]
        if limit is not None:
            bounds, height = data.dataRect(), rect.height()
            if (bounds is not None and height > 0 and not bounds.bottom() < rect.top()
                    and not bounds.top() > rect.bottom()
                    and bounds.height() > 2 * self.opts["dynamicRangeHyst"] * limit * height):
                return None
        return ds, clip

    def viewRangeChanged(self, vb=None, ranges=None, changed=None):
        key = self.display_key() if changed is not None else None
        made = self._made
        if key is not None and made is not None and made[0] == key and made[1] is self._datasetDisplay:
            return  # (the same points: nothing to do again)
        if changed is not None and self._datasetDisplay is not None and REFITS.later(self):
            return  # (see _Refits)
        self._refit(vb, ranges, changed, key)

    def _refit(self, vb=None, ranges=None, changed=(True, True), key=None) -> None:
        """Work out the points shown for the view as it is now, unless that is what they are."""
        if self.getViewBox() is None:
            return
        if key is None and changed is not None:
            key = self.display_key()
            made = self._made
            if key is not None and made is not None and made[0] == key and made[1] is self._datasetDisplay:
                return
        super().viewRangeChanged(vb, ranges, None if changed is None else list(changed))
        shown = self._datasetDisplay
        self._made = (key, shown) if key is not None and shown is not None else None

    def getData(self):
        REFITS.now(self)  # (what it shows, up to date)
        return super().getData()

    def points_for_layout(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The points it shows, or where its refit waits (see _Refits), all of its points (in the plot's
        units): for placing a legend, without doing the refit now."""
        if self in REFITS.pending and self._datasetMapped is not None:
            return self._datasetMapped.x, self._datasetMapped.y
        return super().getData()


class _Refits:
    """Curves whose points a change of the view's range made stale, worked out again in slices: up to
    ``SLICE`` seconds at once, the rest at the next turns of the event loop, ``SLICE`` a turn. With 25
    runs kept, a change of the x range that changes every long curve's downsampling step (a run's end:
    its planned steps drop out of the axis) is 80 of them, 20-80 ms of work that stalled the window at
    once; meanwhile a curve waiting shows its former points, moved and scaled by the view as they are.
    A curve whose points are asked for (``getData``) is done at once."""

    SLICE = 0.008

    def __init__(self):
        self.pending: dict[RunCurve, None] = {}
        self._timer: QtCore.QTimer | None = None
        self._until = -math.inf  # till when this turn may still refit at once

    def later(self, curve: RunCurve) -> bool:
        """Whether ``curve``'s refit was put off (False: do it now)."""
        if QtWidgets.QApplication.instance() is None:
            return False
        now = time.perf_counter()
        if self._timer is None:
            self._timer = QtCore.QTimer()
            self._timer.setSingleShot(True)
            self._timer.timeout.connect(self._run)
        if not self._timer.isActive():  # the first in this turn of the event loop
            self._until = now + self.SLICE
            self._timer.start(0)
        if not self.pending and now < self._until:
            return False
        self.pending[curve] = None
        return True

    def now(self, curve: RunCurve) -> None:
        if self.pending.pop(curve, 0) is None:
            self._do(curve)

    @staticmethod
    def _do(curve: RunCurve) -> None:
        try:
            curve._refit()
        except RuntimeError:  # (its Qt object is gone)
            pass

    def _run(self) -> None:
        end = time.perf_counter() + self.SLICE
        while self.pending:  # (one at least a turn)
            curve = next(iter(self.pending))
            del self.pending[curve]
            self._do(curve)
            if time.perf_counter() >= end:
                break
        if self.pending:
            self._until = -math.inf
            self._timer.start(0)


REFITS = _Refits()


def _title(plot: pg.PlotItem, text: str) -> None:
    """A plot's title in the theme's colours (set again on a theme change: a pyqtgraph label keeps its own)."""
    plot.titleLabel.setText(text, color=themes.current().text, size="9pt")


@functools.lru_cache(maxsize=256)  # (drawn every update: one pen per look; no curve changes its pen)
def _pen(color: str, width: float = 1.6, alpha: int = 255, dash: bool = False) -> QtGui.QPen:
    c = QtGui.QColor(color)
    c.setAlpha(alpha)
    pen = pg.mkPen(c, width=width)
    pen.setCosmetic(True)
    if dash:
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
    return pen


def _cache_entry(legend: pg.LegendItem) -> None:
    """Keep a legend's newest entry as pictures (Qt's item cache): pyqtgraph paints each entry's sample
    line and marks in Python at every repaint of the legend's corner, which a running run's curves pass
    under (30 entries with 15 runs kept: a sixth of each repaint). A sample's picture is redrawn when its
    curve's marks change (``LivePlots._set``) or a click hides its curve; the text's, when it changes."""
    sample, label = legend.items[-1]
    sample.setCacheMode(KEPT_CACHE)
    label.item.setCacheMode(KEPT_CACHE)


def _has_points(item: pg.PlotDataItem) -> bool:
    return item.xData is not None and len(item.xData) > 0


class _Smoother:
    """Incremental EMA of a run's per-step loss, bias-corrected like Adam's moments (a few finite values
    do not start from 0). Vectorised with scipy's ``lfilter``; non-finite losses are skipped."""

    def __init__(self):
        self.series = Series(1024)
        self.done = 0
        self.state = 0.0  # the filter's memory: the uncorrected average so far
        self.count = 0

    def update(self, source: Series) -> Series:
        from scipy.signal import lfilter

        x, y = source.data()
        if self.done < len(x):
            new_x, new_y = x[self.done:], y[self.done:]
            finite = np.isfinite(new_y)
            fx, fy = new_x[finite], new_y[finite]
            if len(fy):
                avg, zf = lfilter([1 - SMOOTH], [1, -SMOOTH], fy, zi=[SMOOTH * self.state])
                counts = self.count + np.arange(1, len(fy) + 1)
                self.series.extend(fx, avg / (1 - SMOOTH ** counts))
                self.state, self.count = float(avg[-1]), int(counts[-1])
            self.done = len(x)
        return self.series


class LivePlots(QtWidgets.QWidget):
    """Four plots over the controller's runs. ``focus`` is the run whose gradient norms are drawn."""

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.x_mode = "step"
        self.focus: Run | None = None
        self.curves: dict[tuple, pg.PlotDataItem] = {}
        self._where: dict[tuple, str] = {}  # curve key -> the plot it is in
        # curve key -> (points it was given last, min, max, log10 min, log10 max of its data): the same number
        # of points is the same data (no setData), and the range grows from the new points only
        self._given: dict[tuple, tuple] = {}
        self._ends: dict[tuple, float | None] = {}  # the last x each curve was given
        self._lone: set[tuple] = set()  # curves of one point, drawn as a dot until they get a second
        self._marks: dict[tuple, str] = {}  # curve key -> the symbol marking its points (per-epoch curves)
        self._unshown: dict[tuple, str | None] = {}  # curves made ahead, hidden until data -> their legend name
        self._smoothers: dict[int, _Smoother] = {}
        self._dirty: set[int] = set()
        self._grad_dirty = False
        self._grad_run: int | None = None  # the run whose gradient curves exist
        self._grad_network = ""  # the network (hash) the gradient curves' layers belong to
        self._grad_range_of: str | None = None  # the network the gradient plot's y range was fitted to
        self._manual: set[str] = set()  # plots the user zoomed or panned: their range is left alone
        self._last_draw = 0.0
        self._ready_at = 0.0  # when the drawing done so far is paid for by the budget (perf_counter seconds)
        self.draw_seconds = 0.0  # total time spent in flush() (for the benchmark)
        self._slices = 0.0  # time spent on the update being drawn in slices
        self._created = False  # a curve was made during this update (a one-time cost, not the steady one)
        self._paints_free = False  # the paints after an update that made curves (their first paints) are free too
        self._fresh = False  # a run started and its first points are not drawn yet: draw them soon
        self._placed_at = -math.inf  # when the legends last looked for their corners, and their entries then
        self._placed_entries = (0, 0)
        self._corners: dict[str, int] = {}  # plot name -> the index in CORNERS its legend is at
        self._x_end = 1  # the x range's end (steps or epochs), and the gradient plot's (steps)
        self._grad_end = 1
        self._timer = QtCore.QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._tick)

        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(QtWidgets.QLabel("x axis"))
        self.x_axis = QtWidgets.QComboBox()
        self.x_axis.setObjectName("plots_x_axis")
        self.x_axis.addItems(["step", "epoch"])
        self.x_axis.currentTextChanged.connect(self.set_x_mode)
        bar.addWidget(self.x_axis)
        self.log_loss = QtWidgets.QCheckBox("log loss")
        self.log_loss.toggled.connect(self._log_loss)
        bar.addWidget(self.log_loss)
        self.caption = QtWidgets.QLabel("solid: train · dashed: dev · faint: every step · double-click: fit")
        self.caption.setProperty("role", "dim")
        bar.addStretch(1)
        bar.addWidget(self.caption)

        self.view = TimedLayout()
        self.view.setObjectName("training_plots")
        self.view.on_paint = self._charge
        def add_plot(row, col, title):  # (every axis a LogAxis: loss, learning rate and gradient norms go
            # log, and the plots' menu can put any axis on one)
            return self.view.addPlot(row, col, title=title, axisItems={"left": LogAxis("left"), "bottom": LogAxis("bottom")},
                                     viewBox=QuietViewBox())

        self.loss = add_plot(0, 0, "Loss")
        self.acc = add_plot(0, 1, "Accuracy")
        self.lr = add_plot(1, 0, "Learning rate")
        self.grad = add_plot(1, 1, "Gradient norm per layer")
        self.plots = {"loss": self.loss, "acc": self.acc, "lr": self.lr, "grad": self.grad}
        for name, plot in self.plots.items():
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setMenuEnabled(True)
            plot.disableAutoRange()
            plot.getViewBox().sigRangeChangedManually.connect(lambda _m, n=name: self._manual.add(n))
            plot.getAxis("left").setWidth(46 + AXIS_TITLE_WIDTH)
            for side in ("left", "bottom"):  # (no SI prefix in the titles: it would re-lay them out at each range)
                plot.getAxis(side).enableAutoSIPrefix(False)
        self.grad.setLogMode(y=True)
        self.grad.disableAutoRange()  # (setLogMode turned it on again: each update would rescan the curves)
        # A log scale chosen in a plot's menu (Plot Options: Log X, Log Y): the plot is fitted again in
        # its new units (pyqtgraph's own handler turns auto-range on, which would then rescan every curve
        # at every update, and the ranges set before were in the old units: the curves left the view).
        self._lr_scale_chosen = False  # the user chose the rate's y scale (else it is chosen by its values)
        self._log_auto = False  # while the plots set a scale themselves
        for name, plot in self.plots.items():
            plot.ctrl.logYCheck.toggled.connect(lambda _on, n=name: self._log_changed(n, "y"))
            plot.ctrl.logXCheck.toggled.connect(lambda _on, n=name: self._log_changed(n, "x"))
            # Back to the plots' own fit after a zoom or pan: a double-click, or pyqtgraph's "A" button
            # (which would turn auto-range on: see _log_changed).
            plot.getViewBox().fit_requested.connect(lambda n=name: self.fit_again(n))
            plot.autoBtn.clicked.connect(lambda _=False, n=name: self.fit_again(n))
        self.grad.setYRange(-4, 1, padding=0)  # 1e-4 to 10 until there are norms (log10 units; 1 to 10 crowds ticks)
        self.loss_legend = self.loss.addLegend(offset=(-6, 6), labelTextSize="8pt")
        self.grad_legend = self.grad.addLegend(offset=(-6, 6), labelTextSize="8pt")
        self.acc.setYRange(0, 1, padding=0.02)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        self.apply_theme()
        controller.updated.connect(self.on_update)
        controller.started.connect(self.on_started)
        controller.runs_changed.connect(self.rebuild)

    # ------------------------------------------------------------------ theme
    def apply_theme(self) -> None:
        t = themes.current()
        self.view.setBackground(QtGui.QColor(t.base))
        for plot in self.plots.values():
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(t.border))
                axis.setTextPen(pg.mkPen(t.dim))
            _title(plot, plot.titleLabel.text)
        for legend in (self.loss_legend, self.grad_legend):
            legend.setLabelTextColor(QtGui.QColor(t.dim))
            back = QtGui.QColor(t.base)
            back.setAlpha(200)  # (a curve that passes under a legend still shows through it)
            legend.setBrush(pg.mkBrush(back))

        self._axis_titles()

    # What each plot's y axis shows (its x axis: the step or the epoch, as chosen; the gradient norms are
    # always against the step).
    Y_TITLES = {"loss": "loss", "acc": "accuracy", "lr": "learning rate", "grad": "gradient norm"}

    def _axis_titles(self) -> None:
        style = {"color": themes.current().dim, "font-size": "8pt"}
        for name, plot in self.plots.items():
            x = "step" if name == "grad" else self.x_mode
            for side, text in (("left", self.Y_TITLES[name]), ("bottom", x)):
                axis = plot.getAxis(side)
                if axis.labelText != text or axis.labelStyle != style:
                    axis.setLabel(text, **style)

    def changeEvent(self, event) -> None:
        if event.type() == QtCore.QEvent.Type.PaletteChange:
            self.apply_theme()
        super().changeEvent(event)

    # ------------------------------------------------------------------ updates
    def on_started(self, run: Run) -> None:
        QtCore.QTimer.singleShot(0, lambda: self._make_ahead(run))  # (a turn of its own: the click does enough)
        self.focus = run
        self._fresh = True
        self._grad_dirty = True
        self._manual.clear()
        self._dirty.add(run.number)
        self._fit_x()
        self.schedule()

    def on_update(self, run: Run, changes) -> None:
        if changes & {"steps", "epochs", "state", "result"}:
            self._dirty.add(run.number)
            if run is self.focus:
                self._grad_dirty = True
        if "state" in changes:
            self._fit_x()
        self.schedule()

    def schedule(self) -> None:
        """Redraw soon: at once when nothing trains, else when the drawing budget allows."""
        if not self.isVisible() or self.visibleRegion().isEmpty() or self._timer.isActive():
            return  # hidden, or in a dock tabbed away (Qt keeps those "visible", off screen)
        if not self.controller.running:
            self._timer.start(0)
            return
        earliest = self._last_draw + MIN_INTERVAL
        at = earliest if self._fresh else min(self._last_draw + MAX_INTERVAL, max(earliest, self._ready_at))
        self._timer.start(max(0, int((at - time.perf_counter()) * 1000)))

    def _charge(self, seconds: float) -> None:
        """Count ``seconds`` of drawing against the budget while a run trains: the next redraw waits until
        the wall-clock time since is ``seconds / budget``."""
        if self.controller.running and not self._paints_free:
            budget = SHARED_DRAW_BUDGET if self.controller.shares_cores else DRAW_BUDGET
            self._ready_at = max(self._ready_at, time.perf_counter()) + seconds / budget

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.schedule()

    def set_x_mode(self, mode: str) -> None:
        self.x_mode = mode
        self._axis_titles()
        self._given.clear()  # (the curves get other data: given again, their ranges found again)
        self._dirty = {r.number for r in self.controller.runs}
        self._grad_dirty = True
        self._manual.clear()
        self._fit_x()
        self._tick()

    def set_focus(self, run: Run | None) -> None:
        self.focus = run
        self._grad_dirty = True
        self._fit_x()
        self._tick()

    def rebuild(self) -> None:
        """Follow the runs: drop the curves of runs removed or hidden, draw the ones added or shown."""
        visible = {r.number for r in self.controller.runs if r.visible}
        shown = {k[0] for k in self.curves if isinstance(k[0], int)}
        for key in [k for k in self.curves if isinstance(k[0], int) and k[0] not in visible]:
            self._drop(key)
        kept = {r.number for r in self.controller.runs}
        for number in [n for n in self._smoothers if n not in kept]:  # (a removed run's moving average)
            del self._smoothers[number]
        self._dirty |= visible - shown
        if self.focus is not None and self.focus not in self.controller.runs:
            self.focus = self.controller.runs[-1] if self.controller.runs else None
            self._grad_dirty = True
        self._fit_x()
        if self.controller.running:
            self._timer.start(0)  # (a run just started: its first events come first)
        else:
            self._tick()

    def _tick(self) -> None:
        """Draw what is due: all of it when nothing trains, else a slice (see :meth:`flush`)."""
        self.flush(SLICE if self.controller.running else None)

    def flush(self, budget: float | None = None) -> None:
        """Bring the curves up to date. With a ``budget`` (seconds), stop once it is spent, after a whole
        run's curves or one layer's, and do the rest at the next turn of the event loop: a full redraw
        of several runs can take longer than the event loop may stall (50 ms), more so while a run
        trains on the machine's cores."""
        t = time.perf_counter()
        deadline = t + budget if budget is not None else math.inf
        runs = {r.number: r for r in self.controller.runs}
        drew = False
        for number in sorted(self._dirty):
            if drew and time.perf_counter() > deadline:
                break
            self._dirty.discard(number)
            run = runs.get(number)
            if run is not None and run.visible:
                self._draw(run)
                drew = True
        if self._grad_dirty and not (drew and time.perf_counter() > deadline):
            if self._draw_grads(deadline):
                self._grad_dirty = False
            drew = True
        if drew:
            if self._outgrown():  # at the next turn: the axes' relayout and repaint apart from this one's
                QtCore.QTimer.singleShot(0, self._fit_x)
            self._fit_y()
            self._place_legends()
        end = time.perf_counter()
        self.draw_seconds += end - t
        if self._dirty or self._grad_dirty:
            self._slices += end - t
            self._timer.start(0)  # the rest after the events waiting now
            return
        # (making curves costs once, and so do their first paints: the next points are not held back for it)
        self._paints_free = self._created
        if not self._created:
            self._charge(self._slices + end - t)
        self._slices = 0.0
        self._created = False
        if self._fresh and self.focus is not None and len(self.focus.step_loss):
            self._fresh = False
        self._last_draw = end

    # ------------------------------------------------------------------ ranges
    @staticmethod
    def _span(planned: int, reached: int) -> int:
        """The x range for a run planned to ``planned`` steps (or epochs) that has reached ``reached``: the
        first of an eighth, a quarter, a half or all of the plan that leaves room ahead, so that a long
        run's first minutes are not squeezed against the left edge and the axis is laid out again at most
        three times."""
        planned = max(planned, 1)
        for part in (8, 4, 2):
            if reached * HEADROOM <= planned / part:
                return max(1, math.ceil(planned / part))
        return planned

    def _extent(self) -> tuple[int, int] | None:
        """(planned, reached) of the visible runs, in steps or epochs as the x axis counts; None: no run."""
        runs = [r for r in self.controller.runs if r.visible]
        if not runs:
            return None
        # (a run that has ended keeps its plan: spanning what a stopped run reached refitted every curve at
        # its end and again at the next run's start, 40-65 ms each with ten runs kept)
        if self.x_mode == "epoch":
            return (max((r.info.epochs if r.info else max(len(r.epochs), 1)) for r in runs),
                    max(len(r.epochs) for r in runs))
        return max((r.total_steps or r.step or 1) for r in runs), max(r.step for r in runs)

    def _x_ends(self) -> tuple[int, int | None] | None:
        """The x ranges' ends the runs call for now: (loss, accuracy and learning rate; the gradient plot,
        always against the focused run's steps, None without a focus or before it knows its length), or
        None without a visible run. Against steps, the gradient plot shares the plots' range while its run
        is one of theirs: a step lines up across the four plots, and a new run's gradient norms do not
        reset that axis (each new range re-lays out its ticks and repaints the plot, a few times per run)."""
        extent = self._extent()
        if extent is None:
            return None
        f = self.focus
        if f is None or not (f.total_steps or f.step):  # (a run that has just started: its length comes with
            return self._span(*extent), None            # its first event; its axis waits for it, not at 0..1)
        end = self._span(*extent)
        if self.x_mode == "step" and f.visible:
            return end, end
        return end, self._span(f.total_steps or f.step, f.step)

    def _fit_x(self) -> None:
        """x from 0 to a share of the longest visible run's plan, growing as the runs go (see ``_span``)."""
        ends = self._x_ends()
        if ends is None:
            return
        before = (self._x_end, self._grad_end)
        self._x_end, grad_end = ends
        for name in ("loss", "acc", "lr"):
            if name not in self._manual:
                self.plots[name].setXRange(*self._x_span(name, self._x_end), padding=0.01)
        if "grad" not in self._manual and grad_end is not None:
            self._grad_end = grad_end
            self.grad.setXRange(*self._x_span("grad", grad_end), padding=0.01)
        if (self._x_end, self._grad_end) != before:  # the curves moved left, out from under a legend or under one
            # (at the next turn of the event loop: with many runs kept, the refit's own work is enough for one)
            QtCore.QTimer.singleShot(0, self, lambda: self._place_legends(force=True))

    def _log(self, name: str, axis: str = "y") -> bool:
        """Whether a plot's ``axis`` is on a log scale now."""
        ctrl = self.plots[name].ctrl
        return (ctrl.logYCheck if axis == "y" else ctrl.logXCheck).isChecked()

    def _x_span(self, name: str, end: float) -> tuple[float, float]:
        """A plot's x range from its start to ``end`` (steps and epochs count from 1: on a log axis, from
        10^0 to ``end``, 2 at least)."""
        return (0.0, math.log10(max(end, 2))) if self._log(name, "x") else (0.0, end)

    def _log_changed(self, name: str, axis: str) -> None:
        """A plot's scale changed (its menu, the "log loss" box, or the rate's automatic choice)."""
        if name == "lr" and axis == "y" and not self._log_auto:
            self._lr_scale_chosen = True
        if name == "loss" and axis == "y" and self.log_loss.isChecked() != self._log("loss"):
            with QtCore.QSignalBlocker(self.log_loss):
                self.log_loss.setChecked(self._log("loss"))
        if name == "lr" and axis == "x":  # (its staircase starts at 0, which a log axis drops: see _draw)
            for key in [k for k in self._given if self._where.get(k) == "lr"]:
                del self._given[key]
            self._dirty |= {r.number for r in self.controller.runs if r.visible}
            self.schedule()
        self.fit_again(name)

    def fit_again(self, name: str) -> None:
        """Fit a plot to its curves again, both axes, in its scale's units, and leave auto-range off:
        after a change of scale (pyqtgraph turns auto-range on for both axes, its fit then stayed, and
        each update rescanned every curve), a double-click, or pyqtgraph's "A" button."""
        plot = self.plots[name]
        plot.disableAutoRange()
        self._manual.discard(name)
        x_end = self._grad_end if name == "grad" else self._x_end
        plot.setXRange(*self._x_span(name, x_end), padding=0.01)
        self._fit_y(force=name)
        self._place_legends(force=True)

    # The learning rate's plot turns to a log scale by itself where the rates span this factor (a step
    # decay to a thousandth of the start read as zero on a linear axis from 0), unless the user chose.
    LR_LOG_SPAN = 50.0

    def _auto_lr_scale(self) -> None:
        # (not while a redraw is under way: the curves drawn so far may be a constant rate's alone, and the
        # scale flipped to and fro between slices; nor over a zoom of the user's)
        if self._lr_scale_chosen or "lr" in self._manual or self._dirty:
            return
        lo, hi = self._data_range("lr", False)
        if lo is None:
            return
        log = lo > 0 and hi / lo >= self.LR_LOG_SPAN
        if log != self._log("lr"):
            self._log_auto = True
            try:
                self.lr.setLogMode(y=log)  # (-> _log_changed: the plot fitted in its new units)
            finally:
                self._log_auto = False

    def _outgrown(self) -> bool:
        """Whether the runs have grown out of the x ranges they were given (a run that has ended at the
        end of its range has not: refitting would change nothing, and repaint the plots for it)."""
        ends = self._x_ends()
        if ends is None:
            return False
        x_end, grad_end = ends
        return x_end != self._x_end or ("grad" not in self._manual and grad_end not in (None, self._grad_end))

    def _fit_y(self, force: str | None = None) -> None:
        """Fit the plots' y ranges to their curves, each in its scale's units (``force``: that plot's
        range is set even where its data fits it already, as after a change of scale)."""
        self._auto_lr_scale()
        for name in ("loss", "acc", "lr", "grad"):
            if name in self._manual:
                continue
            log = self._log(name)
            if name == "acc" and not log:
                if force == "acc":
                    self.acc.setYRange(0, 1, padding=0.02)  # (the share right: 0 to 1 on a linear scale)
                continue
            lo, hi = self._data_range(name, log)
            if lo is None:
                continue
            if name == "lr" and not log:
                lo = 0.0  # from zero: a schedule's decay reads in proportion, a constant rate gets its ticks
            plot = self.plots[name]
            cur_lo, cur_hi = plot.getViewBox().viewRange()[1]
            span = max(hi - lo, abs(hi) * 0.05, 1e-12)
            inside = lo >= cur_lo and hi <= cur_hi
            if inside and (cur_hi - cur_lo) <= 3 * span and force != name:
                continue  # the data fits and fills a third of the view or more: leave the axis as it is
            if name == "grad" and inside and self._grad_range_kept() and force != name:
                continue
            plot.setYRange(lo - 0.08 * span, hi + 0.08 * span, padding=0)
            if name == "grad":
                self._grad_range_of = self.focus.network if self.focus is not None else None

    def _grad_range_kept(self) -> bool:
        """Whether the gradient plot keeps its y range although the norms fill little of it: while the run
        in focus trains, a range made for the same network (a run before it, or this run) stays as long as
        the norms fit in it (when they leave it, it is fitted to them as before). A new run's first norms
        spanned a sliver of the last run's range: the axis was fitted to them and then widened two or three
        times as the norms spread, each a new layout of its ticks and a repaint of the plot (10-15 ms each,
        at the start of every run); at the run's end it is fitted to the whole run."""
        f = self.focus
        return f is not None and not f.done and bool(f.network) and f.network == self._grad_range_of

    PLACE_EVERY = 10.0  # seconds: while a run trains, the legends look for a better corner at most this often
    # The corners a legend may take, in order of preference: (its corner and the plot's, the offset).
    CORNERS = (((1, 0), (-6, 6)), ((0, 1), (6, -6)), ((0, 0), (6, 6)), ((1, 1), (-6, -6)))

    def _place_legends(self, force: bool = False) -> None:
        """Move each legend to the corner of its plot where it hides the least of the curves (the top
        right while it is free): a run's curves end at the right edge, under a legend left at the top
        right, just where the newest points are. While a run trains, at most every ``PLACE_EVERY``
        seconds unless the legends' entries changed or ``force`` (the x range grew)."""
        now = time.perf_counter()
        entries = (len(self.loss_legend.items), len(self.grad_legend.items))
        if (not force and self.controller.running and entries == self._placed_entries
                and now - self._placed_at < self.PLACE_EVERY):
            return
        self._placed_at, self._placed_entries = now, entries
        for name, legend in (("loss", self.loss_legend), ("grad", self.grad_legend)):
            # A legend names the curves drawn: a plot with none (a run that failed before its first step)
            # shows no legend of curves that are not there.
            curves = self._shown_data(name)
            shown = bool(legend.items) and bool(curves)
            if legend.isVisible() != shown:
                legend.setVisible(shown)
            if not shown:
                continue
            box = self.plots[name].getViewBox()
            area = box.sceneBoundingRect()
            # As many columns as it takes to fit the plot's height (three runs' train and dev curves ran
            # past the bottom of a small plot), and no more.
            rows = math.ceil(len(legend.items) / legend.columnCount)
            row_height = legend.sceneBoundingRect().height() / max(rows, 1)
            fits = max(1, int(0.9 * area.height() // max(row_height, 1)))
            columns = min(4, math.ceil(len(legend.items) / fits))
            if columns != legend.columnCount:
                legend.setColumnCount(columns)
            # ... and no wider than the plot (its entries were cut at the plot's edge: "run 1 g…")
            while legend.columnCount > 1 and legend.sceneBoundingRect().width() > area.width() - 12:
                legend.setColumnCount(legend.columnCount - 1)
            # ... and in a small plot, low and wide rather than high: it then takes little of the height
            while (legend.columnCount < len(legend.items)
                   and legend.sceneBoundingRect().height() > self.LEGEND_HEIGHT * area.height()):
                legend.setColumnCount(legend.columnCount + 1)
                if legend.sceneBoundingRect().width() > area.width() - 12:
                    legend.setColumnCount(legend.columnCount - 1)
                    break
            size = legend.sceneBoundingRect().size()
            hidden = []
            for (cx, cy), (dx, dy) in self.CORNERS:
                left = area.left() + dx if cx == 0 else area.right() + dx - size.width()
                top = area.top() + dy if cy == 0 else area.bottom() + dy - size.height()
                rect = box.mapSceneToView(QtCore.QRectF(left, top, size.width(), size.height())).boundingRect()
                hidden.append(self._hidden_under(name, rect, curves))
            current = self._corners.get(name, 0)  # (a legend starts at the top right)
            best = min(range(len(self.CORNERS)), key=lambda i: (hidden[i], i != current, i))
            if hidden[best] > 0 and name not in self._manual:
                # No free corner: the legend goes to the top corner that hides the least, and the y axis
                # makes room above the curves for it, so that it covers none of them.
                best = min((0, 2), key=lambda i: (hidden[i], i != current, i))
                self._room_for_legend(name, box, area, size, best, curves)
            if best != current:
                (corner, offset) = self.CORNERS[best]
                legend.anchor(itemPos=corner, parentPos=corner, offset=offset)
                self._corners[name] = best

    LEGEND_ROOM = 0.7  # the y axis makes room for a legend taking at most this share of the plot's height
    LEGEND_HEIGHT = 0.3  # a legend higher than this share of its plot takes more columns where they fit

    def _room_for_legend(self, plot: str, box, area: QtCore.QRectF, size: QtCore.QSizeF, corner: int,
                         curves) -> None:
        """Raise the top of a plot's y range so that the curves under a legend at the top ``corner`` (an
        index in CORNERS) pass below it."""
        (cx, _), (dx, dy) = self.CORNERS[corner]
        left = area.left() + dx if cx == 0 else area.right() + dx - size.width()
        share = (size.height() + abs(dy) + 4) / max(area.height(), 1.0)  # of the height, from the top
        if share >= self.LEGEND_ROOM:
            return
        span = box.mapSceneToView(QtCore.QRectF(left, area.top(), size.width(), size.height())).boundingRect()
        x0, x1 = span.left(), span.right()
        highest = -math.inf
        for x, y in curves:
            inside = (x >= x0) & (x <= x1)
            if inside.any():
                highest = max(highest, float(y[inside].max()))
            if x[0] <= x1 and x[-1] >= x0:  # (the curve's line between its points, at the legend's edges)
                highest = max(highest, float(np.interp([max(x0, x[0]), min(x1, x[-1])], x, y).max()))
        if highest == -math.inf:
            return
        lo, hi = box.viewRange()[1]
        top = (highest - share * lo) / (1 - share)
        top += 0.02 * (top - lo)
        if top > hi:
            self.plots[plot].setYRange(lo, top, padding=0)

    def _shown_data(self, plot: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """The finite points each shown curve of a plot draws (as drawn: clipped to the view, thinned,
        in log units on a log axis)."""
        out = []
        for key, item in self.curves.items():
            if self._where.get(key) != plot or not item.isVisible():
                continue
            x, y = item.points_for_layout() if isinstance(item, RunCurve) else item.getData()
            if x is None or not len(x):
                continue
            finite = np.isfinite(y)
            if finite.any():
                out.append((np.asarray(x)[finite], np.asarray(y)[finite]))
        return out

    def _hidden_under(self, plot: str, rect: QtCore.QRectF, curves=None, samples: int = 24) -> float:
        """How much of a plot's curves (``curves``: from :meth:`_shown_data`) a rectangle (in the plot's
        coordinates) covers: of ``samples`` places across it, those where a curve passes inside, summed
        over the curves, each weighted by how far right it lies (the newest points count three times as
        much as the first)."""
        xs = np.linspace(rect.left(), rect.right(), samples)
        (x0, x1), _ = self.plots[plot].getViewBox().viewRange()
        weight = 1 + 2 * np.clip((xs - x0) / max(x1 - x0, 1e-12), 0, 1)
        count = 0.0
        for x, y in self._shown_data(plot) if curves is None else curves:
            if len(x) == 1:
                count += weight.sum() * bool(rect.contains(QtCore.QPointF(float(x[0]), float(y[0]))))
                continue
            inside = (xs >= x[0]) & (xs <= x[-1])
            ys = np.interp(xs[inside], x, y)
            count += float(weight[inside][(ys >= rect.top()) & (ys <= rect.bottom())].sum())
        return count

    def _data_range(self, plot: str, log: bool):
        """The lowest and highest finite value (log10 of the positive ones with ``log``) of a plot's curves;
        (None, None) without any."""
        lo, hi = math.inf, -math.inf
        for key, bounds in self._given.items():
            if self._where.get(key) == plot:
                b_lo, b_hi = bounds[3:5] if log else bounds[1:3]
                lo, hi = min(lo, b_lo), max(hi, b_hi)
        return (None, None) if lo > hi else (lo, hi)

    def _note_bounds(self, key: tuple, y) -> None:
        """Keep a curve's data range up to date from the points it gained since it was last given data (a
        run's series only grow, so a long run does not rescan its whole history at every update)."""
        y = np.asarray(y, dtype=np.float64)
        old = self._given.get(key)
        start = old[0] if old is not None and old[0] <= len(y) else 0
        lo, hi, plo, phi = old[1:] if start else (math.inf, -math.inf, math.inf, -math.inf)
        new = y[start:]
        new = new[np.isfinite(new)]
        if len(new):
            lo, hi = min(lo, float(new.min())), max(hi, float(new.max()))
            positive = new[new > 0]
            if len(positive):
                plo, phi = min(plo, math.log10(positive.min())), max(phi, math.log10(positive.max()))
        self._given[key] = (len(y), lo, hi, plo, phi)

    def _log_loss(self, on: bool) -> None:
        self.loss.setLogMode(y=on)  # (-> _log_changed, which fits it)

    def _curve(self, plot: str, key: tuple, pen: QtGui.QPen, name: str | None = None, symbol: str | None = None,
               color: str | None = None, hidden: bool = False) -> pg.PlotDataItem:
        item = self.curves.get(key)
        if item is None:
            kwargs = {"pen": pen, "name": name, "autoDownsampleFactor": DOWNSAMPLE_FACTOR}
            if symbol:
                kwargs.update(symbol=symbol, symbolSize=5, symbolPen=pen, symbolBrush=pg.mkBrush(color))
                self._marks[key] = symbol
            item = RunCurve(**kwargs)
            self._created = True
            item.setClipToView(True)
            item.setDownsampling(auto=True, method="peak")
            if hidden:  # (hidden before it joins the scene: shown and then hidden, its rectangle, all of the
                item.hide()  # plot, was repainted with every kept run's curves for nothing)
            self.plots[plot].addItem(item)  # (a named item joins the plot's legend by itself)
            if name and self.plots[plot].legend is not None:
                _cache_entry(self.plots[plot].legend)
            self.curves[key] = item
            self._where[key] = plot
        return item

    def _drop(self, key: tuple) -> None:
        """Remove a curve from its plot (and so from the plot's legend) and forget it."""
        self.plots[self._where.pop(key)].removeItem(self.curves.pop(key))
        self._given.pop(key, None)
        self._marks.pop(key, None)
        self._unshown.pop(key, None)
        self._lone.discard(key)

    def _set(self, x, y, plot: str, key: tuple, pen, *args) -> None:
        """Give a curve its data, unless it already has exactly as many points ending at the same x (the
        series only grow, so that is the same data: no setData, no repaint; the learning rate's last
        segment, drawn to the latest step, moves its end without a point more)."""
        end = float(x[-1]) if len(x) else None
        if key in self._given and self._given[key][0] == len(x) and self._ends.get(key) == end and key in self.curves:
            return
        self._ends[key] = end
        if not len(x) and (key not in self.curves or not _has_points(self.curves[key])):
            return  # (nothing to show, nothing to clear: a run that has just started has no points yet)
        item = self._curve(plot, key, pen, *args)
        if key in self._unshown and len(x):  # (made ahead: see _make_ahead)
            name = self._unshown.pop(key)
            item.show()
            if name:  # (the legend it would have joined as a named item)
                item.opts["name"] = name
                self.plots[plot].legend.addItem(item, name)
                _cache_entry(self.plots[plot].legend)
        # A curve of one point is a line of no length: shown as a dot. (A run that fails at its second step
        # has its finite first loss and the non-finite one, which is not drawn.) Its marks change with its
        # data, in the same call: each of pyqtgraph's setters redoes the curve and its marks.
        lone = len(x) <= 2 and int(np.isfinite(np.asarray(y, float)).sum()) == 1
        mark = self._marks.get(key)
        style = {}
        if mark is not None:  # a curve of per-epoch points marks each, until they would crowd it
            want = mark if len(x) <= MARKED_POINTS else None
            if item.opts["symbol"] != want:
                style["symbol"] = want
        elif lone and item.opts["symbol"] is None:
            self._lone.add(key)
            line = item.opts["pen"]
            style.update(symbol="o", symbolSize=5, symbolPen=line, symbolBrush=pg.mkBrush(line.color()))
        elif not lone and key in self._lone:
            self._lone.discard(key)
            style["symbol"] = None
        item.setData(x, y, **style)
        if style and item.opts.get("name"):  # (its legend entry is a picture of how it looked: see _cache_entry)
            legend = self.plots[plot].legend
            for sample, _ in legend.items if legend is not None else ():
                if sample.item is item:
                    sample.update()
        self._note_bounds(key, y)

    def _draw(self, run: Run) -> None:
        n = run.number
        tag = f"run {n}"
        by_epoch = self.x_mode == "epoch"
        styles = self._styles(run)

        def put(key, x, y):
            plot, pen, name, *marks = styles[key]
            self._set(x, y, plot, key, pen, name, *marks)

        if by_epoch:
            put((n, "train"), *run.epoch_series("train_loss", "epoch"))
            if (n, "raw") in self.curves:
                self._set([], [], "loss", (n, "raw"), None)
        else:
            put((n, "raw"), *run.step_loss.data())
            smooth = self._smoothers.setdefault(n, _Smoother()).update(run.step_loss)
            put((n, "train"), *smooth.data())
        ex = "epoch" if by_epoch else "step"
        for series, _, key, _, _ in self._epoch_curves(run):
            put(key, *run.epoch_series(series, ex))
        names = sorted({name for _, name in run.term_names()})
        for split, name in run.term_names():  # a GAN's two losses, a VAE's reconstruction and KL terms
            tx, ty = run.term_series(split, name, ex)
            color = LAYER_COLORS[(names.index(name) + 1 + (n - 1) * 2) % len(LAYER_COLORS)]
            self._set(tx, ty, "loss", (n, "term", split, name), _pen(color, 1.6, dash=split == "dev"),
                      f"{tag} {name}" if split == "train" else None, "t" if split == "train" else "o", color)
        for name in run.accuracy_metrics():  # a mode's own accuracies (a GAN's discriminator's) on the dev set
            mx, my = run.metric_series(name, ex)
            self._set(mx, my, "acc", (n, "metric", name), _pen(run.color, 2.0, dash=True), None, "o", run.color)
        lx, ly = run.lr_series(ex)
        if self._log("lr", "x"):  # (a log axis starts at 1 and drops 0: the first rate from the axis's start)
            lx = np.maximum(lx, 1.0)
        put((n, "lr"), lx, ly)
        mode = KEPT_CACHE if run.done else LIVE_CACHE  # (see KEPT_CACHE)
        for key, item in self.curves.items():
            if key[0] == n and item.curve.cacheMode() != mode:
                item.curve.setCacheMode(mode)
                item.scatter.setCacheMode(mode)

    def _make_ahead(self, run: Run, pending: list | None = None) -> None:
        """Make a run's curves, hidden and out of the legend until they have points, while its process sets
        the run up, one curve per turn of the event loop (a millisecond or two each; the turns between
        are the window's). Made when their first points came, with their marks and legend entries, they
        were the largest part of the run's first update, in its time."""
        if run not in self.controller.runs or not run.visible or run.epochs:
            return
        if pending is None:
            pending = list(self._styles(run).items())
        while pending:
            key, (plot, pen, name, *marks) = pending.pop(0)
            if key not in self.curves:
                self._curve(plot, key, pen, None, *marks, hidden=True)
                self._unshown[key] = name
                if pending:
                    QtCore.QTimer.singleShot(0, lambda: self._make_ahead(run, pending))
                return

    def _styles(self, run: Run) -> dict[tuple, tuple]:
        """key -> (plot, pen, legend name[, symbol, colour]) of the curves every run has (not its loss
        terms'), as the x axis's mode is now."""
        n, c = run.number, run.color
        by_step = self.x_mode != "epoch"
        styles = {(n, "raw"): ("loss", _pen(c, 1.0, 70), None)} if by_step else {}
        # One legend entry per run (and per loss term): its train curve's; the dev curve is the same colour
        # dashed, as the line above the plots says (two entries a curve pair filled a small plot's legend)
        styles[(n, "train")] = ("loss", _pen(c, STEP_WIDTH) if by_step else _pen(c), f"run {n}")
        for _, plot, key, pen, name in self._epoch_curves(run):
            styles[key] = (plot, pen, name, "o", c)
        styles[(n, "lr")] = ("lr", _pen(c, STEP_WIDTH), None)
        return styles

    @staticmethod
    def _epoch_curves(run: Run) -> tuple:
        """(series, plot, key, pen, legend name) of a run's per-epoch curves, marked at each point."""
        n, c = run.number, run.color
        return (("dev_loss", "loss", (n, "dev"), _pen(c, 2.0, dash=True), None),
                ("train_accuracy", "acc", (n, "train_accuracy"), _pen(c, 1.6), None),
                ("dev_accuracy", "acc", (n, "dev_accuracy"), _pen(c, 2.0, dash=True), None))

    def _draw_grads(self, deadline: float = math.inf) -> bool:
        """The focused run's per-layer gradient norms; False when the deadline came first (after at least
        one layer: the layers already up to date cost nothing the next time)."""
        run = self.focus
        number = run.number if run is not None else None
        grad_keys = [k for k in self.curves if k[0] == "grad"]
        if number != self._grad_run:  # another run in focus: its data replaces the curves' (same layers)
            self._grad_run = number
            for key in grad_keys:
                self._given.pop(key, None)
            _title(self.grad, "Gradient norm per layer" + (f" (run {number})" if number else ""))
        grads = run.grad if run is not None else {}
        labels = self._labels(run) if run is not None else {}
        for i, (nid, series) in enumerate(grads.items()):
            if i and time.perf_counter() > deadline:
                return False
            x, y = series.data()
            keep = y > 0
            color = LAYER_COLORS[i % len(LAYER_COLORS)]
            self._set(x[keep], y[keep], "grad", ("grad", nid), _pen(color, STEP_WIDTH), labels.get(nid, nid))
        # A run that has just started has not said what network it trains: until it does, the curves of the
        # layers before it wait for its norms, empty (a rerun of the same network keeps its curves).
        other_network = run is None or (run.network != self._grad_network if run.network else run.done)
        for key in grad_keys:
            if key[1] in grads:
                continue
            if grads or other_network:  # a layer the run in focus does not have: its curve goes
                self._drop(key)
            else:  # the same network (or not known yet), no gradient norms yet: the curve waits, empty
                self._set([], [], "grad", key, None)
        if grads:
            self._grad_network = run.network
        return True

    def _labels(self, run: Run) -> dict[str, str]:
        get = getattr(self, "label_of", None)
        return {nid: get(nid) for nid in run.grad} if get else {}

    def point_count(self, run: Run, key: str = "train") -> int:
        """Points the loss plot holds for a run (for tests and the benchmark)."""
        item = self.curves.get((run.number, key))
        if item is None:
            return 0
        x, _ = item.getData()
        return 0 if x is None else len(x)
