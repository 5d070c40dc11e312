"""The canvas: a NodeGraphQt view that mirrors the engine document and turns gestures into edits.

The document is the model. :meth:`Canvas.sync` makes the NodeGraphQt scene match it (nodes, labels,
ports, positions, wires, shapes, badges), comparing what is drawn with what should be and changing only
the difference, so it is cheap after a small edit and also repairs anything a gesture drew on its own.

A gesture never edits NodeGraphQt's own model. :class:`CanvasGraph` overrides the ``NodeGraph`` slots
that the viewer calls (a wire made or cut, nodes moved, a node renamed, something dropped) and hands
them to the canvas, which asks the engine: a wire goes through ``engine.check_connection`` and one that
cannot be made is refused with the engine's reason (NodeGraphQt would drop it silently; STACK.md
pitfall 6). NodeGraphQt's ports carry no types; the engine's inference supplies every shape.

The canvas shows one graph at a time: the open document, or the inside of one of its composites (a
:class:`~gui.scope.CompositeScope`, opened with a double-click, Enter or the node menu). A breadcrumb bar
above the view ("Main › encoder") leads back. Inside a composite the same gestures edit the definition,
through the document's one undo history, and every instance of it follows.

Shared weights are drawn too: a twin and its owner carry a link marker in the same colour, and a dashed
curve joins them; the node menu makes and ends the sharing (``engine.Graph.set_shares``).
"""

from __future__ import annotations

import atexit

import html

from PySide6 import QtCore, QtGui, QtWidgets

import engine
from engine.graph import Edge
from engine.spec import INPUT, LOSS, OUTPUT, TARGET

from . import autolayout, clipboard, compat
from . import theme as themes
from .document import Document, Refused
from .nodes import CanvasNode, CardItem, ShareLink, UnknownNode, node_classes
from .scope import CompositeScope
from .search import NodeSearch

compat.apply()

from NodeGraphQt import NodeGraph  # noqa: E402  (after the compatibility fixes)
from NodeGraphQt.constants import LayoutDirectionEnum, PortTypeEnum, ViewerEnum  # noqa: E402
from NodeGraphQt.qgraphics.pipe import PipeItem  # noqa: E402

NODE_MIME = "application/x-deepcanvas-node-type"
READABLE_ZOOM = 0.75  # the start-up view never shrinks text below this scale; Zoom to Fit may
# Colours of the shared-weights markers, one per group of nodes sharing one set of weights.
SHARE_COLORS = ("#e5a50a", "#c061cb", "#2ec27e", "#ff7800", "#62a0ea", "#f66151")


class Wire(PipeItem):
    """A wire in the theme's colours (NodeGraphQt's pipes highlight in a fixed yellow)."""

    accent = (76, 154, 255, 255)

    def highlight(self):
        self._highlight = True
        self.set_pipe_styling(color=self.accent, width=2, style=self.style)


class CanvasGraph(NodeGraph):
    """A ``NodeGraph`` whose viewer gestures become requests to a :class:`Canvas`."""

    def __init__(self, canvas: "Canvas"):
        super().__init__(layout_direction=LayoutDirectionEnum.VERTICAL.value)
        self._canvas = canvas
        self.set_acyclic(False)  # cycles are refused by the engine, with a reason
        self.set_pipe_collision(False)
        # The viewer's hidden undo/redo actions hold Ctrl+Z / Ctrl+Shift+Z for NodeGraphQt's own stack,
        # which would make the app's shortcuts ambiguous; the app's undo stack is the document's.
        viewer = self.viewer()
        for action in (viewer._undo_action, viewer._redo_action):
            if action is not None:
                action.setShortcuts([])

    def get_unique_name(self, name):  # labels are the engine's business (and this is O(n) per node)
        return name

    def _on_connection_changed(self, disconnected, connected):
        self._canvas._wires_changed(disconnected, connected)

    def _on_connection_sliced(self, ports):
        self._canvas._wires_changed(ports, [])

    def _on_nodes_moved(self, node_data):
        self._canvas._nodes_moved(node_data)

    def _on_node_name_changed(self, node_id, name):
        self._canvas._renamed(node_id, name)

    def _on_node_data_dropped(self, mimedata, pos):
        self._canvas._dropped(mimedata, pos)

    def _on_search_triggered(self, node_type, pos):
        self._canvas.add_node(node_type.rsplit(".", 1)[-1], pos)

    def _on_insert_node(self, pipe, node_id, prev_node_pos):
        pass  # pipe collision is off


class Canvas(QtCore.QObject):
    """The editor view of one document at a time."""

    selection_changed = QtCore.Signal(list)  # ids of selected nodes of the main graph ([] inside a composite)
    shown_selection_changed = QtCore.Signal(list)  # ids of selected nodes of the graph shown (main or composite)
    message = QtCore.Signal(str)             # refusals and notes, for the status bar
    node_activated = QtCore.Signal(str)      # double click: show its properties
    group_requested = QtCore.Signal()        # a context menu asked to group the selection
    file_dropped = QtCore.Signal(str)        # a .dcnet file dropped on the canvas
    scope_changed = QtCore.Signal(object)    # the document or composite scope the canvas now shows

    def __init__(self, document: Document, parent=None):
        super().__init__(parent)
        self.doc: Document | CompositeScope | None = None  # what the canvas shows
        self.root: Document | None = None  # the open document
        self.scopes: list[CompositeScope] = []  # the composites opened, outermost first
        self._links: dict[tuple[str, str], ShareLink] = {}  # (owner, twin) -> dashed link
        self.ng = CanvasGraph(self)
        self.viewer = self.ng.viewer()
        self.viewer.setObjectName("Canvas")
        self._classes = node_classes(document.graph.registry)
        self.ng.register_nodes([*self._classes.values(), UnknownNode])
        self._nodes: dict[str, CanvasNode] = {}
        self._ids: dict[str, str] = {}  # NodeGraphQt id -> engine id
        self._deco: dict[str, tuple] = {}
        self.last_refusal = ""
        self.theme = themes.current()
        self.search = NodeSearch(document.graph.registry, self.viewer)
        self.search.chosen.connect(self._search_chosen)
        self._search_pos = QtCore.QPointF()
        self.hint = QtWidgets.QLabel(self.viewer)
        self.hint.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.hint.setText("Drag a layer from the palette, press Tab to add one by name,\n"
                          "or open a template (Ctrl+T).")
        self.hint.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.viewer.installEventFilter(self)
        self.viewer.viewport().installEventFilter(self)
        # Overlays over the view (the training health legend): placed in the corner of the view where they
        # cover the fewest nodes, on a panel of their own, after each repaint that moved the view.
        self._overlay_timer = QtCore.QTimer(self, singleShot=True, interval=0)
        self._overlay_timer.timeout.connect(self.place_overlays)
        self._overlay_key = None
        self.ng.node_selection_changed.connect(lambda *_: self._emit_selection())
        self.ng.node_selected.connect(lambda *_: self._emit_selection())
        self.ng.node_double_clicked.connect(lambda n: self._double_clicked(self._ids.get(n.id, "")))
        self.crumbs = Breadcrumbs(self)
        self.container = QtWidgets.QWidget()
        self.container.setObjectName("CanvasContainer")
        box = QtWidgets.QVBoxLayout(self.container)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.crumbs)
        box.addWidget(self.viewer, 1)
        self._selection_timer = QtCore.QTimer(self, singleShot=True, interval=0)
        self._selection_timer.timeout.connect(self._selection_now)
        self._last_selection: list[str] | None = []
        self._last_main_selection: list[str] | None = []
        self.apply_theme(self.theme)
        self.set_document(document)

    @property
    def widget(self) -> QtWidgets.QWidget:
        """The breadcrumb bar over the view."""
        return self.container

    # ------------------------------------------------------------------ document
    def set_document(self, document: Document) -> None:
        """Show ``document`` (the open file), closing any composite that was open."""
        for scope in self.scopes:
            scope.detach()
        self.scopes = []
        self.root = document
        self._show(document)

    def _show(self, doc) -> None:
        if self.doc is not None:
            try:
                self.doc.changed.disconnect(self.sync)
            except (RuntimeError, TypeError):
                pass
        for nid in list(self._nodes):
            self._remove_view_node(nid)
        self.doc = doc
        self._last_selection = self._last_main_selection = None  # a new graph: the next selection is news
        doc.changed.connect(self.sync)
        self.sync()
        self.crumbs.refresh()
        self.scope_changed.emit(doc)
        self._emit_selection()

    @property
    def read_only(self) -> bool:
        return bool(getattr(self.doc, "read_only", False))

    # ------------------------------------------------------------------ composites: open, close
    def open_composite(self, node_id: str | None = None) -> bool:
        """Show the inside of a composite node (default: the one selected node). A user composite's
        inside is edited in place; a built-in block's is shown read-only."""
        if node_id is None:
            ids = self.selected_ids()
            node_id = ids[0] if len(ids) == 1 else None
        if node_id is None or node_id not in self.doc.graph.nodes or self.doc.graph.definition(node_id) is None:
            if node_id is not None and node_id in self.doc.graph.nodes \
                    and self.doc.graph.nodes[node_id].type == "Composite":
                name = self.doc.graph.nodes[node_id].params.get("definition")
                self.refuse(f"'{self.doc.graph.nodes[node_id].label}' refers to the composite '{name}', "
                            "which this file does not define")
            else:
                self.refuse("Select one composite or block node to open")
            return False
        try:
            scope = CompositeScope(self.root, self.doc, node_id)
        except Refused as exc:
            self.refuse(str(exc))
            return False
        self.scopes.append(scope)
        self._show(scope)
        self.frame()
        QtCore.QTimer.singleShot(0, self.frame)  # again once the breadcrumb bar has taken its room
        what = "read-only: " + scope.read_only_reason if scope.read_only else \
            f"editing the composite '{scope.name}' (every instance follows); Alt+Up goes back"
        self.message.emit(what)
        return True

    def close_scope(self, depth: int | None = None) -> None:
        """Go back to the graph ``depth`` levels in (0: the main graph; default: one level up), with the
        composite node that was open selected."""
        if not self.scopes:
            return
        depth = len(self.scopes) - 1 if depth is None else max(0, min(depth, len(self.scopes)))
        if depth == len(self.scopes):
            return
        came_from = self.scopes[depth].instance_id
        for scope in self.scopes[depth:]:
            scope.detach()
        self.scopes = self.scopes[:depth]
        self._show(self.scopes[-1] if self.scopes else self.root)
        self.frame()
        if came_from in self.doc.graph.nodes:
            self.select([came_from], center=True)

    def expand_open_block(self) -> list[str]:
        """The read-only view's 'Expand to edit': back to the graph holding the block, and expand it."""
        if not self.scopes or not self.scopes[-1].builtin:
            return []
        nid = self.scopes[-1].instance_id
        self.close_scope()
        self.select([nid])
        return self.expand_selected()

    def rename_open_composite(self, name: str) -> bool:
        scope = self.scopes[-1] if self.scopes else None
        if scope is None or scope.builtin or not name.strip() or name.strip() == scope.name:
            return False
        try:
            scope.rename(name.strip())
        except Refused as exc:
            self.refuse(str(exc))
            return False
        return True

    def _double_clicked(self, nid: str) -> None:
        if nid and nid in self.doc.graph.nodes and self.doc.graph.definition(nid) is not None:
            self.open_composite(nid)
        else:
            self.node_activated.emit(nid)

    def sync(self) -> None:
        """Make the scene match the document."""
        if self.scopes and not self.doc.alive:  # the composite went away (an undo): show what still exists
            self.close_scope(next(i for i, s in enumerate(self.scopes) if not s.alive))
            return
        g, inf = self.doc.graph, self.doc.inference
        for nid in list(self._nodes):
            node = g.nodes.get(nid)
            if node is None or not self._same_ports(nid):
                self._remove_view_node(nid)
        for nid, node in g.nodes.items():
            view = self._nodes.get(nid)
            if view is None:
                view = self._create_view_node(nid)
            elif view.view.name != node.label:
                view.set_property("name", node.label, push_undo=False)
                self._deco.pop(nid, None)
            pos = g.layout.get(nid)
            if pos is not None and tuple(view.view.xy_pos) != tuple(pos):
                view.view.xy_pos = [pos[0], pos[1]]
                view.model.pos = [pos[0], pos[1]]
        want = {e for e in g.edges if self._port_item(e.src, e.src_port, True) is not None
                and self._port_item(e.dst, e.dst_port, False) is not None}
        have = self.view_edges()
        for e in have - want:
            self._port_item(e.dst, e.dst_port, False).disconnect_from(self._port_item(e.src, e.src_port, True))
        for e in want - have:
            self._connect_view(e)
        by_node: dict[str, list] = {}
        for p in inf.problems:
            if p.node is not None:
                by_node.setdefault(p.node, []).append(p)
        groups = self._share_groups()
        for nid in g.nodes:
            self._decorate(nid, by_node.get(nid, []), groups)
        self._sync_links(groups)
        if self.scopes:
            self.crumbs.refresh()
        self.hint.setVisible(not g.nodes)
        self._place_hint()
        if self.ng.undo_stack().count():
            self.ng.clear_undo_stack()

    def view_edges(self) -> set[Edge]:
        """The wires the scene shows, as engine edges."""
        edges = set()
        for nid, view in self._nodes.items():
            for port in view.view.inputs:
                for other in port.connected_ports:
                    src = self._ids.get(other.node.id)
                    if src is not None:
                        edges.add(Edge(src, other.name, nid, port.name))
        return edges

    def node_item(self, node_id: str) -> CardItem | None:
        view = self._nodes.get(node_id)
        return view.view if view else None

    def port_item(self, node_id: str, port: str, output: bool):
        return self._port_item(node_id, port, output)

    # ------------------------------------------------------------------ view helpers
    def _same_ports(self, nid: str) -> bool:
        g, view = self.doc.graph, self._nodes[nid]
        return (view.dc_type == g.nodes[nid].type
                and [p.name for p in view.view.inputs] == g.input_port_names(nid)
                and [p.name for p in view.view.outputs] == g.output_port_names(nid))

    def _create_view_node(self, nid: str) -> CanvasNode:
        g = self.doc.graph
        node = g.nodes[nid]
        cls = self._classes.get(node.type, UnknownNode)
        view = cls(g.input_port_names(nid), g.output_port_names(nid))
        view.dc_type = node.type
        view.NODE_NAME = node.label
        view.view.set_theme(self.theme)
        view.model.text_color = themes.rgb(self.theme.text)  # add_node copies the model's onto the card
        pos = g.layout.get(nid, (0.0, 0.0))
        self.ng.add_node(view, pos=[pos[0], pos[1]], selected=False, push_undo=False)
        if self.read_only:  # a built-in block's inside: nothing to drag, rename or wire
            view.view.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIsMovable, False)
            view.view._text_item.set_locked(True)
        self._style_ports(view)
        self._nodes[nid] = view
        self._ids[view.id] = nid
        self._deco.pop(nid, None)
        return view

    def _remove_view_node(self, nid: str) -> None:
        for key in [k for k in self._links if nid in k]:
            self._links.pop(key).detach()
        view = self._nodes.pop(nid)
        self._ids.pop(view.id, None)
        self._deco.pop(nid, None)
        for port in [*view.view.inputs, *view.view.outputs]:
            for pipe in list(port.connected_pipes):
                pipe.delete()
        self.ng.remove_node(view, push_undo=False)

    def _port_item(self, nid: str, port: str, output: bool):
        view = self._nodes.get(nid)
        if view is None:
            return None
        for item in (view.view.outputs if output else view.view.inputs):
            if item.name == port:
                return item
        return None

    def _connect_view(self, e: Edge) -> PipeItem:
        out_item = self._port_item(e.src, e.src_port, True)
        in_item = self._port_item(e.dst, e.dst_port, False)
        pipe = Wire()
        pipe.accent = themes.rgb(self.theme.accent)
        self.viewer.scene().addItem(pipe)
        pipe.set_connections(out_item, in_item)
        pipe.color = themes.rgb(self.theme.wire)
        pipe.reset()
        pipe.draw_path(pipe.input_port, pipe.output_port)
        if out_item.node.selected or in_item.node.selected:
            pipe.highlight()
        return pipe

    def _style_ports(self, view: CanvasNode) -> None:
        t = self.theme
        for port in [*view.view.inputs, *view.view.outputs]:
            port.color = themes.rgb(t.node)
            port.border_color = themes.rgb(t.wire)

    def _share_groups(self) -> dict[str, tuple[str, str]]:
        """{node id: (marker colour, owner id)} for every node that shares weights or owns shared ones."""
        g = self.doc.graph
        owners = list(dict.fromkeys(n.shares for n in g.nodes.values() if n.shares in g.nodes))
        out = {}
        for i, owner in enumerate(owners):
            out[owner] = (SHARE_COLORS[i % len(SHARE_COLORS)], owner)
        for nid, n in g.nodes.items():
            if n.shares in g.nodes:
                out[nid] = (out[n.shares][0], n.shares)
        return out

    def _sync_links(self, groups: dict[str, tuple[str, str]]) -> None:
        g = self.doc.graph
        want = {(owner, nid): color for nid, (color, owner) in groups.items()
                if owner != nid and nid in self._nodes and owner in self._nodes and g.nodes[nid].shares == owner}
        for key in [k for k in self._links if k not in want]:
            self._links.pop(key).detach()
        for (owner, twin), color in want.items():
            link = self._links.get((owner, twin))
            if link is None:
                link = self._links[(owner, twin)] = ShareLink(self._nodes[owner].view, self._nodes[twin].view, color)
                self.viewer.scene().addItem(link)
            else:
                link.set_color(color)
            link.update_path()

    def share_link(self, owner: str, twin: str) -> ShareLink | None:
        return self._links.get((owner, twin))

    def _decorate(self, nid: str, problems: list, groups: dict | None = None) -> None:
        g, inf = self.doc.graph, self.doc.inference
        node = g.nodes[nid]
        spec = g.registry.get(node.type)
        info = inf.nodes.get(nid)
        severity = ("error" if any(p.severity == "error" for p in problems)
                    else "warning" if problems else None)
        role = spec.role if spec else None
        params = info.cost.params if info is not None and info.params is not None else None
        if spec is None:
            subtitle = f"unknown type {node.type}"
        elif role in (INPUT, TARGET):
            t = info.outputs.get("out") if info else None
            subtitle = f"{node.type} · {t.dtype}" if t else node.type
        elif role in (OUTPUT, LOSS):
            subtitle = node.type
        else:
            subtitle = f"{node.type} · {themes.format_count(params)} params"
        share_color = None
        if groups and nid in groups:
            share_color, owner = groups[nid]
            if owner != nid:  # the marker and the dashed link say the rest; the type is the owner's
                subtitle = f"shares weights of '{g.nodes[owner].label}'"
        if spec is not None and spec.subgraph is not None and node.type == "Composite":
            subtitle = subtitle.replace("Composite", node.params.get("definition") or "Composite", 1)
        composite = spec is not None and spec.subgraph is not None
        out_shapes, tips = {}, {}
        if info is not None:
            for port, t in info.outputs.items():
                out_shapes[port] = str(t)
                tips[port] = f"{port}: {t} {t.dtype}"
            for port, t in info.inputs.items():
                src = info.sources.get(port)
                origin = f" from '{g.nodes[src[0]].label}'" if src and src[0] in g.nodes else ""
                tips[port] = f"{port}: {t} {t.dtype}{origin}"
        color = themes.category_color(spec.category) if spec else self.theme.error
        key = (node.label, subtitle, severity, tuple(p.message for p in problems), tuple(out_shapes.items()),
               tuple(tips.items()), color, self.theme.name, share_color, composite)
        if self._deco.get(nid) == key:
            return
        self._deco[nid] = key
        tooltip = self._tooltip(node, spec, info, problems)
        self._nodes[nid].view.set_content(color, subtitle, severity, tooltip, out_shapes, tips, share_color,
                                          composite)

    def _tooltip(self, node, spec, info, problems) -> str:
        lines = [f"<b>{html.escape(node.label, quote=False)}</b> &nbsp;<span style='color:{self.theme.dim}'>"
                 f"{html.escape(node.type, quote=False)}</span>"]
        if spec is not None:
            lines.append(f"<span style='color:{self.theme.dim}'>{html.escape(spec.doc, quote=False)}</span>")
        if info is not None and info.outputs:
            shapes = ", ".join(f"{html.escape(str(t), quote=False)}" for t in info.outputs.values())
            lines.append(f"output {shapes}")
        if info is not None and info.params is not None and spec is not None and spec.role not in (INPUT, TARGET):
            lines.append(f"{info.cost.params:,} parameters · {themes.format_count(info.cost.flops)} FLOPs/sample")
        g = self.doc.graph
        if node.shares in g.nodes:
            lines.append(f"Shares weights with '{html.escape(g.nodes[node.shares].label, quote=False)}': its "
                         "params follow that node")
        twins = [n.label for n in g.nodes.values() if n.shares == node.id]
        if twins:
            lines.append("Its weights are also used by " + ", ".join(f"'{html.escape(t, quote=False)}'"
                                                                      for t in twins))
        if spec is not None and spec.subgraph is not None:
            lines.append(f"<i>Double-click (or Enter) to {'edit' if node.type == 'Composite' else 'see'} "
                         "its inside</i>")
        for p in problems:
            color = self.theme.error if p.severity == "error" else self.theme.warning
            lines.append(f"<span style='color:{color}'>● {html.escape(p.message, quote=False)}</span>")
        return "<br>".join(lines)

    # ------------------------------------------------------------------ theme
    def apply_theme(self, theme: themes.Theme) -> None:
        self.theme = theme
        bg, grid = QtGui.QColor(theme.canvas), QtGui.QColor(theme.grid)
        self.ng.set_background_color(bg.red(), bg.green(), bg.blue())
        self.ng.set_grid_color(grid.red(), grid.green(), grid.blue())
        self.ng.set_grid_mode(ViewerEnum.GRID_DISPLAY_DOTS.value)
        self.hint.setStyleSheet(f"color: {theme.dim}; font-size: 11pt; background: transparent;")
        for nid, view in self._nodes.items():
            view.view.set_theme(theme)
            self._style_ports(view)
            for port in view.view.outputs:
                for pipe in port.connected_pipes:
                    pipe.color = themes.rgb(theme.wire)
                    if isinstance(pipe, Wire):
                        pipe.accent = themes.rgb(theme.accent)
                    pipe.reset()
        self._deco.clear()
        self.crumbs.apply_theme(theme)
        if self.doc is not None:
            self.sync()
        self.viewer.scene().update()

    OVERLAY_MARGIN = 8

    def place_overlays(self) -> None:
        """Put the health legend (a label over the view) in the corner of the view where it covers the
        least of the nodes: the top left unless nodes are there (at the top of a framed network, the first
        card lay under it). Where every corner covers some, it may take two or three lines instead of one,
        whichever covers less (in a narrow canvas the one line lay across the network). It has a
        background, so a node panned under it stays apart from the text."""
        label = self.viewer.findChild(QtWidgets.QLabel, "health_legend")
        if label is None or label.isHidden():
            return
        t = themes.current()
        if label.property("overlay_theme") != t.name:
            back = QtGui.QColor(t.panel)
            label.setStyleSheet(f"QLabel {{ background: rgba({back.red()}, {back.green()}, "
                                f"{back.blue()}, 230); border: 1px solid {t.border}; border-radius: 4px; "
                                "padding: 2px 6px; }")
            label.setProperty("overlay_theme", t.name)
            self._overlay_key = None
        port = self.viewer.viewport()
        view_rect = self.viewer.mapToScene(port.rect()).boundingRect()
        key = (view_rect.getRect(), port.size().toTuple(), len(self._nodes), label.text(), t.name)
        if key == self._overlay_key:
            return
        self._overlay_key = key
        one, wrapped = self._legend_sizes(label, port.width())
        m = self.OVERLAY_MARGIN
        cards = [self.viewer.mapFromScene(v.view.sceneBoundingRect()).boundingRect() for v in self._nodes.values()]

        def corners(size: QtCore.QSize) -> list[QtCore.QPoint]:
            right = max(m, port.width() - size.width() - m)
            bottom = max(m, port.height() - size.height() - m)
            return [QtCore.QPoint(m, m), QtCore.QPoint(m, bottom), QtCore.QPoint(right, m), QtCore.QPoint(right, bottom)]

        def covered(corner: QtCore.QPoint, size: QtCore.QSize) -> int:
            r = QtCore.QRect(corner, size).adjusted(-4, -4, 4, 4)
            return sum(r.intersected(c).width() * r.intersected(c).height() for c in cards if r.intersects(c))
        # (a layout wider than the view has its end cut off: one that fits, where there is one)
        sizes = [(n, size) for n, size in enumerate((one, wrapped)) if size is not None]
        fitting = [(n, size) for n, size in sizes if size.width() <= port.width() - 2 * m] or sizes[-1:]
        choices = [(covered(c, size), n, i, c, size) for n, size in fitting for i, c in enumerate(corners(size))]
        _, layout, _, corner, size = min(choices, key=lambda x: x[:3])
        if layout == 0:
            label.setWordWrap(False)
            label.setMinimumSize(0, 0)
            label.setMaximumSize(16777215, 16777215)  # (QWIDGETSIZE_MAX)
            label.adjustSize()
        else:
            label.setWordWrap(True)
            label.setFixedSize(size)
        label.move(port.mapTo(self.viewer, corner))
        label.raise_()

    def _legend_sizes(self, label: QtWidgets.QLabel, width: int) -> tuple[QtCore.QSize, QtCore.QSize | None]:
        """The legend's size on one line, and wrapped to a narrower width (None where that would not be
        narrower), measured on a label of its own that is never shown (the legend itself is not resized
        for it: each resize would repaint the view and come back here)."""
        key = (label.text(), label.styleSheet(), label.font().toString(), width)
        cached = getattr(self, "_measured", None)
        if cached is not None and cached[0] == key:  # (measured again at each frame of a pan, otherwise)
            return cached[1]
        measure = getattr(self, "_measure", None)
        if measure is None:
            measure = self._measure = QtWidgets.QLabel()
            measure.setTextFormat(QtCore.Qt.TextFormat.RichText)
        measure.setStyleSheet(label.styleSheet())
        measure.setFont(label.font())
        measure.setText(label.text())
        measure.setWordWrap(False)
        measure.adjustSize()
        one = measure.sizeHint()
        narrow = max(220, min(one.width() * 11 // 20, width // 2))
        sizes = (one, None)
        if narrow < one.width():
            measure.setWordWrap(True)
            sizes = (one, QtCore.QSize(narrow, measure.heightForWidth(narrow)))
        self._measured = (key, sizes)
        return sizes

    def _place_hint(self) -> None:
        self.hint.resize(self.viewer.width(), 80)
        self.hint.move(0, max(0, self.viewer.height() // 2 - 40))

    # ------------------------------------------------------------------ selection and framing
    def selected_ids(self) -> list[str]:
        """The selected nodes, in document order."""
        chosen = {self._ids[n.id] for n in self.ng.selected_nodes() if n.id in self._ids}
        return [nid for nid in self.doc.graph.nodes if nid in chosen]

    def select(self, node_ids, center: bool = False) -> None:
        node_ids = list(node_ids)
        if self.scopes and node_ids and not any(n in self.doc.graph.nodes for n in node_ids) \
                and any(n in self.root.graph.nodes for n in node_ids):
            self.close_scope(0)  # a node of the main graph (a problem clicked in the panel): go there
        self.ng.clear_selection()
        views = [self._nodes[n] for n in node_ids if n in self._nodes]
        for view in views:
            view.set_selected(True)
        if center and views:
            self.center_on(self.nodes_rect(node_ids).center())
        self._selection_timer.stop()
        self._selection_now()

    def select_all(self) -> None:
        self.ng.select_all()
        self._emit_selection()

    def _emit_selection(self) -> None:
        self._selection_timer.start()

    def _selection_now(self) -> None:
        ids = self.selected_ids()
        if ids != self._last_selection:
            self._last_selection = ids
            self.shown_selection_changed.emit(ids)
        main = [] if self.scopes else ids
        if main != self._last_main_selection:
            self._last_main_selection = main
            self.selection_changed.emit(main)

    def nodes_rect(self, node_ids=None) -> QtCore.QRectF:
        """The scene rectangle around the given nodes (all by default), their labels included.
        (NodeGraphQt's own version builds and destroys an item group: seconds for 500 nodes.)"""
        rect = QtCore.QRectF()
        for nid in (self._nodes if node_ids is None else node_ids):
            view = self._nodes.get(nid)
            if view is not None:
                rect = rect.united(view.view.sceneBoundingRect())
        return rect.adjusted(-20, -20, 60, 30)

    def fit(self) -> None:
        """Zoom so the whole network is in view (never beyond 100%)."""
        if not self._nodes:
            return
        self._show_rect(self.nodes_rect(), max_scale=1.0)

    def center_on(self, point: QtCore.QPointF) -> None:
        r = QtCore.QRectF(self.viewer._scene_range)
        r.moveCenter(point)
        self.viewer._scene_range = r
        self.viewer._update_scene()

    def _show_rect(self, rect: QtCore.QRectF, max_scale: float = 1.0) -> None:
        port = self.viewer.viewport().rect()
        scale = min(port.width() / max(rect.width(), 1.0), port.height() / max(rect.height(), 1.0), max_scale)
        w, h = port.width() / scale, port.height() / scale
        centre = rect.center()
        self.viewer._scene_range = QtCore.QRectF(centre.x() - w / 2, centre.y() - h / 2, w, h)
        self.viewer._update_scene()

    def frame(self) -> None:
        """Show the network at a readable size: all of it when it fits at ``READABLE_ZOOM`` or more,
        otherwise its top, centred, at that scale."""
        if not self._nodes:
            return
        rect = self.nodes_rect()
        port = self.viewer.viewport().rect()
        scale = min(port.width() / max(rect.width(), 1), port.height() / max(rect.height(), 1))
        if scale >= READABLE_ZOOM:
            self.fit()
            return
        w, h = port.width() / READABLE_ZOOM, port.height() / READABLE_ZOOM
        self.viewer._scene_range = QtCore.QRectF(rect.center().x() - w / 2, rect.top(), w, h)
        self.viewer._update_scene()

    def zoom(self, steps: int) -> None:
        self.viewer._set_viewer_zoom(steps, 0.0)

    # ------------------------------------------------------------------ edits
    def _edit(self, text: str, fn):
        try:
            result = self.doc.edit(text, fn)
        except Refused as exc:
            self.refuse(str(exc))
            return None
        dropped = getattr(self.doc, "dropped", None)
        if dropped:  # an Input or Output of the open composite went: so did the instances' wires on it
            self.message.emit(f"{len(dropped)} wire(s) of the composite's instances were removed with the "
                              "port they were on (undo brings them back)")
        return result

    def refuse(self, reason: str) -> None:
        self.last_refusal = reason
        self.message.emit(reason)
        QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), reason, self.viewer)

    def view_center(self) -> QtCore.QPointF:
        return self.viewer.mapToScene(self.viewer.viewport().rect().center())

    def add_node(self, type_name: str, scene_pos=None) -> str | None:
        """Add a node of ``type_name`` centred on ``scene_pos`` (default: the middle of the view)."""
        p = scene_pos if scene_pos is not None else self.view_center()
        x, y = (p.x(), p.y()) if hasattr(p, "x") else p
        pos = (round(x - CardItem.MIN_WIDTH / 2, 1), round(y - CardItem.HEIGHT / 2, 1))
        node = self._edit(f"Add {type_name}", lambda g: g.add_node(type_name, pos=pos))
        if node is not None:
            self.select([node.id])
            return node.id
        return None

    def delete_selected(self) -> None:
        ids = self.selected_ids()
        edges = [e for e in (self._pipe_edge(p) for p in self.viewer.selected_pipes()) if e is not None]
        if not ids and not edges:
            return

        def fn(g):
            for e in edges:
                if e in g.edges:
                    g.disconnect(e)
            for nid in ids:
                if nid in g.nodes:
                    g.remove_node(nid)
        what = f"{len(ids)} node(s)" if ids else f"{len(edges)} wire(s)"
        self._edit(f"Delete {what}", fn)

    def copy_selected(self) -> bool:
        ids = self.selected_ids()
        if not ids:
            return False
        text = clipboard.copy_text(self.doc.graph, ids)
        data = QtCore.QMimeData()
        data.setData(clipboard.MIME, text.encode())
        data.setText(text)
        QtWidgets.QApplication.clipboard().setMimeData(data)
        _release_clipboard_at_exit()
        return True

    def cut_selected(self) -> None:
        if self.copy_selected():
            self.delete_selected()

    def paste(self, text: str | None = None, offset=(40.0, 40.0)) -> list[str]:
        if text is None:
            data = QtWidgets.QApplication.clipboard().mimeData()
            if data is None:
                return []
            text = bytes(data.data(clipboard.MIME)).decode() if data.hasFormat(clipboard.MIME) else data.text()
        if not text.strip():
            return []
        try:
            ids = self.doc.edit("Paste", lambda g: clipboard.paste(g, text, offset))
        except Refused as exc:
            self.refuse(f"The clipboard does not hold a graph: {exc}")
            return []
        except engine.GraphFileError as exc:
            self.refuse(f"The clipboard does not hold a graph: {'; '.join(exc.problems)}")
            return []
        self.select(ids)
        return ids

    def duplicate_selected(self) -> list[str]:
        ids = self.selected_ids()
        if not ids:
            return []
        return self.paste(clipboard.copy_text(self.doc.graph, ids))

    def auto_layout(self) -> None:
        ids = self.selected_ids()
        target = ids if len(ids) > 1 else None
        self._edit("Automatic layout", lambda g: autolayout.apply(g, target))
        self.fit()

    def free_composite_name(self, base: str = "Block") -> str:
        g = self.doc.graph
        taken = set(getattr(g, "composites", {})) | {spec.type for spec in g.registry}
        i, name = 1, base
        while name in taken:
            i += 1
            name = f"{base}{i}"
        return name

    def group_selected(self, name: str) -> str | None:
        """Move the selected layers into a new composite called ``name`` (engine.composites.collapse)."""
        from engine import composites

        ids = self.selected_ids()
        if not ids:
            self.refuse("Select the layers to group into a composite first")
            return None
        new = self._edit(f"Group {len(ids)} nodes into {name}", lambda g: composites.collapse(g, ids, name))
        if new:
            self.select([new])
        return new

    def expand_selected(self) -> list[str]:
        """Replace each selected composite or block by the nodes it stands for."""
        from engine import composites

        ids = [nid for nid in self.selected_ids() if self.doc.graph.definition(nid) is not None]
        if not ids:
            self.refuse("Select a composite or block node to expand")
            return []

        def fn(g):
            out = []
            for nid in ids:
                out += composites.expand(g, nid)
            return out
        new = self._edit("Expand composite", fn) or []
        if new:
            self.select(new)
        return new

    def apply_fix(self, fix) -> list[str]:
        added = self._edit(fix.title, fix.apply)
        if added:
            self.select(added, center=True)
        return added or []

    # ------------------------------------------------------------------ gestures from the viewer
    def _edge_of(self, a, b) -> Edge | None:
        out_item, in_item = (a, b) if a.port_type == PortTypeEnum.OUT.value else (b, a)
        src, dst = self._ids.get(out_item.node.id), self._ids.get(in_item.node.id)
        if src is None or dst is None or out_item.port_type == in_item.port_type:
            return None
        return Edge(src, out_item.name, dst, in_item.name)

    def _pipe_edge(self, pipe) -> Edge | None:
        if pipe.input_port is None or pipe.output_port is None:
            return None
        return self._edge_of(pipe.output_port, pipe.input_port)

    def _wires_changed(self, disconnected, connected) -> None:
        cut = [e for e in (self._edge_of(a, b) for a, b in disconnected) if e is not None]
        made = [e for e in (self._edge_of(a, b) for a, b in connected) if e is not None]
        self.request_wires(cut, made)

    def request_wires(self, cut: list[Edge], made: list[Edge]) -> bool:
        """Remove ``cut`` and add ``made`` as one edit; a wire the engine refuses cancels the whole
        gesture (the old wires stay) and its reason is shown. Returns whether the edit was made."""
        g = self.doc.graph

        def fn(graph):
            for e in cut:
                if e in graph.edges:
                    graph.disconnect(e)
            for e in made:
                reason = engine.check_connection(graph, e.src, e.src_port, e.dst, e.dst_port)
                if reason:
                    src, dst = graph.nodes[e.src].label, graph.nodes[e.dst].label
                    raise Refused(f"Cannot connect '{src}' to '{dst}': {reason}")
                graph.connect(e.src, e.src_port, e.dst, e.dst_port)

        if made:
            text = f"Connect {g.nodes[made[0].src].label} → {g.nodes[made[0].dst].label}"
        else:
            text = f"Disconnect {len(cut)} wire(s)"
        done = True
        try:
            self.doc.edit(text, fn)
        except Refused as exc:
            self.refuse(str(exc))
            done = False
        self.sync()  # the viewer may have drawn or removed pipes itself: put the document's back
        return done

    def _nodes_moved(self, node_data) -> None:
        positions = {}
        for item in node_data:
            nid = self._ids.get(item.id)
            if nid is not None:
                x, y = item.xy_pos
                positions[nid] = (x, y)
        if positions:
            try:
                self.doc.move(positions, f"Move {len(positions)} node(s)")
            except Refused as exc:
                self.refuse(str(exc))
                self.sync()

    def _renamed(self, view_id: str, name: str) -> None:
        nid = self._ids.get(view_id)
        if nid is not None and name.strip() != self.doc.graph.nodes[nid].label:
            self._edit(f"Rename to {name.strip()}", lambda g: g.set_label(nid, name.strip()))
        self._deco.pop(nid, None)
        self.sync()

    def _dropped(self, mimedata, pos) -> None:
        files = [u.toLocalFile() for u in mimedata.urls() if u.isLocalFile()] if mimedata.hasUrls() else []
        if files:
            self.file_dropped.emit(files[0])
            return
        if mimedata.hasFormat(NODE_MIME):
            names = bytes(mimedata.data(NODE_MIME)).decode().split()
        elif mimedata.hasText() and mimedata.text().strip() in self.doc.graph.registry:
            names = [mimedata.text().strip()]
        else:
            return
        for i, name in enumerate(names):
            self.add_node(name, (pos.x() + 30 * i, pos.y() + 30 * i))

    def _search_chosen(self, type_name: str) -> None:
        self.add_node(type_name, self._search_pos)

    def open_search(self, view_pos: QtCore.QPoint | None = None) -> None:
        """The quick-add box at ``view_pos`` (default: the cursor, or the middle of the view)."""
        if view_pos is None:
            view_pos = self.viewer.mapFromGlobal(QtGui.QCursor.pos())
            if not self.viewer.rect().contains(view_pos):
                view_pos = self.viewer.rect().center()
        self._search_pos = self.viewer.mapToScene(view_pos)
        self.search.open_at(self.viewer.mapToGlobal(view_pos))

    # ------------------------------------------------------------------ keys and context menu
    def eventFilter(self, obj, event):
        et = event.type()
        if obj is self.viewer and et == QtCore.QEvent.Type.KeyPress and not self._editing_text():
            if event.key() == QtCore.Qt.Key.Key_Tab:
                self.open_search()
                return True
            if event.key() in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter) and self.selected_ids():
                self.open_composite()
                return True
        if obj is self.viewer and et == QtCore.QEvent.Type.Resize:
            self._place_hint()
            self._overlay_timer.start()
        if obj is self.viewer.viewport() and et == QtCore.QEvent.Type.Paint and not self._overlay_timer.isActive():
            self._overlay_timer.start()
        if obj is self.viewer.viewport() and et == QtCore.QEvent.Type.ContextMenu:
            self._context_menu(event.pos(), event.globalPos())
            return True
        return super().eventFilter(obj, event)

    def _editing_text(self) -> bool:
        """A card's title is being edited: keys belong to it."""
        item = self.viewer.scene().focusItem()
        return isinstance(item, QtWidgets.QGraphicsTextItem) and \
            item.textInteractionFlags() != QtCore.Qt.TextInteractionFlag.NoTextInteraction

    def node_at(self, view_pos: QtCore.QPoint) -> str | None:
        item = self.viewer.itemAt(view_pos)
        while item is not None and not isinstance(item, CardItem):
            item = item.parentItem()
        return self._ids.get(item.id) if item is not None else None

    def _context_menu(self, view_pos: QtCore.QPoint, global_pos: QtCore.QPoint) -> None:
        self.viewer.RMB_state = False
        nid = self.node_at(view_pos)
        if nid is None:
            self._search_pos = self.viewer.mapToScene(view_pos)
            self.search.open_at(global_pos)
            return
        if nid not in self.selected_ids():
            self.select([nid])
        menu = self.node_menu(nid)
        menu.exec(global_pos)

    def _share_menu(self, menu: QtWidgets.QMenu, nid: str) -> None:
        """'Share Weights With' (a sub-menu of the nodes whose weights it can use) and 'Stop Sharing'."""
        g = self.doc.graph
        node = g.nodes[nid]
        if self.read_only or g.registry.get(node.type) is None:
            return
        pair = [o for o in self.selected_ids() if o != nid]
        if len(pair) == 1 and pair[0] in self.share_candidates(nid):
            other = g.nodes[pair[0]]
            owner = g.nodes[other.shares] if other.shares in g.nodes else other
            menu.addAction(themes.icon("link"), f"Use the Weights of '{owner.label}'",
                           lambda: self.share_weights(nid, owner.id))
        candidates = self.share_candidates(nid)
        sub = menu.addMenu(themes.icon("link"), "Share Weights With")
        sub.setObjectName("share_menu")
        for cand in candidates:
            c = g.nodes[cand]
            sub.addAction(f"{c.label}  ({c.type})", lambda _=False, cand=cand: self.share_weights(nid, cand))
        if not candidates:
            sub.setEnabled(False)
            sub.setToolTip(f"No other {node.type} node in this graph to share weights with")
        if node.shares is not None:
            menu.addAction(themes.icon("unlink"), "Stop Sharing Weights", lambda: self.stop_sharing(nid))
        elif any(n.shares == nid for n in g.nodes.values()):
            menu.addAction(themes.icon("unlink"), "Give Its Twins Their Own Weights", lambda: self.stop_sharing(nid))

    # ------------------------------------------------------------------ shared weights
    def share_candidates(self, nid: str) -> list[str]:
        """Nodes whose weights ``nid`` can use: the same type (for a composite, the same definition),
        that use no one else's, and are not ``nid`` or already its owner."""
        g = self.doc.graph
        node = g.nodes.get(nid)
        spec = g.registry.get(node.type) if node is not None else None
        if spec is None or spec.role != "layer":
            return []
        out = []
        for oid, other in g.nodes.items():
            if oid == nid or other.type != node.type or other.shares is not None or oid == node.shares:
                continue
            if node.type == "Composite" and other.params.get("definition") != node.params.get("definition"):
                continue
            if node.type != "Composite" and spec.module is None and spec.subgraph is None:
                continue  # a layer without weights (ReLU, Flatten): nothing to share
            out.append(oid)
        return out

    def share_weights(self, nid: str, owner: str) -> bool:
        """Make ``nid`` (and any twins of it) use the weights of ``owner``: one undoable edit."""
        g = self.doc.graph
        twin, own = g.nodes[nid].label, g.nodes[owner].label

        done = []

        def fn(graph):
            graph.set_shares(nid, owner)
            for other in list(graph.nodes.values()):
                if other.shares == nid:
                    graph.set_shares(other.id, owner)
            done.append(True)
        self._edit(f"Share weights: {twin} uses {own}", fn)
        if not done:
            return False
        self.message.emit(f"'{twin}' now uses the weights of '{own}'; its params follow '{own}'")
        return True

    def share_selected(self) -> bool:
        """The Edit menu's 'Share Weights With…': of two selected nodes of one type the second (in the
        document's order) uses the first's weights; for one node, the owner is picked from a list."""
        g = self.doc.graph
        ids = self.selected_ids()
        if len(ids) == 2:
            first, second = g.nodes[ids[0]], g.nodes[ids[1]]
            owner = first.shares if first.shares in g.nodes else first.id
            if owner == second.id:  # the second owns the first's weights already: keep it the owner
                return self.share_weights(first.id, second.id)
            return self.share_weights(second.id, owner) if owner != second.shares else True
        if len(ids) != 1:
            self.refuse("Select the node that should use another node's weights (or two nodes of one type)")
            return False
        candidates = self.share_candidates(ids[0])
        if not candidates:
            self.refuse(f"No other {g.nodes[ids[0]].type} node in this graph can lend '{g.nodes[ids[0]].label}' "
                        "its weights")
            return False
        owner = self.choose_owner(ids[0], candidates)
        return bool(owner) and self.share_weights(ids[0], owner)

    def choose_owner(self, nid: str, candidates: list[str]) -> str | None:
        """Ask which node's weights ``nid`` should use (replaceable in tests)."""
        g = self.doc.graph
        labels = [g.nodes[c].label for c in candidates]
        text, ok = QtWidgets.QInputDialog.getItem(self.viewer, "Share weights",
                                                  f"'{g.nodes[nid].label}' uses the weights of:", labels, 0, False)
        return candidates[labels.index(text)] if ok and text in labels else None

    def stop_sharing_selected(self) -> None:
        g = self.doc.graph
        ids = [n for n in self.selected_ids() if g.nodes[n].shares is not None
               or any(o.shares == n for o in g.nodes.values())]
        if not ids:
            self.refuse("None of the selected nodes shares weights")
        for nid in ids:
            if nid in g.nodes:
                self.stop_sharing(nid)

    def stop_sharing(self, nid: str) -> None:
        """A twin gets its own weights again; for an owner, every twin does."""
        g = self.doc.graph
        ids = [nid] if g.nodes[nid].shares is not None else [n.id for n in g.nodes.values() if n.shares == nid]
        if not ids:
            return

        def fn(graph):
            for i in ids:
                graph.set_shares(i, None)
        self._edit(f"Stop sharing weights ({', '.join(g.nodes[i].label for i in ids)})", fn)

    def node_menu(self, nid: str) -> QtWidgets.QMenu:
        """The right-click menu of a node: its fixes first, then the usual edits."""
        from engine.fixes import fixes_for

        menu = QtWidgets.QMenu(self.viewer)
        inf = self.doc.inference
        for problem in inf.problems_for(nid):
            for fix in fixes_for(self.doc.graph, problem, inf):
                action = menu.addAction(themes.icon("fix", self.theme.accent), fix.title)
                action.setToolTip(fix.detail)
                action.triggered.connect(lambda _=False, f=fix: self.apply_fix(f))
        if menu.actions():
            menu.addSeparator()
        menu.addAction(themes.icon("properties"), "Properties", lambda: self.node_activated.emit(nid))
        g = self.doc.graph
        if g.definition(nid) is not None:
            text = "Open Composite" if g.nodes[nid].type == "Composite" else "Look Inside (read-only)"
            menu.addAction(themes.icon("open-composite"), text, lambda: self.open_composite(nid))
            menu.addAction(themes.icon("expand"), "Expand Composite", self.expand_selected)
        self._share_menu(menu, nid)
        menu.addAction(themes.icon("group"), "Group into Composite…", self.group_requested.emit)
        menu.addAction(themes.icon("duplicate"), "Duplicate", self.duplicate_selected)
        menu.addAction(themes.icon("copy"), "Copy", self.copy_selected)
        menu.addAction(themes.icon("delete"), "Delete", self.delete_selected)
        return menu


class Breadcrumbs(QtWidgets.QFrame):
    """The bar over the canvas while a composite is open: 'Main › encoder', what the shapes show, and
    for a built-in block's read-only inside, the way to edit it ('Expand to Edit')."""

    def __init__(self, canvas: Canvas):
        super().__init__()
        self.canvas = canvas
        self.setObjectName("breadcrumbs")
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self._row = QtWidgets.QHBoxLayout(self)
        self._row.setContentsMargins(8, 4, 8, 4)
        self._row.setSpacing(4)
        self.back = QtWidgets.QToolButton()
        self.back.setObjectName("crumb_back")
        self.back.setText("Back")
        self.back.setToolTip("Back to the graph holding this composite (Alt+Up)")
        self.back.setAutoRaise(True)
        self.back.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.back.clicked.connect(lambda: canvas.close_scope())
        self._path = QtWidgets.QHBoxLayout()
        self._path.setSpacing(2)
        self.note = QtWidgets.QLabel()
        self.note.setObjectName("crumb_note")
        self.expand_button = QtWidgets.QPushButton("Expand to Edit")
        self.expand_button.setObjectName("crumb_expand")
        self.expand_button.setToolTip("Replace the block by its layers in the graph holding it, so they can be edited")
        self.expand_button.clicked.connect(canvas.expand_open_block)
        self._row.addWidget(self.back)
        self._row.addLayout(self._path)
        self._row.addSpacing(12)
        self._row.addWidget(self.note, 1)
        self._row.addWidget(self.expand_button)
        self.buttons: list[QtWidgets.QToolButton] = []
        self._key = None
        self.hide()

    def apply_theme(self, theme: themes.Theme) -> None:
        self.setStyleSheet(f"QFrame#breadcrumbs {{ background: {theme.panel}; "
                           f"border-bottom: 1px solid {theme.border}; }} QLabel#crumb_note {{ color: {theme.dim}; }}")
        self.back.setIcon(themes.icon("back"))
        self._key = None
        self.refresh()

    def crumb_texts(self) -> list[str]:
        return [b.text() for b in self.buttons]

    def refresh(self) -> None:
        c = self.canvas
        scopes = c.scopes
        self.setVisible(bool(scopes))
        if not scopes:
            return
        top = scopes[-1]
        names = ["Main", *[s.title for s in scopes]]
        if top.read_only:
            note = "Read-only: generated from the block's params. Expand the block to edit its layers."
        else:
            users = top.users()
            shapes = (f"shapes as they arrive at '{top.arriving_from}'" if top.arriving_from
                      else "shapes from its Inputs' declared shapes (no instance receives data)")
            note = f"{shapes} · used by {', '.join(repr(u) for u in users) or 'no node'}"
        key = (tuple(names), note, top.read_only)
        if key == self._key:
            return
        self._key = key
        while self._path.count():
            item = self._path.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.buttons = []
        for depth, name in enumerate(names):
            if depth:
                sep = QtWidgets.QLabel("›")
                sep.setObjectName("crumb_sep")
                self._path.addWidget(sep)
            button = QtWidgets.QToolButton()
            button.setObjectName(f"crumb_{depth}")
            button.setText(name)
            button.setAutoRaise(True)
            last = depth == len(names) - 1
            if last:
                font = button.font()
                font.setBold(True)
                button.setFont(font)
                button.setToolTip("The composite shown" + ("" if top.read_only else "; click to rename it"))
                button.clicked.connect(self._rename)
            else:
                button.setToolTip("Main graph" if depth == 0 else f"Back to {name}")
                button.clicked.connect(lambda _=False, d=depth: self.canvas.close_scope(d))
            self._path.addWidget(button)
            self.buttons.append(button)
        self.note.setText(note)
        self.note.setToolTip(note)
        self.expand_button.setVisible(top.read_only)

    def _rename(self) -> None:
        top = self.canvas.scopes[-1] if self.canvas.scopes else None
        if top is None or top.read_only:
            return
        name, ok = QtWidgets.QInputDialog.getText(self, "Rename composite", "New name of the composite:",
                                                  text=top.name)
        if ok:
            self.canvas.rename_open_composite(name)


_clipboard_hook_installed = False


def _release_clipboard_at_exit() -> None:
    """Qt's clipboard keeps the QMimeData we gave it until Qt's own static destructors run, after
    Python has shut down; destroying its Python wrapper then crashes the process (a segmentation fault
    at exit). Clearing the clipboard from an atexit hook releases it while Python is still alive."""
    global _clipboard_hook_installed
    if _clipboard_hook_installed:
        return
    _clipboard_hook_installed = True

    def release():
        app = QtWidgets.QApplication.instance()
        if app is not None:
            app.clipboard().clear()

    atexit.register(release)
