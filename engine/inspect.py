"""Look inside a compiled graph: every node's output on real examples, activation statistics (the share of
dead ReLU units), gradient health, where a non-finite value first appeared, one node's output shaped for
a preview, and per-example results for drilling into a confusion matrix. Pure Python + torch; never
imports Qt. The GUI's live preview and training-health overlay are views over these functions.

    runner = NodeRunner(compiled)                       # compiled = engine.compiler.build(graph)
    values = runner.run([x])                            # {node id: {port: tensor}} for every layer node
    stats = activation_stats(compiled, values)          # mean, std, zero share, dead units per node
    bad = find_nonfinite(compiled, [x], [y])            # the node where NaN/inf first appears, or None
    view = preview(compiled, values, "conv1")           # feature maps / values of one sample

How the value of every node is obtained, and why not with forward hooks
-----------------------------------------------------------------------
Forward hooks see only submodules, and many nodes have none: ReLU, Flatten, Add, Concat, Reparameterize
and the loss terms are expressions inside the generated ``forward``. So :class:`NodeRunner` evaluates the
graph node by node with the *same* expression the code generator writes for each node (``spec.forward``
with the same submodule names, ``self`` bound to the compiled model so ``self.training`` and
``self.<layer>`` mean what they mean in the generated code). Every node's output, functional or not, is
then available, and the result equals the compiled model's output (``tests/test_inspect.py`` checks it).
A composite node (a block, a GAN's generator) is one node here, as on the canvas: its output is the
composite's output. Expressions come only from the registry's emitters, exactly as in ``engine.codegen``,
so nothing from a graph file can become code.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .spec import LAYER, LOSS
from .training.trainer import Callback

# Node types whose units can die: their output is exactly 0 wherever the input is negative, so a unit
# whose input is negative for every example gets no gradient and never recovers.
DEAD_UNIT_TYPES = frozenset({"ReLU"})
# Gradient health thresholds (L2 norm of a node's parameter gradients).
EXPLODING_NORM = 1e2  # larger: the update is likely to overshoot; clipping or a lower rate helps ...
EXPLODING_GROWTH = 10.0  # ... when it is also this many times the layer's typical norm early in the run: a
# norm as large from the start is the loss's scale (a loss summed over the batch, as a VAE's), not an
# explosion (a VAE's layers, steady at 7e2 in a run that converged, were all marked as exploding)
TYPICAL_FROM = 20  # the typical norm: the smallest of a layer's first this many (progress events') norms,
# each judged before it joins them (a median of them, the current one included, learned a divergence of
# the first seconds as the typical value and called it healthy from then on)
VANISHING_NORM = 1e-6  # smaller: the layer has all but stopped learning
VANISHING_RATIO = 1e-3  # or this much smaller than the largest (not exploding) layer's norm in the same step

NodeValues = dict  # node id -> {port: tensor}; a loss node's value is under the port "loss"


# =========================================================================== node-by-node evaluation
@dataclass(frozen=True)
class _Step:
    nid: str
    label: str
    role: str
    code: Any  # compiled expression
    sources: tuple  # (node id, port) per argument, in port order
    ports: tuple  # output port names (("loss",) for a loss node)


class NodeRunner:
    """Evaluates a compiled graph node by node (see the module docstring). Build once per compiled
    graph; ``run`` is as cheap as a forward pass plus a dictionary per node."""

    def __init__(self, compiled):
        self.compiled = compiled
        inf, plan = compiled.inference, compiled.plan
        graph = inf.graph
        self.graph = graph
        self.order: list[str] = []
        self.steps: list[_Step] = []
        self.outputs = {nid: inf.nodes[nid].sources["in"] for nid, _ in plan.outputs}
        self.input_ids = [nid for nid, _ in plan.inputs]
        self.target_ids = [nid for nid, _ in plan.targets]
        for nid in inf.order:
            node = graph.nodes[nid]
            spec = graph.registry[node.type]
            info = inf.nodes[nid]
            if spec.role == LAYER:
                ports = graph.input_port_names(nid)
                out_ports = tuple(graph.output_port_names(nid))
                mod = f"self.{plan.attrs[nid]}" if nid in plan.attrs else None
            elif spec.role == LOSS:
                ports = [p.name for p in spec.input_ports(info.params)]
                out_ports = ("loss",)
                mod = None
            else:
                continue
            sources = tuple(info.sources[p] for p in ports if p in info.sources)
            names = [f"_a{i}" for i in range(len(sources))]
            if spec.subgraph is not None:
                expr = f"{mod}({', '.join(names)})"
            else:
                expr = spec.forward(info.params, names, mod)
            code = compile(expr, f"<deepcanvas node {node.label}>", "eval")
            self.steps.append(_Step(nid, node.label, spec.role, code, sources, out_ports))
            self.order.append(nid)

    def _values_of_io(self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None) -> dict:
        if len(inputs) != len(self.input_ids):
            raise ValueError(f"the graph has {len(self.input_ids)} Input node(s); {len(inputs)} tensor(s) given")
        values: dict[tuple[str, str], torch.Tensor] = {(nid, "out"): x for nid, x in zip(self.input_ids, inputs)}
        for nid, y in zip(self.target_ids, targets or ()):
            values[(nid, "out")] = y
        return values

    def iterate(self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None = None,
                model: nn.Module | None = None, losses: bool = True) -> Iterable[tuple[_Step, tuple, tuple]]:
        """Yield ``(step, argument tensors, output tensors)`` node by node, in the generated code's order.
        Loss nodes come last and only when every tensor they read is there (targets given)."""
        model = self.compiled.model if model is None else model
        values = self._values_of_io(inputs, targets)
        for out_id, src in self.outputs.items():
            values.setdefault((out_id, "out"), None)
        env = {"torch": torch, "nn": nn, "F": F, "self": model}
        for step in self.steps:
            if step.role == LOSS and not losses:
                continue
            args = []
            for src in step.sources:
                v = values.get(src)
                if v is None and src[0] in self.outputs:  # a loss reads an Output node: its source's value
                    v = values.get(self.outputs[src[0]])
                args.append(v)
            if step.role == LOSS and any(a is None for a in args):
                continue
            local = {f"_a{i}": a for i, a in enumerate(args)}
            result = eval(step.code, env, local)  # a registry-made expression (see the module docstring)
            outs = tuple(result) if len(step.ports) > 1 else (result,)
            for port, value in zip(step.ports, outs):
                values[(step.nid, port)] = value
            yield step, tuple(args), outs

    def run(self, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None = None,
            model: nn.Module | None = None, upto: str | None = None, losses: bool = True) -> NodeValues:
        """Every layer (and, with targets, loss) node's outputs: ``{node id: {port: tensor}}``. ``upto``
        stops after that node (a preview needs nothing past it)."""
        out: NodeValues = {}
        for step, _, outs in self.iterate(inputs, targets, model, losses):
            out[step.nid] = dict(zip(step.ports, outs))
            if step.nid == upto:
                break
        return out

    def model_outputs(self, values: NodeValues) -> tuple:
        """The model's outputs (as ``model(*inputs)`` returns them) read from ``run``'s values."""
        return tuple(values[src[0]][src[1]] for src in self.outputs.values())


# =========================================================================== activation statistics
@dataclass
class NodeStats:
    """One node's output over a batch of examples."""

    mean: float
    std: float
    zeros: float  # share of values exactly 0
    units: int  # units (channels of images, features of vectors and sequences)
    dead: float | None = None  # share of units that are 0 for every example (DEAD_UNIT_TYPES only)
    nonfinite: int = 0  # count of NaN and infinite values

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _unit_axis_view(t: torch.Tensor) -> torch.Tensor:
    """(examples-and-positions, units): the channels of (N, C, H, W) maps; the last axis otherwise
    (features of (N, F) vectors and of (N, T, F) sequences)."""
    if t.ndim == 4:
        return t.transpose(0, 1).reshape(t.shape[1], -1).T
    if t.ndim <= 1:
        return t.reshape(-1, 1)
    return t.reshape(-1, t.shape[-1])


def dead_units(t: torch.Tensor) -> float:
    """Share of units whose output is 0 for every example (and position) of the batch. A unit is a
    channel of (N, C, H, W) feature maps and a feature (the last axis) of (N, F) vectors or (N, T, F)
    sequences."""
    flat = _unit_axis_view(t.detach())
    if flat.numel() == 0:
        return 0.0
    alive = (flat != 0).any(dim=0)
    return float(1.0 - alive.float().mean().item())


@torch.no_grad()
def activation_stats(compiled, values: NodeValues) -> dict[str, NodeStats]:
    """Statistics of every layer node's first float output (loss nodes left out). One device read.

    A run's health inspections call this between steps, in the run's time, so each figure comes from
    the cheapest kernels found for it on a CPU core (a 64x6x28x28 map): comparisons to a boolean mask,
    ``count_nonzero`` on ReLU outputs (1.3 ms) and ``var_mean`` (1.7 ms) take ten to twenty times as long
    as the arithmetic and sums used here. It had taken twice as long as the forward pass it follows (6 of
    10 ms per inspection of LeNet-5)."""
    graph = compiled.inference.graph
    rows, nids, units, dead_for = [], [], [], []
    for nid, ports in values.items():
        node = graph.nodes[nid]
        if graph.registry[node.type].role != LAYER or not ports:
            continue
        t = next(iter(ports.values()))
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() == 0:
            continue
        t = t.detach().float()
        n = t.numel()
        f64 = torch.float32 if t.device.type == "mps" else torch.float64  # (sums and counts; MPS has no float64)
        safe = torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)  # (non-finite values count as 0)
        nonfinite = torch.nan_to_num(t - t, nan=1.0).sum(dtype=f64)  # (x - x: 0, or NaN where x is not finite)
        total = safe.sum(dtype=f64)
        centred = (safe - total / n).reshape(-1)
        squares = torch.dot(centred, centred).to(f64)
        nonzero = safe.abs().sign().sum(dtype=f64) + nonfinite  # (NaN and infinities are not 0)
        has_dead = node.type in DEAD_UNIT_TYPES
        if not has_dead:
            alive = torch.zeros((), dtype=f64, device=t.device)
        else:  # units: the channels of maps, else the last axis (one unit for a vector); NaN != 0: alive
            dims = (0, 2, 3) if t.ndim == 4 else tuple(range(t.ndim - 1)) if t.ndim > 1 else tuple(range(t.ndim))
            alive = t.abs().amax(dim=dims).ne(0).sum(dtype=f64) if dims else t.ne(0).to(f64)
        rows.append(torch.stack((total, squares, nonzero, nonfinite, alive)))
        nids.append(nid)
        units.append((n, t.shape[1] if t.ndim == 4 else 1 if t.ndim <= 1 else t.shape[-1]))
        dead_for.append(has_dead)
    if not rows:
        return {}
    table = torch.stack(rows).cpu().tolist()
    out = {}
    for nid, (total, squares, nonzero, nonfinite, alive), (n, k), has_dead in zip(nids, table, units, dead_for):
        out[nid] = NodeStats(mean=total / n, std=math.sqrt(max(squares, 0.0) / n), zeros=1.0 - nonzero / n,
                             units=k, dead=1.0 - alive / k if has_dead else None, nonfinite=int(round(nonfinite)))
    return out


# =========================================================================== gradient health
def gradient_level(norm: float, largest: float, typical: float | None = None) -> str:
    """'nonfinite', 'exploding', 'vanishing' or 'healthy' for one node's gradient norm, given the
    largest norm among the network's layers in the same step and, when known, the layer's typical norm
    early in the run (see ``EXPLODING_GROWTH``)."""
    if not math.isfinite(norm):
        return "nonfinite"
    if norm > EXPLODING_NORM and (typical is None or not norm <= EXPLODING_GROWTH * typical):
        return "exploding"
    if norm < VANISHING_NORM or (largest > 0 and norm < VANISHING_RATIO * largest):
        return "vanishing"
    return "healthy"


def gradient_levels(norms: dict[str, float], typical: dict[str, float] | None = None) -> dict[str, str]:
    """Each node's level (``typical``: each layer's typical norm early in the run, see
    ``gradient_level``); "vanishing" is judged against the largest norm that is not itself exploding,
    so one exploding layer does not make the healthy ones look vanishing."""
    typical = typical or {}
    alone = {nid: gradient_level(v, 0.0, typical.get(nid)) for nid, v in norms.items()}
    largest = max((v for nid, v in norms.items() if alone[nid] not in ("exploding", "nonfinite")), default=0.0)
    return {nid: gradient_level(v, largest, typical.get(nid)) for nid, v in norms.items()}


def gradient_score(norm: float, norms: Iterable[float], level: str | None = None) -> float:
    """Where a norm sits for a colour scale: log10 of the norm over the geometric mean of the layers'
    norms, clipped to [-3, 3] (-3: a thousand times smaller than typical, +3: a thousand times larger),
    and pushed to the end when the norm itself is vanishing or exploding (``level``, from
    ``gradient_levels``; without it, judged by the absolute thresholds alone)."""
    logs = [math.log10(v) for v in norms if math.isfinite(v) and v > 0]
    if not math.isfinite(norm):
        return 3.0
    if norm <= 0:
        return -3.0
    centre = sum(logs) / len(logs) if logs else 0.0
    score = max(-3.0, min(3.0, math.log10(norm) - centre))
    if level == "exploding" or level is None and norm > EXPLODING_NORM:
        score = max(score, 2.0)
    elif level == "vanishing" or level is None and norm < VANISHING_NORM:
        score = min(score, -2.0)
    return score


# =========================================================================== non-finite values
@dataclass
class NonFinite:
    """Where a non-finite value (NaN or infinity) first appeared."""

    node: str  # node id
    label: str
    where: str  # input, weights, output, loss or gradient
    message: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _first_bad_param(module: nn.Module) -> str | None:
    for name, p in module.named_parameters():
        if not torch.isfinite(p).all():
            return name
    for name, b in module.named_buffers():
        if b.is_floating_point() and not torch.isfinite(b).all():
            return name
    return None


def _nonfinite_tensor(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())


def find_nonfinite(compiled, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor] | None = None,
                   model: nn.Module | None = None, backward: bool = True) -> NonFinite | None:
    """The node where a NaN or infinity first appears when the graph runs on ``inputs`` (in eval mode,
    so nothing in the model changes): an input holding one, the first node in forward order whose
    weights hold one or whose output has one although its inputs are finite, a loss node, or, when the
    forward pass is finite everywhere and ``backward`` is set, the first node the gradient reaches
    (walking back from the loss) whose output gradient is non-finite. None when everything is finite."""
    runner = NodeRunner(compiled)
    model = compiled.model if model is None else model
    graph = compiled.inference.graph
    plan = compiled.plan
    for nid, x in zip(runner.input_ids, inputs):
        if _nonfinite_tensor(x):
            return NonFinite(nid, graph.nodes[nid].label, "input",
                             f"the data fed to Input '{graph.nodes[nid].label}' holds NaN or infinite values; "
                             "clean the data set")
    was_training = model.training
    model.eval()
    try:
        kept: list[tuple[_Step, tuple]] = []
        loss_terms = []
        with torch.enable_grad():
            for step, args, outs in runner.iterate(inputs, targets, model):
                bad = (_first_bad_param(model.get_submodule(plan.attrs[step.nid]))
                       if step.nid in plan.attrs else None)
                if bad is not None:
                    return NonFinite(step.nid, step.label, "weights",
                                     f"the weights of '{step.label}' ({bad}) became NaN or infinite: an update was "
                                     "too large. Lower the learning rate or clip gradients "
                                     "(regularization.grad_clip)")
                if any(_nonfinite_tensor(o) for o in outs) and not any(_nonfinite_tensor(a) for a in args):
                    if step.role == LOSS:
                        return NonFinite(step.nid, step.label, "loss",
                                         f"the loss '{step.label}' is NaN or infinite on finite predictions: check "
                                         "that its inputs are in the range it expects (probabilities in (0, 1), "
                                         "class ids within the number of classes, log-probabilities)")
                    return NonFinite(step.nid, step.label, "output",
                                     f"'{step.label}' turned finite inputs into NaN or infinite values: its "
                                     "activations overflowed. Lower the learning rate, normalise the inputs, or "
                                     "add normalization (BatchNorm, LayerNorm) before it")
                for o in outs:
                    if isinstance(o, torch.Tensor) and o.requires_grad:
                        o.retain_grad()
                kept.append((step, outs))
                if step.role == LOSS:
                    w = graph.nodes[step.nid].params.get("weight", 1.0)
                    loss_terms.append(outs[0] * w)
            if not backward or not loss_terms:
                return None
            total = torch.stack([t.float().reshape(()) for t in loss_terms]).sum()
            if not total.requires_grad:
                return None
            total.backward()
        for step, outs in reversed(kept):
            if step.role == LOSS:
                continue
            if any(isinstance(o, torch.Tensor) and o.grad is not None and _nonfinite_tensor(o.grad) for o in outs):
                return NonFinite(step.nid, step.label, "gradient",
                                 f"the gradient reaching '{step.label}' is NaN or infinite although the forward "
                                 "pass is finite: clip gradients (regularization.grad_clip) or lower the learning "
                                 "rate")
        return None
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)


# =========================================================================== previews
@dataclass
class Preview:
    """One node's output for one example, shaped for display."""

    node: str
    label: str
    port: str
    shape: tuple  # of one example (no batch axis)
    kind: str  # maps (C, H, W feature maps), values (a histogram), sequence (T, F), scalar, ids
    data: np.ndarray  # maps: (k, H, W), the first k channels; values: every value; sequence: (T, F)
    channels: int  # channels in all (maps)
    stats: dict[str, float] = field(default_factory=dict)


MAX_MAPS = 64


def preview(compiled, values: NodeValues, node_id: str, port: str | None = None, index: int = 0) -> Preview:
    """The output of ``node_id`` for example ``index`` of the batch ``values`` came from."""
    graph = compiled.inference.graph
    if node_id not in values:
        raise KeyError(f"node {node_id!r} has no computed output (Inputs, Outputs and Targets have none)")
    ports = values[node_id]
    port = port if port in ports else next(iter(ports))
    t = ports[port]
    label = graph.nodes[node_id].label
    if t.ndim == 0:
        v = float(t.detach().float().cpu())
        return Preview(node_id, label, port, (), "scalar", np.array([v], dtype=np.float32), 0, {"value": v})
    one = t[min(index, len(t) - 1)].detach().cpu()
    shape = tuple(one.shape)
    if not one.is_floating_point():
        data = one.numpy().astype(np.int64)
        return Preview(node_id, label, port, shape, "ids", data, 0, {"min": float(data.min()), "max": float(data.max())}
                       if data.size else {})
    arr = one.float().numpy()
    finite = np.isfinite(arr)
    safe = arr[finite]
    stats = {"mean": float(safe.mean()) if safe.size else float("nan"), "std": float(safe.std()) if safe.size else 0.0,
             "min": float(safe.min()) if safe.size else float("nan"),
             "max": float(safe.max()) if safe.size else float("nan"),
             "zeros": float((arr == 0).mean()) if arr.size else 0.0, "nonfinite": int((~finite).sum())}
    if arr.ndim == 3:
        return Preview(node_id, label, port, shape, "maps", arr[:MAX_MAPS], arr.shape[0], stats)
    if arr.ndim == 2:
        return Preview(node_id, label, port, shape, "sequence", arr, 0, stats)
    return Preview(node_id, label, port, shape, "values", arr.reshape(-1), 0, stats)


def tile(maps: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """(k, H, W) feature maps as one (rows*(H+pad), cols*(W+pad)) image, each map scaled to [0, 1] on its
    own (a constant map is 0), padding NaN so a view can draw it as background."""
    k, h, w = maps.shape
    cols = columns or max(1, math.ceil(math.sqrt(k)))
    rows = math.ceil(k / cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan, dtype=np.float32)
    for i in range(k):
        m = np.nan_to_num(maps[i].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(m.min()), float(m.max())
        m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = m
    return out


def histogram(values: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the finite values."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return np.zeros(0), np.zeros(1)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.histogram(v, bins=bins, range=(lo, hi))


# =========================================================================== real examples for a graph
@dataclass
class SampleBatch:
    """Inputs (one tensor per Input node, in the model's argument order) and targets for a few real
    examples, with what each Input got."""

    inputs: list[torch.Tensor]
    targets: list[torch.Tensor]
    notes: list[str]
    dataset: Any = None  # the Dataset the examples came from
    indices: np.ndarray | None = None  # their positions in it
    data_input: str | None = None  # the Input node the data set feeds (others get random values)


_DATA_CACHE: dict = {}


def _cached_dataset(name: str, options: dict, seed: int):
    from .training.datasets import load_dataset

    key = (name, repr(sorted(options.items())), seed)
    ds = _DATA_CACHE.get(key)
    if ds is None:
        ds = load_dataset(name, options, seed=seed)
        if len(_DATA_CACHE) > 4:
            _DATA_CACHE.clear()
        _DATA_CACHE[key] = ds
    return ds


def _standardize_like_trainer(x: np.ndarray, train_idx: np.ndarray, norm: dict | None) -> np.ndarray:
    if norm:
        mean, std = np.asarray(norm["mean"], dtype=np.float32), np.asarray(norm["std"], dtype=np.float32)
        return ((x - mean[None]) / std[None]).astype(np.float32)
    axes = (0, 2, 3) if x.ndim == 4 else (0,)
    train = x[train_idx]
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True)
    std = np.where(std > 1e-8, std, 1.0)
    return ((x - mean) / std).astype(np.float32)


def sample_batch(compiled, config, count: int = 8, split: str = "dev", input_norm: dict | None = None,
                 seed: int = 0) -> SampleBatch:
    """A few examples of the configured data set (``config``: a ``TrainingConfig``) from ``split``,
    fitted to each Input node as the trainer fits them (resized, flattened, standardized). An Input the
    data set does not fit (a GAN's latent ``z``) gets seeded random values, and a note says so. Raises
    ``DataError`` when the data set cannot be loaded."""
    from .training.data import DataError, fit_targets, split_dataset

    ds = _cached_dataset(config.data.dataset, dict(config.data.options), config.seed)
    parts = split_dataset(ds, config.data.split, config.seed, config.data.stratify)
    idx = parts.indices(split)
    if len(idx) == 0:
        idx = parts.train
    idx = idx[:count]
    inf, graph = compiled.inference, compiled.inference.graph
    gen = torch.Generator().manual_seed(seed)
    # Only the examples shown are fitted (resizing a whole data set to 224x224 would take seconds); the
    # standardization statistics come from the trainer (input_norm) or from up to 512 training examples.
    from .training.data import Dataset

    stats_rows = parts.train[:512] if config.data.standardize and not input_norm else idx[:0]
    rows = np.concatenate([idx, stats_rows])
    part = Dataset(ds.name, ds.x[rows], ds.y[rows], ds.task, ds.classes, ds.kind, ds.description, ds.meta,
                   inputs={k: v[rows] for k, v in ds.inputs.items()})
    if ds.inputs:  # an array per Input (a seq2seq's source and decoder input): matched as the trainer does
        several = _several_inputs(compiled, config, part, len(idx))
        if several is not None:
            inputs, targets, data_id = several
            return SampleBatch(inputs, targets, [], ds, idx, data_id)
    data_id, fitted, reasons = _data_input(compiled, config, part)
    inputs, notes = [], []
    for nid, _ in compiled.plan.inputs:
        t = inf.shape(nid)
        label = graph.nodes[nid].label
        if nid == data_id:
            x = fitted
            if config.data.standardize and np.issubdtype(x.dtype, np.floating):
                x = _standardize_like_trainer(np.asarray(x, dtype=np.float32), np.arange(len(idx), len(rows)),
                                              input_norm)
            inputs.append(torch.from_numpy(np.ascontiguousarray(x[:len(idx)])))
            continue
        dims = [d if isinstance(d, int) else 8 for d in t.shape[1:]]
        if t.dtype == "int64":
            inputs.append(torch.randint(0, 2, (len(idx), *dims), generator=gen))
        else:
            inputs.append(torch.randn(len(idx), *dims, generator=gen))
        why = "the data set feeds another Input" if data_id is not None else reasons.get(nid, "")
        notes.append(f"Input '{label}': random values ({why})")
    used_data = data_id is not None
    targets = []
    for nid, _ in compiled.plan.targets if used_data else ():
        t = inf.shape(nid)
        try:
            y = fit_targets(part, tuple(t.shape[1:]), graph.nodes[nid].label, t.dtype, None)
            targets.append(torch.from_numpy(np.ascontiguousarray(y[:len(idx)])))
        except DataError:
            # e.g. a VAE whose Target is the image itself: the input, when the shapes agree
            same = next((x for x in inputs if tuple(x.shape[1:]) == tuple(t.shape[1:]) and x.is_floating_point()
                         == (t.dtype != "int64")), None)
            if same is not None:
                targets.append(same.clone())
            else:
                targets = []
                break
    return SampleBatch(inputs, targets, notes, ds, idx, data_id)


def _several_inputs(compiled, config, ds, count: int):
    """(inputs, targets, the first data Input) for a data set with several input arrays, fitted by the
    training mode as it fits them for training (each Input gets the array named after it, the rest in
    order), or None when the mode cannot (the caller then fits the first array to one Input)."""
    from .training.modes import select_mode

    try:
        mode = select_mode(compiled, config.mode)
        x, y, _ = mode.prepare_data(ds)
    except Exception:
        return None
    xs = x if isinstance(x, tuple) else (x,)
    ids = [w["id"] for w in mode.describe_data().get("inputs", [])]
    if len(ids) != len(xs) or set(ids) != {nid for nid, _ in compiled.plan.inputs}:
        return None
    by_id = dict(zip(ids, xs))
    inputs = [torch.from_numpy(np.ascontiguousarray(by_id[nid][:count])) for nid, _ in compiled.plan.inputs]
    targets = [torch.from_numpy(np.ascontiguousarray(y[:count]))] if len(compiled.plan.targets) == 1 else []
    return inputs, targets, ids[0]


def _data_input(compiled, config, ds) -> tuple[str | None, np.ndarray | None, dict[str, str]]:
    """Which Input node the data set feeds, and its fitted inputs: the one the training mode reads when
    a mode accepts the graph, else the Input the data fits with the least change (same shape, then
    resized or recoloured images, then flattened), so a GAN's image Input gets the images and its latent
    ``z`` does not."""
    from .training.data import DataError, fit_inputs
    from .training.modes import select_mode

    inf, graph = compiled.inference, compiled.inference.graph
    try:
        wanted = select_mode(compiled, config.mode).describe_data()["input"]["id"]
    except Exception:
        wanted = None
    best, reasons = None, {}
    for nid, _ in compiled.plan.inputs:
        t = inf.shape(nid)
        shape, label = tuple(t.shape[1:]), graph.nodes[nid].label
        try:
            if all(isinstance(d, int) for d in shape):
                x, changes = fit_inputs(ds, shape, label, t.dtype)
            else:  # a named axis (sequence length): the data's own length
                x, changes = ds.x, []
        except DataError as exc:
            reasons[nid] = str(exc)
            continue
        cost = (0 if nid == wanted else 1, 2 * any("flattened" in c for c in changes) + len(changes))
        if best is None or cost < best[0]:
            best = (cost, nid, x)
    if best is None:
        return None, None, reasons
    return best[1], best[2], reasons


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Copy the entries of ``state`` whose name and shape match the model's (weights of an earlier run
    onto an edited network); returns (tensors copied, tensors in the model)."""
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if take:
        model.load_state_dict(take, strict=False)
    return len(take), len(own)


# =========================================================================== per-example results
@dataclass
class ExampleResults:
    """Every example of a split with its true class, predicted class, loss and confidence: what a
    confusion-matrix cell lists, highest loss first. Where the target has a class per position (a
    tagger's words, a decoder's characters, a segmentation's pixels), a row is one position of one
    example: ``positions`` says which (flat, in an example's target of shape ``target_shape``), and
    ``indices`` repeats the example's index for each of its positions."""

    split: str
    true: np.ndarray
    predicted: np.ndarray
    loss: np.ndarray  # per-example (or per-position) cross-entropy of the class scores
    confidence: np.ndarray  # the model's probability for its answer
    indices: np.ndarray  # positions in the whole data set
    classes: list[str] | None
    positions: np.ndarray | None = None  # per-position targets: the flat position in the example's target
    target_shape: tuple = ()  # one example's target (per-position targets)
    total: int = 0  # rows before the cap (per-position targets keep the MAX_POSITION_ROWS of highest loss)

    @property
    def per_position(self) -> bool:
        return self.positions is not None

    @property
    def capped(self) -> bool:
        return self.total > len(self.true)

    def where(self, row: int, short: bool = False) -> str:
        """Where a row's answer is in its example ('' for one class per example): 'position 8 of 40',
        'pixel (3, 12)'; ``short``: 'pos 8/40', '(3, 12)'."""
        if self.positions is None:
            return ""
        flat = int(self.positions[row])
        if len(self.target_shape) == 1:
            n = self.target_shape[0]
            return f"pos {flat + 1}/{n}" if short else f"position {flat + 1} of {n}"
        at = "(" + ", ".join(str(int(i)) for i in np.unravel_index(flat, self.target_shape)) + ")"
        return at if short else f"{'pixel' if len(self.target_shape) == 2 else 'position'} {at}"

    def cell(self, true: int, predicted: int, limit: int | None = None) -> np.ndarray:
        """Row numbers (into these arrays) of the examples of one confusion-matrix cell, highest loss first."""
        rows = np.flatnonzero((self.true == true) & (self.predicted == predicted))
        rows = rows[np.argsort(-self.loss[rows], kind="stable")]
        return rows if limit is None else rows[:limit]

    def mistakes(self, limit: int | None = None) -> np.ndarray:
        rows = np.flatnonzero(self.true != self.predicted)
        rows = rows[np.argsort(-self.loss[rows], kind="stable")]
        return rows if limit is None else rows[:limit]


# Per-position targets give a row per position: a dev set of 1,000 images with a class per pixel of 64x64
# would be 4 million rows (about 150 MB to send to the window). The rows of highest loss are kept.
MAX_POSITION_ROWS = 200_000


@torch.no_grad()
def example_results(trainer, split: str = "dev", batch_size: int = 1024) -> ExampleResults | None:
    """Per-example results of a trained classifier on one split; per position for targets with a class
    per position (see :class:`ExampleResults`). None for regression and for class scores that do not
    match the targets' shape. Targets the loss ignores (its ``ignore_index``: a tagger's padding; negative
    class ids) are left out, as they are of the confusion matrix."""
    from .training.data import CLASSIFICATION
    from .training.metrics import class_answers, counted

    part = trainer.splits[split]
    if trainer.task != CLASSIFICATION or len(part) == 0:
        return None
    was_training = trainer.model.training
    trainer.model.eval()
    try:
        got = class_answers(trainer._predict, part.x, part.y, batch_size,
                            trainer._to_device if trainer._host_data else None)
    finally:
        trainer.model.train(was_training)
    if got is None:
        return None
    true, predicted, confidence, loss = got
    indices = np.asarray(part.indices)
    # the targets that count: not the loss's ignore_index (a tagger's padding), not negative (PyTorch's -100)
    keep = np.flatnonzero(counted(true, getattr(trainer.mode, "ignore_index", -100)))
    total = len(keep)
    if part.y.ndim == 1:
        if total < len(true):
            true, predicted, loss, confidence, indices = (a[keep] for a in (true, predicted, loss, confidence, indices))
        return ExampleResults(split, true, predicted, loss, confidence, indices, trainer.dataset.classes,
                              total=total)
    shape = tuple(int(d) for d in part.y.shape[1:])
    per = int(np.prod(shape))
    indices, positions = np.repeat(indices, per), np.tile(np.arange(per), len(part))
    if len(keep) > MAX_POSITION_ROWS:
        keep = np.sort(keep[np.argpartition(-loss[keep], MAX_POSITION_ROWS - 1)[:MAX_POSITION_ROWS]])
    return ExampleResults(split, true[keep], predicted[keep], loss[keep], confidence[keep], indices[keep],
                          trainer.dataset.classes, positions[keep], shape, total=total)


# =========================================================================== health during a run
@dataclass
class Health:
    """The state of a training run's layers at one moment."""

    epoch: int
    step: int
    grad_norms: dict[str, float] = field(default_factory=dict)  # node id -> L2 norm of its gradients
    grad_levels: dict[str, str] = field(default_factory=dict)  # node id -> healthy, vanishing, exploding
    stats: dict[str, NodeStats] = field(default_factory=dict)  # node id -> activation statistics (dead-unit nodes)
    nonfinite: NonFinite | None = None
    final: bool = False

    @property
    def dead(self) -> dict[str, float]:
        return {nid: s.dead for nid, s in self.stats.items() if s.dead is not None}


def _probe_inputs(trainer, size: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A fixed batch of the trainer's own (fitted, standardized) dev examples for each Input it feeds
    (one tensor, or several in a ``TensorTuple`` for a graph with several Inputs, matched by shape); any
    other Input (a GAN's z) gets seeded noise."""
    src = trainer.splits["dev"] if len(trainer.splits["dev"]) else trainer.splits["train"]
    x, y = src.x[:size].to(trainer.device), src.y[:size].to(trainer.device)
    given = list(x.tensors) if hasattr(x, "tensors") else [x]
    compiled = trainer.compiled
    inf = compiled.inference
    gen = torch.Generator().manual_seed(0)
    n = len(given[0])
    inputs = []
    for nid, _ in compiled.plan.inputs:
        info = inf.shape(nid)
        shape = tuple(d if isinstance(d, int) else None for d in info.shape[1:])
        match = next((i for i, t in enumerate(given) if t is not None and len(t.shape) - 1 == len(shape) and all(
            d is None or d == e for d, e in zip(shape, t.shape[1:]))), None)
        if match is not None:
            inputs.append(given[match])
            given[match] = None
            continue
        dims = [d if d is not None else 8 for d in shape]
        if info.dtype == "int64":
            inputs.append(torch.randint(0, 2, (n, *dims), generator=gen).to(trainer.device))
        else:
            inputs.append(torch.randn(n, *dims, generator=gen).to(trainer.device))
    targets = []
    for nid, _ in compiled.plan.targets:
        want = tuple(inf.shape(nid).shape[1:])
        if isinstance(y, torch.Tensor) and tuple(y.shape[1:]) == want:
            targets.append(y)
        else:
            same = next((t for t in inputs if tuple(t.shape[1:]) == want), None)
            if same is None:
                return inputs, []
            targets.append(same)
    return inputs, targets


@torch.no_grad()
def trainer_preview(trainer, node_id: str, index: int = 0) -> tuple[Preview, torch.Tensor | None]:
    """The preview of one node with a trainer's current weights, on its ``index``-th dev example (as the
    trainer fitted and standardized it), computed in the calling thread (the training thread, between
    epochs: no other thread runs PyTorch kernels meanwhile). Returns the preview and the example fed
    to the data Input."""
    inputs, targets = _probe_inputs(trainer, index + 1)
    compiled = trainer.compiled
    graph = compiled.inference.graph
    role = graph.registry[graph.nodes[node_id].type].role
    target = compiled.inference.nodes[node_id].sources["in"][0] if role == "output" else node_id
    was = trainer.model.training
    trainer.model.eval()
    try:
        if role == "input":
            pos = [nid for nid, _ in compiled.plan.inputs].index(node_id)
            values = {node_id: {"out": inputs[pos]}}
            target = node_id
        else:
            values = NodeRunner(compiled).run(inputs, targets or None, model=trainer.model, upto=target,
                                              losses=role == LOSS)
    finally:
        trainer.model.train(was)
    data = next((x for x in inputs if x.is_floating_point() or len(inputs) == 1), inputs[0] if inputs else None)
    sample = data[min(index, len(data) - 1)].cpu() if data is not None else None
    return preview(compiled, values, target, index=index), sample


class HealthMonitor(Callback):
    """A trainer subscriber that reports :class:`Health` to ``sink`` (any callable; called in the
    training thread, so keep it quick: the GUI appends to a buffer).

    - every step event: the gradient norms the trainer measured, classified (vanishing, exploding);
    - at an epoch's end and at the end of the run: dead units, from the activation statistics of the
      nodes that can have them (``DEAD_UNIT_TYPES``) on a fixed probe batch of dev examples, the forward
      pass stopping after the last of them; at most every ``every`` seconds (the first epoch end reported
      has one) and within ``budget`` (a share of the run's time: skipped when the inspections so far
      exceed it). They cost the run what they take, so both are small: dead units change slowly, and a
      window showing them in a run of short epochs would otherwise take a percent of the run's time for
      them. A network without such nodes has none (LeNet-5's tanh units: 7 ms of every inspection, 0.2% of
      a 6-second run on one core, for statistics nobody was shown);
    - when the run fails: where the first non-finite value appeared, replayed on the probe batch with
      the last weights that gave a finite loss (kept at most every ``snapshot_seconds``, for models
      up to ``max_snapshot_params`` parameters), then with the weights at failure.
    """

    def __init__(self, sink: Callable[[Health], None], probe_size: int = 64, budget: float = 0.005,
                 every: float = 5.0, snapshot_seconds: float = 1.0, max_snapshot_params: int = 5_000_000):
        self.sink = sink
        self.probe_size = probe_size
        self.budget = budget
        self.every = every
        self._last_inspect = -math.inf
        self.snapshot_seconds = snapshot_seconds
        self.max_snapshot_params = max_snapshot_params
        self.runner: NodeRunner | None = None
        self.snapshot: dict | None = None
        self._snap_time = -1e9
        self._spent = 0.0
        self._t0 = time.perf_counter()
        self.last_norms: dict[str, float] = {}
        self.last: Health | None = None
        self.errors: list[str] = []
        self._watched: frozenset[str] = frozenset()  # the nodes whose dead units are reported
        self._early: dict[str, list[float]] = {}

    # -- helpers
    def _emit(self, health: Health) -> None:
        self.last = health
        self.sink(health)

    def _inspect(self, trainer, final: bool = False) -> None:
        now = time.perf_counter()
        if not self._watched:
            return
        if not final and (now - self._last_inspect < self.every or self._spent > self.budget * (now - self._t0)):
            return
        self._last_inspect = now
        try:
            if self.runner is None:
                self.runner = NodeRunner(trainer.compiled)
            inputs, _ = _probe_inputs(trainer, self.probe_size)
            last = [nid for nid in self.runner.order if nid in self._watched][-1]
            was = trainer.model.training
            trainer.model.eval()
            try:
                with torch.no_grad():
                    values = self.runner.run(inputs, model=trainer.model, upto=last, losses=False)
                    stats = activation_stats(trainer.compiled,
                                             {nid: v for nid, v in values.items() if nid in self._watched})
            finally:
                trainer.model.train(was)
        except Exception as exc:  # inspection must never end a run
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return
        finally:
            self._spent += time.perf_counter() - now
        norms = dict(self.last_norms)
        self._emit(Health(trainer.epoch, trainer.step, norms, gradient_levels(norms, self.typical_norms()), stats,
                          None, final))

    # -- hooks
    def on_run_start(self, trainer, event):
        self._t0 = time.perf_counter()
        self._spent = 0.0
        self._last_inspect = -math.inf
        self.snapshot = None
        self.runner = None
        self._params = sum(p.numel() for p in trainer.model.parameters())
        graph = trainer.compiled.inference.graph
        self._watched = frozenset(nid for nid, node in graph.nodes.items() if node.type in DEAD_UNIT_TYPES)
        self._early = {}  # each layer's first TYPICAL_FROM finite gradient norms

    def typical_norms(self) -> dict[str, float]:
        """Each layer's typical gradient norm early in the run (see ``EXPLODING_GROWTH``)."""
        return {nid: min(v) for nid, v in self._early.items() if v}

    def on_step(self, trainer, event):
        if event.grad_norms:
            self.last_norms = dict(event.grad_norms)
            # judged against the events before it (a layer's first norm: against itself, the run's scale)
            typical = {nid: v for nid, v in event.grad_norms.items() if math.isfinite(v)} | self.typical_norms()
            self._emit(Health(event.epoch, event.step, dict(event.grad_norms),
                              gradient_levels(event.grad_norms, typical)))
            for nid, v in event.grad_norms.items():
                early = self._early.setdefault(nid, [])
                if len(early) < TYPICAL_FROM and math.isfinite(v):
                    early.append(v)
        now = time.perf_counter()
        if (self._params <= self.max_snapshot_params and now - self._snap_time >= self.snapshot_seconds
                and event.losses and all(math.isfinite(v) for v in event.losses[-3:])):
            t = time.perf_counter()
            self.snapshot = {k: v.detach().to("cpu", copy=True) for k, v in trainer.model.state_dict().items()}
            self._snap_time = now
            self._spent += time.perf_counter() - t

    def on_epoch_end(self, trainer, event):
        self._inspect(trainer)

    def on_run_failed(self, trainer, event):
        try:
            found = self.locate(trainer)
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            found = None
        if found is None:
            return
        norms = dict(self.last_norms)
        self._emit(Health(event.epoch, event.step, norms, gradient_levels(norms, self.typical_norms()), {}, found,
                          True))

    def on_run_end(self, trainer, result):
        if result.status != "failed":
            self._inspect(trainer, final=True)

    def locate(self, trainer) -> NonFinite | None:
        import copy

        inputs, targets = _probe_inputs(trainer, self.probe_size)
        if self.snapshot is not None:
            model = copy.deepcopy(trainer.model)
            model.load_state_dict({k: v.to(trainer.device) for k, v in self.snapshot.items()})
            found = find_nonfinite(trainer.compiled, inputs, targets, model=model)
            if found is not None:
                found.message += " (replayed with the last weights kept while the loss was finite)"
                return found
        found = find_nonfinite(trainer.compiled, inputs, targets, model=trainer.model)
        if found is not None:
            found.message += " (with the weights at the failure)"
        return found


__all__ = ["NodeRunner", "NodeStats", "activation_stats", "dead_units", "gradient_level", "gradient_levels",
           "gradient_score", "NonFinite", "find_nonfinite", "Preview", "preview", "tile", "histogram",
           "SampleBatch", "sample_batch", "load_matching", "ExampleResults", "example_results", "Health",
           "trainer_preview",
           "HealthMonitor", "DEAD_UNIT_TYPES"]
