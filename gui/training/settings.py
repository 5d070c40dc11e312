"""The training settings form, generated from the engine's description of the configuration
(``engine.training.config.describe()``): every setting gets the widget of its kind, its help text as a
tooltip, and only the settings that matter for the current choices are shown (Adam's betas for Adam,
the step size for a step schedule, the batch size for mini-batches).

The settings live in the graph (``graph.training``), so they are saved with it. A change is one
undoable document edit that stores only what differs from the defaults; the engine validates it first,
and a refused value is shown with the engine's reason while the field goes back to the stored value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore, QtGui, QtWidgets

from engine.training.config import ConfigError, TrainingConfig, describe

from .runs import flatten

LABELS = {
    "data.dataset": "data set", "data.options": "options", "data.split": "train/dev/test",
    "data.stratify": "stratify", "data.standardize": "standardize inputs",
    "epochs": "epochs", "batching": "batch mode", "batch_size": "batch size",
    "optimizer.name": "optimizer", "optimizer.lr": "learning rate", "optimizer.momentum": "momentum β",
    "optimizer.beta": "RMSprop β", "optimizer.beta1": "β1", "optimizer.beta2": "β2", "optimizer.eps": "ε",
    "schedule.name": "lr schedule", "schedule.step_size": "step every (epochs)", "schedule.gamma": "decay factor",
    "schedule.min_lr": "lowest lr", "schedule.factor": "decay factor", "schedule.patience": "patience (epochs)",
    "regularization.weight_decay": "L2 (weight decay)", "regularization.grad_clip": "gradient clip",
    "augmentation.hflip": "flip left-right", "augmentation.vflip": "flip upside down",
    "augmentation.rotation": "rotation (°)", "augmentation.crop_padding": "random crop padding",
    "augmentation.color_jitter": "colour jitter", "augmentation.noise": "Gaussian noise",
    "early_stopping.enabled": "early stopping", "early_stopping.monitor": "monitor",
    "early_stopping.patience": "patience (epochs)", "early_stopping.min_delta": "min improvement",
    "early_stopping.restore_best": "restore best weights",
    "device": "device", "precision": "precision", "compile": "torch.compile", "channels_last": "channels last",
    "seed": "seed", "mode": "training mode", "log_every": "read metrics every (steps)",
    "eval_batch_size": "evaluation batch", "checkpoint_seconds": "checkpoint every (s)",
}
GROUPS = [
    ("Data", ["data.dataset", "data.options", "data.split", "data.stratify", "data.standardize"]),
    ("Optimization", ["epochs", "batching", "batch_size", "optimizer.name", "optimizer.lr", "optimizer.momentum",
                      "optimizer.beta", "optimizer.beta1", "optimizer.beta2", "optimizer.eps", "schedule.name",
                      "schedule.step_size", "schedule.gamma", "schedule.min_lr", "schedule.factor",
                      "schedule.patience"]),
    ("Regularization", ["regularization.weight_decay", "regularization.grad_clip", "early_stopping.enabled",
                        "early_stopping.monitor", "early_stopping.patience", "early_stopping.min_delta",
                        "early_stopping.restore_best"]),
    ("Augmentation", ["augmentation."]),
    ("Hardware", ["device", "precision", "channels_last", "compile"]),
    ("Advanced", ["mode", "seed", "log_every", "eval_batch_size", "checkpoint_seconds"]),
]
HIDDEN = {"human_error"}  # edited in the doctor, after a run

# Which settings matter, given the others (flat dotted config -> bool).
VISIBLE: dict[str, Callable[[dict], bool]] = {
    "optimizer.momentum": lambda c: c["optimizer.name"] in ("momentum", "nesterov"),
    "optimizer.beta": lambda c: c["optimizer.name"] == "rmsprop",
    "optimizer.beta1": lambda c: c["optimizer.name"] in ("adam", "adamw"),
    "optimizer.beta2": lambda c: c["optimizer.name"] in ("adam", "adamw"),
    "optimizer.eps": lambda c: c["optimizer.name"] in ("adagrad", "rmsprop", "adam", "adamw"),
    "batch_size": lambda c: c["batching"] == "mini-batch",
    "schedule.step_size": lambda c: c["schedule.name"] == "step",
    "schedule.gamma": lambda c: c["schedule.name"] == "step",
    "schedule.min_lr": lambda c: c["schedule.name"] in ("cosine", "plateau"),
    "schedule.factor": lambda c: c["schedule.name"] == "plateau",
    "schedule.patience": lambda c: c["schedule.name"] == "plateau",
    "early_stopping.monitor": lambda c: c["early_stopping.enabled"],
    "early_stopping.patience": lambda c: c["early_stopping.enabled"],
    "early_stopping.min_delta": lambda c: c["early_stopping.enabled"],
    "early_stopping.restore_best": lambda c: c["early_stopping.enabled"],
    "channels_last": lambda c: c["device"] != "cpu",
    "compile": lambda c: c["device"] != "cpu",
}


def minimal(config: TrainingConfig) -> dict:
    """The settings that differ from the defaults, nested as in the file (a diff-friendly .dcnet)."""
    def diff(have: dict, default: dict) -> dict:
        out = {}
        for key, value in have.items():
            base = default.get(key)
            if isinstance(value, dict) and isinstance(base, dict) and key != "options":
                sub = diff(value, base)
                if sub:
                    out[key] = sub
            elif value != base:
                out[key] = value
        return out
    return diff(config.to_dict(), TrainingConfig().to_dict())


def nest(flat: dict[str, Any]) -> dict:
    out: dict = {}
    for path, value in flat.items():
        node = out
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def format_options(options: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in options.items())


def parse_options(text: str) -> dict:
    """'size=32, noise=0.2, target="price"' -> {'size': 32, 'noise': 0.2, 'target': 'price'}."""
    out = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "=" not in part:
            raise ValueError(f"'{part}': write options as name=value, separated by commas")
        key, raw = (s.strip() for s in part.split("=", 1))
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw.strip("'\"")
        out[key] = value
    return out


def format_split(split) -> str:
    return "" if not split else ", ".join(f"{v:g}" for v in split)


def parse_split(text: str):
    text = text.strip().replace("/", ",")
    if not text:
        return None
    try:
        values = [float(v) for v in text.replace(" ", ",").split(",") if v]
    except ValueError:
        raise ValueError(f"'{text}': three fractions, e.g. 0.6, 0.2, 0.2 (empty: chosen from the data size)") \
            from None
    if values and sum(values) > 1.5:  # percentages
        values = [v / 100 for v in values]
    return values


def elide_path(text: str, metrics: QtGui.QFontMetrics, width: int) -> str:
    """A path cut to ``width`` pixels where it must be, keeping its end (the file's name) whole and the
    folders nearest to it: "…/data/train.csv"; a name too long on its own is cut in its middle."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    parts = text.replace("\\", "/").split("/")
    for start in range(1, len(parts)):
        tail = "…/" + "/".join(parts[start:])
        if metrics.horizontalAdvance(tail) <= width:
            return tail
    return metrics.elidedText(parts[-1], QtCore.Qt.TextElideMode.ElideMiddle, width)


class PathEdit(QtWidgets.QLineEdit):
    """The data set combo's text field: a path too long for it shows elided (:func:`elide_path`) while the
    field is not being edited, the whole path in the tooltip; a line edit scrolled to its end showed a
    path cut anywhere ("/hA/bad.npy")."""

    def paintEvent(self, event) -> None:
        text = self.text()
        opt = QtWidgets.QStyleOptionFrame()
        self.initStyleOption(opt)
        room = self.style().subElementRect(QtWidgets.QStyle.SubElement.SE_LineEditContents, opt, self)
        room = room.adjusted(2, 0, -2, 0)
        if self.hasFocus() or self.fontMetrics().horizontalAdvance(text) <= room.width():
            super().paintEvent(event)
            return
        p = QtGui.QPainter(self)
        self.style().drawPrimitive(QtWidgets.QStyle.PrimitiveElement.PE_PanelLineEdit, opt, p, self)
        p.setPen(self.palette().color(QtGui.QPalette.ColorRole.Text))
        p.drawText(room, QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter,
                   elide_path(text, self.fontMetrics(), room.width()))
        p.end()

    def shown_text(self) -> str:
        """The text as painted while the field is not edited (for tests)."""
        opt = QtWidgets.QStyleOptionFrame()
        self.initStyleOption(opt)
        room = self.style().subElementRect(QtWidgets.QStyle.SubElement.SE_LineEditContents, opt, self)
        return elide_path(self.text(), self.fontMetrics(), room.width() - 4)


class DatasetRow(QtWidgets.QWidget):
    """The data set combo with its File… and Folder… buttons beside it where the column is wide enough,
    under it where it is not (the buttons keep their text: in the narrow settings column they were cut
    to "Fo")."""

    COMBO_ROOM = 110  # pixels the combo needs beside the buttons

    def __init__(self, combo: QtWidgets.QComboBox, buttons: list[QtWidgets.QAbstractButton], parent=None):
        super().__init__(parent)
        self.combo, self.buttons = combo, buttons
        self.grid = QtWidgets.QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(3)
        self.grid.setVerticalSpacing(3)
        self.button_row = QtWidgets.QHBoxLayout()
        self.button_row.setSpacing(3)
        for b in buttons:
            self.button_row.addWidget(b)
        self.wide: bool | None = None
        self._arrange(True)

    def _buttons_width(self) -> int:
        return sum(b.sizeHint().width() for b in self.buttons) + 3 * len(self.buttons)

    def _arrange(self, wide: bool) -> None:
        if wide == self.wide:
            return
        self.wide = wide
        self.grid.removeWidget(self.combo)
        self.grid.removeItem(self.button_row)
        self.button_row.setParent(None)
        self.grid.addWidget(self.combo, 0, 0)
        if wide:
            if self.button_row.count() > len(self.buttons):  # (the stretch after the buttons, from below)
                self.button_row.takeAt(self.button_row.count() - 1)
            self.grid.addLayout(self.button_row, 0, 1)
        else:
            if self.button_row.count() == len(self.buttons):
                self.button_row.addStretch(1)
            self.grid.addLayout(self.button_row, 1, 0)
        self.grid.setColumnStretch(0, 1)

    def minimumSizeHint(self) -> QtCore.QSize:
        # (narrow: the buttons under the combo; the row then fits where the buttons do)
        return QtCore.QSize(max(self._buttons_width(), 60), super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange(event.size().width() >= self.COMBO_ROOM + self._buttons_width())


class SettingsForm(QtWidgets.QScrollArea):
    """Edits ``graph.training`` of the current document. ``config()`` is the validated configuration
    (or raises ConfigError); ``problem`` holds the message when the stored settings are not valid."""

    changed = QtCore.Signal()

    def __init__(self, browse: Callable[[bool], str] | None = None, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.doc = None
        self.browse = browse or self._browse
        self.items = {item["path"]: item for item in describe()}
        self.widgets: dict[str, QtWidgets.QWidget] = {}
        self.rows: dict[str, tuple[QtWidgets.QFormLayout, QtWidgets.QWidget]] = {}
        self._loading = False
        self._flat: dict[str, Any] = flatten(TrainingConfig().to_dict())
        self.problem = ""
        self.device_info = None  # engine.device.DeviceInfo once the training process has said

        body = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(body)
        outer.setContentsMargins(8, 6, 8, 8)
        outer.setSpacing(4)
        self.message = QtWidgets.QLabel()
        self.message.setObjectName("settings_message")
        self.message.setWordWrap(True)
        self.message.setProperty("role", "error")
        self.message.hide()
        outer.addWidget(self.message)
        placed = set()
        groups = [(title, [p for p in self.items if any(p == k or (k.endswith(".") and p.startswith(k))
                                                        for k in keys)]) for title, keys in GROUPS]
        for _, paths in groups:
            placed.update(paths)
        rest = [p for p in self.items if p not in placed and p not in HIDDEN]
        groups[-1][1].extend(rest)  # settings added to the engine later appear under Advanced
        for title, paths in groups:
            heading = QtWidgets.QLabel(title)
            heading.setProperty("role", "dim")
            heading.setStyleSheet("font-weight: 600; padding-top: 6px;")
            outer.addWidget(heading)
            form = QtWidgets.QFormLayout()
            form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
            form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setVerticalSpacing(4)
            for path in paths:
                widget = self._make(path)
                self.widgets[path] = widget
                form.addRow(LABELS.get(path, path), widget)
                self.rows[path] = (form, widget)
            outer.addLayout(form)
        self.dataset_note = QtWidgets.QLabel()
        self.dataset_note.setObjectName("dataset_note")
        self.dataset_note.setWordWrap(True)
        # (wrapped to the column, never widening it: a path has no spaces to wrap at)
        self.dataset_note.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                        QtWidgets.QSizePolicy.Policy.Preferred)
        self.dataset_note.setProperty("role", "dim")
        form, _ = self.rows["data.dataset"]
        form.insertRow(1, "", self.dataset_note)
        outer.addStretch(1)
        self.setWidget(body)

    # ------------------------------------------------------------------ widgets
    def _make(self, path: str) -> QtWidgets.QWidget:
        item = self.items[path]
        kind = item["kind"]
        tip = item.get("doc", "")
        if path == "data.dataset":
            w = self._dataset_widget()
        elif kind == "choice":
            w = QtWidgets.QComboBox()
            w.addItems([str(o) for o in item["options"]])
            # (sized to the column, not to the longest choice: the form must fit the settings column)
            w.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            w.setMinimumContentsLength(6)
            w.activated.connect(lambda _=0, p=path: self._commit(p))
        elif kind == "bool":
            w = QtWidgets.QCheckBox()
            w.toggled.connect(lambda _=False, p=path: self._commit(p))
        elif kind == "int":
            w = QtWidgets.QSpinBox()
            w.setRange(int(item.get("min", 0)), int(min(item.get("max", 2**31 - 1), 2**31 - 1)))
            w.setAccelerated(True)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda _=0, p=path: self._commit(p))
        else:  # float, text, dict, ratios: typed as text, checked by the engine
            w = QtWidgets.QLineEdit()
            w.editingFinished.connect(lambda p=path: self._commit(p))
            if kind == "dict":
                w.setPlaceholderText("name=value, …")
            elif kind == "ratios":
                w.setPlaceholderText("automatic (e.g. 0.6, 0.2, 0.2)")
        w.setObjectName(f"setting_{path}")
        w.setToolTip(tip)
        return w

    def _dataset_widget(self) -> QtWidgets.QWidget:
        from engine.training.datasets import BUILTINS

        self.dataset = QtWidgets.QComboBox()
        self.dataset.setObjectName("setting_dataset_combo")
        self.dataset.setEditable(True)
        self.dataset.setLineEdit(PathEdit())
        self.dataset.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.dataset.setMinimumContentsLength(8)
        self.dataset.lineEdit().textChanged.connect(self._dataset_tip)
        self.dataset.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        for name, spec in BUILTINS.items():
            self.dataset.addItem(name)
            self.dataset.setItemData(self.dataset.count() - 1, spec.doc, QtCore.Qt.ItemDataRole.ToolTipRole)
        self.dataset.activated.connect(lambda _=0: self._commit("data.dataset"))
        self.dataset.lineEdit().editingFinished.connect(lambda: self._commit("data.dataset"))
        self.dataset.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        self.data_buttons = []
        for text, folder, tip in (("File…", False, "Your own data: a CSV, .npy/.npz or MNIST IDX file"),
                                  ("Folder…", True, "A folder of image folders (one per class), MNIST IDX files "
                                                    "or CIFAR-10 batches")):
            button = QtWidgets.QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.setObjectName("data_folder_button" if folder else "data_file_button")
            button.clicked.connect(lambda _=False, f=folder: self._pick_data(f))
            self.data_buttons.append(button)
        return DatasetRow(self.dataset, self.data_buttons)

    def _dataset_tip(self, text: str) -> None:
        """The combo's tooltip: the whole path of a file or folder (shown elided), else the setting's help."""
        from engine.training.datasets import BUILTINS

        doc = self.items["data.dataset"].get("doc", "")
        self.dataset.setToolTip(doc if not text or text in BUILTINS else f"{text}\n\n{doc}")

    def _browse(self, folder: bool) -> str:
        if folder:
            return QtWidgets.QFileDialog.getExistingDirectory(self, "Data folder — DeepCanvas")
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Data file — DeepCanvas", "", "Data (*.csv *.npy *.npz *ubyte *ubyte.gz);;All files (*)")
        return path

    def _pick_data(self, folder: bool) -> None:
        path = self.browse(folder)
        if path:
            self.dataset.setEditText(path)
            self._commit("data.dataset")

    # ------------------------------------------------------------------ document
    def set_document(self, doc) -> None:
        if self.doc is not None:
            self.doc.changed.disconnect(self.load)
        self.doc = doc
        doc.changed.connect(self.load)
        self.load()

    def config(self) -> TrainingConfig:
        """The document's settings, validated (raises ConfigError naming each field)."""
        return TrainingConfig.from_graph(self.doc.graph)

    def load(self) -> None:
        """Show the document's settings (after every change, undo included)."""
        try:
            cfg = self.config()
            self.problem = ""
        except ConfigError as exc:
            cfg = None
            self.problem = "The saved training settings have problems:\n" + "\n".join(exc.problems)
        if cfg is not None:
            self._flat = flatten(cfg.to_dict())
        self._loading = True
        try:
            for path, w in self.widgets.items():
                self._show_value(path, w, self._flat.get(path))
        finally:
            self._loading = False
        self._update_visibility()
        self._show_message(self.problem)
        self._describe_dataset()
        self._check_device()

    def set_device(self, info) -> None:
        """What this machine trains on (engine.device.DeviceInfo), found after start-up."""
        self.device_info = info
        self._check_device()

    def _check_device(self) -> None:
        """A GPU asked for that this machine does not have is said now (the run would stop at its start)."""
        want, have = self._flat.get("device"), getattr(self.device_info, "kind", None)
        w = self.widgets.get("device")
        if w is None:
            return
        bad = have is not None and want in ("cuda", "mps") and want != have
        text = (f"device: this machine has no {'CUDA' if want == 'cuda' else 'Apple (MPS)'} GPU, so a run would stop "
                f"at its start; choose auto (it trains on {have} here)") if bad else ""
        if bool(w.property("invalid")) != bad or w.toolTip() != text:
            w.setProperty("invalid", bad)
            w.setToolTip(text)
            w.style().unpolish(w)
            w.style().polish(w)
        if not self.problem:
            self._show_message(text)

    def _show_value(self, path: str, w, value) -> None:
        kind = self.items[path]["kind"]
        if path == "data.dataset":
            self.dataset.setEditText(str(value))
        elif kind == "choice":
            w.setCurrentText(str(value))
        elif kind == "bool":
            w.setChecked(bool(value))
        elif kind == "int":
            w.setValue(int(value))
        elif kind == "dict":
            w.setText(format_options(value or {}))
        elif kind == "ratios":
            w.setText(format_split(value))
        else:
            w.setText("" if value is None else (f"{value:g}" if isinstance(value, float) else str(value)))
        w.setProperty("invalid", False)
        w.style().unpolish(w)
        w.style().polish(w)

    def _read(self, path: str):
        w = self.widgets[path]
        kind = self.items[path]["kind"]
        if path == "data.dataset":
            return self.dataset.currentText().strip()
        if kind == "choice":
            return w.currentText()
        if kind == "bool":
            return w.isChecked()
        if kind == "int":
            return w.value()
        if kind == "dict":
            return parse_options(w.text())
        if kind == "ratios":
            return parse_split(w.text())
        text = w.text().strip()
        if kind == "float":
            if not text and self.items[path].get("default") is None:
                return None
            try:
                return float(text)
            except ValueError:
                return text  # the engine names the field and says what it expects
        return text

    def _commit(self, path: str) -> None:
        if self._loading or self.doc is None:
            return
        try:
            value = self._read(path)
        except ValueError as exc:
            self._refuse(path, str(exc))
            return
        if self._flat.get(path) == value:
            self._show_value(path, self.widgets[path], value)  # normalise the text (1e-3 -> 0.001)
            return
        flat = dict(self._flat)
        flat[path] = value
        if path == "data.dataset" and value != self._flat.get(path):
            flat["data.options"] = {}  # options belong to a data set
        try:
            cfg = TrainingConfig.from_dict(nest(flat))
        except ConfigError as exc:
            self._refuse(path, "\n".join(exc.problems))
            return
        stored = minimal(cfg)
        from ..document import Refused
        try:
            self.doc.edit(f"Training: {LABELS.get(path, path)}", lambda g: setattr(g, "training", stored))
        except Refused as exc:
            self._refuse(path, str(exc))
            return
        self.changed.emit()

    def set_value(self, path: str, value) -> None:
        """Set one setting as if typed (tests, the doctor's human-level error)."""
        if path in self.widgets:
            self._show_value(path, self.widgets[path], value)
            self._commit(path)
            return
        flat = dict(self._flat)
        flat[path] = value
        cfg = TrainingConfig.from_dict(nest(flat))
        stored = minimal(cfg)
        self.doc.edit(f"Training: {LABELS.get(path, path)}", lambda g: setattr(g, "training", stored))

    def _refuse(self, path: str, reason: str) -> None:
        w = self.widgets[path]
        self._loading = True
        try:
            self._show_value(path, w, self._flat.get(path))
        finally:
            self._loading = False
        self._show_message(f"{LABELS.get(path, path)}: not changed. {reason}")
        w.setProperty("invalid", True)
        w.style().unpolish(w)
        w.style().polish(w)

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _update_visibility(self) -> None:
        for path, rule in VISIBLE.items():
            if path not in self.rows:
                continue
            form, w = self.rows[path]
            try:
                show = bool(rule(self._flat))
            except KeyError:
                show = True
            form.setRowVisible(w, show)

    def _describe_dataset(self) -> None:
        from engine.training.datasets import BUILTINS

        name = self._flat.get("data.dataset", "")
        spec = BUILTINS.get(name)
        options = self.widgets["data.options"]
        role = "dim"
        if spec is not None:
            self.dataset_note.setText(spec.doc)
            options.setPlaceholderText(format_options(spec.options) or "no options")
            options.setToolTip("\n".join(f"{k}: {v}" for k, v in spec.option_docs.items()) or "no options")
        else:
            text = "your data: " + str(name).replace("/", "/\u200b")  # (wraps at a /)
            if name and not Path(str(name)).expanduser().exists():  # said now, not only when Train is pressed
                if "/" not in str(name) and "\\" not in str(name) and "." not in str(name):  # a mistyped name
                    text = (f"'{name}' is not a built-in data set ({', '.join(BUILTINS)}) nor a file or folder "
                            "here")
                else:
                    text += " \u2014 no such file or folder (relative paths start from " + str(Path.cwd()) + ")"
                role = "warning"
            self.dataset_note.setText(text)
            options.setPlaceholderText("e.g. target=price (CSV), size=32 (image folder)")
        if self.dataset_note.property("role") != role:
            self.dataset_note.setProperty("role", role)
            self.dataset_note.style().unpolish(self.dataset_note)
            self.dataset_note.style().polish(self.dataset_note)
