"""Import an ONNX model as an editable DeepCanvas graph, with its weights, proven to compute what the
ONNX file computes.

    result = import_onnx("model.onnx")          # raises OnnxImportError listing every op it cannot map
    result.graph, result.weights, print(result.text())
    save_imported(result, "model.dcnet")         # model.dcnet + model.safetensors beside it

    deepcanvas import model.onnx -o model.dcnet

How it works: the file is tidied first (``engine.onnx_tidy``: constants folded, shape arithmetic
resolved, Identity wires removed, LRN put back together), then each ONNX node becomes one node of the
registry, its initializers becoming the node's weights:

- Gemm, and MatMul whose only reader adds a constant vector, become Linear; Conv (1-D, 2-D),
  ConvTranspose, Max/AveragePool, GlobalAverage/MaxPool (and ReduceMean/Max over H, W), BatchNormalization,
  LayerNormalization, LRN, the activations, Softmax/LogSoftmax, Add/Mul/Sub of computed tensors, Concat,
  Flatten, Reshape (Flatten when it merges axes), Squeeze/Unsqueeze, Transpose (Permute), Dropout and
  Gather from a constant table (Embedding) map one to one;
- LSTM, GRU and RNN ops become recurrent nodes, the time-major layouts around them followed through
  (``engine.onnx_recurrent``);
- softmax(Q K^T * scale) V becomes ScaledDotProductAttention, and a VAE's KL term a Reparameterize node;
- initializers read by two nodes of the same kind become shared weights (a Siamese twin, a GAN's
  discriminator on real and fake images).

The ONNX graph's inputs become Input nodes (axis 0 is the batch; named axes stay named), its outputs
Output nodes of the same names, in the same order.

Ops with no node type, or whose attributes a node type cannot express (asymmetric padding, a constant
operand of Add, training-mode BatchNorm, ...), are all listed by node name and op type in one
``OnnxImportError``; nothing is dropped silently and nothing is written.

The imported graph is then compiled, the weights loaded, and its outputs compared with onnxruntime's on
random inputs at two batch sizes (max absolute difference at most 1e-4, as for exports). Its weights
are saved beside the graph file as safetensors keyed by node id (``engine.onnx_weights``), and the
graph names that file in its ``weights`` field; compiling through
``engine.onnx_weights.build_with_weights`` and exporting (``engine.export``) start from them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__
from . import onnx_recurrent as rnn
from .graph import Graph
from .nodes import REGISTRY
from .params import ParamError
from .spec import BATCH, NodeSpec, ShapeError, TensorInfo

TOLERANCE = 1e-4
CHECK_BATCHES = (1, 2)
_DTYPES = {1: "float32", 7: "int64"}  # onnx.TensorProto.FLOAT, INT64
_NP_DTYPES = {"float32": np.float32, "int64": np.int64}


class OnnxImportError(ValueError):
    """An ONNX file that cannot become a graph. ``problems`` lists each op (name and type) and why."""

    def __init__(self, path, problems: list[str], blocked: int = 0):
        self.path, self.problems, self.blocked = str(path), problems, blocked
        lines = "\n".join(f"  - {p}" for p in problems)
        extra = (f"\n  ({blocked} further node(s) were not converted because they read the outputs of the ones "
                 "above)") if blocked else ""
        super().__init__(f"cannot import {self.path}:\n{lines}{extra}")


class _Unsupported(Exception):
    """Raised by a converter: the op cannot be expressed; the message says why."""


@dataclass
class _Value:
    """A tensor of the ONNX graph as it exists in the DeepCanvas graph: a node's output port."""

    node: str
    port: str
    info: TensorInfo


@dataclass
class ImportReport:
    path: str
    graph_name: str
    opset: int
    onnx_nodes: int
    graph_nodes: int
    ops: dict[str, int]  # ONNX op type -> how many were converted
    folded: int
    params: int
    checks: list[dict] = field(default_factory=list)  # {"batch", "axes", "max_abs_diff": {output: diff}}
    tolerance: float = TOLERANCE
    seconds: float = 0.0

    @property
    def max_diff(self) -> float:
        return max((d for c in self.checks for d in c["max_abs_diff"].values()), default=0.0)

    def text(self) -> str:
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(self.ops.items()))
        lines = [f"imported {self.path} (opset {self.opset}, {self.onnx_nodes} ONNX nodes) as '{self.graph_name}': "
                 f"{self.graph_nodes} nodes, {self.params:,} parameters, in {self.seconds:.1f} s",
                 f"  ops: {ops}" + (f"; {self.folded} constant node(s) folded" if self.folded else "")]
        lines.append(f"  compiled graph vs onnxruntime on the ONNX file (tolerance {self.tolerance:g}):")
        for c in self.checks:
            axes = "".join(f", {k}={v}" for k, v in c["axes"].items())
            per = ", ".join(f"{k} {v:.2e}" for k, v in c["max_abs_diff"].items())
            lines.append(f"    batch {c['batch']}{axes}: max |diff| {per}")
        lines.append(f"  verified: max absolute difference {self.max_diff:.2e} <= {self.tolerance:g}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["max_diff"] = self.max_diff
        return d


@dataclass
class ImportResult:
    graph: Graph
    weights: dict  # node-keyed tensors: "<node id>/<parameter>" -> torch.Tensor
    report: ImportReport

    def text(self) -> str:
        return self.report.text()


# ----------------------------------------------------------------------------- entry points
def import_onnx(path: str | os.PathLike, *, tolerance: float = TOLERANCE, verify: bool = True,
                threads: int = 2) -> ImportResult:
    """Read an ONNX file as a graph with weights, verified against onnxruntime (see the module doc)."""
    import onnx

    t0 = time.perf_counter()
    p = Path(path)
    if not p.is_file():
        raise OnnxImportError(p, ["the file does not exist" if not p.exists() else "this is a folder, not a file"])
    try:
        model = onnx.load(str(p))
    except Exception as exc:
        raise OnnxImportError(p, [f"not a readable ONNX file ({_first_line(exc)})"]) from None
    try:
        onnx.checker.check_model(str(p))  # from the file: no copy of the weights through Python
    except Exception as exc:
        raise OnnxImportError(p, [f"onnx.checker rejects the file: {_first_line(exc)}"]) from None
    builder = _Builder(model, p)
    graph, weights = builder.build()
    report = ImportReport(
        path=str(p), graph_name=graph.name, opset=builder.opset, onnx_nodes=len(model.graph.node),
        graph_nodes=len(graph), ops=dict(builder.converted), folded=builder.folded, params=0, tolerance=tolerance)
    result = ImportResult(graph, weights, report)
    model = None  # the weights now live in torch tensors
    if verify:
        _verify(result, p, tolerance, threads)
    else:
        from .inference import infer_shapes
        report.params = infer_shapes(graph).total_params
    report.seconds = time.perf_counter() - t0
    return result


def save_imported(result: ImportResult, out: str | os.PathLike) -> Path:
    """Write the graph to ``out`` (.dcnet) and its weights beside it (same stem, .safetensors); the graph
    names the weights file in its ``weights`` field. Returns the weights file's path."""
    from .fileio import save_graph
    from .onnx_weights import save_node_weights

    out = Path(out)
    weights_path = out.with_suffix(".safetensors")
    if weights_path == out:
        weights_path = out.with_name(out.name + ".safetensors")
    result.graph.weights = weights_path.name
    save_node_weights(weights_path, result.weights, {"graph": result.graph.name, "source": Path(result.report.path).name,
                                                     "deepcanvas.version": __version__})
    try:
        save_graph(result.graph, out)
    except BaseException:
        try:
            weights_path.unlink()
        except OSError:
            pass
        raise
    return weights_path


# ----------------------------------------------------------------------------- the conversion
class _Builder:
    def __init__(self, model, path: Path):
        from .onnx_tidy import opset_of

        self.source = model
        self.path = path
        self.opset = opset_of(model)
        self.graph = Graph(self._graph_name(model, path), self._description(model))
        self.values: dict[str, _Value] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.synthesized: set[str] = set()
        self.weights: dict[str, Any] = {}  # node id -> {param path: np.ndarray}
        self.problems: list[str] = []
        self.blocked = 0
        self.converted: Counter = Counter()
        self.folded = 0
        self.static_batch: int | None = None
        self.absorbed: set[int] = set()  # indices of ONNX nodes merged into an earlier node
        self.depth: dict[str, int] = {}
        self.owners: dict[tuple, str] = {}  # (type, initializer names, params) -> node id owning them
        self.views: dict[str, rnn.View] = {}  # tensors in a layout no node has (see engine.onnx_recurrent)
        self.zeros: set[str] = set()  # tensors of zeros made at run time (a recurrent op's initial state)

    @staticmethod
    def _graph_name(model, path: Path) -> str:
        meta = {p.key: p.value for p in model.metadata_props}
        return meta.get("deepcanvas.name") or path.stem

    @staticmethod
    def _description(model) -> str:
        meta = {p.key: p.value for p in model.metadata_props}
        if "deepcanvas.description" in meta:
            return meta["deepcanvas.description"]
        return model.doc_string or f"imported from ONNX ({model.producer_name or 'unknown producer'})"

    # ---------------------------------------------------------------- driver
    def build(self) -> tuple[Graph, dict]:
        from onnx import numpy_helper

        from .onnx_tidy import tidy

        tidied = tidy(self.source, inplace=True)
        self.folded = tidied.folded
        self.synthesized = tidied.synthesized
        g = tidied.model.graph
        _fuse_attention(g)
        if "Reparameterize" in REGISTRY:
            _fuse_kl(g)
        self.onnx_graph = g
        for init in g.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
        self._inputs(g)
        readers: dict[str, list[int]] = defaultdict(list)
        for i, node in enumerate(g.node):
            for name in node.input:
                readers[name].append(i)
        self.readers = readers
        self.outputs_of_graph = {o.name for o in g.output}
        shape_only = _shape_only(g, readers, self.outputs_of_graph)
        for i, node in enumerate(g.node):
            if i in self.absorbed or i in shape_only or self._zeros(node):
                continue
            label = f"'{node.name or node.output[0]}' ({node.op_type})"
            in_views = [n for n in node.input if n in self.views]
            converter = (CONVERTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else
                         _OWN_OPS.get(node.op_type) if node.domain == "deepcanvas" else None)
            if in_views and node.op_type in VIEW_OPS:
                converter = VIEW_OPS[node.op_type]
            if converter is None:
                self.problems.append(f"{label}: no DeepCanvas node type for the ONNX op "
                                     f"{node.domain + '.' if node.domain else ''}{node.op_type}")
                continue
            missing = [n for n in node.input if n and not self.known(n)]
            if missing:
                if self.problems:
                    self.blocked += 1
                else:
                    self.problems.append(f"{label}: reads '{missing[0]}', which nothing produces")
                continue
            try:
                converter(self, i, node)
                self.converted[node.op_type] += 1
            except (_Unsupported, rnn.Unsupported) as exc:
                self.problems.append(f"{label}: {exc}")
        self._outputs(g)
        if self.problems:
            raise OnnxImportError(self.path, self.problems, self.blocked)
        self._layout()
        weights = {f"{nid}/{k}": v for nid, ws in self.weights.items() for k, v in ws.items()}
        import torch
        return self.graph, {k: torch.from_numpy(v if v.flags.writeable and v.flags.c_contiguous else np.array(v))
                            for k, v in weights.items()}

    def _inputs(self, g) -> None:
        inits = {i.name for i in g.initializer}
        for vi in g.input:
            if vi.name in inits:
                continue
            tt = vi.type.tensor_type
            where = f"input '{vi.name}'"
            dtype = _DTYPES.get(tt.elem_type)
            if dtype is None:
                import onnx
                name = onnx.TensorProto.DataType.Name(tt.elem_type) if tt.elem_type else "unknown"
                self.problems.append(f"{where}: element type {name} is not supported (Input nodes take float32 "
                                     "or int64)")
                continue
            if not tt.HasField("shape") or len(tt.shape.dim) == 0:
                self.problems.append(f"{where}: needs a batch axis first (its shape is "
                                     f"{'unknown' if not tt.HasField('shape') else 'a scalar'})")
                continue
            dims = list(tt.shape.dim)
            if dims[0].HasField("dim_value"):
                self.static_batch = int(dims[0].dim_value)
            shape = []
            for axis, d in enumerate(dims[1:], start=1):
                if d.HasField("dim_value") and d.dim_value > 0:
                    shape.append(int(d.dim_value))
                else:
                    name = re.sub(r"\W+", "_", d.dim_param).strip("_") if d.dim_param else ""
                    if not name or not name.isidentifier() or name == BATCH or name[0].isdigit():
                        name = f"D{axis}" if not name or name == BATCH else f"D_{name}"
                    shape.append(name)
            node = self.graph.add_node("Input", self._unique_label(vi.name), {"shape": shape, "dtype": dtype})
            self.values[vi.name] = _Value(node.id, "out", TensorInfo((BATCH, *shape), dtype))
            self.depth[node.id] = 0

    def _outputs(self, g) -> None:
        for vo in g.output:
            value = self.values.get(vo.name)
            if value is None and vo.name in self.views:
                try:
                    value = self.x(vo.name)
                except (_Unsupported, rnn.Unsupported) as exc:
                    self.problems.append(f"output '{vo.name}': {exc}")
                    continue
            if value is None:
                if vo.name in self.consts:
                    self.problems.append(f"output '{vo.name}': is a constant; an Output node needs a tensor that "
                                         "the model computes")
                continue  # its producer is already listed as a problem
            node = self.graph.add_node("Output", self._unique_label(vo.name))
            self.graph.connect(value.node, value.port, node.id, "in")
            self.depth[node.id] = self.depth.get(value.node, 0) + 1

    # ---------------------------------------------------------------- helpers for converters
    def known(self, name: str) -> bool:
        return name in self.values or name in self.consts or name in self.views or name in self.zeros

    def x(self, name: str) -> _Value:
        """A computed tensor input (not a constant)."""
        if name in self.values:
            return self.values[name]
        if name in self.views:
            view = self.views[name]
            if view.resolved():
                return rnn.base_value(self, view)
            raise _Unsupported(f"reads '{name}', laid out as {rnn.info_of(view)} with the batch axis not first (a "
                               "recurrent op's time-major layout); no node takes that")
        if name in self.zeros:
            raise _Unsupported(f"reads '{name}', zeros made at run time; only a recurrent node's initial state may "
                               "be that")
        if name in self.consts:
            raise _Unsupported(f"takes the constant '{name}' where DeepCanvas nodes take a computed tensor")
        raise _Unsupported(f"reads '{name}', which nothing produces")

    def c(self, name: str | None, what: str, required: bool = True) -> np.ndarray | None:
        """A constant input (weights, a shape, axes)."""
        if not name:
            if required:
                raise _Unsupported(f"needs {what}")
            return None
        if name in self.consts:
            return self.consts[name]
        raise _Unsupported(f"{what} '{name}' is computed at run time; DeepCanvas needs it fixed in the file")

    def _zeros(self, node) -> bool:
        """Note a node that makes zeros at run time (an exporter's initial state); True when it does."""
        from onnx import numpy_helper

        op, ins = node.op_type, [n for n in node.input if n]
        if not node.output or node.domain not in ("", "ai.onnx"):
            return False
        if op == "ConstantOfShape":
            value = _attr(node, "value")
            zero = value is None or not np.any(numpy_helper.to_array(value))
        elif op == "Expand":
            zero = ins[0] in self.consts and not np.any(self.consts[ins[0]])
        elif op in ("Slice", "Reshape", "Identity", "Transpose", "Squeeze", "Unsqueeze", "Cast", "Gather"):
            zero = bool(ins) and ins[0] in self.zeros
        elif op == "Concat":
            zero = bool(ins) and all(n in self.zeros for n in ins)
        else:
            return False
        if zero:
            self.zeros.add(node.output[0])
        return zero

    def set_view(self, name: str, view: "rnn.View") -> None:
        """Keep a rearranged tensor as a View, or as the value itself once the layout is undone."""
        if view.resolved():
            self.values[name] = rnn.base_value(self, view)
        else:
            self.views[name] = view

    def sole_reader(self, index: int, name: str):
        """The one ONNX node that reads ``name`` (and its index), when exactly one does and ``name`` is not
        a graph output."""
        idx = self.readers.get(name, [])
        if len(idx) == 1 and name not in self.outputs_of_graph and idx[0] > index:
            return idx[0], self.onnx_graph.node[idx[0]]
        return None, None

    def add(self, onnx_node, type_name: str, params: dict, inputs: list[_Value], weights: dict | None = None,
            outputs: list[str] | None = None, label: str | None = None) -> dict:
        """Add a node of ``type_name``, wire ``inputs`` to its input ports in order, infer its outputs
        and bind them to the ONNX output names."""
        spec: NodeSpec = REGISTRY[type_name]
        clean = {}
        for desc in spec.params:
            value = params.get(desc.name, desc.default)
            try:
                clean[desc.name] = desc.coerce(value)
            except ParamError as exc:
                raise _Unsupported(f"{type_name} cannot take {desc.name}={value!r}: {exc}") from None
        all_ports = spec.input_ports(clean)
        if len(inputs) > len(all_ports) or any(not p.optional for p in all_ports[len(inputs):]):
            raise _Unsupported(f"{type_name} takes {len(all_ports)} input(s), the op has {len(inputs)}")
        ports = [p.name for p in all_ports[:len(inputs)]]
        ins = {port: v.info for port, v in zip(ports, inputs)}
        try:
            outs = spec.infer(clean, ins) if spec.infer else {}
        except ShapeError as exc:
            raise _Unsupported(f"as {type_name}: {exc}") from None
        stored = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
        # The same initializers read by a second node of the same kind: shared weights (a Siamese twin, a
        # GAN's discriminator on real and fake images); the second node uses the first one's.
        key = None
        if weights:
            names = tuple(n for n in onnx_node.input if n in self.consts)
            key = (type_name, names, repr(sorted(stored.items())))
        owner = self.owners.get(key) if key else None
        node = self.graph.add_node(type_name, self._label(onnx_node, spec, weights, label), stored)
        if owner is not None:
            self.graph.set_shares(node.id, owner)
            weights = None
        elif key is not None:
            self.owners[key] = node.id
        for port, v in zip(ports, inputs):
            self.graph.connect(v.node, v.port, node.id, port)
        self.depth[node.id] = 1 + max((self.depth.get(v.node, 0) for v in inputs), default=0)
        names = outputs if outputs is not None else [o for o in onnx_node.output]
        made = {port: _Value(node.id, port, t) for port, t in outs.items()}
        for port, name in zip([p.name for p in spec.output_ports(clean)], names):
            if name and port in made:
                self.values[name] = made[port]
        if weights:
            self.weights[node.id] = {k: np.asarray(v, dtype=np.float32) if np.asarray(v).dtype.kind == "f"
                                     else np.asarray(v) for k, v in weights.items()}
        return made

    def alias(self, onnx_node, value: _Value, output_index: int = 0) -> None:
        self.values[onnx_node.output[output_index]] = value

    def _label(self, onnx_node, spec: NodeSpec, weights: dict | None, label: str | None) -> str:
        base = label
        if base is None and weights:
            for name in onnx_node.input:  # a weight named "conv1.weight" gives the label "conv1"
                m = re.match(r"^(.+?)[._](weight|kernel|W)$", name or "")
                if m and name in self.consts and name not in self.synthesized:
                    base = m.group(1)
                    break
        if base is None:
            base = _name_label(onnx_node.name)
        if base is None:
            return self.graph.unique_label(spec.prefix)
        return self._unique_label(base)

    def _unique_label(self, base: str) -> str:
        base = base.strip() or "node"
        taken = {n.label for n in self.graph.nodes.values()}
        if base not in taken:
            return base
        i = 2
        while f"{base}_{i}" in taken:
            i += 1
        return f"{base}_{i}"

    def _layout(self) -> None:
        """Columns by depth from the inputs, rows in the order nodes were made."""
        rows: dict[int, int] = defaultdict(int)
        for nid in self.graph.nodes:
            d = self.depth.get(nid, 0)
            self.graph.layout[nid] = (d * 220.0, rows[d] * 120.0)
            rows[d] += 1


# ----------------------------------------------------------------------------- converters
def _attr(node, name, default=None):
    from .onnx_tidy import attr
    return attr(node, name, default)


def _ints(value) -> list[int]:
    return [int(v) for v in value]


def _sym_pads(node, n: int) -> list[int]:
    """ONNX pads (begin..., end...) as one padding per axis; asymmetric padding is refused."""
    auto = _attr(node, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return [0] * n
    if auto not in ("NOTSET", ""):
        raise _Unsupported(f"auto_pad={auto} is not supported; only explicit pads")
    pads = _ints(_attr(node, "pads", [0] * (2 * n)))
    begin, end = pads[:n], pads[n:]
    if begin != end:
        raise _Unsupported(f"asymmetric padding pads={pads} has no equivalent (DeepCanvas pads each side equally)")
    return begin


def _conv(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    w = b.c(node.input[1], "the filter weights")
    bias = b.c(node.input[2] if len(node.input) > 2 else None, "the bias", required=False)
    k = list(w.shape[2:])
    n = len(k)
    if n not in (1, 2):
        raise _Unsupported(f"{n}-D convolution has no node type (Conv1d and Conv2d exist)")
    strides = _ints(_attr(node, "strides", [1] * n))
    dil = _ints(_attr(node, "dilations", [1] * n))
    group = int(_attr(node, "group", 1))
    auto = _attr(node, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "SAME_UPPER" and all(s == 1 for s in strides):
        pad: Any = "same"
    else:
        pad = _sym_pads(node, n)
    weights = {"weight": w}
    if bias is not None:
        weights["bias"] = bias.reshape(-1)
    common = {"out_channels": int(w.shape[0]), "groups": group, "bias": bias is not None}
    if n == 2:
        b.add(node, "Conv2d", {**common, "kernel_size": k, "stride": strides, "padding": pad, "dilation": dil},
              [x], weights)
    else:
        b.add(node, "Conv1d", {**common, "kernel_size": k[0], "stride": strides[0],
                               "padding": pad if pad == "same" else pad[0], "dilation": dil[0]}, [x], weights)


def _conv_transpose(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    w = b.c(node.input[1], "the filter weights")
    bias = b.c(node.input[2] if len(node.input) > 2 else None, "the bias", required=False)
    if w.ndim != 4:
        raise _Unsupported(f"{w.ndim - 2}-D transposed convolution has no node type (ConvTranspose2d exists)")
    if _attr(node, "output_shape") is not None:
        raise _Unsupported("output_shape is not supported; give pads and output_padding instead")
    group = int(_attr(node, "group", 1))
    weights = {"weight": w}
    if bias is not None:
        weights["bias"] = bias.reshape(-1)
    b.add(node, "ConvTranspose2d", {
        "out_channels": int(w.shape[1]) * group, "kernel_size": list(w.shape[2:]),
        "stride": _ints(_attr(node, "strides", [1, 1])), "padding": _sym_pads(node, 2),
        "output_padding": _ints(_attr(node, "output_padding", [0, 0])),
        "dilation": _ints(_attr(node, "dilations", [1, 1])), "groups": group, "bias": bias is not None,
    }, [x], weights)


def _linear_from(b: _Builder, node, x: _Value, weight: np.ndarray, bias: np.ndarray | None, outputs=None,
                 label_from=None) -> None:
    weights = {"weight": weight}
    if bias is not None:
        weights["bias"] = bias
    b.add(label_from or node, "Linear", {"out_features": int(weight.shape[0]), "bias": bias is not None}, [x],
          weights, outputs=outputs)


def _gemm(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    if int(_attr(node, "transA", 0)):
        raise _Unsupported("transA=1 (a transposed input) has no Linear equivalent")
    w = b.c(node.input[1], "the weight matrix")
    alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
    weight = w if int(_attr(node, "transB", 0)) else w.T
    if alpha != 1.0:
        weight = weight * alpha
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = b.c(node.input[2], "the bias")
        if c.size not in (1, weight.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise _Unsupported(f"bias of shape {list(c.shape)} is not one value per output feature")
        bias = np.broadcast_to(c.reshape(-1), (weight.shape[0],)) * beta if beta != 1.0 or c.size == 1 else c.reshape(-1)
        if node.input[2] in b.synthesized and not np.any(bias):
            bias = None
    _linear_from(b, node, x, weight, bias)


def _matmul(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    w = b.c(node.input[1], "the weight matrix (MatMul with two computed tensors has no node type)")
    if w.ndim != 2:
        raise _Unsupported(f"a {w.ndim}-D weight has no Linear equivalent")
    weight = np.ascontiguousarray(w.T)
    j, reader = b.sole_reader(i, node.output[0])
    if reader is not None and reader.op_type == "Add":
        other = reader.input[1] if reader.input[0] == node.output[0] else reader.input[0]
        c = b.consts.get(other)
        if c is not None and c.size == weight.shape[0] and c.shape[-1:] == (weight.shape[0],):
            b.absorbed.add(j)
            b.converted["Add"] += 1
            _linear_from(b, node, x, weight, np.ascontiguousarray(c.reshape(-1)), outputs=[reader.output[0]])
            return
    _linear_from(b, node, x, weight, None)


def _pool(kind: str):
    def convert(b: _Builder, i: int, node) -> None:
        x = b.x(node.input[0])
        if len(node.output) > 1 and node.output[1] and b.readers.get(node.output[1]):
            raise _Unsupported("the indices output of MaxPool has no equivalent")
        k = _ints(_attr(node, "kernel_shape"))
        n = len(k)
        if n not in (1, 2):
            raise _Unsupported(f"{n}-D pooling has no node type")
        strides = _ints(_attr(node, "strides", [1] * n))
        if any(d != 1 for d in _ints(_attr(node, "dilations", [1] * n))):
            raise _Unsupported("dilated pooling has no equivalent")
        pads = _sym_pads(node, n)
        if kind == "Avg" and any(pads) and not int(_attr(node, "count_include_pad", 0)):
            raise _Unsupported("average pooling with padding that excludes the padded zeros from the mean "
                               "(count_include_pad=0) has no equivalent; PyTorch's AvgPool counts them")
        ceil = bool(int(_attr(node, "ceil_mode", 0)))
        if n == 2:
            b.add(node, f"{kind}Pool2d", {"kernel_size": k, "stride": strides, "padding": pads, "ceil_mode": ceil}, [x])
        else:
            b.add(node, f"{kind}Pool1d", {"kernel_size": k[0], "stride": strides[0], "padding": pads[0],
                                          "ceil_mode": ceil}, [x])
    return convert


def _global_pool(type_name: str):
    def convert(b: _Builder, i: int, node) -> None:
        x = b.x(node.input[0])
        if x.info.rank != 4:
            raise _Unsupported(f"{type_name} takes (N, C, H, W), got {x.info}")
        b.add(node, type_name, {"keepdim": True}, [x])
    return convert


def _reduce(type_name: str):
    def convert(b: _Builder, i: int, node) -> None:
        x = b.x(node.input[0])
        axes = _attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = b.c(node.input[1], "the axes").reshape(-1).tolist()
        if axes is None:
            raise _Unsupported("reducing over all axes (the batch too) has no equivalent")
        norm = sorted(int(a) % x.info.rank for a in axes)
        if x.info.rank != 4 or norm != [2, 3]:
            raise _Unsupported(f"only the mean/max over H and W of (N, C, H, W) has a node type ({type_name}); "
                               f"this reduces axes {list(axes)} of {x.info}")
        b.add(node, type_name, {"keepdim": bool(int(_attr(node, "keepdims", 1)))}, [x])
    return convert


def _batchnorm(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    if int(_attr(node, "training_mode", 0)) or any(o and b.readers.get(o) for o in node.output[1:]):
        raise _Unsupported("training-mode BatchNormalization (batch statistics as outputs) has no equivalent")
    scale, bias, mean, var = (b.c(n, w) for n, w in zip(node.input[1:5], ("the scale", "the shift", "the running "
                                                                         "mean", "the running variance")))
    type_name = {4: "BatchNorm2d", 2: "BatchNorm1d", 3: "BatchNorm1d"}.get(x.info.rank)
    if type_name is None:
        raise _Unsupported(f"BatchNormalization of a {x.info.rank}-D input has no node type")
    momentum = 1.0 - float(_attr(node, "momentum", 0.9))
    b.add(node, type_name, {"eps": float(_attr(node, "epsilon", 1e-5)), "momentum": round(momentum, 7)}, [x],
          {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var})


def _layernorm(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    axis = int(_attr(node, "axis", -1)) % x.info.rank
    if axis == 0:
        raise _Unsupported("normalising across the batch axis has no equivalent")
    scale = b.c(node.input[1], "the scale")
    bias = b.c(node.input[2] if len(node.input) > 2 else None, "the shift", required=False)
    affine = not (node.input[1] in b.synthesized and np.all(scale == 1)
                  and (bias is None or (node.input[2] in b.synthesized and not np.any(bias))))
    params = {"axes": x.info.rank - axis, "eps": float(_attr(node, "epsilon", 1e-5)), "elementwise_affine": affine,
              "bias": affine and bias is not None}
    weights = {}
    if affine:
        weights["weight"] = scale
        if bias is not None:
            weights["bias"] = bias
    if any(o and b.readers.get(o) for o in node.output[1:]):
        raise _Unsupported("the mean / inverse deviation outputs of LayerNormalization have no equivalent")
    b.add(node, "LayerNorm", params, [x], weights, label=None)


def _lrn(b: _Builder, i: int, node) -> None:
    b.add(node, "LocalResponseNorm", {"size": int(_attr(node, "size")), "alpha": float(_attr(node, "alpha", 1e-4)),
                                      "beta": float(_attr(node, "beta", 0.75)), "k": float(_attr(node, "bias", 1.0))},
          [b.x(node.input[0])])


def _simple(type_name: str, params: Callable | None = None):
    def convert(b: _Builder, i: int, node) -> None:
        b.add(node, type_name, params(node) if params else {}, [b.x(node.input[0])])
    return convert


def _softmax(type_name: str):
    def convert(b: _Builder, i: int, node) -> None:
        x = b.x(node.input[0])
        default = -1 if b.opset >= 13 else 1
        axis = int(_attr(node, "axis", default)) % x.info.rank
        if b.opset < 13 and axis != x.info.rank - 1:
            raise _Unsupported(f"opset {b.opset} {node.op_type} over axes {axis}.. together has no equivalent")
        b.add(node, type_name, {"dim": axis - x.info.rank if axis else 0}, [x])
    return convert


def _gelu_params(node) -> dict:
    a = _attr(node, "approximate", b"none")
    return {"approximate": a.decode() if isinstance(a, bytes) else a}


def _binary(type_name: str, verb: str):
    def convert(b: _Builder, i: int, node) -> None:
        for name in node.input:
            if name in b.consts:
                raise _Unsupported(f"{verb} the constant '{name}'; DeepCanvas's {type_name} joins computed "
                                   "tensors only")
        b.add(node, type_name, {"inputs": 2} if type_name != "Subtract" else {}, [b.x(n) for n in node.input])
    return convert


def _concat(b: _Builder, i: int, node) -> None:
    xs = [b.x(n) for n in node.input]
    if len(xs) == 1:
        b.alias(node, xs[0])
        return
    axis = int(_attr(node, "axis")) % xs[0].info.rank
    if axis == 0:
        raise _Unsupported("concatenating along the batch axis has no equivalent")
    if len(xs) > 16:
        raise _Unsupported(f"Concat takes at most 16 inputs, this one has {len(xs)}")
    b.add(node, "Concat", {"inputs": len(xs), "dim": axis}, xs)


def _flatten(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    axis = int(_attr(node, "axis", 1)) % max(x.info.rank, 1)
    if axis != 1 and not (axis == 0 and x.info.rank == 1):
        raise _Unsupported(f"Flatten(axis={axis}) merges the batch axis with others; only axis 1 has an equivalent")
    if x.info.rank <= 2:
        b.alias(node, x)
        return
    b.add(node, "Flatten", {"start_dim": 1, "end_dim": -1}, [x])


def _reshape_to(b: _Builder, node, x: _Value, target: list) -> None:
    """Flatten when the new shape merges neighbouring axes, else Reshape (the batch axis must stay)."""
    shape = list(x.info.shape)
    rest = target[1:]
    if list(rest) == list(shape[1:]):
        b.alias(node, x)
        return
    n = len(shape)
    for start in range(1, n):
        for end in range(start, n):
            merged = shape[start:end + 1]
            if not all(isinstance(d, int) for d in merged):
                continue
            size = int(np.prod(merged))
            want = shape[1:start] + [size] + shape[end + 1:]
            if end > start and (list(rest) == want or (rest.count(-1) == 1 and end == n - 1
                                                        and list(rest[:-1]) == want[:-1] and rest[-1] == -1)):
                b.add(node, "Flatten", {"start_dim": start, "end_dim": -1 if end == n - 1 else end}, [x])
                return
    if any(not isinstance(d, int) for d in rest):
        raise _Unsupported(f"reshape of {x.info} to {target}: sizes that depend on run-time axes have no equivalent")
    b.add(node, "Reshape", {"shape": [int(d) for d in rest]}, [x])


def _reshape(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    raw = b.c(node.input[1], "the target shape").reshape(-1).tolist()
    allowzero = int(_attr(node, "allowzero", 0))
    target = []
    for axis, d in enumerate(raw):
        d = int(d)
        if d == 0 and not allowzero:
            if axis >= x.info.rank:
                raise _Unsupported(f"target {raw} copies axis {axis}, which the input {x.info} lacks")
            target.append(x.info.shape[axis])
        else:
            target.append(d)
    first = target[0] if target else None
    if not (first == BATCH or first == -1 or (b.static_batch is not None and first == b.static_batch)):
        raise _Unsupported(f"reshape of {x.info} to {raw} does not keep the batch axis first")
    if first == -1 and -1 in target[1:]:
        raise _Unsupported(f"reshape to {raw} leaves two sizes to be worked out")
    if first == -1:
        # the batch is what is left over: valid when the rest holds exactly one sample's values
        per_sample = 1
        for d in x.info.shape[1:]:
            if not isinstance(d, int):
                raise _Unsupported(f"reshape of {x.info} to {raw}: the batch cannot be worked out with "
                                   "run-time axes")
            per_sample *= d
        rest = [d for d in target[1:]]
        if any(not isinstance(d, int) for d in rest) or int(np.prod(rest)) != per_sample:
            raise _Unsupported(f"reshape of {x.info} to {raw} mixes the batch axis with the others")
    _reshape_to(b, node, x, [BATCH, *target[1:]])


def _squeeze_like(b: _Builder, i: int, node) -> None:
    """Squeeze / Unsqueeze of non-batch axes: a Reshape to the resulting per-sample shape."""
    x = b.x(node.input[0])
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = b.c(node.input[1], "the axes").reshape(-1).tolist()
    shape = list(x.info.shape)
    if node.op_type == "Squeeze":
        if axes is None:
            axes = [a for a, d in enumerate(shape) if d == 1 and a > 0]
        axes = sorted(int(a) % len(shape) for a in axes)
        if 0 in axes:
            raise _Unsupported("squeezing the batch axis has no equivalent")
        if any(shape[a] != 1 for a in axes):
            raise _Unsupported(f"squeeze of axes {axes} of {x.info}: those axes are not all of size 1")
        out = [d for a, d in enumerate(shape) if a not in axes]
    else:
        if axes is None:
            raise _Unsupported("Unsqueeze needs its axes")
        rank = len(shape) + len(axes)
        axes = sorted(int(a) % rank for a in axes)
        if 0 in axes:
            raise _Unsupported("a new axis in front of the batch has no equivalent")
        out, it = [], iter(shape)
        for a in range(rank):
            out.append(1 if a in axes else next(it))
    _reshape_to(b, node, x, out)


def _transpose(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    perm = _ints(_attr(node, "perm", list(reversed(range(x.info.rank)))))
    if perm[0] != 0:  # time-major for a recurrent op, perhaps: an error only if a node must read it so
        b.set_view(node.output[0], rnn.view_of_value(x, perm))
        return
    if perm == list(range(len(perm))):
        b.alias(node, x)
        return
    b.add(node, "Permute", {"dims": perm[1:]}, [x])


def _dropout(b: _Builder, i: int, node) -> None:
    x = b.x(node.input[0])
    if len(node.output) > 1 and node.output[1] and b.readers.get(node.output[1]):
        raise _Unsupported("the mask output of Dropout has no equivalent")
    ratio = _attr(node, "ratio")
    if ratio is None and len(node.input) > 1 and node.input[1]:
        ratio = float(b.c(node.input[1], "the ratio"))
    b.add(node, "Dropout", {"p": float(0.5 if ratio is None else ratio)}, [x], outputs=[node.output[0]])


def _identity(b: _Builder, i: int, node) -> None:
    b.alias(node, b.x(node.input[0]))


def _gather(b: _Builder, i: int, node) -> None:
    table = b.consts.get(node.input[0])
    if table is None or table.ndim != 2 or int(_attr(node, "axis", 0)) != 0 or node.input[1] in b.consts:
        raise _Unsupported("only a lookup of computed int64 ids in a constant 2-D table (an embedding) has an "
                           "equivalent (Embedding)")
    ids = b.x(node.input[1])
    if ids.info.dtype != "int64":
        raise _Unsupported(f"Embedding takes int64 ids, got {ids.info.dtype}")
    b.add(node, "Embedding", {"num_embeddings": int(table.shape[0]), "embedding_dim": int(table.shape[1])}, [ids],
          {"weight": table}, label=_weight_label(node.input[0]))


def _name_label(name: str) -> str | None:
    """A label from an ONNX node name when it reads like one a person gave ('dense1', '/encoder/fc/Gemm'
    gives 'encoder.fc'), not like an exporter's counter ('node_conv2d_3', 'Conv_12')."""
    if not name:
        return None
    if name.startswith("/"):
        parts = [p for p in name.split("/") if p][:-1]  # the last part is the op
        return ".".join(parts) or None
    if name.startswith("node_") or re.fullmatch(r"[A-Z][A-Za-z]*(_\d+)?", name) or not re.fullmatch(r"[\w.\-]+", name):
        return None
    return name


def _weight_label(name: str) -> str | None:
    m = re.match(r"^(.+?)[._](weight|kernel|W)$", name or "")
    return m.group(1) if m else None


def _fuse_attention(g) -> None:
    """softmax(Q K^T * scale) V, as the legacy exporter writes scaled_dot_product_attention, becomes one
    op of our own domain (deepcanvas.ScaledDotProductAttention(Q, K, V)) that the converter maps to the
    node; K is the key before its transpose. The scale is checked by the verification like everything."""
    from onnx import helper, numpy_helper

    consts = {i.name: i for i in g.initializer}
    nodes = list(g.node)
    producer = {o: n for n in nodes for o in n.output if o}
    readers: dict[str, int] = defaultdict(int)
    for n in nodes:
        for name in n.input:
            readers[name] += 1
    outputs = {o.name for o in g.output}

    def only(name) -> bool:
        return readers[name] == 1 and name not in outputs

    def unscaled(name, removed):  # Mul/Div by a scalar constant, or nothing
        n = producer.get(name)
        if n is not None and n.op_type in ("Mul", "Div") and only(name) and n.input[1] in consts:
            c = numpy_helper.to_array(consts[n.input[1]])
            if c.size == 1:
                removed.append(n)
                return n.input[0]
        return name

    replaced, added = {}, []
    for m2 in nodes:
        if m2.op_type != "MatMul" or id(m2) in replaced:
            continue
        removed: list = []
        sm = producer.get(m2.input[0])
        if sm is None or sm.op_type != "Softmax" or not only(m2.input[0]):
            continue
        m1 = producer.get(sm.input[0])
        if m1 is None or m1.op_type != "MatMul" or not only(sm.input[0]):
            continue
        q = unscaled(m1.input[0], removed)
        kt = unscaled(m1.input[1], removed)
        tr = producer.get(kt)
        if tr is None or tr.op_type != "Transpose" or not only(kt):
            continue
        perm = list(helper.get_attribute_value(next(a for a in tr.attribute if a.name == "perm")))
        if len(perm) < 3:
            continue
        swap = list(range(len(perm)))
        swap[-2], swap[-1] = swap[-1], swap[-2]
        key_perm = [perm[i] for i in swap]  # the key, (N, ..., S, E), from the transpose's input
        key = tr.input[0]
        if key_perm != list(range(len(perm))):
            key = f"{tr.output[0]}__key"
            added.append((tr, helper.make_node("Transpose", [tr.input[0]], [key], name=f"{tr.name}__key",
                                               perm=key_perm)))
        fused = helper.make_node("ScaledDotProductAttention", [q, key, m2.input[1]], [m2.output[0]],
                                 name=m2.name or f"attention_{m2.output[0]}", domain="deepcanvas")
        for n in [sm, m1, tr, *removed]:
            replaced[id(n)] = None
        replaced[id(m2)] = fused
    if not replaced:
        return
    extra = {id(tr): new for tr, new in added}
    out = []
    for n in nodes:
        if id(n) in extra:
            out.append(extra[id(n)])
        if id(n) in replaced:
            if replaced[id(n)] is not None:
                out.append(replaced[id(n)])
        else:
            out.append(n)
    del g.node[:]
    g.node.extend(out)


def _fuse_kl(g) -> None:
    """-0.5 * (1 + logvar - mu**2 - exp(logvar)) summed over the latent axes is the KL term of a VAE's
    sampler; in eval mode (and so in an ONNX file) its sample z is mu itself. The pattern becomes one op
    of our own domain, deepcanvas.Reparameterize(mu, logvar) -> (z, kl), and what read mu reads z, so the
    imported graph samples again when it is trained, as the VAE it came from did."""
    from onnx import helper, numpy_helper

    consts = {i.name: i for i in g.initializer}
    nodes = list(g.node)
    producer = {o: n for n in nodes for o in n.output if o}
    readers: dict[str, int] = defaultdict(int)
    for n in nodes:
        for name in n.input:
            readers[name] += 1
    outputs = {o.name for o in g.output}

    def scalar(name):
        if name in consts and int(np.prod(consts[name].dims)) == 1:
            return float(numpy_helper.to_array(consts[name]).reshape(-1)[0])
        return None

    def private(name) -> bool:
        return readers[name] == 1 and name not in outputs

    def split(n, value):  # (the computed operand, whether the other one is the scalar `value`)
        a, b = n.input[0], n.input[1]
        if scalar(b) == value:
            return a
        if scalar(a) == value and n.op_type in ("Add", "Mul"):
            return b
        return None

    fused = {}
    for rs in nodes:
        if rs.op_type != "ReduceSum":
            continue
        try:
            axes = [a for a in rs.attribute if a.name == "axes"]
            axes = list(helper.get_attribute_value(axes[0])) if axes else (
                numpy_helper.to_array(consts[rs.input[1]]).reshape(-1).tolist() if len(rs.input) > 1 else None)
            keep = [a for a in rs.attribute if a.name == "keepdims"]
            assert axes == [1] and keep and helper.get_attribute_value(keep[0]) == 0
            chain, name = [], rs.input[0]
            while producer.get(name) is not None and producer[name].op_type in ("Reshape", "Flatten") and private(name):
                chain.append(producer[name])
                name = producer[name].input[0]
            mul = producer[name]
            assert mul.op_type == "Mul" and private(name)
            inner = split(mul, -0.5)
            sub2 = producer[inner]
            assert sub2.op_type == "Sub" and private(inner)
            exp = producer[sub2.input[1]]
            assert exp.op_type == "Exp" and private(sub2.input[1])
            logvar = exp.input[0]
            sub1 = producer[sub2.input[0]]
            assert sub1.op_type == "Sub" and private(sub2.input[0])
            add = producer[sub1.input[0]]
            assert add.op_type == "Add" and private(sub1.input[0]) and split(add, 1.0) == logvar
            sq = producer[sub1.input[1]]
            assert private(sub1.input[1])
            if sq.op_type == "Pow":
                assert scalar(sq.input[1]) == 2.0
                mu = sq.input[0]
            else:
                assert sq.op_type == "Mul" and sq.input[0] == sq.input[1]
                mu = sq.input[0]
        except (AssertionError, KeyError, IndexError, TypeError):
            continue
        z = f"{mu}__z"
        node = helper.make_node("Reparameterize", [mu, logvar], [z, rs.output[0]], name=rs.name or "sample",
                                domain="deepcanvas")
        fused[id(rs)] = (node, [mul, sub2, exp, sub1, add, sq, *chain], mu, z)
    if not fused:
        return
    gone = {id(n) for _, parts, _, _ in fused.values() for n in parts}
    out = []
    for n in nodes:
        if id(n) in fused:
            out.append(fused[id(n)][0])
        elif id(n) not in gone:
            out.append(n)
    renames = {mu: z for _, _, mu, z in fused.values()}
    for n in out:  # what read mu reads the sample z (mu itself in eval mode)
        if not (n.domain == "deepcanvas" and n.op_type == "Reparameterize"):
            for k, name in enumerate(n.input):
                if name in renames:
                    n.input[k] = renames[name]
    del g.node[:]
    g.node.extend(_toposort(out, {i.name for i in g.input} | set(consts)))


def _toposort(nodes: list, ready: set[str]) -> list:
    """Nodes in an order where each comes after what it reads (stable: the given order where it can)."""
    ready = set(ready) | {""}
    pending, out = list(nodes), []
    while pending:
        progressed = False
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                out.append(n)
                ready.update(n.output)
                progressed = True
            else:
                rest.append(n)
        if not progressed:  # a cycle cannot happen; keep what is left rather than lose it
            return out + rest
        pending = rest
    return out


def _attention(b: _Builder, i: int, node) -> None:
    b.add(node, "ScaledDotProductAttention", {}, [b.x(n) for n in node.input])


def _sampler(b: _Builder, i: int, node) -> None:
    b.add(node, "Reparameterize", {}, [b.x(n) for n in node.input])


_OWN_OPS = {"ScaledDotProductAttention": _attention, "Reparameterize": _sampler}


def _recurrent(b: _Builder, i: int, node) -> None:
    layout = int(_attr(node, "layout", 0))
    name = node.input[0]
    if name in b.views and layout == 0 and b.views[name].is_time_major_input():
        source = rnn.base_value(b, b.views[name])
    elif name in b.values and layout == 1:
        source = b.values[name]
    else:
        raise _Unsupported("its input is not a batch-first sequence (N, T, features) seen time-major")
    if source.info.rank != 3:
        raise _Unsupported(f"expects a sequence (N, T, features), got {source.info}")
    rnn.convert(b, node, source, layout)


def _axes_of(b: _Builder, node, index: int = 1) -> list[int] | None:
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > index and node.input[index]:
        axes = b.c(node.input[index], "the axes").reshape(-1).tolist()
    return None if axes is None else [int(a) for a in axes]


def _view_op(b: _Builder, i: int, node) -> None:
    """Transpose, Squeeze, Unsqueeze, Reshape, Gather, Slice, Concat, Identity of a rearranged tensor."""
    op = node.op_type
    if op == "Concat":
        if not all(n in b.views for n in node.input):
            raise _Unsupported("joins a recurrent op's time-major output with other tensors")
        b.set_view(node.output[0], rnn.concat([b.views[n] for n in node.input], int(_attr(node, "axis"))))
        return
    view = b.views[node.input[0]]
    if any(n in b.views for n in node.input[1:]):
        raise _Unsupported("uses a recurrent op's output as a shape or an index")
    if op == "Identity":
        new = view
    elif op == "Transpose":
        new = rnn.transpose(view, _ints(_attr(node, "perm", list(reversed(range(len(view.axes)))))))
    elif op == "Squeeze":
        new = rnn.squeeze(view, _axes_of(b, node))
    elif op == "Unsqueeze":
        new = rnn.unsqueeze(view, _axes_of(b, node))
    elif op == "Reshape":
        new = rnn.reshape(view, [int(v) for v in b.c(node.input[1], "the target shape").reshape(-1)],
                          bool(int(_attr(node, "allowzero", 0))))
    elif op == "Gather":
        index = b.c(node.input[1], "the index")
        if index.ndim != 0:
            raise _Unsupported("gathers several entries of a recurrent output")
        k = int(index)
        new = rnn.select(view, int(_attr(node, "axis", 0)), k if k >= 0 else _axis_len(view, node) + k,
                         (k if k >= 0 else _axis_len(view, node) + k) + 1, keep_axis=False)
    elif op == "Slice":
        starts, ends = (b.c(n, "the slice bounds").reshape(-1) for n in node.input[1:3])
        axes = b.c(node.input[3], "the axes").reshape(-1) if len(node.input) > 3 and node.input[3] else [0]
        steps = b.c(node.input[4], "the steps").reshape(-1) if len(node.input) > 4 and node.input[4] else [1]
        if len(starts) != 1 or int(steps[0]) != 1:
            raise _Unsupported("a strided or multi-axis slice of a recurrent output has no equivalent")
        n = _axis_len(view, node, int(axes[0]))
        lo, hi = int(starts[0]), int(ends[0])
        lo = max(lo + n, 0) if lo < 0 else min(lo, n)
        hi = max(hi + n, 0) if hi < 0 else min(hi, n)
        new = rnn.select(view, int(axes[0]), lo, hi, keep_axis=True)
    else:  # pragma: no cover - VIEW_OPS lists only the ops above
        raise _Unsupported("has no equivalent for a rearranged tensor")
    b.set_view(node.output[0], new)


def _axis_len(view, node, axis: int | None = None) -> int:
    axis = int(_attr(node, "axis", 0)) if axis is None else axis
    if view.parts:
        return sum(p.size(p.axes[0]) for p in view.parts) if axis == 0 else 1 << 40
    size = view.size(view.axes[axis % len(view.axes)])
    return size if isinstance(size, int) else 1 << 40


VIEW_OPS = {op: _view_op for op in ("Identity", "Transpose", "Squeeze", "Unsqueeze", "Reshape", "Gather", "Slice",
                                    "Concat")}

# Inputs that only carry sizes; a node whose outputs feed nothing else is shape arithmetic, not a layer.
_SHAPE_INPUTS = {("ConstantOfShape", 0), ("Expand", 1), ("Reshape", 1), ("Tile", 1), ("Slice", 1), ("Slice", 2),
                 ("Slice", 3), ("Slice", 4), ("Squeeze", 1), ("Unsqueeze", 1), ("ReduceMean", 1),
                 ("ReduceMax", 1), ("ReduceSum", 1), ("Pad", 1), ("Resize", 2), ("Resize", 3), ("Range", 0),
                 ("Range", 1), ("Range", 2)}


def _shape_only(g, readers, outputs: set[str]) -> set[int]:
    """Nodes whose every output is read only as a size (or by such nodes). Their readers report it when
    a size is computed at run time where a node needs it fixed."""
    nodes = list(g.node)
    found: set[int] = set()
    for i in range(len(nodes) - 1, -1, -1):
        outs = [o for o in nodes[i].output if o]
        if not outs or any(o in outputs for o in outs) or not any(readers.get(o) for o in outs):
            continue
        ok = True
        for o in outs:
            for j in readers.get(o, []):
                r = nodes[j]
                if j in found:
                    continue
                if not all((r.op_type, k) in _SHAPE_INPUTS for k, n in enumerate(r.input) if n == o):
                    ok = False
        if ok:
            found.add(i)
    return found


CONVERTERS: dict[str, Callable[[_Builder, int, Any], None]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "MaxPool": _pool("Max"),
    "AveragePool": _pool("Avg"),
    "GlobalAveragePool": _global_pool("GlobalAvgPool2d"),
    "GlobalMaxPool": _global_pool("GlobalMaxPool2d"),
    "ReduceMean": _reduce("GlobalAvgPool2d"),
    "ReduceMax": _reduce("GlobalMaxPool2d"),
    "BatchNormalization": _batchnorm,
    "LayerNormalization": _layernorm,
    "LRN": _lrn,
    "Relu": _simple("ReLU"),
    "Sigmoid": _simple("Sigmoid"),
    "Tanh": _simple("Tanh"),
    "LeakyRelu": _simple("LeakyReLU", lambda n: {"negative_slope": float(_attr(n, "alpha", 0.01))}),
    "Elu": _simple("ELU", lambda n: {"alpha": float(_attr(n, "alpha", 1.0))}),
    "Gelu": _simple("GELU", _gelu_params),
    "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"),
    "Add": _binary("Add", "adds"),
    "Mul": _binary("Multiply", "multiplies by"),
    "Sub": _binary("Subtract", "subtracts"),
    "Concat": _concat,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze_like,
    "Unsqueeze": _squeeze_like,
    "Transpose": _transpose,
    "Dropout": _dropout,
    "Identity": _identity,
    "Gather": _gather,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "RNN": _recurrent,
}
# Only node types the registry has: a build without (say) LayerNorm lists the op as unsupported.
_NEEDS = {"Conv": "Conv2d", "ConvTranspose": "ConvTranspose2d", "LayerNormalization": "LayerNorm",
          "LRN": "LocalResponseNorm", "Gather": "Embedding", "Sub": "Subtract", "Mul": "Multiply",
          "Transpose": "Permute", "GlobalMaxPool": "GlobalMaxPool2d", "ReduceMax": "GlobalMaxPool2d",
          "LeakyRelu": "LeakyReLU", "Elu": "ELU", "Gelu": "GELU", "LogSoftmax": "LogSoftmax", "LSTM": "LSTM",
          "GRU": "GRU", "RNN": "RNN"}
for _op, _type in _NEEDS.items():
    if _type not in REGISTRY:
        CONVERTERS.pop(_op, None)


# ----------------------------------------------------------------------------- verification
def _verify(result: ImportResult, path: Path, tolerance: float, threads: int) -> None:
    import onnxruntime as ort
    import torch

    from .compiler import build
    from .export import _int_input_high, _max_abs_diff
    from .onnx_weights import load_into

    graph = result.graph
    compiled = build(graph, 0)
    model = compiled.model.eval()
    load_into(model, compiled.plan.attrs, result.weights, "the imported weights")
    result.report.params = compiled.inference.total_params
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = max(1, threads), 1
    so.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise OnnxImportError(path, [f"onnxruntime cannot run the file, so the import cannot be checked: "
                                     f"{_first_line(exc)}"]) from None
    ort_inputs = {i.name: i for i in session.get_inputs()}
    plan_inputs = [(nid, graph.nodes[nid].label) for nid, _ in compiled.plan.inputs]
    output_labels = [graph.nodes[nid].label for nid, _ in compiled.plan.outputs]
    symbols = sorted({d for nid, _ in plan_inputs for d in compiled.inference.shape(nid).shape[1:]
                      if isinstance(d, str)})
    fixed = None
    for nid, label in plan_inputs:
        first = ort_inputs[label].shape[0] if label in ort_inputs else None
        if isinstance(first, int):
            fixed = first
    batches = (fixed, fixed) if fixed else CHECK_BATCHES
    for which, batch in enumerate(batches):
        gen = torch.Generator().manual_seed(1000 + which)
        axes = {s: (3, 6)[which] + k for k, s in enumerate(symbols)}
        args = []
        for nid, label in plan_inputs:
            t = compiled.inference.shape(nid)
            shape = [batch] + [axes[d] if isinstance(d, str) else d for d in t.shape[1:]]
            if t.dtype == "int64":
                args.append(torch.randint(0, _int_input_high(graph, nid), shape, generator=gen))
            else:
                args.append(torch.randn(shape, generator=gen))
        with torch.no_grad():
            got = model(*args)
        got = got if isinstance(got, tuple) else (got,)
        feeds = {label: a.numpy() for (nid, label), a in zip(plan_inputs, args)}
        try:
            want = session.run(output_labels, feeds)
        except Exception as exc:
            raise OnnxImportError(path, [f"onnxruntime failed on random inputs at batch {batch}: "
                                         f"{_first_line(exc)}"]) from None
        diffs = {}
        for label, g, w in zip(output_labels, got, want):
            if tuple(g.shape) != tuple(w.shape):
                raise OnnxImportError(path, [f"output '{label}': the imported graph gives shape {tuple(g.shape)}, "
                                             f"the ONNX file {tuple(w.shape)} at batch {batch}"])
            diffs[label] = _max_abs_diff(g.numpy(), w)
        result.report.checks.append({"batch": batch, "axes": axes, "max_abs_diff": diffs})
        worst = max(diffs, key=diffs.get)
        if not diffs[worst] <= tolerance:
            raise OnnxImportError(path, [f"output '{worst}': the imported graph differs from the ONNX file by "
                                         f"{diffs[worst]:.3g} at batch {batch} (tolerance {tolerance:g}); an op was "
                                         "mapped to a node that does not compute the same thing"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__


# ----------------------------------------------------------------------------- command line
def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import", help="turn an ONNX model into a DeepCanvas graph with its weights (verified with onnxruntime)",
        description="Import an ONNX model: each op becomes a node, initializers become the weights (saved "
                    "beside the graph as .safetensors). Ops with no node type are listed; nothing is written "
                    "then.")
    p.add_argument("model", help="the ONNX file")
    p.add_argument("-o", "--output", required=True, metavar="FILE.dcnet", help="the graph file to write")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help=f"max abs difference (default {TOLERANCE:g})")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    import sys

    from .onnx_weights import WeightsError

    out = Path(args.output)
    if out.suffix != ".dcnet":
        out = out.with_name(out.name + ".dcnet")
    if not out.parent.exists():
        print(f"deepcanvas: cannot write {out}: the folder {out.parent} does not exist", file=sys.stderr)
        return 2
    try:
        result = import_onnx(args.model, tolerance=args.tolerance)
        weights = save_imported(result, out)
    except OnnxImportError as exc:
        print(f"deepcanvas: {exc}", file=sys.stderr)
        return 1
    except WeightsError as exc:
        print(f"deepcanvas: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**result.report.to_json(), "graph_file": str(out), "weights_file": str(weights)}, indent=2))
    else:
        print(result.text())
        print(f"wrote {out} and {weights}")
    return 0


__all__ = ["import_onnx", "save_imported", "ImportResult", "ImportReport", "OnnxImportError", "CONVERTERS",
           "register"]
