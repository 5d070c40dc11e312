"""Training health drawn on the canvas, during and after a run: each layer with weights is tinted by its
gradient norm (blue: vanishing, green: healthy, red: exploding; the shade is where the norm sits among
the network's layers, see ``engine.inspect.gradient_score``), ReLU nodes show the share of their units
that are dead on a probe batch of dev examples, and when a run goes NaN the node where the first
non-finite value appeared is outlined in red with the reason.

The marks are child items of the node cards (``gui.nodes.CardItem``), drawn over them; their shape is
only the small tag above the card, so clicks and the card's own tooltip are not in their way. The
canvas may rebuild a card (a port change); the overlay puts its marks back after every document change.
"""

from __future__ import annotations

import html

import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as themes

VANISHING_COLOR = "#4c9aff"


def _mix(a: QtGui.QColor, b: QtGui.QColor, t: float) -> QtGui.QColor:
    return QtGui.QColor(int(a.red() + (b.red() - a.red()) * t), int(a.green() + (b.green() - a.green()) * t),
                        int(a.blue() + (b.blue() - a.blue()) * t))


def score_color(score: float) -> QtGui.QColor:
    """-3 (vanishing) blue, 0 green, +3 (exploding) red."""
    t = themes.current()
    mid, lo, hi = QtGui.QColor(t.ok), QtGui.QColor(VANISHING_COLOR), QtGui.QColor(t.error)
    s = max(-3.0, min(3.0, score)) / 3.0
    return _mix(mid, hi, s) if s >= 0 else _mix(mid, lo, -s)


class HealthMark(QtWidgets.QGraphicsItem):
    """A tint over one card and a tag above its top-right corner."""

    def __init__(self, card):
        super().__init__(card)
        self.card = card
        self.color: QtGui.QColor | None = None
        self.tag = ""
        self.tag_color = QtGui.QColor("#888888")
        self.alarm = False
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        self.setZValue(10)

    def set(self, color: QtGui.QColor | None, tag: str, tag_color: QtGui.QColor, tip: str, alarm: bool) -> None:
        self.prepareGeometryChange()
        self.color, self.tag, self.tag_color, self.alarm = color, tag, tag_color, alarm
        self.setToolTip(tip)
        self.update()

    def _size(self):
        return getattr(self.card, "_width", 190.0), getattr(self.card, "_height", 50.0)

    def _tag_rect(self) -> QtCore.QRectF:
        w, _ = self._size()
        fm = QtGui.QFontMetricsF(self._font())
        tw = fm.horizontalAdvance(self.tag) + 12
        return QtCore.QRectF(w - tw, -17, tw, 15)

    def _font(self) -> QtGui.QFont:
        f = QtGui.QFont()
        f.setPointSizeF(7.5)
        f.setBold(True)
        return f

    def boundingRect(self) -> QtCore.QRectF:
        w, h = self._size()
        return QtCore.QRectF(-4, -19, w + 8, h + 23)

    def shape(self) -> QtGui.QPainterPath:
        path = QtGui.QPainterPath()
        if self.tag:
            path.addRect(self._tag_rect())
        return path

    def paint(self, painter, option, widget=None) -> None:
        w, h = self._size()
        painter.save()
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        body = QtGui.QPainterPath()
        body.addRoundedRect(QtCore.QRectF(0.5, 0.5, w - 1, h - 1), 6, 6)
        if self.color is not None:
            fill = QtGui.QColor(self.color)
            fill.setAlpha(55)
            painter.fillPath(body, fill)
            painter.setPen(QtGui.QPen(self.color, 2.2))
            painter.drawPath(body)
        if self.alarm:
            pen = QtGui.QPen(QtGui.QColor(themes.current().error), 3.5)
            painter.setPen(pen)
            outer = QtGui.QPainterPath()
            outer.addRoundedRect(QtCore.QRectF(-2.5, -2.5, w + 5, h + 5), 8, 8)
            painter.drawPath(outer)
        if self.tag:
            r = self._tag_rect()
            painter.setPen(QtCore.Qt.PenStyle.NoPen)
            painter.setBrush(self.tag_color)
            painter.drawRoundedRect(r, 4, 4)
            painter.setPen(QtGui.QColor("#ffffff"))
            painter.setFont(self._font())
            painter.drawText(r, QtCore.Qt.AlignmentFlag.AlignCenter, self.tag)
        painter.restore()


class HealthOverlay(QtCore.QObject):
    """Training health on a :class:`gui.canvas.Canvas`."""

    def __init__(self, canvas, parent=None):
        super().__init__(parent)
        self.canvas = canvas
        self.enabled = True
        self.marks: dict[str, HealthMark] = {}
        self._cards: dict[str, object] = {}  # node id -> the card its mark was made on
        self.state: dict[str, tuple] = {}  # node id -> (color, tag, tag color, tip, alarm)
        self.run = None
        self.legend = QtWidgets.QLabel(canvas.viewer)
        self.legend.setObjectName("health_legend")
        self.legend.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.legend.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.legend.move(10, 8)
        self.legend.hide()
        self._doc = None
        self._timer = QtCore.QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self.apply)
        # Inside an opened composite the canvas shows the composite's own nodes, whose ids may repeat the
        # top-level ones: the marks (which belong to the top-level graph) come off and return on the way out.
        canvas.scope_changed.connect(lambda scope: self._timer.start())

    def watch(self, doc) -> None:
        if self._doc is not None:
            try:
                self._doc.changed.disconnect(self._timer.start)
            except (RuntimeError, TypeError):
                pass
        self._doc = doc
        doc.changed.connect(self._timer.start)
        self.clear()

    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        self.apply()

    # ------------------------------------------------------------------ content
    def show_run(self, run) -> None:
        """Marks from a run's latest gradient norms, activation statistics and non-finite finding."""
        from engine.inspect import gradient_score  # torch is loaded by now: a run happened

        self.run = run
        t = themes.current()
        graph = (self._doc or self.canvas.doc).graph
        state: dict[str, tuple] = {}
        norms = run.grad_norms or {}
        levels = run.grad_levels or {}
        values = list(norms.values())
        for nid, norm in norms.items():
            if nid not in graph.nodes:
                continue
            level = levels.get(nid, "healthy")
            color = score_color(gradient_score(norm, values, level))
            tag = f"∇ {norm:.1e}"
            tip = (f"{graph.nodes[nid].label}: gradient norm {norm:.3g} ({level}) at step {run.step}. "
                   + {"vanishing": "Its weights barely move: try ReLU instead of sigmoid/tanh, normalization, "
                                   "a residual shortcut or better initialization.",
                      "exploding": "Updates are likely to overshoot: lower the learning rate or clip gradients.",
                      "nonfinite": "The gradient is NaN or infinite."}.get(level, ""))
            tag_color = QtGui.QColor(color)
            state[nid] = (color, tag, tag_color, tip.strip(), False)
        health = run.health
        for nid, dead in (health.dead.items() if health is not None else []):
            if nid not in graph.nodes:
                continue
            tag_color = QtGui.QColor(t.error if dead >= 0.5 else t.warning if dead >= 0.1 else t.dim)
            tip = (f"{graph.nodes[nid].label}: {dead:.0%} of its units output 0 for every probe example (dead "
                   "ReLUs get no gradient). " + ("Lower the learning rate, use LeakyReLU, or add normalization "
                                                "before it." if dead >= 0.1 else ""))
            state[nid] = (None, f"dead {dead:.0%}", tag_color, tip.strip(), False)
        bad = run.nonfinite
        if bad is not None and bad.node in graph.nodes:
            prev = state.get(bad.node, (None, "", None, "", False))
            state[bad.node] = (prev[0], "NaN here", QtGui.QColor(t.error),
                               html.escape(f"First non-finite value ({bad.where}): {bad.message}"), True)
        self.state = state
        self.apply()
        what = f"run {run.number}, step {run.step}"
        swatch = "<span style='color:{c}'>■</span> {t}"
        self.legend.setText(
            f"<span style='color:{t.dim}'>Training health ({what}): gradient norm "
            + " ".join(swatch.format(c=c, t=n) for c, n in ((VANISHING_COLOR, "vanishing"), (t.ok, "healthy"),
                                                            (t.error, "exploding")))
            + " · dead = ReLU units never active</span>")
        self.legend.adjustSize()

    def clear(self) -> None:
        self.state = {}
        self.run = None
        self.apply()

    @property
    def at_top(self) -> bool:
        """Whether the canvas shows the watched document itself (not a composite opened inside it)."""
        return self._doc is None or self.canvas.doc is self._doc

    def apply(self) -> None:
        shown = self.state if self.enabled and self.at_top else {}
        for nid in list(self.marks):
            mark, card = self.marks[nid], self._cards[nid]
            if self.canvas.node_item(nid) is not card:
                # The canvas dropped or rebuilt this card (another document, a port change): the mark,
                # its child, went with it. Forget it without touching it (its C++ side may be gone).
                del self.marks[nid], self._cards[nid]
            elif nid not in shown:
                if shiboken6.isValid(mark) and mark.scene() is not None:
                    mark.scene().removeItem(mark)
                del self.marks[nid], self._cards[nid]
        for nid, (color, tag, tag_color, tip, alarm) in shown.items():
            card = self.canvas.node_item(nid)
            if card is None:
                continue
            mark = self.marks.get(nid)
            if mark is None:
                mark = self.marks[nid] = HealthMark(card)
                self._cards[nid] = card  # (held: the identity check above needs the card alive)
            mark.set(color, tag, tag_color, tip, alarm)
        self.legend.setVisible(bool(shown))
        self.legend.raise_()

    def mark(self, nid: str) -> HealthMark | None:
        return self.marks.get(nid)
