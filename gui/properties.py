"""The property editor: a form generated from the selected node's param descriptors.

Each descriptor kind gets its widget (a spin box for ``int``, a check box for ``bool``, a drop-down for
``choice``, a text field for numbers, lists and shapes, so no value is rounded or retyped by a widget).
A committed value goes to ``Document.set_param``; the engine's descriptor decides, and a refused value
is shown under the field with the engine's reason while the field returns to the stored value. The
document stays the only source of values: the form re-reads it after every change (undo included).

With nothing selected the form edits the network's name and description (inside an open composite,
the composite's: renaming it renames every instance's reference).

A node that uses another node's weights (``shares``) shows its params read-only, with the owner named
and buttons to go there or to stop sharing; the inside of a built-in block is read-only throughout.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, Callable

from PySide6 import QtCore, QtGui, QtWidgets

from engine.fixes import fixes_for
from engine.spec import INPUT, LOSS, OUTPUT, TARGET

from . import theme as themes
from .document import Document, Refused

INT_LIMIT = 2**31 - 1


# --------------------------------------------------------------------------- text <-> values
def format_value(value: Any, collapse: bool = False) -> str:
    """A param value as the user types it: 5, 3, 5 / same / 1, 28, 28 / 0.001. With ``collapse`` (kernel
    sizes, strides) equal values are written once, as the engine accepts them."""
    if isinstance(value, (list, tuple)):
        if collapse and len(value) > 1 and all(v == value[0] for v in value) \
                and all(isinstance(v, int) for v in value):
            return str(value[0])
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_list(text: str, keep_scalar: bool = True):
    """'5' -> 5, '3, 5' -> [3, 5], '1 x 28 x 28' -> [1, 28, 28], 'T, 64' -> ['T', 64], '' -> []."""
    stripped = text.strip().strip("[]()")
    tokens = [t for t in re.split(r"[,\s]+|(?<=\d)x(?=\s*\d)|\s+x\s+", stripped) if t]
    values = [_token(t) for t in tokens]
    if keep_scalar and len(values) == 1:
        return values[0]
    return values


def _token(t: str):
    t = t.strip().strip("'\"")
    try:
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
        return int(f) if f.is_integer() and "." not in t and "e" not in t.lower() else f
    except ValueError:
        return t


def parse_number(text: str):
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t  # the descriptor says why text is not a number


# --------------------------------------------------------------------------- fields
class _IntSpin(QtWidgets.QSpinBox):
    """A spin box over all whole numbers, showing special values by name ('auto')."""

    def __init__(self, special: dict[int, str], parent=None):
        super().__init__(parent)
        self.special = dict(special)
        self.setRange(-INT_LIMIT, INT_LIMIT)
        self.setKeyboardTracking(False)
        self.setAccelerated(True)

    def textFromValue(self, value: int) -> str:
        return self.special.get(value, str(value))

    def valueFromText(self, text: str) -> int:
        for value, name in self.special.items():
            if text.strip().lower() == name:
                return value
        try:
            return int(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text, pos):
        t = text.strip().lower()
        if any(name.startswith(t) for name in self.special.values()) and t:
            state = (QtGui.QValidator.State.Acceptable if t in self.special.values()
                     else QtGui.QValidator.State.Intermediate)
            return state, text, pos
        return super().validate(text, pos)


class ParamField(QtCore.QObject):
    """One param's editor: ``widget`` shows the stored value; ``committed`` carries a typed one."""

    committed = QtCore.Signal(str, object)  # param name, raw value for the engine to judge

    def __init__(self, desc, parent=None):
        super().__init__(parent)
        self.desc = desc
        kind = getattr(desc, "kind", "any")
        self.kind = kind
        if kind == "int":
            w = _IntSpin(getattr(desc, "special", {}) or {})
            w.valueChanged.connect(lambda v: self.committed.emit(desc.name, v))
        elif kind == "bool":
            w = QtWidgets.QCheckBox()
            w.toggled.connect(lambda v: self.committed.emit(desc.name, bool(v)))
        elif kind == "choice":
            w = QtWidgets.QComboBox()
            w.addItems(list(desc.options))
            w.activated.connect(lambda i: self.committed.emit(desc.name, w.itemText(i)))
        else:
            w = QtWidgets.QLineEdit()
            w.editingFinished.connect(self._line_done)
        w.setObjectName(f"param_{desc.name}")
        allowed = desc.describe_range() if hasattr(desc, "describe_range") else ""
        w.setToolTip(f"{desc.doc}<br><i>{html.escape(allowed)}</i>" if allowed else desc.doc)
        self.widget = w
        self._shown: Any = object()

    def _line_done(self) -> None:
        text = self.widget.text()
        if text == self._format(self._shown):
            return
        if self.kind == "float":
            value = parse_number(text)
        elif self.kind in ("ints", "padding"):
            value = parse_list(text, keep_scalar=True)
        elif self.kind == "shape" or self.kind.endswith("list"):
            value = parse_list(text, keep_scalar=False)
        elif self.kind == "text":
            value = text
        else:
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        self.committed.emit(self.desc.name, value)

    def set_value(self, value: Any) -> None:
        """Show ``value`` without committing it."""
        self._shown = value
        w = self.widget
        blocker = QtCore.QSignalBlocker(w)
        if self.kind == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                w.setValue(value)
        elif self.kind == "bool":
            w.setChecked(bool(value))
        elif self.kind == "choice":
            i = w.findText(str(value))
            if i >= 0:
                w.setCurrentIndex(i)
        else:
            w.setText(self._format(value))
        del blocker

    def _format(self, value: Any) -> str:
        return format_value(value, collapse=self.kind in ("ints", "padding"))


# --------------------------------------------------------------------------- the panel
class PropertyEditor(QtWidgets.QScrollArea):
    """Edits the selected node (or the network when nothing is selected)."""

    node_requested = QtCore.Signal(str)  # 'Go to' a node named here (the owner of shared weights)

    def __init__(self, apply_fix: Callable | None = None, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.doc: Document | None = None
        self.node_id: str | None = None
        self.apply_fix = apply_fix
        self.fields: dict[str, ParamField] = {}
        self.errors: dict[str, QtWidgets.QLabel] = {}
        self._form_key = None
        self._body = QtWidgets.QWidget()
        self.setWidget(self._body)
        self._layout = QtWidgets.QVBoxLayout(self._body)
        self._layout.setContentsMargins(10, 10, 10, 10)
        self._layout.setSpacing(8)

    def set_document(self, doc: Document) -> None:
        if self.doc is not None:
            self.doc.changed.disconnect(self.refresh)
        self.doc = doc
        doc.changed.connect(self.refresh)
        self.node_id = None
        self._form_key = None
        self.refresh()

    def show_selection(self, node_ids: list[str]) -> None:
        self.node_id = node_ids[0] if len(node_ids) == 1 else None
        self._multi = len(node_ids)
        self.refresh()

    # ------------------------------------------------------------------ building
    def refresh(self) -> None:
        if self.doc is None:
            return
        g = self.doc.graph
        if self.node_id is not None and self.node_id not in g.nodes:
            self.node_id = None
        nid = self.node_id
        key = ("node", nid, g.nodes[nid].type, tuple(g.input_port_names(nid))) if nid else ("graph", getattr(self, "_multi", 0))
        if key != self._form_key:
            self._build(key)
        self._fill()

    def _clear(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.fields.clear()
        self.errors.clear()

    def _add(self, widget: QtWidgets.QWidget) -> None:
        self._layout.addWidget(widget)
        widget.show()  # a child added to a visible panel is otherwise shown only on the next event loop

    def _label(self, text: str, role: str | None = None, wrap: bool = True) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        label.setWordWrap(wrap)
        label.setTextFormat(QtCore.Qt.TextFormat.RichText if "<" in text else QtCore.Qt.TextFormat.PlainText)
        if role:
            label.setProperty("role", role)
        return label

    def _build(self, key) -> None:
        self._clear()
        self._form_key = key
        g = self.doc.graph
        if key[0] == "graph":
            self._build_graph(key[1])
            return
        nid = key[1]
        node = g.nodes[nid]
        spec = g.registry.get(node.type)
        head = QtWidgets.QHBoxLayout()
        dot = QtWidgets.QLabel()
        dot.setPixmap(themes.dot_icon(themes.category_color(spec.category) if spec else themes.current().error)
                      .pixmap(16, 16))
        head.addWidget(dot)
        self.heading = self._label("", "heading", wrap=False)
        head.addWidget(self.heading, 1)
        box = QtWidgets.QWidget()
        box.setLayout(head)
        head.setContentsMargins(0, 0, 0, 0)
        self._add(box)
        if spec is not None:
            self._add(self._label(f"{spec.category} · {spec.doc}", "dim"))
        self.share_box = QtWidgets.QFrame()
        self.share_box.setObjectName("share_box")
        self.share_box.setProperty("role", "card")
        lay = QtWidgets.QVBoxLayout(self.share_box)
        lay.setContentsMargins(8, 6, 8, 6)
        self.share_note = self._label("", None)
        self.share_note.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.share_note.setObjectName("share_note")
        lay.addWidget(self.share_note)
        row = QtWidgets.QHBoxLayout()
        self.goto_owner = QtWidgets.QPushButton(themes.icon("link"), "")
        self.goto_owner.setObjectName("goto_owner")
        self.goto_owner.clicked.connect(self._goto_owner)
        self.stop_share = QtWidgets.QPushButton(themes.icon("unlink"), "Stop Sharing")
        self.stop_share.setObjectName("stop_sharing")
        self.stop_share.setToolTip("Give this node its own weights again (its params stay as they are)")
        self.stop_share.clicked.connect(self._stop_sharing)
        row.addWidget(self.goto_owner)
        row.addWidget(self.stop_share)
        row.addStretch(1)
        lay.addLayout(row)
        self._add(self.share_box)
        form = QtWidgets.QFormLayout()
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.label_edit = QtWidgets.QLineEdit()
        self.label_edit.setObjectName("label")
        self.label_edit.setToolTip("The node's name: unique, and the layer's name in generated code")
        self.label_edit.editingFinished.connect(self._label_done)
        form.addRow("label", self.label_edit)
        self.label_error = self._label("", "error")
        self.label_error.hide()
        form.addRow("", self.label_error)
        for desc in (spec.params if spec else ()):
            field = ParamField(desc, self)
            field.committed.connect(self._commit)
            self.fields[desc.name] = field
            name = QtWidgets.QLabel(desc.name)
            name.setToolTip(desc.doc)
            form.addRow(name, field.widget)
            err = self._label("", "error")
            err.hide()
            self.errors[desc.name] = err
            form.addRow("", err)
        holder = QtWidgets.QWidget()
        holder.setLayout(form)
        form.setContentsMargins(0, 4, 0, 4)
        self._add(holder)
        self.info = self._label("", "dim")
        self._add(self.info)
        self.problem_box = QtWidgets.QVBoxLayout()
        self.problem_box.setSpacing(6)
        pholder = QtWidgets.QWidget()
        pholder.setLayout(self.problem_box)
        self.problem_box.setContentsMargins(0, 0, 0, 0)
        self._add(pholder)
        self._layout.addStretch(1)
        self._problem_key = None

    def _build_graph(self, selected: int) -> None:
        scope = self._scope()
        if scope is None:
            heading = "Network"
        elif scope.read_only:
            heading = f"Inside of '{html.escape(scope.instance_label)}' ({html.escape(scope.block_type)})"
        else:
            heading = f"Composite '{html.escape(scope.name)}'"
        self._add(self._label(heading, "heading"))
        if selected > 1:
            self._add(self._label(f"{selected} nodes selected. Select one node to edit its "
                                               "parameters.", "dim"))
        else:
            self._add(self._label("Select a node to edit its parameters.", "dim"))
        form = QtWidgets.QFormLayout()
        self.name_edit = QtWidgets.QLineEdit()
        self.name_edit.setObjectName("graph_name")
        self.name_edit.editingFinished.connect(self._name_done)
        self.desc_edit = QtWidgets.QPlainTextEdit()
        self.desc_edit.setObjectName("graph_description")
        self.desc_edit.setFixedHeight(90)
        self.desc_edit.installEventFilter(self)
        form.addRow("name", self.name_edit)
        self.name_error = self._label("", "error")
        self.name_error.hide()
        form.addRow("", self.name_error)
        form.addRow("description", self.desc_edit)
        if scope is not None:
            self.name_edit.setToolTip("The composite's name: renaming it renames every instance's reference")
            self.name_edit.setReadOnly(scope.read_only)
            self.desc_edit.setReadOnly(scope.read_only)
        holder = QtWidgets.QWidget()
        holder.setLayout(form)
        form.setContentsMargins(0, 4, 0, 4)
        self._add(holder)
        self.info = self._label("", "dim")
        self._add(self.info)
        self._layout.addStretch(1)

    # ------------------------------------------------------------------ filling
    def _fill(self) -> None:
        g, inf = self.doc.graph, self.doc.inference
        if self._form_key[0] == "graph":
            _set_text(self.name_edit, g.name)
            if not self.desc_edit.hasFocus() and self.desc_edit.toPlainText() != g.description:
                self.desc_edit.setPlainText(g.description)
            text = f"{len(g.nodes)} nodes · {len(g.edges)} wires · {inf.total_params:,} parameters"
            scope = self._scope()
            if scope is not None:
                if scope.read_only:
                    text += "\n" + scope.read_only_reason
                else:
                    text += "\nused by " + (", ".join(f"'{u}'" for u in scope.users()) or "no node")
            self.info.setText(text)
            return
        nid = self.node_id
        node = g.nodes[nid]
        spec = g.registry.get(node.type)
        self.heading.setText(f"{node.label}  <span style='font-weight:400; color:{themes.current().dim}'>"
                             f"{html.escape(node.type)}</span>")
        self.heading.setTextFormat(QtCore.Qt.TextFormat.RichText)
        _set_text(self.label_edit, node.label)
        owner = g.nodes.get(node.shares) if node.shares is not None else None
        read_only = bool(getattr(self.doc, "read_only", False))
        self.label_edit.setReadOnly(read_only)
        self._fill_share(node, owner, read_only)
        source = owner if owner is not None else node  # a twin's params are its owner's
        param_problems = {p.param: p.message for p in inf.problems_for(nid) if p.param is not None}
        for name, field in self.fields.items():
            field.widget.setEnabled(owner is None and not read_only)
            field.set_value(source.params.get(name, field.desc.default))
            if name in param_problems:
                self._show_error(name, param_problems[name])
            elif self.errors[name].property("from_doc"):
                self._show_error(name, "")
        info = inf.nodes.get(nid)
        parts = []
        if info is not None and info.outputs:
            parts.append("output " + ", ".join(f"{p} {t}" if len(info.outputs) > 1 else str(t)
                                               for p, t in info.outputs.items()))
        if info is not None and info.params is not None and spec is not None and spec.role not in (INPUT, TARGET, OUTPUT, LOSS):
            parts.append(f"{info.cost.params:,} parameters · {themes.format_count(info.cost.flops)} FLOPs per sample")
        self.info.setText("\n".join(parts))
        self._fill_problems(nid)

    def _fill_share(self, node, owner, read_only: bool) -> None:
        """The note over the params: read-only inside a block, a twin's owner, or an owner's twins."""
        twins = [n.label for n in self.doc.graph.nodes.values() if n.shares == node.id]
        self.goto_owner.setVisible(owner is not None)
        self.stop_share.setVisible(owner is not None and not read_only)
        if read_only:
            text = html.escape(self.doc.read_only_reason)
        elif owner is not None:
            text = (f"Shares weights with <b>'{html.escape(owner.label)}'</b>: it applies that node's weights, "
                    f"so its params are those of '{html.escape(owner.label)}' and are edited there.")
            self.goto_owner.setText("Go to Owner")
            self.goto_owner.setToolTip(f"Select '{owner.label}', whose params these are")
            self.goto_owner.setProperty("node_id", owner.id)
        elif twins:
            text = ("Its weights are also used by " + ", ".join(f"<b>'{html.escape(t)}'</b>" for t in twins)
                    + "; edits here apply to them too.")
        else:
            text = ""
        self.share_note.setText(text)
        self.share_box.setVisible(bool(text))

    def _goto_owner(self) -> None:
        nid = self.goto_owner.property("node_id")
        if nid:
            self.node_requested.emit(nid)

    def _stop_sharing(self) -> None:
        nid = self.node_id
        if nid is None or self.doc.graph.nodes[nid].shares is None:
            return
        try:
            self.doc.edit(f"Stop sharing weights ({self.doc.graph.nodes[nid].label})",
                          lambda g: g.set_shares(nid, None))
        except Refused as exc:
            self.last_refusal = str(exc)

    def _scope(self):
        """The open composite when the panel shows one (it has a ``rename``), else None."""
        return self.doc if hasattr(self.doc, "rename") else None

    def _fill_problems(self, nid: str) -> None:
        inf = self.doc.inference
        problems = inf.problems_for(nid)
        key = tuple(p.message for p in problems)
        if key == self._problem_key:
            return
        self._problem_key = key
        while self.problem_box.count():
            item = self.problem_box.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for p in problems:
            frame = QtWidgets.QFrame()
            frame.setProperty("role", "card")
            lay = QtWidgets.QVBoxLayout(frame)
            lay.setContentsMargins(8, 6, 8, 6)
            lay.addWidget(self._label(p.message, "error" if p.severity == "error" else "warning"))
            for fix in fixes_for(self.doc.graph, p, inf):
                button = QtWidgets.QPushButton(themes.icon("fix", themes.current().accent), fix.title)
                button.setProperty("fix", True)
                button.setToolTip(fix.detail)
                button.clicked.connect(lambda _=False, f=fix: self.apply_fix and self.apply_fix(f))
                lay.addWidget(button)
            self.problem_box.addWidget(frame)
            frame.show()

    def _show_error(self, name: str, message: str, from_doc: bool = True) -> None:
        label = self.errors.get(name)
        if label is None:
            return
        label.setText(message)
        label.setVisible(bool(message))
        label.setProperty("from_doc", from_doc and bool(message))
        w = self.fields[name].widget
        w.setProperty("invalid", bool(message))
        w.style().unpolish(w)
        w.style().polish(w)

    # ------------------------------------------------------------------ commits
    def _commit(self, name: str, value: Any) -> None:
        try:
            self.doc.set_param(self.node_id, name, value)
        except Refused as exc:
            shown = value if not isinstance(value, str) else repr(value)
            self._show_error(name, f"{format_value(shown)} refused: {exc}", from_doc=False)
            node = self.doc.graph.nodes[self.node_id]
            self.fields[name].set_value(node.params.get(name, self.fields[name].desc.default))
            self.last_refusal = str(exc)
            return
        self._show_error(name, "")
        self._fill()

    def _label_done(self) -> None:
        text = self.label_edit.text().strip()
        node = self.doc.graph.nodes.get(self.node_id)
        if node is None or text == node.label:
            return
        try:
            self.doc.set_label(self.node_id, text)
            self.label_error.hide()
        except Refused as exc:
            self.label_error.setText(str(exc))
            self.label_error.show()
            self.label_edit.setText(node.label)

    def _name_done(self) -> None:
        scope = self._scope()
        if scope is not None:
            text = self.name_edit.text().strip()
            if scope.read_only or not text or text == scope.name:
                self.name_edit.setText(scope.graph.name)
                return
            try:
                scope.rename(text)
                self.name_error.hide()
            except Refused as exc:
                self.name_error.setText(str(exc))
                self.name_error.show()
                self.name_edit.setText(scope.name)
            return
        text = self.name_edit.text().strip() or "Untitled"
        if text != self.doc.graph.name:
            self.doc.edit("Rename network", lambda g: setattr(g, "name", text))

    def eventFilter(self, obj, event):
        if obj is getattr(self, "desc_edit", None) and event.type() == QtCore.QEvent.Type.FocusOut:
            text = self.desc_edit.toPlainText()
            if text != self.doc.graph.description and not getattr(self.doc, "read_only", False):
                self.doc.edit("Edit description", lambda g: setattr(g, "description", text))
        return super().eventFilter(obj, event)


def _set_text(edit: QtWidgets.QLineEdit, text: str) -> None:
    if edit.text() != text and not edit.hasFocus():
        edit.setText(text)
