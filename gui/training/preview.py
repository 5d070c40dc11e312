"""Live preview: the output of the selected node on a real example of the chosen data set: feature maps as
an image grid for convolutions, a histogram of the values for dense layers, a heat map for sequences.

It refreshes when the selection, the graph (after any edit, debounced) or the weights change: the
latest run's weights when they belong to this network (after an edit, the weights of the layers that
still match), else the graph's seeded initial weights. The work (compile, load the example, run the
graph node by node with ``engine.inspect``) happens in a background thread; only the newest request is
computed. While a run trains, the refreshes as the weights change are computed by the run itself
between epochs, in the training process (``engine.inspect.trainer_preview``, at most every two seconds,
only while this panel is on screen): PyTorch kernels run here beside it would take its cores.
"""

from __future__ import annotations

import functools
import threading
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as themes
from . import images
from .results import shown_label

DEBOUNCE_MS = 250


@functools.lru_cache(maxsize=1)
def _viridis() -> np.ndarray:
    return pg.colormap.get("viridis").getLookupTable(nPts=256)


@dataclass
class PreviewRequest:
    graph: Any
    node: str
    index: int
    weights: dict | None
    weights_note: str
    input_norm: dict | None
    serial: int


@dataclass
class PreviewResult:
    serial: int
    node: str
    preview: Any = None  # engine.inspect.Preview
    sample: Any = None  # the example fed to the data Input (for the thumbnail)
    where: str = ""  # which example, which weights
    error: str = ""


def compute(req: PreviewRequest, cache: dict) -> PreviewResult:
    """The preview of one node (runs in the worker thread; Qt-free)."""
    import torch

    import engine
    from engine.compiler import build
    from engine.inspect import NodeRunner, load_matching, preview, sample_batch
    from engine.spec import INPUT, LOSS, OUTPUT, TARGET
    from engine.training.config import ConfigError, TrainingConfig
    from engine.training.data import DataError

    g = req.graph
    if req.node not in g.nodes:
        return PreviewResult(req.serial, req.node, error="Select a node to see its output.")
    inf = engine.infer_shapes(g)
    if not inf.ok:
        return PreviewResult(req.serial, req.node, error="The network has errors; fix them to see a preview "
                                                         "(see the Problems panel).")
    try:
        cfg = TrainingConfig.from_graph(g)
    except ConfigError as exc:
        return PreviewResult(req.serial, req.node, error=str(exc))
    node = g.nodes[req.node]
    role = g.registry[node.type].role
    target = req.node
    if role == OUTPUT:
        target = inf.nodes[req.node].sources["in"][0]
    if role == TARGET:
        return PreviewResult(req.serial, req.node, error=f"'{node.label}' holds the labels; select a layer.")
    key = (engine.dumps(g), id(req.weights))
    compiled = cache.get(key)
    note = req.weights_note
    if compiled is None:
        cache.clear()
        compiled = build(g, seed=cfg.seed)
        if req.weights:
            got, total = load_matching(compiled.model, req.weights)
            if got < total:
                note = f"{note} for {got} of {total} tensors (the rest: initial weights)" if got else \
                    f"initial weights (seed {cfg.seed}); the trained ones no longer fit this network"
        compiled.model.eval()
        cache[key] = compiled
        cache["note"] = note
    note = cache.get("note", note)
    try:
        batch = sample_batch(compiled, cfg, count=req.index + 1, split="dev", input_norm=req.input_norm)
    except DataError as exc:
        return PreviewResult(req.serial, req.node, error=f"The data set cannot be used: {exc}")
    ids = [nid for nid, _ in compiled.plan.inputs]
    data_pos = ids.index(batch.data_input) if batch.data_input in ids else 0
    index = min(req.index, len(batch.inputs[0]) - 1) if batch.inputs else 0
    sample = batch.inputs[data_pos][index] if batch.inputs else None
    ds_index = int(batch.indices[index]) if batch.indices is not None and len(batch.indices) > index else index
    truth = ""
    if batch.dataset is not None and batch.dataset.classes and batch.dataset.y.ndim == 1:
        truth = f" (label {shown_label(batch.dataset.classes[int(batch.dataset.y[ds_index])])})"
    where = f"{batch.dataset.name if batch.dataset else 'data'}, dev example {req.index + 1}{truth} · {note}"
    if batch.notes:
        where += " · " + "; ".join(batch.notes)
    if role == INPUT:
        pos = [nid for nid, _ in compiled.plan.inputs].index(req.node)
        values = {req.node: {"out": batch.inputs[pos]}}
    elif role == LOSS:
        if not batch.targets:
            return PreviewResult(req.serial, req.node, error=f"'{node.label}' needs targets this data set does not "
                                                             "give for this network.")
        with torch.no_grad():
            values = NodeRunner(compiled).run(batch.inputs, batch.targets, upto=target, losses=True)
        where += " · the loss of this batch of examples"
    else:
        with torch.no_grad():
            values = NodeRunner(compiled).run(batch.inputs, None, upto=target, losses=False)
    pv = preview(compiled, values, target, index=index)
    return PreviewResult(req.serial, req.node, pv, sample, where)


class _Worker(QtCore.QObject):
    """Computes requests in the shared compute thread (``gui.training.compute``); a request made while
    one is computed or waiting replaces the waiting one."""

    ready = QtCore.Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: PreviewRequest | None = None
        self._busy = False
        self._cache: dict = {}

    def submit(self, req: PreviewRequest) -> None:
        with self._lock:
            self._pending = req
            if self._busy:
                return
            self._busy = True
        from .compute import submit
        submit(self._loop)

    @property
    def busy(self) -> bool:
        return self._busy

    def _loop(self) -> None:
        while True:
            with self._lock:
                req, self._pending = self._pending, None
                if req is None:
                    self._busy = False
                    return
            try:
                result = compute(req, self._cache)
            except Exception as exc:  # shown in the panel; the app goes on
                traceback.print_exc()
                result = PreviewResult(req.serial, req.node, error=f"No preview: {type(exc).__name__}: {exc}")
            self.ready.emit(result)


class PreviewPanel(QtWidgets.QWidget):
    """The Preview dock's content."""

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.doc = None
        self.node: str | None = None
        self.serial = 0
        self.result: PreviewResult | None = None
        self.worker = _Worker(self)
        self.worker.ready.connect(self._show)
        self._timer = QtCore.QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)

        self.title = QtWidgets.QLabel("Select a node to see its output on a real example.")
        self.title.setObjectName("preview_title")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: 600;")
        self.where = QtWidgets.QLabel()
        self.where.setObjectName("preview_where")
        self.where.setWordWrap(True)
        self.where.setProperty("role", "dim")
        self.example = QtWidgets.QSpinBox()
        self.example.setObjectName("preview_example")
        self.example.setRange(1, 64)
        self.example.setPrefix("example ")
        self.example.valueChanged.connect(lambda _: self.schedule(0))
        self.thumb = QtWidgets.QLabel()
        self.thumb.setFixedSize(56, 56)
        self.thumb.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("preview_view")
        self.view.setMinimumHeight(100)  # (the dock may be short: the view gives way, not the text)
        self.stats = QtWidgets.QLabel()
        self.stats.setObjectName("preview_stats")
        self.stats.setWordWrap(True)
        self.stats.setProperty("role", "dim")
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.thumb)
        col = QtWidgets.QVBoxLayout()
        col.addWidget(self.title)
        col.addWidget(self.example)
        top.addLayout(col, 1)
        body = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(body)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(top)
        layout.addWidget(self.where)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.stats)
        # The panel scrolls where the dock is lower than its content (the example, the view's 100 pixels,
        # the figures): its own minimum was that whole height, about 240 pixels, and it counted even while
        # the dock sat behind the Pre-flight tab, in the right-hand column, so the window's bottom dock
        # (Training) could not be made tall enough for its plots in a 1280x720 window.
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setObjectName("preview_scroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setMinimumHeight(body.minimumSizeHint().height())  # (until let_shrink: the default layout)
        self.scroll.setWidget(body)
        self.scroll.viewport().setAutoFillBackground(False)
        body.setAutoFillBackground(False)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.plot = None
        self.image = None
        self.bars = None
        self._drawn = None  # (node, kind, data shape) of what the view shows
        self.shown = False  # the dock is on screen (a tabbed-away dock stays "visible" to Qt)
        self.apply_theme()
        controller.updated.connect(self._run_updated)
        controller.started.connect(lambda run: self._sync_want())
        controller.finished.connect(lambda run: self.schedule())

    def let_shrink(self, height: int) -> None:
        """The panel may be as low as ``height`` (it scrolls below its content's height)."""
        self.scroll.setMinimumHeight(height)

    # ------------------------------------------------------------------ inputs
    def set_document(self, doc) -> None:
        if self.doc is not None:
            try:
                self.doc.changed.disconnect(self._doc_changed)
            except (RuntimeError, TypeError):
                pass
        self.doc = doc
        doc.changed.connect(self._doc_changed)
        self.node = None
        self._clear("Select a node to see its output on a real example.")

    def show_selection(self, ids: list[str]) -> None:
        nid = ids[0] if len(ids) == 1 else None
        if nid == self.node:
            return
        self.node = nid
        self.schedule(0)

    def _doc_changed(self) -> None:
        if self.node is not None and self.node not in self.doc.graph.nodes:
            self.node = None
        self.schedule()

    def _run_updated(self, run, changes) -> None:
        if "report" in changes and run.weights is not None:
            self.schedule()  # the final weights
        if "preview" in changes and run.preview is not None and self.shown:
            node, index, epoch, pv, sample, error = run.preview
            if node != self.node or index != self.example.value() - 1:
                return
            dataset = run.info.dataset.split(":")[0] if run.info is not None else "data"
            where = f"{dataset}, dev example {index + 1} · weights of run {run.number} at epoch {epoch} (live)"
            self.serial += 1
            self._show(PreviewResult(self.serial, node, pv, sample, where, f"No preview: {error}" if error else ""))

    def schedule(self, delay: int = DEBOUNCE_MS) -> None:
        self._timer.start(delay)

    def set_shown(self, shown: bool) -> None:
        """The dock came on screen or left it (QDockWidget.visibilityChanged)."""
        self.shown = shown
        self._sync_want()
        if shown:
            self.schedule(0)

    def _sync_want(self) -> None:
        wanted = self.shown and self.node is not None
        self.controller.want_preview = (self.node, self.example.value() - 1) if wanted else None

    def _weights(self):
        """The newest weights of this network from the runs (exact for the same network; partial else)."""
        for run in reversed(self.controller.runs):
            if run.weights is not None:
                when = "after epoch" if run.done else "at epoch"
                return run.weights, f"weights of run {run.number} {when} {run.weights_epoch}", run.input_norm
        return None, "initial weights (seeded)", None

    def refresh(self) -> None:
        self._sync_want()
        if self.doc is None or self.node is None or not self.shown:
            if self.node is None:
                self._clear("Select a node to see its output on a real example.")
            return
        label = self.doc.graph.nodes[self.node].label
        run = self.controller.current
        if self.controller.running and run is not None:
            # The run computes the preview itself between epochs (kernels here would take its cores).
            from engine.training.trainer import network_hash
            if run.network and network_hash(self.doc.graph) == run.network:
                self.title.setText(f"{label}: shown at the end of the next epoch (live, from run {run.number})")
            else:
                self.title.setText(f"{label}: the preview follows when run {run.number} ends (the network "
                                   "changed since it started)")
            return
        from .warmup import ensure_imported
        ensure_imported(say=self.title.setText)  # before the thread starts (see warmup)
        weights, note, norm = self._weights()
        self.serial += 1
        req = PreviewRequest(self.doc.graph.copy(), self.node, self.example.value() - 1, weights, note, norm,
                             self.serial)
        self.title.setText(f"{label}: computing…")
        self.worker.submit(req)

    # ------------------------------------------------------------------ output
    def apply_theme(self) -> None:
        self.view.setBackground(QtGui.QColor(themes.current().base))
        self._drawn = None  # the next refresh draws its items anew, in the theme's colours

    def changeEvent(self, event) -> None:
        if event.type() == QtCore.QEvent.Type.PaletteChange:
            self.apply_theme()
        super().changeEvent(event)

    def _clear(self, text: str) -> None:
        self.title.setText(text)
        self.where.setText("")
        self.stats.setText("")
        self.thumb.clear()
        self.view.clear()
        self.plot = self.image = self.bars = None
        self._drawn = None

    def _show(self, result: PreviewResult) -> None:
        if result.serial != self.serial:
            return  # an older request; a newer one is on its way
        self.result = result
        if result.error:
            self._clear(result.error)
            return
        pv = result.preview
        graph = self.doc.graph
        label = graph.nodes[result.node].label if result.node in graph.nodes else result.node
        node_type = graph.nodes[result.node].type if result.node in graph.nodes else ""
        shape = "(" + ", ".join(str(d) for d in pv.shape) + ")"
        self.title.setText(f"{label} · {node_type} · output {shape}")
        self.where.setText(result.where)
        pix = images.pixmap(result.sample, 56) if result.sample is not None else None
        if pix is not None:
            self.thumb.setPixmap(pix)
        else:
            self.thumb.setText(images.describe(result.sample) if result.sample is not None else "")
        s = pv.stats
        t = themes.current()
        # A refresh of the same node shown the same way (the live preview as the weights change) updates
        # the items on screen: building the plot or the image's view box anew took 10-25 ms of the UI
        # thread at each refresh.
        same = self._drawn == (result.node, pv.kind, pv.data.shape)
        if not same:
            self.view.clear()
            self.plot = self.image = self.bars = None
        if pv.kind in ("maps", "sequence"):
            from engine.inspect import tile
            data = tile(pv.data) if pv.kind == "maps" else pv.data.T
            if self.image is None:
                box = self.view.addViewBox(lockAspect=pv.kind == "maps", invertY=True, enableMouse=True)
                box.setBackgroundColor(QtGui.QColor(t.base))
                self.image = pg.ImageItem(axisOrder="row-major")
                self.image.setLookupTable(_viridis())
                box.addItem(self.image)
            finite = np.isfinite(data)
            lo = float(data[finite].min()) if finite.any() else 0.0
            hi = float(data[finite].max()) if finite.any() else 1.0
            self.image.setImage(np.where(finite, data, lo), levels=(lo, hi if hi > lo else lo + 1))
            if not same:
                self.image.getViewBox().autoRange(padding=0.02)
            shown = len(pv.data) if pv.kind == "maps" else 0
            what = (f"{shown} of {pv.channels} feature maps, each scaled to its own range" if pv.kind == "maps"
                    else "values over time (x) and features (y)")
        elif pv.kind in ("values", "ids", "scalar"):
            from engine.inspect import histogram
            counts, edges = histogram(pv.data.astype(np.float64))
            if self.plot is None:
                self.plot = self.view.addPlot()
                self.plot.showGrid(x=True, y=True, alpha=0.15)
                self.plot.setLabel("bottom", "value")
                self.plot.setLabel("left", "count")
                for name in ("left", "bottom"):
                    self.plot.getAxis(name).setTextPen(pg.mkPen(t.dim))
                    self.plot.getAxis(name).setPen(pg.mkPen(t.border))
            if self.bars is not None and len(counts):
                self.bars.setOpts(x0=edges[:-1], x1=edges[1:], height=counts)
            elif len(counts):
                self.bars = pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts,
                                            brush=QtGui.QColor(t.accent), pen=pg.mkPen(QtGui.QColor(t.base)))
                self.plot.addItem(self.bars)
            elif self.bars is not None:
                self.plot.removeItem(self.bars)
                self.bars = None
            what = f"histogram of the {pv.data.size:,} values"
        else:
            what = ""
        parts = [what]
        if "mean" in s:
            parts.append(f"mean {s['mean']:.3g} · std {s['std']:.3g} · min {s['min']:.3g} · max {s['max']:.3g}")
            if s.get("zeros", 0) > 0:
                parts.append(f"{s['zeros']:.0%} zeros")
            if s.get("nonfinite"):
                parts.append(f"<span style='color:{t.error}'>{s['nonfinite']} NaN/inf</span>")
        self.stats.setText(" · ".join(p for p in parts if p))
        self._drawn = (result.node, pv.kind, pv.data.shape) if self.image is not None or self.plot is not None else None
