"""The open document: an ``engine.Graph`` (the source of truth), its file, its undo history and the
latest shape inference.

Every edit, from any panel, is a function that changes the graph through the engine's own methods,
run by :meth:`Document.edit`. The edit is recorded as a :class:`SnapshotCommand` (the graph's state
before and after, as plain data) on a ``QUndoStack``, so undo and redo restore the document and the
canvas follows the document, never the other way round. An edit the engine refuses (``GraphEditError``,
``ParamError``) leaves the document exactly as it was and raises :class:`Refused` with the engine's
reason. After each change shape inference runs again and ``changed`` is emitted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore, QtGui

import engine
from engine.graph import Graph, Node

from . import autolayout


class Refused(ValueError):
    """An edit the engine would not make; the message is the engine's reason."""


@dataclass(frozen=True)
class Snapshot:
    """A graph's whole state as plain, comparable data."""

    name: str
    description: str
    nodes: tuple  # (id, type, label, params, shares) in document order
    edges: tuple
    layout: tuple  # (id, (x, y)) in insertion order
    training: Any
    composites: tuple = ()  # (name, Snapshot) of the user composites defined in the file


def _plain(value):
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def snapshot(graph: Graph, nested: bool = False) -> Snapshot:
    comps = () if nested else tuple((name, snapshot(sub, True))
                                    for name, sub in getattr(graph, "composites", {}).items())
    return Snapshot(graph.name, graph.description,
                    tuple((n.id, n.type, n.label, _plain(n.params), getattr(n, "shares", None))
                          for n in graph.nodes.values()),
                    tuple(graph.edges), tuple(graph.layout.items()), _plain(graph.training), comps)


def _fill(graph: Graph, snap: Snapshot) -> None:
    graph.name, graph.description = snap.name, snap.description
    nodes = {}
    for nid, t, label, params, shares in snap.nodes:
        node = Node(nid, t, label, _plain(params))
        if shares is not None:
            node.shares = shares
        nodes[nid] = node
    graph.nodes = nodes
    graph.edges = list(snap.edges)
    graph.layout = dict(snap.layout)
    graph.training = _plain(snap.training)


def restore(graph: Graph, snap: Snapshot) -> None:
    """Put ``graph`` (the same object, so every holder of it sees the change) into the state ``snap``."""
    _fill(graph, snap)
    if hasattr(graph, "composites"):
        shared: dict = {}
        for name, sub_snap in snap.composites:
            sub = Graph(registry=graph.registry)
            _fill(sub, sub_snap)
            sub.composites = shared
            shared[name] = sub
        graph.composites.clear()  # the same dict object: nested graphs that hold it stay in step
        graph.composites.update(shared)
        for sub in shared.values():
            sub.composites = graph.composites


class SnapshotCommand(QtGui.QUndoCommand):
    """One undoable edit: the document before and after."""

    def __init__(self, doc: "Document", text: str, before: Snapshot, after: Snapshot):
        super().__init__(text)
        self._doc, self._before, self._after = doc, before, after
        self._first = True

    def redo(self) -> None:
        if self._first:  # the edit has already been made by Document.edit
            self._first = False
            return
        restore(self._doc.graph, self._after)
        self._doc.refresh()

    def undo(self) -> None:
        restore(self._doc.graph, self._before)
        self._doc.refresh()


class Document(QtCore.QObject):
    """The graph being edited, with its path, undo stack and latest inference."""

    changed = QtCore.Signal()          # after every edit, undo, redo or load; inference is fresh
    file_changed = QtCore.Signal()     # path, name or modified state changed

    def __init__(self, graph: Graph | None = None, path: str | Path | None = None, parent=None):
        super().__init__(parent)
        self.graph = graph if graph is not None else Graph("Untitled")
        self.path: Path | None = Path(path) if path else None
        self.undo_stack = QtGui.QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self._recovered = False  # opened from an autosave: modified although nothing is on the stack
        self.last_inference_ms = 0.0
        autolayout.place_missing(self.graph)
        self.inference = engine.infer_shapes(self.graph)

    # ------------------------------------------------------------------ state
    def _clean_changed(self, _clean: bool) -> None:
        self.file_changed.emit()

    @property
    def modified(self) -> bool:
        return self._recovered or not self.undo_stack.isClean()

    def mark_saved(self, path: str | Path) -> None:
        self.path = Path(path)
        self._recovered = False
        self.undo_stack.setClean()
        self.file_changed.emit()

    def mark_recovered(self) -> None:
        self._recovered = True
        self.file_changed.emit()

    @property
    def title(self) -> str:
        return self.path.name if self.path else (self.graph.name or "Untitled")

    # ------------------------------------------------------------------ editing
    def edit(self, text: str, fn: Callable[[Graph], Any]) -> Any:
        """Run ``fn(graph)`` as one undoable edit and return what it returns. When the engine refuses
        (or ``fn`` raises ``Refused``), the document is restored and ``Refused`` is raised with the
        reason. An edit that changes nothing records nothing."""
        before = snapshot(self.graph)
        try:
            result = fn(self.graph)
        except (engine.GraphEditError, engine.ParamError, Refused, KeyError, ValueError) as exc:
            restore(self.graph, before)
            reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise Refused(reason) from None
        except BaseException:  # a bug: leave the document as it was, and let the error be seen
            restore(self.graph, before)
            raise
        after = snapshot(self.graph)
        if after != before:
            self.undo_stack.push(SnapshotCommand(self, text, before, after))
            self.refresh()
        return result

    def refresh(self) -> None:
        """Re-run shape inference and tell the views."""
        t0 = time.perf_counter()
        self.inference = engine.infer_shapes(self.graph)
        self.last_inference_ms = (time.perf_counter() - t0) * 1000
        self.changed.emit()

    # Small named edits used by several panels ------------------------------------------------
    def set_param(self, node_id: str, name: str, value: Any) -> Any:
        label = self.graph.node(node_id).label
        return self.edit(f"Set {label}.{name}", lambda g: g.set_param(node_id, name, value))

    def set_label(self, node_id: str, label: str) -> None:
        self.edit(f"Rename to {label}", lambda g: g.set_label(node_id, label))

    def move(self, positions: dict[str, tuple[float, float]], text: str = "Move") -> None:
        def fn(g: Graph):
            for nid, (x, y) in positions.items():
                if nid in g.nodes:
                    g.layout[nid] = (round(float(x), 1), round(float(y), 1))
        self.edit(text, fn)


__all__ = ["Document", "Refused", "Snapshot", "SnapshotCommand", "snapshot", "restore"]
