"""NodeGraphQt node classes generated from the engine's node specs, and the card that draws them.

``node_classes(registry)`` makes one ``BaseNode`` subclass per ``NodeSpec`` (plus ``UnknownNode`` for a
type the registry does not know, so a file with one still opens). The classes carry ports only: a
node's values live in the engine document and are edited in the property panel, never in NodeGraphQt
properties or widgets (../shared/STACK.md, pitfall 3).

:class:`CardItem` draws a node top to bottom (inputs on the top edge, outputs on the bottom edge): a
category-coloured strip, the label, the type and parameter count, an error or warning badge, and next
to each output port the tensor shape that leaves it. Nodes that share weights (a twin and the node
whose weights it uses) carry a link marker in their group's colour, and a :class:`ShareLink` (a dashed
curve in the same colour) joins each twin to its owner.
"""

from __future__ import annotations

from NodeGraphQt import BaseNode
from NodeGraphQt.qgraphics.node_base import NodeItem
from PySide6 import QtCore, QtGui, QtWidgets

from . import theme as themes

IDENTIFIER = "deepcanvas"


class CardItem(NodeItem):
    """The graphics item of every DeepCanvas node (vertical layout only)."""

    MIN_WIDTH = 190.0
    HEIGHT = 50.0

    def __init__(self, name="node", parent=None):
        super().__init__(name, parent)
        self._icon_item.setPixmap(QtGui.QPixmap())  # the card has its own category strip instead
        self.category_color = "#888888"
        self.subtitle = ""
        self.severity: str | None = None
        self.card_tooltip = ""
        self.theme = themes.current()
        self._shape_labels: dict = {}
        self._port_labels: dict = {}
        self.share_color: str | None = None  # the link marker of a node that shares weights (or owns them)
        self.composite = False  # a composite or block node: drawn with a double bottom edge
        self.links: list["ShareLink"] = []  # dashed links to redraw when the card moves
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges, True)
        font = self._text_item.font()
        font.setPointSizeF(9.5)
        font.setBold(True)
        self._text_item.setFont(font)

    # ---------------------------------------------------------------- content set by the canvas
    def set_content(self, category_color: str, subtitle: str, severity: str | None, tooltip: str,
                    out_shapes: dict[str, str], port_tips: dict[str, str], share_color: str | None = None,
                    composite: bool = False) -> None:
        self.category_color, self.subtitle, self.severity = category_color, subtitle, severity
        self.share_color, self.composite = share_color, composite
        self.card_tooltip = tooltip
        self.setToolTip(tooltip)
        for port in self.outputs:
            label = self._shape_labels.get(port)
            if label is None:
                label = self._shape_labels[port] = self._small_label()
            label.setText(out_shapes.get(port.name, ""))
        multi = len(self.inputs) > 1
        for port in self.inputs:
            label = self._port_labels.get(port)
            if label is None:
                label = self._port_labels[port] = self._small_label()
            label.setText(port.name if multi else "")
        for port in self.inputs + self.outputs:
            port.setToolTip(port_tips.get(port.name, port.name))
        self.draw_node()

    def _small_label(self) -> QtWidgets.QGraphicsSimpleTextItem:
        item = QtWidgets.QGraphicsSimpleTextItem("", self)
        font = item.font()
        font.setPointSizeF(7.5)
        item.setFont(font)
        item.setBrush(QtGui.QColor(self.theme.dim))
        item.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        return item

    def set_theme(self, theme: themes.Theme) -> None:
        self.theme = theme
        for label in [*self._shape_labels.values(), *self._port_labels.values()]:
            label.setBrush(QtGui.QColor(theme.dim))
        self.text_color = themes.rgb(theme.text)
        self.draw_node()

    # ---------------------------------------------------------------- geometry
    def _subtitle_font(self) -> QtGui.QFont:
        font = QtGui.QFont(self._text_item.font())
        font.setBold(False)
        font.setPointSizeF(8)
        return font

    def _calc_size_vertical(self):
        title = self._text_item.boundingRect().width()
        sub = QtGui.QFontMetricsF(self._subtitle_font()).horizontalAdvance(self.subtitle)
        ports = max(len(self.inputs), len(self.outputs)) * 46.0
        marks = (22 if self.share_color else 0) + (22 if self.severity in ("error", "warning") else 0)
        return max(self.MIN_WIDTH, title + 24 + max(marks, 20), sub + 30 + (16 if self.composite else 0),
                   ports), self.HEIGHT

    def _draw_node_vertical(self):
        for text in [*self._input_items.values(), *self._output_items.values()]:
            text.setVisible(False)
        self._width, self._height = self._calc_size_vertical()
        self._set_text_color(self.text_color)
        self.setToolTip(self.card_tooltip)
        self._text_item.setPos(12.0, 3.0)
        self.align_ports()
        for port, label in self._shape_labels.items():
            label.setPos(port.x() + port.boundingRect().width() - 8, self._height + 1)
        for port, label in self._port_labels.items():
            label.setPos(port.x() + port.boundingRect().width() - 8, -15)
        self.update()

    def draw_node(self):
        # NodeGraphQt redraws a node for every property it sets while building it; a card is drawn
        # once it is in the scene (NodeGraphQt's ``post_init`` calls this) and when its content changes.
        if self.scene() is not None:
            self._draw_node_vertical()

    def align_icon(self, h_offset=0.0, v_offset=0.0):
        pass

    def _tooltip_disable(self, state):
        self.setToolTip(self.card_tooltip)

    def itemChange(self, change, value):
        if change == QtWidgets.QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for link in self.links:
                link.update_path()
        return super().itemChange(change, value)

    def set_proxy_mode(self, mode):
        super().set_proxy_mode(mode)
        for label in [*self._shape_labels.values(), *self._port_labels.values()]:
            label.setVisible(not mode)

    # ---------------------------------------------------------------- painting
    def _paint_vertical(self, painter, option, widget):
        t = self.theme
        painter.save()
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        rect = QtCore.QRectF(0.5, 0.5, self._width - 1, self._height - 1)
        body = QtGui.QPainterPath()
        body.addRoundedRect(rect, 6, 6)
        painter.fillPath(body, QtGui.QColor(t.node))
        painter.save()
        painter.setClipPath(body)
        painter.fillRect(QtCore.QRectF(0, 0, 5, self._height), QtGui.QColor(self.category_color))
        painter.restore()

        if self.severity == "error":
            border, width = QtGui.QColor(t.error), 1.6
        elif self.selected:
            border, width = QtGui.QColor(t.accent), 1.8
        else:
            border, width = QtGui.QColor(t.node_border), 1.0
        if self.selected and self.severity == "error":
            width = 2.4
        pen = QtGui.QPen(border, width)
        pen.setCosmetic(self.viewer().get_zoom() < 0.0)
        painter.setPen(pen)
        painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        painter.drawPath(body)
        if self.selected:
            glow = QtGui.QColor(t.accent)
            glow.setAlpha(40)
            painter.fillPath(body, glow)

        if not self._proxy_mode:
            painter.setFont(self._subtitle_font())
            painter.setPen(QtGui.QColor(t.dim))
            painter.drawText(QtCore.QRectF(13, 26, self._width - 20, 18),
                             QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter,
                             self.subtitle)
        if self.composite:  # two stacked sheets: this node stands for a sub-graph (double-click opens it)
            painter.setPen(QtGui.QPen(QtGui.QColor(t.dim), 1.2))
            painter.setBrush(QtGui.QColor(t.node))
            r = self.composite_rect()
            painter.drawRoundedRect(r.translated(3, -3), 2, 2)
            painter.drawRoundedRect(r, 2, 2)
        if self.share_color:
            self._paint_link(painter, self.share_rect().center(), QtGui.QColor(self.share_color))
        if self.severity in ("error", "warning"):
            color = QtGui.QColor(t.error if self.severity == "error" else t.warning)
            centre = QtCore.QPointF(self._width - 13, 13)
            painter.setPen(QtCore.Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawEllipse(centre, 7.5, 7.5)
            painter.setPen(QtGui.QPen(QtGui.QColor("#ffffff"), 2.0, QtCore.Qt.PenStyle.SolidLine,
                                      QtCore.Qt.PenCapStyle.RoundCap))
            painter.drawLine(QtCore.QPointF(centre.x(), centre.y() - 3.5), QtCore.QPointF(centre.x(), centre.y() + 0.8))
            painter.drawPoint(QtCore.QPointF(centre.x(), centre.y() + 3.6))
        painter.restore()

    @staticmethod
    def _paint_link(painter: QtGui.QPainter, centre: QtCore.QPointF, color: QtGui.QColor) -> None:
        """Two interlocked rings: the sign of shared weights."""
        painter.setPen(QtGui.QPen(color, 2.0))
        painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        for dx in (-3.2, 3.2):
            painter.drawEllipse(QtCore.QPointF(centre.x() + dx, centre.y()), 4.6, 4.6)

    def composite_rect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._width - 20, 30, 11, 9)

    def share_rect(self) -> QtCore.QRectF:
        """Where the shared-weights marker is drawn (left of the error badge when there is one)."""
        right = self._width - (26 if self.severity in ("error", "warning") else 5)
        return QtCore.QRectF(right - 18, 5, 18, 16)

    def badge_rect(self) -> QtCore.QRectF:
        """Where the error badge is drawn, in item coordinates (for tests and hit checks)."""
        return QtCore.QRectF(self._width - 21, 5, 16, 16)


class ShareLink(QtWidgets.QGraphicsPathItem):
    """A dashed curve from the link marker of a node that owns weights to the marker of a twin that uses
    them, behind the cards: an arch over them when they sit side by side, a bow to the right when one is
    above the other. It follows the cards as they move."""

    def __init__(self, owner: CardItem, twin: CardItem, color: str):
        super().__init__()
        self.owner, self.twin = owner, twin
        self.setZValue(-2)  # under the cards and wires
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        self.set_color(color)
        owner.links.append(self)
        twin.links.append(self)
        self.update_path()

    def set_color(self, color: str) -> None:
        pen = QtGui.QPen(QtGui.QColor(color), 1.8, QtCore.Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.setPen(pen)

    def update_path(self) -> None:
        start = self.owner.mapToScene(self.owner.share_rect().center())
        end = self.twin.mapToScene(self.twin.share_rect().center())
        dx, dy = end.x() - start.x(), end.y() - start.y()
        path = QtGui.QPainterPath(start)
        if abs(dx) >= abs(dy):
            top = min(start.y(), end.y()) - (34 + 0.12 * abs(dx))
            path.cubicTo(QtCore.QPointF(start.x() + dx * 0.2, top), QtCore.QPointF(end.x() - dx * 0.2, top), end)
        else:
            right = max(start.x(), end.x()) + 40 + 0.2 * abs(dy)
            path.cubicTo(QtCore.QPointF(right, start.y()), QtCore.QPointF(right, end.y()), end)
        self.setPath(path)

    def detach(self) -> None:
        for card in (self.owner, self.twin):
            if self in card.links:
                card.links.remove(self)
        if self.scene() is not None:
            self.scene().removeItem(self)


class CanvasNode(BaseNode):
    """Base of the generated node classes: a card with the spec's default ports."""

    __identifier__ = IDENTIFIER
    NODE_NAME = "Node"
    SPEC_TYPE = ""
    CATEGORY = ""
    INPUTS: tuple[str, ...] = ()
    OUTPUTS: tuple[str, ...] = ()

    def __init__(self, inputs=None, outputs=None):
        super().__init__(qgraphics_item=CardItem)
        for name in (self.INPUTS if inputs is None else inputs):
            self.add_input(name, multi_input=False, display_name=False)
        for name in (self.OUTPUTS if outputs is None else outputs):
            self.add_output(name, multi_output=True, display_name=False)

    @property
    def card(self) -> CardItem:
        return self.view


class UnknownNode(CanvasNode):
    """A node whose type the registry does not know: kept, shown, and reported, never dropped."""

    NODE_NAME = "Unknown"
    CATEGORY = "Unknown"


def node_classes(registry) -> dict[str, type[CanvasNode]]:
    """One generated ``CanvasNode`` subclass per node type in the registry, keyed by type name."""
    out: dict[str, type[CanvasNode]] = {}
    for spec in registry:
        name = "".join(ch if ch.isalnum() else "_" for ch in spec.type)
        out[spec.type] = type(name, (CanvasNode,), {
            "__identifier__": IDENTIFIER, "__doc__": spec.doc, "NODE_NAME": spec.type, "SPEC_TYPE": spec.type,
            "CATEGORY": spec.category, "INPUTS": tuple(p.name for p in spec.input_ports()),
            "OUTPUTS": tuple(p.name for p in spec.output_ports()),
        })
    return out
