"""Small widgets the optimizer lab shares: a spin box for values that span decades (learning rates,
epsilon), a colour swatch, and plots styled after the app's theme."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as themes


class SciSpinBox(QtWidgets.QDoubleSpinBox):
    """A spin box that shows and accepts numbers like 0.001 or 1e-08. With ``log`` the arrows multiply or
    divide by about 2 (1, 2, 5 steps for a rate); otherwise they add a tenth of the value's decade."""

    def __init__(self, lo: float, hi: float, value: float, log: bool = False, parent=None):
        super().__init__(parent)
        self.log = log
        self.setDecimals(15)
        self.setRange(lo, hi)
        self.setKeyboardTracking(False)  # one change per finished edit, not one per key
        self.setValue(value)
        self.setMinimumWidth(86)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt name)
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            ok = t == "" or t[-1:] in "eE-+." or t.lower().endswith(("e-", "e+"))
            state = QtGui.QValidator.State.Intermediate if ok else QtGui.QValidator.State.Invalid
            return state, text, pos
        if not math.isfinite(v) or v < self.minimum() or v > self.maximum():
            return QtGui.QValidator.State.Intermediate, text, pos
        return QtGui.QValidator.State.Acceptable, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        v = self.value()
        if self.log and v > 0:
            for _ in range(abs(steps)):
                mant, exp = _split(v)
                if steps > 0:
                    mant = {1: 2, 2: 5, 5: 10}.get(mant, 10 if mant > 5 else (5 if mant > 2 else 2))
                else:
                    mant = {1: 0.5, 2: 1, 5: 2}.get(mant, 5 if mant > 5 else (2 if mant > 2 else 1))
                v = mant * 10.0 ** exp
            self.setValue(min(max(v, self.minimum()), self.maximum()))
            return
        step = 10 ** math.floor(math.log10(abs(v))) / 10 if v else 0.01
        self.setValue(min(max(v + steps * step, self.minimum()), self.maximum()))


def _split(v: float) -> tuple[float, int]:
    exp = math.floor(math.log10(v) + 1e-12)
    mant = round(v / 10 ** exp, 6)
    return (int(mant) if mant in (1, 2, 5) else mant), exp


def swatch(color: str, size: int = 12) -> QtGui.QIcon:
    pix = QtGui.QPixmap(size * 2, size * 2)
    pix.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pix)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setBrush(QtGui.QColor(color))
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.drawEllipse(QtCore.QRectF(3, 3, size * 2 - 6, size * 2 - 6))
    p.end()
    return QtGui.QIcon(pix)


def styled_plot(title: str = "", x_label: str = "", y_label: str = "") -> pg.PlotWidget:
    """A PlotWidget in the theme's colours, with a grid and labelled axes."""
    t = themes.current()
    w = pg.PlotWidget()
    w.setBackground(t.base)
    item = w.getPlotItem()
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(t.border))
        axis.setTextPen(pg.mkPen(t.dim))
    if title:
        item.setTitle(title, color=t.text, size="10pt")
    if x_label:
        item.setLabel("bottom", x_label, color=t.dim)
    if y_label:
        item.setLabel("left", y_label, color=t.dim)
    item.showGrid(x=True, y=True, alpha=0.15)
    item.setMenuEnabled(False)
    return w


def legend(plot: pg.PlotWidget, offset=(-10, 10)) -> pg.LegendItem:
    t = themes.current()
    leg = plot.getPlotItem().addLegend(offset=offset, labelTextColor=t.text, labelTextSize="9pt")
    fill = QtGui.QColor(t.panel)
    fill.setAlpha(215)
    leg.setBrush(pg.mkBrush(fill))
    leg.setPen(pg.mkPen(t.border))
    return leg
