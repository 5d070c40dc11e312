"""Export a graph, with its weights, to an ONNX file that is proven to compute what the PyTorch model
computes.

    report = export_graph(graph, "lenet.onnx")                 # random (seeded) or the graph's own weights
    report = export_graph(graph, "lenet.onnx", weights="ckpt.pt", batch=1, opset=17)
    print(report.text())

    deepcanvas export lenet.dcnet --onnx lenet.onnx [--weights ckpt.pt] [--opset N] [--batch dynamic|N]
    deepcanvas export lenet.dcnet --weights runs/lenet/best.pt --py lenet.py    # PyTorch source for them

Every export is verified before it is called a success, and nothing is written until it is:

1. the model is exported in eval mode (Dropout off, BatchNorm on its running statistics), input and output
   names from the graph's Input and Output nodes, the batch axis (and every named axis such as ``T``)
   dynamic unless ``batch`` fixes it;
2. the file is tidied (``engine.onnx_tidy``) and carries the graph's name, description and the app
   version as metadata;
3. ``onnx.checker`` (full check) passes, and onnxruntime, run on random inputs at two batch sizes (each
   Input's dtype and shape respected, named axes at two sizes too), reproduces the PyTorch outputs within
   ``tolerance`` (1e-4 for float32); the report gives the max absolute difference per output;
4. only then the file is written, atomically. A failure raises ``ExportError`` naming the node whose
   operation could not be exported and why; no file, partial or otherwise, is left.

Inputs standardized in training
-------------------------------
A run with ``data.standardize`` trains on ``(x - mean) / std`` with the training set's statistics, and its
checkpoint carries them (``input_norm``). Its weights are meaningless on raw inputs, and a user of the file
has raw inputs, so the exported model takes those: the file computes ``(x - mean) / std`` before the
network (a wrapper module holds the mean and std; they become two constants and a Sub and a Div in the
graph). The verification feeds raw inputs (drawn around the training data: ``mean + std * noise``) to
onnxruntime and to the same standardize-then-network pipeline in PyTorch; the metadata
(``deepcanvas.input_standardization``) and the report say so. ``standardize=False`` (``--no-standardize``)
exports the network alone, for a caller that standardizes itself; the report and the metadata then say that
the file expects standardized inputs and hold the statistics to do it with. Weights without ``input_norm``
export exactly as before. ``--py`` writes the PyTorch source for the same weights, standardizing the same
way (``engine.codegen``).

Which exporter, and why
-----------------------
torch has two ONNX exporters. We use the torch.export-based one (``dynamo=True``, needs onnxscript) by
default: it is the one PyTorch develops (the TorchScript one has been deprecated since 2.9 and warns that
it will be removed), it refuses a model that would silently bake a run-time size into the file (tracing
would record batch 3 as a constant and the file would fail on batch 4), it emits native ONNX LSTM/GRU,
and every node it writes carries the source line it came from, which is how a failure names the node.
Its lowest opset is 18, so for ``--opset`` below 18 (older runtimes) we use the TorchScript exporter, which
reaches down to opset 9; ``exporter="legacy"`` asks for it explicitly. Both run on torch 2.11 to 2.13.

We switch off the exporters' own graph optimisation: it folds BatchNorm into the preceding convolution,
after which the file no longer has the graph's layers (a re-import would have other layers and parameter
counts, and BatchNorm statistics could not be fine-tuned). Runtimes fold BatchNorm themselves when they
load the file (onnxruntime does at its basic level), so serving speed is the same. ``engine.onnx_tidy``
does the harmless rest of that optimisation.

Graphs with several networks
----------------------------
``export_parts(graph)`` is the one place that decides which networks a graph holds (a GAN's generator and
discriminator, a VAE's encoder and decoder, a seq2seq model's encoder and decoder step). Today every graph
is one network; when multi-network graphs land, that function returns one ``ExportPart`` (a sub-graph
whose nodes keep their ids) per network and ``export_all`` writes ``OUT_<part>.onnx`` for each, weights
found by node id.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .graph import Graph
from .inference import GraphError, Inference, require_valid
from .onnx_weights import (WeightsError, fit_input_norm, graph_weights_path, load_into, read_checkpoint_and_norm,
                           write_bytes_atomic)
from .spec import BATCH, LAYER

DEFAULT_OPSET = 18  # the dynamo exporter's native opset; onnxruntime 1.14 (2023) and newer run it
MIN_DYNAMO_OPSET = 18
MIN_LEGACY_OPSET = 9
MAX_OPSET = 20
TOLERANCE = 1e-4  # float32: the largest absolute difference accepted between onnxruntime and PyTorch
EXPORTERS = ("auto", "dynamo", "legacy")
EXAMPLE_BATCH = 3  # the size the model is traced at: not 0 or 1, which torch.export would specialise
CHECK_BATCHES = (1, 4)  # onnxruntime is checked at these sizes (both differ from the traced one)
BATCH_AXIS_NAME = "batch"

_INT_RANGE_PARAMS = ("num_embeddings", "vocab_size", "num_tokens", "num_classes", "vocab")


class ExportError(RuntimeError):
    """An export that failed; ``node`` (id), ``label`` and ``node_type`` name the node at fault when it
    is known, ``reason`` says why, ``stage`` where (export, checker, onnxruntime, verify, write)."""

    def __init__(self, message: str, *, stage: str, reason: str = "", node: str | None = None,
                 label: str | None = None, node_type: str | None = None):
        super().__init__(message)
        self.stage, self.reason, self.node, self.label, self.node_type = stage, reason, node, label, node_type


@dataclass
class BatchCheck:
    """One onnxruntime run against PyTorch."""

    batch: int
    axes: dict[str, int]  # sizes given to named axes (T, ...)
    diffs: dict[str, float]  # output name -> max absolute difference

    @property
    def max_diff(self) -> float:
        return max(self.diffs.values(), default=0.0)


@dataclass
class ExportReport:
    path: str
    graph_name: str
    part: str | None
    exporter: str
    opset: int
    batch: str | int
    inputs: list[dict]  # {"name", "dtype", "shape"}
    outputs: list[dict]
    weights: str  # where the weights came from
    checks: list[BatchCheck] = field(default_factory=list)
    tolerance: float = TOLERANCE
    seconds_export: float = 0.0
    seconds_verify: float = 0.0
    file_bytes: int = 0
    nodes: int = 0
    folded: int = 0
    note: str = ""  # e.g. why the legacy exporter was used
    standardization: str = ""  # what became of the input standardization the weights were trained with

    @property
    def max_diff(self) -> float:
        return max((c.max_diff for c in self.checks), default=0.0)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and self.max_diff <= self.tolerance

    def text(self) -> str:
        what = f"{self.graph_name}" + (f" ({self.part})" if self.part else "")
        lines = [f"exported {what} to {self.path} ({_size(self.file_bytes)}, {self.nodes} ONNX nodes) in "
                 f"{self.seconds_export:.1f} s with the {self.exporter} exporter, opset {self.opset}",
                 *([f"  note: {self.note}"] if self.note else []),
                 f"  weights: {self.weights}",
                 *([f"  {self.standardization}"] if self.standardization else []),
                 f"  batch axis: {self.batch}"]
        for kind, items in (("input", self.inputs), ("output", self.outputs)):
            for t in items:
                lines.append(f"  {kind} {t['name']}: {t['dtype']} ({', '.join(map(str, t['shape']))})")
        lines.append("  onnx.checker: passed (full check)")
        lines.append(f"  onnxruntime vs PyTorch (tolerance {self.tolerance:g}), checked in {self.seconds_verify:.1f} s:")
        for c in self.checks:
            axes = "".join(f", {k}={v}" for k, v in c.axes.items())
            per = ", ".join(f"{k} {v:.2e}" for k, v in c.diffs.items())
            lines.append(f"    batch {c.batch}{axes}: max |diff| {per}")
        lines.append(f"  verified: max absolute difference {self.max_diff:.2e} <= {self.tolerance:g}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in ("path", "graph_name", "part", "exporter", "opset", "batch", "inputs",
                                            "outputs", "weights", "tolerance", "seconds_export", "seconds_verify",
                                            "file_bytes", "nodes", "folded", "note", "standardization",
                                            "max_diff", "ok")}
        d["checks"] = [{"batch": c.batch, "axes": c.axes, "max_abs_diff": c.diffs} for c in self.checks]
        return d


@dataclass
class ExportPart:
    """One network of a graph, exported to its own file. ``name`` is None for a single-network graph."""

    name: str | None
    graph: Graph


def export_parts(graph: Graph) -> list[ExportPart]:
    """The networks a graph holds, each exported on its own. This is the seam for multi-network graphs
    (GAN, VAE, seq2seq): today a graph is one network. A part's graph keeps the node ids of the whole,
    which is how its weights are found."""
    return [ExportPart(None, graph)]


def part_path(out: str | os.PathLike, part: ExportPart, count: int) -> Path:
    out = Path(out)
    if count == 1 or part.name is None:
        return out
    return out.with_name(f"{out.stem}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', part.name)}{out.suffix or '.onnx'}")


# ----------------------------------------------------------------------------- the public entry points
def export_all(graph: Graph, out: str | os.PathLike, **kw) -> list[ExportReport]:
    """Export every part of the graph (see ``export_parts``); one verified file per part."""
    parts = export_parts(graph)
    state, source, carried = _resolve_weights(graph, kw.pop("weights", None), kw.pop("graph_file", None))
    source = kw.pop("weights_source", None) or source
    norm = kw.pop("input_norm", None)
    return [export_graph(p.graph, part_path(out, p, len(parts)), weights=state, weights_source=source,
                         input_norm=carried if norm is None else norm, part=p.name, **kw) for p in parts]


def export_graph(graph: Graph, out: str | os.PathLike, *, weights: Any = None, graph_file=None,
                 opset: int = DEFAULT_OPSET, batch: str | int = "dynamic", exporter: str = "auto",
                 tolerance: float = TOLERANCE, seed: int = 0, threads: int = 2, part: str | None = None,
                 weights_source: str | None = None, input_norm: dict | None = None,
                 standardize: bool = True) -> ExportReport:
    """Export one network to ``out`` and verify it (see the module docstring). ``weights``: None (the
    graph's own weights file when it names one, else the seeded initial weights), a checkpoint path, or
    a state dict (model keys or node keys). ``input_norm``: the input standardization the weights were
    trained with: None takes the checkpoint's own (``input_norm`` in a trainer's checkpoint; a state dict
    carries none), a ``{"mean", "std"}`` dict gives it (a run's, in the app). It is built into the file
    unless ``standardize`` is False (the report and the metadata then say that the file expects
    standardized inputs). Raises ``GraphError`` for an invalid graph, ``WeightsError`` for weights (or
    standardization) that do not fit, and ``ExportError`` for a failed export or verification."""
    from .compiler import build

    out = Path(out)
    if not out.parent.exists():
        raise ExportError(f"cannot write {out}: the folder {out.parent} does not exist", stage="write")
    requested, exporter = exporter, choose_exporter(exporter, opset)
    batch = _check_batch(batch)
    inf = require_valid(graph)
    compiled = build(graph, seed)
    model = compiled.model.eval()
    if isinstance(weights, dict) and weights_source is not None:
        state, source, carried = weights, weights_source, None
    else:
        state, source, carried = _resolve_weights(graph, weights, graph_file)
    if isinstance(input_norm, dict):
        carried = input_norm
    if state is None:
        source = f"initial weights (seed {seed})"
    else:
        load_into(model, compiled.plan.attrs, _part_state(state, graph), source)
    norm, standardization = None, ""
    if carried and standardize:
        norm = fit_input_norm(carried, graph, inf, source)
        norm.update(applied=True, source=source)
        model = _standardized(model, norm)
        standardization = f"inputs standardized inside the model with the training set's mean and std (from {source})"
    elif carried:
        try:
            norm = fit_input_norm(carried, graph, inf, source)
            norm.update(applied=False, source=source)
        except WeightsError:
            norm = None  # left out, and it does not fit this graph anyway: nothing to record
        standardization = (f"inputs NOT standardized inside the model (left out as asked): it expects inputs "
                           f"standardized with the training set's mean and std (in {source}"
                           f"{' and in the metadata' if norm else ''})")

    def attempt(which: str):
        job = _Job(graph, inf, compiled, model, opset, batch, which, threads, norm)
        job.fallback = requested == "auto"
        t0 = time.perf_counter()
        proto, folded = job.export()
        seconds_export = time.perf_counter() - t0
        data = proto.SerializeToString()
        job.check(data)
        t1 = time.perf_counter()
        checks = job.verify(data, seed, tolerance)
        return job, proto, folded, data, checks, seconds_export, time.perf_counter() - t1

    try:
        job, proto, folded, data, checks, seconds_export, seconds_verify = attempt(exporter)
    except ExportError as first:
        # With exporter "auto", a dynamo file that the checker or onnxruntime refuses (torch 2.11's
        # exporter writes such files for some recurrent graphs) gets a second chance with the legacy one.
        if requested != "auto" or exporter != "dynamo" or first.stage not in ("checker", "onnxruntime", "verify"):
            raise
        try:
            job, proto, folded, data, checks, seconds_export, seconds_verify = attempt("legacy")
        except ExportError:
            raise first from None
        job.note = (f"the dynamo exporter's file did not pass verification ({first.reason or first.stage}); "
                    "the legacy exporter was used instead")
    try:
        write_bytes_atomic(out, data)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}", stage="write") from None
    return ExportReport(
        path=str(out), graph_name=graph.name, part=part, exporter=job.exporter, note=job.note, opset=opset,
        batch="dynamic" if batch is None else batch, inputs=job.io_description(proto.graph.input),
        outputs=job.io_description(proto.graph.output), weights=source, checks=checks, tolerance=tolerance,
        seconds_export=seconds_export, seconds_verify=seconds_verify, file_bytes=len(data),
        nodes=len(proto.graph.node), folded=folded, standardization=standardization)


def choose_exporter(exporter: str, opset: int) -> str:
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}", stage="options")
    if not isinstance(opset, int) or not MIN_LEGACY_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset} is not supported; choose {MIN_LEGACY_OPSET} to {MAX_OPSET} "
                          f"(default {DEFAULT_OPSET})", stage="options")
    if exporter == "auto":
        return "dynamo" if opset >= MIN_DYNAMO_OPSET else "legacy"
    if exporter == "dynamo" and opset < MIN_DYNAMO_OPSET:
        raise ExportError(f"the dynamo exporter writes opset {MIN_DYNAMO_OPSET} or newer; for opset {opset} use "
                          "the legacy exporter (exporter 'auto' picks it)", stage="options")
    return exporter


def _check_batch(batch) -> int | None:
    if batch in (None, "dynamic"):
        return None
    if isinstance(batch, str) and batch.isdigit():
        batch = int(batch)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ExportError(f"batch must be 'dynamic' or a positive whole number, got {batch!r}", stage="options")
    return batch


# ----------------------------------------------------------------------------- weights
def _resolve_weights(graph: Graph, weights, graph_file) -> tuple[dict | None, str | None, dict | None]:
    """(state dict, where it came from, the input standardization the checkpoint carries or None)."""
    if isinstance(weights, dict):
        return weights, "the given state dict", None
    if weights is not None:
        state, norm = read_checkpoint_and_norm(weights)
        return state, f"checkpoint {weights}", norm
    own = graph_weights_path(graph, graph_file)
    if own is None:
        return None, None, None
    if not own.is_file():
        raise WeightsError(f"graph '{graph.name}' refers to the weights file {own}, which does not exist")
    state, norm = read_checkpoint_and_norm(own)
    return state, f"the graph's weights file {own}", norm


def _standardized(model, norm: dict):
    """``model`` behind ``(x - mean) / std``: what the trained model computed, on raw inputs. The mean
    and std are buffers, so both exporters write them as constants of the graph."""
    import torch

    class Standardized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("input_mean", norm["mean"])
            self.register_buffer("input_std", norm["std"])

        def forward(self, x):  # one Input: fit_input_norm accepts nothing else
            return self.model((x - self.input_mean) / self.input_std)

    return Standardized().eval()


def _part_state(state: dict, graph: Graph) -> dict:
    """Node-keyed weights restricted to the nodes of this (part) graph; model keys are left as they are."""
    from .onnx_weights import SEP, is_node_keyed

    if not is_node_keyed(state):
        return state
    return {k: v for k, v in state.items() if k.rpartition(SEP)[0] in graph.nodes} or state


# ----------------------------------------------------------------------------- the work
class _Job:
    def __init__(self, graph: Graph, inf: Inference, compiled, model, opset: int, batch: int | None,
                 exporter: str, threads: int, norm: dict | None = None):
        self.graph, self.inf, self.compiled, self.model = graph, inf, compiled, model
        self.norm = norm  # fit_input_norm's dict, with "applied" (model is then _standardized) and "source"
        self.opset, self.batch, self.exporter, self.threads = opset, batch, exporter, threads
        plan = compiled.plan
        self.input_names = [a for _, a in plan.inputs]
        self.output_names = [n for _, n in plan.outputs]
        self.input_infos = [inf.shape(nid) for nid, _ in plan.inputs]
        self.output_infos = [inf.nodes[nid].inputs["in"] for nid, _ in plan.outputs]
        symbols: list[str] = []
        for t in self.input_infos:
            for d in t.shape[1:]:
                if isinstance(d, str) and d not in symbols:
                    symbols.append(d)
        self.symbols = symbols
        self.batch_name = BATCH_AXIS_NAME if BATCH_AXIS_NAME not in symbols else BATCH_AXIS_NAME + "_"
        self.lines = _LineMap(graph, inf, compiled)
        self.origins: dict[str, str] = {}
        self.isolate = True  # on a failure without a location, export layer by layer to find it
        self.fallback = False  # exporter "auto": if dynamo cannot translate an op, try the legacy exporter
        self.note = ""

    # ---------------------------------------------------------------- inputs
    def sizes(self, which: int | None) -> tuple[int, dict[str, int]]:
        """Batch and named-axis sizes: the traced example (None) or check number ``which``."""
        if which is None:
            return (self.batch or EXAMPLE_BATCH), {s: 5 + i for i, s in enumerate(self.symbols)}
        b = self.batch or CHECK_BATCHES[which]
        return b, {s: (3, 7)[which] + i for i, s in enumerate(self.symbols)}

    def inputs(self, batch: int, axes: dict[str, int], seed: int) -> list:
        import torch

        gen = torch.Generator().manual_seed(seed)
        out = []
        norm = self.norm if self.norm and self.norm["applied"] else None
        for (nid, _), t in zip(self.compiled.plan.inputs, self.input_infos):
            shape = [batch] + [axes[d] if isinstance(d, str) else d for d in t.shape[1:]]
            if t.dtype.startswith("float"):
                x = torch.randn(shape, generator=gen, dtype=getattr(torch, t.dtype))
                if norm is not None and nid == norm["input"]:
                    # raw inputs, as a user feeds them: about where the training data is, so the network
                    # behind the standardization sees values of its usual size
                    x = x * norm["std"] + norm["mean"]
                out.append(x)
            else:
                high = _int_input_high(self.graph, nid)
                out.append(torch.randint(0, high, shape, generator=gen, dtype=getattr(torch, t.dtype)))
        return out

    # ---------------------------------------------------------------- export
    def export(self):
        """(tidied ModelProto with metadata, number of folded nodes)."""
        from .onnx_tidy import tidy

        batch, axes = self.sizes(None)
        args = tuple(self.inputs(batch, axes, seed=12345))
        if self.exporter == "legacy":
            proto = self._export_legacy(args)
        elif not self.fallback:
            proto = self._export_dynamo(args)
        else:
            self.isolate = False  # a failure here is answered by the legacy exporter, not by a search
            try:
                proto = self._export_dynamo(args)
            except ExportError as first:
                if "translation" not in str(first):
                    raise
                self.isolate = True
                try:
                    self.exporter = "legacy"
                    proto = self._export_legacy(args)
                except ExportError:
                    self.exporter = "dynamo"
                    raise first from None
                where = f" at {first.node_type} '{first.label}'" if first.node else ""
                self.note = (f"the dynamo exporter could not translate the model{where} ({first.reason}); "
                             "the legacy exporter was used instead")
        try:
            result = tidy(proto, inplace=True)
        except Exception as exc:  # a bug of ours, but say so plainly rather than with a traceback
            raise ExportError(f"export of '{self.graph.name}' failed while tidying the ONNX graph: "
                              f"{type(exc).__name__}: {exc}", stage="export", reason=str(exc)) from None
        self.origins = result.origins
        proto = result.model
        if self.norm and self.norm["applied"]:
            self._unwrap_names(proto)
        self._name_axes(proto)
        self._metadata(proto)
        return proto, result.folded

    def _export_dynamo(self, args):
        import torch

        dims: dict[str, Any] = {}

        def dim(name: str):
            if name not in dims:
                dims[name] = torch.export.Dim(name)
            return dims[name]

        import inspect

        dyn = {}
        # keyed by forward()'s argument names: the graph's Input names, or the standardizing wrapper's
        for name, t in zip(inspect.signature(self.model.forward).parameters, self.input_infos):
            spec = {0: dim(self.batch_name)} if self.batch is None else {}
            for axis, d in enumerate(t.shape[1:], start=1):
                if isinstance(d, str):
                    spec[axis] = dim(d)
            dyn[name] = spec
        with _quiet() as log:
            try:
                # torch.onnx runs torch.export itself, keeping ops that ONNX has whole (LSTM, GRU) whole
                program = torch.onnx.export(self.model, args, None, dynamo=True, verbose=False,
                                            dynamic_shapes=dyn or None, input_names=self.input_names,
                                            output_names=self.output_names, opset_version=self.opset,
                                            **_supported(torch.onnx.export, optimize=False, external_data=False))
            except Exception as exc:
                raise self._failure(exc, _stage_of(exc), log, dynamic_shapes=dyn or None) from None
        return program.model_proto

    def _export_legacy(self, args):
        import torch

        dynamic_axes = {}
        if self.batch is None or self.symbols:
            for name, t in zip(self.input_names, self.input_infos):
                dynamic_axes[name] = self._axis_names(t.shape, name)
            for name, t in zip(self.output_names, self.output_infos):
                dynamic_axes[name] = self._axis_names(t.shape, name)
        buf = io.BytesIO()
        with _quiet() as log:
            try:
                torch.onnx.export(self.model, args, buf, dynamo=False, opset_version=self.opset,
                                  input_names=self.input_names, output_names=self.output_names,
                                  dynamic_axes={k: v for k, v in dynamic_axes.items() if v} or None,
                                  do_constant_folding=False)
            except Exception as exc:
                raise self._failure(exc, "the operation has no ONNX translation", log) from None
        import onnx

        return onnx.load_from_string(buf.getvalue())

    def _unwrap_names(self, proto) -> None:
        """The standardizing wrapper holds the network as ``model``, and the exporters name what is inside
        after it (``model.fc1.weight``, ``/model/fc1/Gemm``): give the weights and nodes the names of a
        plain export (``fc1.weight``, the checkpoint's keys, which a re-import labels nodes by)."""
        def strip(name: str) -> str:
            if name.startswith("model."):
                return name[len("model."):]
            return "/" + name[len("/model/"):] if name.startswith("/model/") else name

        graphs, names = [proto.graph], set()
        while graphs:  # the graph and any subgraph (a Loop's body) an exporter wrote
            g = graphs.pop()
            names |= {i.name for i in g.initializer} | {n.name for n in g.node}
            names |= {v for n in g.node for v in (*n.input, *n.output)} | {v.name for v in g.value_info}
            graphs += [a.g for n in g.node for a in n.attribute if a.HasField("g")]
            graphs += [sub for n in g.node for a in n.attribute for sub in a.graphs]
        rename = {n: strip(n) for n in names if strip(n) != n}
        if not rename or len(set(rename.values()) | (names - set(rename))) != len(names):
            return  # a clash (never seen): keep the exporter's names rather than merge two values
        graphs = [proto.graph]
        while graphs:
            g = graphs.pop()
            for i in g.initializer:
                i.name = rename.get(i.name, i.name)
            for v in g.value_info:
                v.name = rename.get(v.name, v.name)
            for n in g.node:
                n.name = rename.get(n.name, n.name)
                n.input[:] = [rename.get(v, v) for v in n.input]
                n.output[:] = [rename.get(v, v) for v in n.output]
                graphs += [a.g for a in n.attribute if a.HasField("g")] + [sub for a in n.attribute for sub in a.graphs]
        self.origins = {rename.get(k, k): v for k, v in self.origins.items()}

    def _axis_names(self, shape: tuple, tensor: str) -> dict[int, str]:
        names = {}
        for axis, d in enumerate(shape):
            if d == BATCH and axis == 0:
                if self.batch is None:
                    names[0] = self.batch_name
            elif isinstance(d, str):
                names[axis] = d if d in self.symbols else f"{tensor}_dim{axis}"
        return names

    def _name_axes(self, proto) -> None:
        """Give run-time axes the graph's names (torch.export calls them s0, s1, ...)."""
        rename = {}
        for vi, t in zip(proto.graph.input, self.input_infos):
            for axis, dim in enumerate(vi.type.tensor_type.shape.dim):
                if dim.HasField("dim_param") and axis < len(t.shape):
                    want = self.batch_name if axis == 0 else t.shape[axis]
                    if isinstance(want, str) and want != dim.dim_param:
                        rename.setdefault(dim.dim_param, want)
        if rename:
            pattern = re.compile(r"\b(" + "|".join(map(re.escape, rename)) + r")\b")
            for vi in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
                for dim in vi.type.tensor_type.shape.dim:
                    if dim.HasField("dim_param"):
                        dim.dim_param = pattern.sub(lambda m: rename[m.group(1)], dim.dim_param)
        # The outputs' declared shapes come from the graph's own shape inference: an exporter may write the
        # traced size of a run-time axis (T = 5) where the axis is dynamic.
        for vi, t in zip(proto.graph.output, self.output_infos):
            dims = vi.type.tensor_type.shape.dim
            if len(dims) != len(t.shape):
                continue
            for axis, (dim, want) in enumerate(zip(dims, t.shape)):
                if want == BATCH and self.batch is None:
                    dim.dim_param = self.batch_name
                elif want == BATCH:
                    dim.dim_value = self.batch
                elif isinstance(want, int):
                    dim.dim_value = want
                elif want in self.symbols:
                    dim.dim_param = want
                else:
                    dim.dim_param = f"{vi.name}_dim{axis}"
        if self.symbols:  # intermediate shapes may carry the traced size of a run-time axis too
            del proto.graph.value_info[:]

    def _metadata(self, proto) -> None:
        import torch

        for vi in [*proto.graph.input, *proto.graph.output]:
            keep = [p for p in vi.metadata_props if not p.key.startswith("pkg.torch.")]
            del vi.metadata_props[:]
            vi.metadata_props.extend(keep)
        proto.doc_string = self.graph.description
        proto.graph.name = re.sub(r"\W+", "_", self.graph.name).strip("_") or "graph"
        proto.producer_name, proto.producer_version = "DeepCanvas", __version__
        meta = {"deepcanvas.name": self.graph.name, "deepcanvas.description": self.graph.description,
                "deepcanvas.version": __version__, "deepcanvas.exporter": f"torch {torch.__version__} "
                f"({self.exporter})", "deepcanvas.batch": "dynamic" if self.batch is None else str(self.batch)}
        if self.norm:
            applied = self.norm["applied"]
            name = dict(self.compiled.plan.inputs)[self.norm["input"]]
            meta["deepcanvas.input_standardization"] = json.dumps({
                "input": name, "inside_model": applied,
                "formula": (f"the model computes ({name} - mean) / std before the network: feed raw inputs"
                            if applied else f"the model expects ({name} - mean) / std: standardize inputs first"),
                "statistics": "the training set's mean and std", "from": self.norm["source"],
                "mean": self.norm["mean"].tolist(), "std": self.norm["std"].tolist()})
        del proto.metadata_props[:]
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v

    # ---------------------------------------------------------------- checks
    def check(self, data: bytes) -> None:
        import onnx

        if len(data) > onnx.checker.MAXIMUM_PROTOBUF:
            raise ExportError(f"export of '{self.graph.name}' gives an ONNX file over 2 GiB, the most one "
                              "protobuf can hold; this exporter does not write weights to a separate file",
                              stage="checker", reason="model over 2 GiB")
        try:
            onnx.checker.check_model(data, full_check=True)
        except Exception as exc:
            raise self._failure(exc, "onnx.checker rejected the file", "", stage="checker") from None

    def verify(self, data: bytes, seed: int, tolerance: float) -> list[BatchCheck]:
        import onnxruntime as ort
        import torch

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = max(1, self.threads), 1
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise self._failure(exc, "onnxruntime cannot load the file", "", stage="onnxruntime") from None
        checks = []
        for which in (0, 1):
            batch, axes = self.sizes(which)
            args = self.inputs(batch, axes, seed=seed * 1000 + 17 + which)
            with torch.no_grad():
                expected = self.model(*args)
            if not isinstance(expected, tuple):
                expected = (expected,)
            feeds = {n: a.numpy() for n, a in zip(self.input_names, args)}
            try:
                got = session.run(self.output_names, feeds)
            except Exception as exc:
                raise self._failure(exc, f"onnxruntime failed at batch {batch}", "", stage="onnxruntime") from None
            diffs = {}
            for name, e, g in zip(self.output_names, expected, got):
                e = e.detach().numpy()
                if tuple(e.shape) != tuple(g.shape):
                    raise ExportError(f"export of '{self.graph.name}' is wrong: onnxruntime gives output '{name}' "
                                      f"the shape {tuple(g.shape)} at batch {batch}, PyTorch {tuple(e.shape)}",
                                      stage="verify", reason="shape mismatch")
                diffs[name] = _max_abs_diff(e, g)
            check = BatchCheck(batch, axes, diffs)
            checks.append(check)
            worst = max(diffs, key=diffs.get) if diffs else None
            if worst is not None and not diffs[worst] <= tolerance:
                raise ExportError(
                    f"export of '{self.graph.name}' is not faithful: onnxruntime's output '{worst}' differs from "
                    f"PyTorch's by {diffs[worst]:.3g} at batch {batch} (tolerance {tolerance:g}); no file was written",
                    stage="verify", reason=f"max abs diff {diffs[worst]:.3g}")
        return checks

    def io_description(self, values) -> list[dict]:
        import onnx

        out = []
        for vi in values:
            tt = vi.type.tensor_type
            shape = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in tt.shape.dim]
            out.append({"name": vi.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name,
                        "shape": shape})
        return out

    # ---------------------------------------------------------------- failures
    def _failure(self, exc: BaseException, what: str, log, dynamic_shapes=None, stage: str = "export") -> ExportError:
        reason = _reason(exc)
        nid = self.lines.find_in_exception(exc)
        if nid is None and self.exporter == "dynamo" and stage == "export" and re.search(r"%\w+ : ", str(exc)):
            # a translation error names the torch.export node: trace again to read that node's source line
            import torch
            try:
                batch, axes = self.sizes(None)
                with _quiet():
                    ep = torch.export.export(self.model, tuple(self.inputs(batch, axes, seed=12345)),
                                             dynamic_shapes=dynamic_shapes, strict=False)
                nid = self.lines.find_in_program(exc, ep)
            except Exception:
                pass
        if nid is None and stage != "export":
            nid = self.lines.find_in_origins(str(exc), self.origins)
        if nid is None and stage == "export" and self.isolate:
            found = _isolate(self)
            if found is not None:
                nid, reason = found
        if nid is not None:
            node = self.graph.nodes[nid]
            msg = (f"export of '{self.graph.name}' failed at {node.type} '{node.label}' (node {nid}): {what}: "
                   f"{reason}")
            return ExportError(msg + "\nno file was written", stage=stage, reason=reason, node=nid,
                               label=node.label, node_type=node.type)
        return ExportError(f"export of '{self.graph.name}' failed ({self.exporter} exporter, opset {self.opset}): "
                           f"{what}: {reason}\nno file was written", stage=stage, reason=reason)


# ----------------------------------------------------------------------------- naming the node at fault
class _LineMap:
    """Maps a line of the generated source to the node it belongs to. Codegen writes one line per node
    in the model's forward(), in the compiler's order, right after ``def forward``; a composite block
    is a class of its own, so a line inside it belongs to the node that builds that class."""

    def __init__(self, graph: Graph, inf: Inference, compiled):
        reg = graph.registry
        self.model_nodes = [nid for nid in inf.order if reg[graph.nodes[nid].type].role == LAYER]
        self.pattern = re.compile(r"<deepcanvas " + re.escape(compiled.plan.class_name) +
                                  r" [0-9a-f]+>(?:\", line |:)(\d+)")
        main = compiled.plan.class_name
        by_attr = {a: nid for nid, a in compiled.plan.attrs.items()}
        lines = compiled.source.splitlines()
        self.spans: list[tuple[int, int, str]] = []  # (first line, last line, class name), 1-based
        starts = [(i + 1, m.group(1)) for i, line in enumerate(lines) if (m := re.match(r"class (\w+)\(", line))]
        for k, (first, name) in enumerate(starts):
            self.spans.append((first, starts[k + 1][0] - 1 if k + 1 < len(starts) else len(lines), name))
        # which attributes of which class build each class: self.<attr> = <Class>(...)
        self.built_by: dict[str, list[tuple[str, str]]] = {}
        for first, last, owner in self.spans:
            for line in lines[first - 1:last]:
                m = re.match(r"\s+self\.(\w+) = (\w+)\(", line)
                if m:
                    self.built_by.setdefault(m.group(2), []).append((owner, m.group(1)))
        self.main, self.by_attr = main, by_attr
        self.first = None
        span = next(((a, b) for a, b, n in self.spans if n == main), (1, len(lines)))
        for i in range(span[0] - 1, span[1]):
            if lines[i].startswith("    def forward("):
                body = lines[i + 1:i + 1 + len(self.model_nodes)]
                if (len(body) == len(self.model_nodes) and i + 1 + len(body) < len(lines)
                        and lines[i + 1 + len(body)].strip().startswith("return")):
                    self.first = i + 2  # 1-based number of the first body line
                break

    def node_at(self, lineno: int) -> str | None:
        cls = next((n for a, b, n in self.spans if a <= lineno <= b), self.main)
        if cls == self.main:
            if self.first is None:
                return None
            k = lineno - self.first
            return self.model_nodes[k] if 0 <= k < len(self.model_nodes) else None
        seen, todo = set(), [cls]
        while todo:  # climb from the block's class to the model's attribute that builds it
            c = todo.pop(0)
            for owner, attr_name in self.built_by.get(c, []):
                if owner == self.main and attr_name in self.by_attr:
                    return self.by_attr[attr_name]
                if owner not in seen:
                    seen.add(owner)
                    todo.append(owner)
        return None

    def _last(self, text: str) -> str | None:
        found = None
        for m in self.pattern.finditer(text):
            found = self.node_at(int(m.group(1))) or found
        return found

    def find_in_exception(self, exc: BaseException) -> str | None:
        return self._last("".join(traceback.format_exception(exc)))

    def find_in_program(self, exc: BaseException, ep) -> str | None:
        """A conversion error names the torch.export node (``%name``); its stack trace names our line."""
        text = "".join(traceback.format_exception(exc))
        nodes = {n.name: n for n in ep.graph.nodes}
        for name in re.findall(r"%(\w+) : ", text):
            trace = nodes[name].meta.get("stack_trace") if name in nodes else None
            if trace:
                m = self.pattern.search(trace)
                if m and self.node_at(int(m.group(1))):
                    return self.node_at(int(m.group(1)))
        return None

    def find_in_origins(self, text: str, origins: dict[str, str]) -> str | None:
        """onnx.checker and onnxruntime name the ONNX node; the exporter recorded where it came from."""
        for name, trace in origins.items():
            if name and re.search(r"\b" + re.escape(name) + r"\b", text):
                m = self.pattern.search(trace)
                if m and self.node_at(int(m.group(1))):
                    return self.node_at(int(m.group(1)))
        return None


def _isolate(job: _Job, budget_s: float = 60.0) -> tuple[str, str] | None:
    """Export each layer on its own (a graph of its inputs, the node and its outputs) until one fails:
    the fallback when the error message does not say where it came from."""
    from .compiler import build

    t0 = time.perf_counter()
    seen = set()
    for nid in job.lines.model_nodes:
        if time.perf_counter() - t0 > budget_s:
            return None
        node, info = job.graph.nodes[nid], job.inf.nodes[nid]
        key = (node.type, json.dumps(node.params, sort_keys=True, default=str),
               tuple((p, t.shape, t.dtype) for p, t in sorted(info.inputs.items())))
        if key in seen:
            continue
        seen.add(key)
        g = job.graph.copy()  # keeps what the document holds besides nodes (composite definitions)
        g.name, g.nodes, g.edges, g.layout = f"{node.label} alone", {}, [], {}
        try:
            g.add_node(node.type, node.label, dict(node.params), node_id=nid)
            for port, t in info.inputs.items():
                shape = [d if isinstance(d, int) or (isinstance(d, str) and d.isidentifier() and d != BATCH)
                         else f"d{i}" for i, d in enumerate(t.shape[1:], start=1)]
                src = g.add_node("Input", f"in_{port}", {"shape": shape, "dtype": t.dtype})
                g.connect(src.id, "out", nid, port)
            for port in info.outputs:
                o = g.add_node("Output", f"out_{port}")
                g.connect(nid, port, o.id, "in")
            sub_inf = require_valid(g)
            sub = build(g, 0)
        except Exception:
            continue
        try:
            sub_job = _Job(g, sub_inf, sub, sub.model.eval(), job.opset, job.batch, job.exporter, job.threads)
            sub_job.isolate = False
            batch, axes = sub_job.sizes(None)
            args = tuple(sub_job.inputs(batch, axes, seed=1))
            with _quiet():
                if job.exporter == "dynamo":
                    sub_job._export_dynamo(args)
                else:
                    sub_job._export_legacy(args)
        except ExportError as exc:
            return nid, exc.reason
        except Exception as exc:
            return nid, _reason(exc)
    return None


def _supported(func, **kwargs) -> dict:
    """The keyword arguments ``func`` accepts (torch's exporter grows options from release to release)."""
    import inspect

    params = inspect.signature(func).parameters
    return {k: v for k, v in kwargs.items() if k in params}


def _stage_of(exc: BaseException) -> str:
    text = str(exc)
    if "ONNX model" in text or "translat" in text or "ONNX function" in text:
        return "the operation has no ONNX translation"
    return "torch.export could not trace the model"


def _reason(exc: BaseException) -> str:
    """The useful sentence of an exporter's (often very long) error."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    m = re.search(r"## Exception summary\s*\n\s*<class '[^']*'>: (.+)", text)
    if m:
        return m.group(1).strip()[:400]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0][:400]


@contextlib.contextmanager
def _quiet():
    """Keep the exporters' progress lines, deprecation warnings and logging off the user's terminal."""
    log = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript",
                                               "torch.fx.experimental.symbolic_shapes")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            warnings.simplefilter("ignore")
            yield log
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def _int_input_high(graph: Graph, input_id: str) -> int:
    """An exclusive upper bound for random ids fed to an int64 Input: the smallest vocabulary among the
    nodes that read it (an Embedding's num_embeddings), else 2."""
    highs = []
    for e in graph.edges_from(input_id):
        params = graph.nodes[e.dst].params
        highs += [v for k, v in params.items() if k in _INT_RANGE_PARAMS and isinstance(v, int) and v > 0]
    return min(highs) if highs else 2


def _max_abs_diff(a, b) -> float:
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if (nan_a != nan_b).any():
        return math.inf
    d = np.abs(np.where(nan_a, 0.0, a) - np.where(nan_b, 0.0, b))
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    d = np.where(same_inf, 0.0, d)
    return float(np.max(d))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


# ----------------------------------------------------------------------------- command line
def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a graph with its weights to ONNX, verified against PyTorch with onnxruntime",
        description="Export to ONNX. The file is written only after onnx.checker passes and onnxruntime "
                    "reproduces the PyTorch outputs at two batch sizes (max abs difference <= tolerance). "
                    "Weights trained on standardized inputs (data.standardize) are exported with the "
                    "standardization inside the model: the file takes raw inputs.")
    p.add_argument("file", help="the graph (.dcnet)")
    p.add_argument("--onnx", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--py", metavar="OUT.py", help="write the PyTorch source for these weights too (or alone): "
                   "its class loads the checkpoint's 'model' weights with strict=True and, like the ONNX file, "
                   "standardizes raw inputs when the checkpoint was trained on standardized ones")
    p.add_argument("--weights", metavar="CHECKPOINT",
                   help="a torch.save state dict (or a dict with a 'model' state dict), or a .safetensors "
                        "file; default: the graph's own weights file if it names one, else seeded initial weights")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET}; "
                   f"below {MIN_DYNAMO_OPSET} uses the legacy exporter)")
    p.add_argument("--batch", default="dynamic", help="'dynamic' (default) or a fixed batch size")
    p.add_argument("--exporter", choices=EXPORTERS, default="auto",
                   help="torch exporter: auto (dynamo for opset >= 18, else legacy), dynamo, legacy")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help=f"max abs difference (default {TOLERANCE:g})")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the random test inputs")
    p.add_argument("--no-standardize", action="store_true",
                   help="leave the checkpoint's input standardization out: the model then expects inputs "
                        "standardized with the training set's mean and std (the ONNX metadata holds them)")
    p.add_argument("--json", action="store_true", help="print the verification report as JSON")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    import sys

    from .fileio import load_graph

    if not args.onnx and not args.py:  # either file alone is a use: the source needs no verification
        print("deepcanvas: export: give --onnx OUT.onnx, --py OUT.py or both", file=sys.stderr)
        return 2
    graph = load_graph(args.file)
    reports, wrote = [], ""
    try:
        # read once: the checkpoint's weights and the input standardization they were trained with
        state, source, carried = _resolve_weights(graph, args.weights, args.file)
        standardize = not args.no_standardize
        if args.onnx:
            reports = export_all(graph, args.onnx, weights=state, weights_source=source, input_norm=carried,
                                 standardize=standardize, graph_file=args.file, opset=args.opset,
                                 batch=args.batch, exporter=args.exporter, tolerance=args.tolerance,
                                 seed=args.seed)
        if args.py:
            wrote = _write_source(graph, args.py, carried, standardize, source)
    except WeightsError as exc:
        print(f"deepcanvas: {exc}", file=sys.stderr)
        return 2
    except ExportError as exc:  # settings or a folder that cannot be: the command line; else the graph
        print(f"deepcanvas: {exc}", file=sys.stderr)
        return 2 if exc.stage in ("options", "write") else 1
    except GraphError:
        raise
    if args.json:
        out = [r.to_json() for r in reports] + ([wrote] if wrote else [])
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
    else:
        lines = [r.text() for r in reports]
        if wrote:
            lines.append(f"wrote the PyTorch source to {wrote['py']} ({wrote['lines']} lines)")
            lines += [f"  {wrote['standardization']}"] if wrote["standardization"] else []
        print("\n".join(lines))
    return 0


def _write_source(graph: Graph, out: str | os.PathLike, norm: dict | None, standardize: bool,
                  source: str | None) -> dict:
    """Write ``engine.codegen``'s source for the weights of ``source`` (standardizing inputs as the ONNX
    export does); returns what was written, with the report's line on standardization."""
    from .codegen import generate_code
    from .fileio import write_atomic

    text = generate_code(graph, input_norm=norm if standardize else None)
    write_atomic(out, text)
    said = ""
    if norm and standardize:
        said = f"inputs standardized inside the model with the training set's mean and std (from {source})"
    elif norm:
        said = ("inputs NOT standardized inside the model (left out as asked): it expects inputs standardized "
                f"with the training set's mean and std (in {source})")
    return {"py": str(out), "lines": len(text.splitlines()), "standardization": said}


__all__ = ["export_graph", "export_all", "export_parts", "ExportPart", "ExportReport", "BatchCheck",
           "ExportError", "choose_exporter", "DEFAULT_OPSET", "TOLERANCE", "register"]
