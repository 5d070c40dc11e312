"""A composite's inside, shown and edited like a document of its own (issue #6).

A :class:`CompositeScope` stands for the inside of one composite node as the canvas and the property
editor see a :class:`~gui.document.Document`: it has a ``graph``, an ``inference``, a ``changed`` signal,
``edit`` and the same small named edits. It owns no state of its own:

- a user composite's inside is ``graph.composites[name]`` of the open file, so every edit goes through
  the main document's ``edit`` (one undo history, one file) and every instance of the definition follows
  it; the wires of the instances are kept in step (``engine.composites.sync_instances``: a renamed
  Input or Output keeps its wires, a removed one's wires go, in the same undoable edit);
- a built-in block's inside (ResidualBlock, LSTMCell, ...) is generated from the block's params, so it
  is read-only; the way to edit it is to expand the block.

Shapes inside are those that arrive at the instance the scope was opened from: the parent's inference
already holds the inside's inference for that instance (``NodeInfo.sub``); when the inside has errors
(so the engine kept no ``sub``) it is inferred here from the tensors arriving at the instance.
"""

from __future__ import annotations

from PySide6 import QtCore

import engine
from engine import composites

from . import autolayout
from .document import Document, Refused


class CompositeScope(QtCore.QObject):
    """The inside of the composite node ``instance_id`` of ``parent`` (the main document or another scope)."""

    changed = QtCore.Signal()
    file_changed = QtCore.Signal()

    def __init__(self, root: Document, parent, instance_id: str):
        super().__init__()
        node = parent.graph.node(instance_id)
        self.root, self.parent_doc, self.instance_id = root, parent, instance_id
        self.block_type = node.type
        self.builtin = node.type != "Composite"
        self.name = node.type if self.builtin else str(node.params.get("definition", ""))
        self.instance_label = node.label
        self.arriving_from: str | None = None  # the instance whose arriving tensors the shapes show
        self.dropped: list = []  # wires of instances removed by the last edit (their port went away)
        self.alive = True
        self.graph = None
        self.inference = None
        if not self._compute():
            what = f"the composite '{self.name}'" if not self.builtin else f"the inside of '{node.label}'"
            raise Refused(f"{what} cannot be opened: this file does not define it")
        if not self.builtin:
            autolayout.place_missing(self.graph)  # as a document does on opening
            self._compute()
        parent.changed.connect(self.refresh)

    # ------------------------------------------------------------------ what the views read
    @property
    def undo_stack(self):
        return self.root.undo_stack

    @property
    def read_only(self) -> bool:
        return self.builtin

    @property
    def read_only_reason(self) -> str:
        if not self.builtin:
            return ""
        return (f"The inside of '{self.instance_label}' is generated from its params ({self.block_type}), so it "
                "is read-only here. Expand the block to edit its layers.")

    @property
    def title(self) -> str:
        """The breadcrumb text."""
        return f"{self.instance_label} ({self.block_type})" if self.builtin else self.name

    def users(self) -> list[str]:
        """Labels of every node that instantiates this definition (the top graph's first)."""
        if self.builtin:
            return [self.instance_label]
        return [g.nodes[nid].label for g, nid in composites.instances(self.root.graph, self.name)]

    # ------------------------------------------------------------------ keeping up with the document
    def _compute(self) -> bool:
        pg = self.parent_doc.graph
        inst = pg.nodes.get(self.instance_id)
        if self.builtin:
            if inst is None or inst.type != self.block_type:
                return False
            sub = pg.definition(self.instance_id)
            if sub is None:
                return False
            self.instance_label = inst.label
        else:
            defs = self.root.graph.composites
            if self.name not in defs and inst is not None and inst.type == "Composite" \
                    and inst.params.get("definition") in defs:
                self.name = inst.params["definition"]  # renamed (or a rename undone): follow the instance
            sub = defs.get(self.name)
            if sub is None:
                return False
            if inst is None or inst.type != "Composite" or inst.params.get("definition") != self.name:
                others = [nid for nid, n in pg.nodes.items()
                          if n.type == "Composite" and n.params.get("definition") == self.name]
                inst = pg.nodes[others[0]] if others else None
                if inst is not None:
                    self.instance_id = inst.id
            if inst is not None:
                self.instance_label = inst.label
        info = self.parent_doc.inference.nodes.get(inst.id) if inst is not None else None
        if info is not None and info.sub is not None:
            inference = info.sub
            if self.builtin:
                sub = info.sub.graph  # the very graph the engine inferred
        else:
            by_label = {n.label: n.id for n in sub.nodes.values() if n.type == "Input"}
            arriving = {by_label[p]: t for p, t in (info.inputs.items() if info is not None else ())
                        if p in by_label}
            inference = engine.infer_shapes(sub, arriving or None)
        self.arriving_from = inst.label if info is not None and info.inputs else None
        self.graph, self.inference = sub, inference
        return True

    def refresh(self) -> None:
        if not self.alive:
            return
        if not getattr(self.parent_doc, "alive", True) or not self._compute():
            self.alive = False  # the viewer goes back to a scope that still exists
        self.changed.emit()

    def detach(self) -> None:
        """Stop following the document (the scope was closed)."""
        if self.alive:
            self.alive = False
            try:
                self.parent_doc.changed.disconnect(self.refresh)
            except (RuntimeError, TypeError):
                pass

    # ------------------------------------------------------------------ editing
    def edit(self, text: str, fn):
        """Run ``fn(inside)`` as one undoable edit of the main document; instances follow."""
        if self.read_only:
            raise Refused(self.read_only_reason)
        name = self.name

        def whole(g):
            sub = g.composites.get(name)
            if sub is None:
                raise Refused(f"the composite '{name}' no longer exists")
            before = composites.port_labels(sub)
            result = fn(sub)
            self.dropped = composites.sync_instances(g, name, before)
            return result
        self.dropped = []
        return self.root.edit(f"{text} (in {name})", whole)

    def rename(self, new: str) -> None:
        """Rename the definition; every instance follows."""
        if self.read_only:
            raise Refused(self.read_only_reason)
        old = self.name
        self.root.edit(f"Rename composite {old} to {new}", lambda g: composites.rename_definition(g, old, new))

    def set_description(self, text: str) -> None:
        self.edit("Edit description", lambda g: setattr(g, "description", text))

    # The named edits of a document, run through this scope's ``edit``.
    set_param = Document.set_param
    set_label = Document.set_label
    move = Document.move


__all__ = ["CompositeScope"]
