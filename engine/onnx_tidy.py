"""Tidy an ONNX graph: fold what is constant, resolve shape arithmetic, drop what nothing reads.

Both the exporter and the importer use this. torch's exporters leave small constant computations in the
file when their own optimiser is off (a zero bias built with Shape/Expand/CastLike for a Conv without
bias, ``Identity`` copies of shared parameters, ``Shape -> Gather -> Concat -> Reshape`` chains for a
flatten with a dynamic batch). We switch their optimiser off on purpose (see ``engine.export``: it
would fold BatchNorm into the convolution, so the file would no longer be the graph the user drew), and
do the harmless part of its work here:

- a node whose inputs are all constants is evaluated once (``onnx.reference``) and becomes an initializer;
- ``Shape`` of a tensor whose shape is known becomes a vector of sizes, symbolic where the axis is
  (``batch``); the usual shape arithmetic (Gather, Slice, Squeeze, Unsqueeze, Concat, Cast) is followed,
  and a ``Reshape`` whose target is such a vector gets a constant target (``0`` = keep that input axis,
  ``-1`` = the one remaining symbolic size);
- a bias that was synthesised as all zeros (not one of the model's own weights) is removed from
  Conv / ConvTranspose / Gemm, which is what PyTorch's ``bias=False`` means;
- nodes whose outputs nothing reads, and unused initializers, are dropped;
- the exporter's per-node debugging metadata (stack traces with local file paths) is removed.

Only standard-domain, deterministic nodes without subgraphs are folded. The result is checked by
``onnx.checker`` and onnxruntime in every export, so a folding mistake cannot pass unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

FOLD_LIMIT = 1 << 22  # elements: larger constant results stay as nodes (a runtime computes them once)
_RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli",
               "Multinomial", "Dropout"}
_OPTIONAL_BIAS = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2}
_METADATA_PREFIXES = ("pkg.torch.", "namespace")
_INT_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}
_SHAPE_OPS = {"Shape", "Reshape", "Identity", "Cast", "Concat", "Gather", "Squeeze", "Unsqueeze", "Slice"}


@dataclass
class TidyResult:
    model: onnx.ModelProto
    folded: int = 0  # nodes evaluated into constants
    removed: int = 0  # nodes dropped as unused
    origins: dict[str, str] = field(default_factory=dict)  # node name -> exporter stack trace (before stripping)
    synthesized: set[str] = field(default_factory=set)  # initializers made here (folded), not the model's own


class _Sym:
    """A 1-D int64 vector of sizes in which some entries are symbolic axis names."""

    def __init__(self, items, scalar: bool = False):
        self.items = list(items)
        self.scalar = scalar  # a 0-D value (one size), as Gather with a scalar index gives

    @property
    def known(self) -> bool:
        return all(isinstance(v, (int, np.integer)) for v in self.items)

    def array(self) -> np.ndarray:
        values = np.array([int(v) for v in self.items], dtype=np.int64)
        return values.reshape(()) if self.scalar else values


def opset_of(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return 0


def attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a ``Constant`` node, whichever attribute holds it."""
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.array(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), dtype=np.int64)
    return None


def tensor_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Type (element type and shape) of every tensor the model names, running ONNX shape inference on a
    weight-free copy when the file carries no ``value_info`` for some of them."""
    g = model.graph
    types = {vi.name: vi.type for vi in [*g.input, *g.value_info, *g.output] if vi.type.HasField("tensor_type")}
    needed = {o for n in g.node for o in n.output if o} - types.keys()
    if needed:
        light = onnx.ModelProto()
        _copy_without_weights(model, light)
        try:
            inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
            for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
                types.setdefault(vi.name, vi.type)
        except Exception:  # inference is a help, not a requirement
            pass
    for init in g.initializer:
        t = onnx.TypeProto()
        t.tensor_type.elem_type = init.data_type
        for d in init.dims:
            t.tensor_type.shape.dim.add().dim_value = d
        types[init.name] = t
    return types


def _copy_without_weights(model: onnx.ModelProto, out: onnx.ModelProto) -> None:
    """A copy whose large initializers are declared as typed graph inputs (shapes survive, data does not)."""
    out.CopyFrom(onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import))
    out.graph.CopyFrom(onnx.GraphProto(name=model.graph.name, node=model.graph.node, input=model.graph.input,
                                       output=model.graph.output, value_info=model.graph.value_info))
    for init in model.graph.initializer:
        if int(np.prod(init.dims)) <= 4096:
            out.graph.initializer.append(init)
        else:
            out.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))


def shape_of(t: onnx.TypeProto | None) -> list | None:
    """Dims of a tensor type: ints, symbolic names, or None for an unknown axis; None for unknown rank."""
    if t is None or not t.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in t.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def _evaluate(node: onnx.NodeProto, inputs: list[np.ndarray], opsets: dict[str, int]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" for i in range(len(node.input))]
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    del copy.input[:]
    copy.input.extend(n if node.input[i] else "" for i, n in enumerate(names))
    feeds = {n: v for n, v, orig in zip(names, inputs, node.input) if orig}
    return list(ReferenceEvaluator(copy, opsets=opsets).run(None, feeds))


def tidy(model: onnx.ModelProto, strip_metadata: bool = True, inplace: bool = False) -> TidyResult:
    """A tidied copy of ``model`` (or ``model`` itself, changed, when ``inplace``)."""
    if inplace:
        model_out = model
    else:
        model_out = onnx.ModelProto()
        model_out.CopyFrom(model)
    g = model_out.graph
    opsets = {imp.domain or "": imp.version for imp in model_out.opset_import}
    types = tensor_types(model_out)
    original = {init.name for init in g.initializer}
    consts: dict[str, np.ndarray] = {}
    lazy_inits = {init.name: init for init in g.initializer}
    syms: dict[str, _Sym] = {}
    result = TidyResult(model_out)

    def const(name: str) -> np.ndarray | None:
        if name in consts:
            return consts[name]
        init = lazy_inits.get(name)
        if init is not None:
            consts[name] = numpy_helper.to_array(init)
            return consts[name]
        return None

    def is_const(name: str) -> bool:
        return name in consts or name in lazy_inits

    def sym(name: str) -> _Sym | None:
        if name in syms:
            return syms[name]
        init = lazy_inits.get(name)
        if init is not None and name not in consts and (len(init.dims) > 1 or init.data_type not in _INT_TYPES):
            return None  # a weight, not a size vector: do not unpack it
        value = const(name) if is_const(name) else None
        if value is not None and value.dtype.kind in "iu" and value.ndim <= 1:
            return _Sym(value.tolist()) if value.ndim == 1 else _Sym([int(value)], scalar=True)
        return None

    kept: list[onnx.NodeProto] = []
    for node in g.node:
        if strip_metadata:
            trace = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.stack_trace"), None)
            if trace:
                result.origins[node.name] = trace
            keep = [p for p in node.metadata_props if not p.key.startswith(_METADATA_PREFIXES)]
            del node.metadata_props[:]
            node.metadata_props.extend(keep)
        domain_ok = node.domain in ("", "ai.onnx")
        has_graph = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        if domain_ok and node.op_type == "Constant":
            value = constant_value(node)
            if value is not None:
                consts[node.output[0]] = value
                result.folded += 1
                continue
        foldable = domain_ok and not has_graph and node.op_type not in _RANDOM_OPS
        if foldable and node.op_type == "CastLike" and is_const(node.input[0]):
            target = types.get(node.input[1])
            if target is not None and target.tensor_type.elem_type:
                np_type = onnx.helper.tensor_dtype_to_np_dtype(target.tensor_type.elem_type)
                consts[node.output[0]] = const(node.input[0]).astype(np_type)
                result.folded += 1
                continue
        if foldable and node.input and all(not n or is_const(n) for n in node.input):
            if sum(const(n).size for n in node.input if n) <= FOLD_LIMIT:
                try:
                    outs = _evaluate(node, [const(n) if n else None for n in node.input], opsets)
                except Exception:
                    outs = None
                if outs is not None and all(np.asarray(o).size <= FOLD_LIMIT for o in outs):
                    for name, value in zip(node.output, outs):
                        if name:
                            consts[name] = np.asarray(value)
                    result.folded += 1
                    continue
        if foldable and node.op_type in _SHAPE_OPS and _shape_arith(node, types, sym, syms):
            out = node.output[0]
            if syms[out].known:
                consts[out] = syms.pop(out).array()
                result.folded += 1
                continue
        if domain_ok and node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in syms:
            target = _reshape_target(syms[node.input[1]], shape_of(types.get(node.input[0])),
                                     bool(attr(node, "allowzero", 0)))
            if target is not None:
                name = f"{node.output[0]}__shape"
                consts[name] = target
                node.input[1] = name
        kept.append(node)

    # Identity nodes (a Dropout in eval mode, a clone) are wires: readers take the input directly.
    outputs = {o.name for o in g.output}
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in kept for a in n.attribute):
        outputs |= {o for n in kept for o in n.output}  # subgraphs may read any name: rename nothing
    alias: dict[str, str] = {}
    wired: list[onnx.NodeProto] = []
    for node in kept:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
        if node.op_type == "Identity" and node.domain in ("", "ai.onnx") and node.output[0] not in outputs:
            alias[node.output[0]] = node.input[0]
            result.removed += 1
            continue
        wired.append(node)
    kept = wired

    kept, fused = _fuse_lrn(kept, consts, outputs, opsets.get("", 0))
    result.removed += fused

    # A synthesised all-zero bias is no bias at all (PyTorch's bias=False).
    for node in kept:
        idx = _OPTIONAL_BIAS.get(node.op_type)
        if (idx is not None and len(node.input) > idx and node.input[idx] and node.input[idx] not in original
                and node.input[idx] in consts and not np.any(consts[node.input[idx]])):
            del node.input[idx:]

    # Drop what no graph output depends on.
    needed = {o.name for o in g.output}
    live: list[onnx.NodeProto] = []
    for node in reversed(kept):
        if any(o in needed for o in node.output if o):
            live.append(node)
            needed.update(n for n in node.input if n)
            for a in node.attribute:  # names a subgraph reads from the outer scope
                if a.type == onnx.AttributeProto.GRAPH:
                    needed.update(_outer_names(a.g))
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sub in a.graphs:
                        needed.update(_outer_names(sub))
    live.reverse()
    result.removed += len(kept) - len(live)
    del g.node[:]
    g.node.extend(live)

    # Initializers are edited in place: rebuilding the list would copy every weight (hundreds of MB).
    for i in reversed([i for i, init in enumerate(g.initializer) if init.name not in needed]):
        del g.initializer[i]
    have = {init.name for init in g.initializer} | {i.name for i in g.input}
    for name, value in consts.items():
        if name in needed and name not in have:
            g.initializer.append(numpy_helper.from_array(value if value.flags.c_contiguous else value.copy(order="C"), name))
            have.add(name)
            result.synthesized.add(name)
    # value_info for tensors that became initializers or vanished would only confuse readers
    produced = {o for n in live for o in n.output}
    vis = [vi for vi in g.value_info if vi.name in produced]
    del g.value_info[:]
    g.value_info.extend(vis)
    return result


_SHAPE_ONLY = {"Reshape", "Squeeze", "Unsqueeze", "Identity"}


def _fuse_lrn(nodes: list, consts: dict, outputs: set, opset: int) -> tuple[list, int]:
    """PyTorch writes ``local_response_norm`` of (N, C, H, W) as its decomposition, x / (k + alpha *
    avg_pool3d(pad(unsqueeze(x * x)))) ** beta; ONNX has the op itself (``LRN``, same formula for an odd
    size). Put the op back: a smaller file, a faster runtime, and an importable one."""
    producer = {o: n for n in nodes for o in n.output if o}
    readers: dict[str, int] = {}
    for n in nodes:
        for name in n.input:
            readers[name] = readers.get(name, 0) + 1

    def scalar(name):
        v = consts.get(name)
        return float(v.reshape(-1)[0]) if v is not None and v.size == 1 else None

    def private(name) -> bool:  # read once, by the pattern, and not a graph output
        return readers.get(name, 0) == 1 and name not in outputs

    def through_shape_ops(name, chain):
        n = producer.get(name)
        while n is not None and n.op_type in _SHAPE_ONLY and private(name):
            chain.append(n)
            name = n.input[0]
            n = producer.get(name)
        return name, n

    removed: set[int] = set()
    replacement: dict[int, onnx.NodeProto] = {}
    for div in nodes:
        if div.op_type != "Div" or len(div.input) != 2:
            continue
        x, chain = div.input[0], []
        try:
            pw = producer[div.input[1]]
            assert pw.op_type == "Pow" and private(div.input[1]) and scalar(pw.input[1]) is not None
            beta = scalar(pw.input[1])
            add = producer[pw.input[0]]
            assert add.op_type == "Add" and private(pw.input[0])
            (m_name, k_name) = (add.input[0], add.input[1]) if scalar(add.input[1]) is not None else add.input[::-1]
            k = scalar(k_name)
            mul = producer[m_name]
            assert k is not None and mul.op_type == "Mul" and private(m_name)
            (s_name, a_name) = (mul.input[0], mul.input[1]) if scalar(mul.input[1]) is not None else mul.input[::-1]
            alpha = scalar(a_name)
            assert alpha is not None
            p_name, pool = through_shape_ops(s_name, chain)
            assert pool is not None and pool.op_type == "AveragePool" and private(p_name)
            kernel = list(attr(pool, "kernel_shape", []))
            size = kernel[0] if kernel else 0
            assert (len(kernel) == 3 and kernel[1:] == [1, 1] and size % 2 == 1
                    and list(attr(pool, "strides", [1, 1, 1])) == [1, 1, 1]
                    and not any(attr(pool, "pads", [0] * 6)) and attr(pool, "ceil_mode", 0) == 0)
            pad = producer[pool.input[0]]
            assert pad.op_type == "Pad" and private(pool.input[0])
            pads = attr(pad, "pads") if opset < 11 else consts.get(pad.input[1] if len(pad.input) > 1 else "")
            pads = [int(v) for v in np.asarray(pads).reshape(-1)] if pads is not None else None
            value = consts.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else None
            assert pads == [0, 0, size // 2, 0, 0, 0, 0, (size - 1) // 2, 0, 0]
            assert value is None or not np.any(value)
            assert len(pad.input) < 4 or not pad.input[3]
            q_name, sq = through_shape_ops(pad.input[0], chain)
            assert sq is not None and private(q_name)
            if sq.op_type == "Mul":
                assert list(sq.input) == [x, x]
            else:
                assert sq.op_type == "Pow" and sq.input[0] == x and scalar(sq.input[1]) == 2.0
        except (AssertionError, KeyError, TypeError):
            continue
        lrn = onnx.helper.make_node("LRN", [x], [div.output[0]], name=div.name or f"lrn_{div.output[0]}",
                                    size=int(size), alpha=float(alpha), beta=float(beta), bias=float(k))
        for n in [pw, add, mul, pool, pad, sq, *chain]:
            removed.add(id(n))
        replacement[id(div)] = lrn
    if not replacement:
        return nodes, 0
    out = [replacement.get(id(n), n) for n in nodes if id(n) not in removed]
    return out, len(nodes) - len(out)


def _outer_names(graph: onnx.GraphProto) -> set[str]:
    names = set()
    for n in graph.node:
        names.update(i for i in n.input if i)
    return names


def _shape_arith(node: onnx.NodeProto, types: dict, sym, syms: dict) -> bool:
    """Follow shape arithmetic on symbolic size vectors; True when ``node.output[0]`` got a vector."""
    op, ins = node.op_type, node.input
    out = node.output[0] if node.output else None
    if out is None:
        return False
    if op == "Shape":
        dims = shape_of(types.get(ins[0]))
        if dims is None or any(d is None for d in dims):
            return False
        start, end = attr(node, "start", 0), attr(node, "end", None)
        syms[out] = _Sym(dims[start:end])
        return True
    args = [sym(n) if n else None for n in ins]
    if (op == "Reshape" and len(args) > 1 and args[0] is not None and args[1] is not None and args[1].known
            and len(args[1].items) == 1 and int(args[1].items[0]) in (-1, len(args[0].items))):
        syms[out] = _Sym(args[0].items)  # a size (0-D or 1-D) as a 1-D vector
        return True
    if op in ("Identity", "Cast") and args[0] is not None:
        syms[out] = args[0]
        return True
    if op == "Concat" and all(a is not None and not a.scalar for a in args):
        syms[out] = _Sym([v for a in args for v in a.items])
        return True
    if (op == "Gather" and args[0] is not None and not args[0].scalar and args[1] is not None and args[1].known
            and attr(node, "axis", 0) == 0):
        items = args[0].items
        try:
            picked = [items[int(i)] for i in args[1].items]
        except IndexError:
            return False
        syms[out] = _Sym(picked, scalar=args[1].scalar)
        return True
    if op == "Squeeze" and args[0] is not None and len(args[0].items) == 1 and not args[0].scalar:
        syms[out] = _Sym(args[0].items, scalar=True)
        return True
    if op == "Unsqueeze" and args[0] is not None and args[0].scalar:
        syms[out] = _Sym(args[0].items)
        return True
    if (op == "Slice" and len(args) >= 3 and args[0] is not None and not args[0].scalar
            and args[1] is not None and args[2] is not None and all(a.known for a in args[1:] if a is not None)):
        starts, ends = args[1].items, args[2].items
        axes = args[3].items if len(args) > 3 and args[3] is not None else [0]
        steps = args[4].items if len(args) > 4 and args[4] is not None else [1]
        if list(axes) not in ([0], [-1]) or len(starts) != 1:
            return False
        syms[out] = _Sym(args[0].items[slice(int(starts[0]), int(min(ends[0], 1 << 62)), int(steps[0]))])
        return True
    return False


def _reshape_target(vec: _Sym, in_dims: list | None, allowzero: bool) -> np.ndarray | None:
    """A constant Reshape target for a symbolic one: an entry equal to the input's symbolic size on the
    same axis becomes 0 (keep), one other symbolic entry becomes -1; None when that is not possible."""
    if vec.scalar:
        return None
    items = list(vec.items)
    ints = [int(v) for v in items if isinstance(v, (int, np.integer))]
    if -1 in ints and len(ints) < len(items) and in_dims is not None and None not in in_dims:
        # [batch, 1, C, H, -1]: when the symbolic sizes cancel against the input's, work the -1 out so
        # that the one symbolic entry left can take its place
        in_syms = sorted(str(d) for d in in_dims if not isinstance(d, int))
        if in_syms == sorted(str(v) for v in items if not isinstance(v, (int, np.integer))):
            known_in = int(np.prod([d for d in in_dims if isinstance(d, int)]))
            known_t = int(np.prod([v for v in ints if v != -1]))
            if known_t > 0 and known_in % known_t == 0:
                items = [known_in // known_t if isinstance(v, (int, np.integer)) and v == -1 else v for v in items]
    out, free = [], 0
    for i, v in enumerate(items):
        if isinstance(v, (int, np.integer)):
            free += int(v) == -1  # at most one axis may be inferred
            out.append(int(v))
        elif not allowzero and in_dims is not None and i < len(in_dims) and in_dims[i] == v:
            out.append(0)
        else:
            free += 1
            out.append(-1)
    if free > 1:
        return None
    return np.array(out, dtype=np.int64)


__all__ = ["tidy", "TidyResult", "tensor_types", "shape_of", "attr", "constant_value", "opset_of"]
