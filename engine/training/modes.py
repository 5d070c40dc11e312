"""Training modes: how one step turns a batch into a loss and an update. The trainer's loop, events,
checkpoints and controls are the same for every mode; a mode is a small strategy object chosen from
the graph's loss nodes (``select_mode``):

- ``gan`` (a GANLoss in the graph): alternating steps. The discriminator's step updates the weights that
  score the real data on the discriminator-side GANLoss terms; the generator's step updates the rest on
  the generator-side terms. A sample grid of generated images every ``sample_every`` steps.
- ``vae`` (a Reparameterize node): the Target is the input itself; reconstruction + KL through the
  sampler. Reconstructions and samples from the prior (the decoder on z ~ N(0, I)) as events.
- ``triplet`` (a TripletMarginLoss): anchor, positive and negative drawn from the class labels; triplet
  accuracy (d(a, p) < d(a, n)) while training and nearest-neighbour accuracy of the embeddings.
- ``supervised`` (anything else): Inputs -> outputs, loss against one Target. Several Inputs take the
  data set's several arrays (``Dataset.inputs``, by Input label, else in order): a seq2seq graph reads the
  source and the shifted target.

How the GAN mode finds its two networks, for any graph: the discriminator is every layer between the
data Input and the real-sample scores of a discriminator-side GANLoss (shared weights count once); the
generator is every other layer upstream of the fake scores. Each step runs the whole model forward
with the other network's weights frozen (``requires_grad`` off), so no gradient is computed for the
network that is not being stepped. Evaluation and samples use batch statistics in batch-norm layers,
as in training (``batch_statistics``). The two networks have their own parameter sets in the one torch
optimizer the trainer builds: each step leaves the other network's gradients out, so Adam's moments
and step counts stay per network, exactly as with two optimizers, and checkpoints and schedules need
nothing new.

A mode's ``train_step`` reads from the trainer only ``model``, ``forward_model``, ``loss_fn``,
``optimizer``, ``scaler``, ``grad_clip`` and ``autocast`` (the finders call it with a stand-in holding a
copy of the model); what else it needs it keeps from ``setup``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..spec import INPUT, OUTPUT
from .data import CLASSIFICATION, REGRESSION, DataError, fit_inputs, fit_targets

if TYPE_CHECKING:  # pragma: no cover
    from ..compiler import Compiled
    from .data import Dataset
    from .trainer import Trainer

GENERATION = "generation"  # GAN and VAE: no labels are scored; losses and samples tell the progress
EMBEDDING = "embedding"  # triplet: scored by triplet and nearest-neighbour accuracy


class SetupError(ValueError):
    """The graph cannot be trained as it is; the message says which node and what to change."""


# =========================================================================== several inputs
class TensorTuple:
    """The tensors of several Input nodes for the same examples, indexed, sliced and moved together.
    The trainer treats it like one tensor of examples: ``len``, ``x[idx]``, ``x[a:b]``, ``.to(device)``."""

    __slots__ = ("tensors",)

    def __init__(self, tensors: Iterable[torch.Tensor]):
        self.tensors = tuple(tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index) -> "TensorTuple":
        return TensorTuple(t[index] for t in self.tensors)

    def to(self, *args, **kwargs) -> "TensorTuple":
        return TensorTuple(t.to(*args, **kwargs) for t in self.tensors)

    def cpu(self) -> "TensorTuple":
        return TensorTuple(t.cpu() for t in self.tensors)

    def pin_memory(self) -> "TensorTuple":
        return TensorTuple(t.pin_memory() for t in self.tensors)

    @property
    def device(self) -> torch.device:
        return self.tensors[0].device

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def __repr__(self) -> str:
        return f"TensorTuple({', '.join(str(tuple(t.shape)) for t in self.tensors)})"


def call_model(model, xb) -> tuple[torch.Tensor, ...]:
    """The model's outputs as a tuple, for one input tensor or a ``TensorTuple``."""
    out = model(*xb.tensors) if isinstance(xb, TensorTuple) else model(xb)
    return out if isinstance(out, tuple) else (out,)


# =========================================================================== graph helpers
def _label(compiled, nid: str) -> str:
    return compiled.inference.graph.nodes[nid].label


def _upstream(compiled, start: str) -> list[str]:
    """Node ids that ``start`` depends on (itself included), following wires backwards."""
    inf = compiled.inference
    seen, todo = [], [start]
    while todo:
        nid = todo.pop()
        if nid in seen:
            continue
        seen.append(nid)
        todo += [src for src, _ in inf.nodes[nid].sources.values()]
    return seen


def _role(compiled, nid: str) -> str:
    graph = compiled.inference.graph
    return graph.registry[graph.nodes[nid].type].role


def _inputs_of(compiled, start: str) -> list[str]:
    return [nid for nid in _upstream(compiled, start) if _role(compiled, nid) == INPUT]


def _params_of(model, attrs: Iterable[str]) -> list[torch.nn.Parameter]:
    seen, out = set(), []
    for attr in attrs:
        for p in getattr(model, attr).parameters():
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


def _producer(inf, nid: str, port: str) -> str | None:
    """The node type that computes (nid, port), looking through Output nodes and into composites."""
    graph = inf.graph
    for _ in range(64):
        node = graph.nodes[nid]
        info = inf.nodes[nid]
        spec = graph.registry[node.type]
        if spec.role == OUTPUT:
            if "in" not in info.sources:
                return None
            nid, port = info.sources["in"]
            continue
        if spec.subgraph is not None and info.sub is not None:
            sub = info.sub
            inner = [i for i, n in sub.graph.nodes.items() if n.label == port
                     and sub.graph.registry[n.type].role == OUTPUT]
            if not inner:
                return None
            inf, graph, nid, port = sub, sub.graph, inner[0], "out"
            continue
        return node.type
    return None


def _value_range(compiled, output_id: str) -> tuple[float, float] | None:
    kind = _producer(compiled.inference, output_id, "out")
    return {"Tanh": (-1.0, 1.0), "Sigmoid": (0.0, 1.0)}.get(kind)


def _loss_params(compiled) -> dict[str, dict]:
    inf = compiled.inference
    return {_label(compiled, lid): dict(inf.nodes[lid].params or {}) for lid in compiled.plan.losses}


def _as_images(t: torch.Tensor) -> torch.Tensor | None:
    """(k, C, H, W) images from samples shaped (k, C, H, W), (k, H, W) or (k, side * side); else None."""
    if t.ndim == 4 and t.shape[1] in (1, 3):
        return t
    if t.ndim == 3:
        return t[:, None]
    if t.ndim == 2:
        side = math.isqrt(t.shape[1])
        if side * side == t.shape[1] and side > 1:
            return t.reshape(len(t), 1, side, side)
    return None


@contextlib.contextmanager
def frozen(params: list[torch.nn.Parameter]):
    """No gradient is computed for these weights inside the block (their requires_grad is restored)."""
    flipped = [p for p in params if p.requires_grad]
    for p in flipped:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in flipped:
            p.requires_grad_(True)


@contextlib.contextmanager
def batch_statistics(model):
    """Batch-norm layers normalise with each batch's own statistics, as while training, and keep their
    running statistics as they were. A GAN is judged and sampled this way: its discriminator's running
    statistics mix real and generated batches, and its generator only ever saw batch statistics."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not m.training]
    saved = [(m, [(b, b.clone()) for b in m.buffers(recurse=False)]) for m in norms]
    for m in norms:
        m.train(True)
    try:
        yield
    finally:
        for m, buffers in saved:
            m.train(False)
            with torch.no_grad():
                for buffer, value in buffers:
                    buffer.copy_(value)


def apply_update(trainer, loss: torch.Tensor, params=None) -> None:
    """Backward, clip and step: the one update rule every mode uses. ``params`` are the weights this
    update is for (all of the model's by default); only they are clipped."""
    opt = trainer.optimizer
    opt.zero_grad(set_to_none=True)
    clip_params = params if params is not None else trainer.model.parameters()
    scaler = trainer.scaler
    if scaler is not None:
        scaler.scale(loss).backward()
        if trainer.grad_clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(clip_params, trainer.grad_clip)
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        if trainer.grad_clip:
            torch.nn.utils.clip_grad_norm_(clip_params, trainer.grad_clip)
        opt.step()


class _TermMeter:
    """Per-example means of each loss term over many steps, summed where they are (one read at the end)."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, terms: dict[str, torch.Tensor], n: int) -> None:
        for key, value in terms.items():
            v = value.detach().double() * n
            self.sums[key] = self.sums[key] + v if key in self.sums else v
        self.count += n

    def take(self) -> dict[str, float]:
        if not self.sums or not self.count:
            return {}
        keys = list(self.sums)
        values = torch.stack([self.sums[k] for k in keys]).tolist()
        out = {k: v / self.count for k, v in zip(keys, values)}
        self.sums, self.count = {}, 0
        return out


def _batches(trainer, part, batch_size: int | None = None):
    """(start, x, y) batches of a split on the training device."""
    size = batch_size or trainer.config.eval_batch_size
    for a in range(0, len(part), size):
        xb, yb = part.x[a:a + size], part.y[a:a + size]
        if trainer._host_data:
            xb, yb = trainer._to_device(xb, yb)
        yield a, xb, yb


# =========================================================================== the base
class TrainingMode:
    """One way to train. Subclasses say which graphs they claim (``claims``) and can train
    (``accepts``), shape the data (``prepare_data``) and implement the steps; the defaults of the other
    hooks suit supervised learning."""

    name = "base"
    task = CLASSIFICATION  # classification, regression, generation or embedding
    # How steps report right answers: "argmax" (the step returns class scores, scored against the labels),
    # "count" (the step returns the number of right answers), None (no accuracy while training).
    step_accuracy: str | None = None
    # A class id that counts in no metric, as the loss leaves it out (the CrossEntropyLoss's ignore_index:
    # a tagger's padding); -100 (PyTorch's default) when none is. Negative class ids never count.
    ignore_index: int = -100
    makes_images = False  # its samples are image grids, saved as PNG in the run folder
    selects_best = True  # the dev loss picks the best epoch (not for a GAN: its losses chase each other)

    @classmethod
    def claims(cls, compiled: "Compiled") -> bool:
        """Whether ``auto`` picks this mode for the graph (by its loss nodes)."""
        return False

    @classmethod
    def accepts(cls, compiled: "Compiled") -> str | None:
        """None when this mode can train the graph, else the reason it cannot (shown to the user)."""
        raise NotImplementedError

    def __init__(self, compiled: "Compiled"):
        self.compiled = compiled

    def describe_data(self) -> dict:
        """What the data must look like: Input and Target node ids, shapes and dtypes."""
        raise NotImplementedError

    def prepare_data(self, dataset: "Dataset") -> tuple[Any, np.ndarray, list[str]]:
        """(x, y, notes): x shaped for the Input node(s) (a tuple of arrays for several), y for the
        Target or the labels the mode draws from; raises DataError naming what does not fit."""
        raise NotImplementedError

    def setup(self, trainer: "Trainer") -> None:
        """Called once the data, model and optimizer are in place (fixed noise, class indices...)."""

    def train_step(self, trainer: "Trainer", xb, yb: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Forward, backward and optimizer step(s) on one batch; returns (loss, prediction), not synced.
        The prediction is what ``step_accuracy`` says (class scores, a count of right answers, or None)."""
        raise NotImplementedError

    def eval_step(self, trainer: "Trainer", xb, yb: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(loss, prediction) for a batch without touching the weights (the caller sets eval mode)."""
        raise NotImplementedError

    def score_step(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """For ``step_accuracy == "argmax"``: right answers and targets counted in class scores (N, C, ...)
        against class ids (N, ...), as one int64 tensor [right, counted] on the device (not read).
        Targets of class ``ignore_index`` (and negative ones) are not counted."""
        from .metrics import score_classes

        return score_classes(scores, labels, self.ignore_index)

    def evaluate(self, trainer: "Trainer", part, full: bool = False) -> dict:
        """Loss and metrics on one split (eval mode is set by the caller): ``loss``, ``accuracy`` and
        ``error`` or ``mse``, and optionally ``terms`` (each loss node's value per example) and ``metrics``
        (the mode's own numbers)."""
        from .metrics import evaluate

        return evaluate(trainer._predict, part.x, part.y, self.task, trainer.num_classes,
                        trainer.config.eval_batch_size, trainer.device, confusion=full,
                        to_device=trainer._to_device if trainer._host_data else None,
                        ignore_index=self.ignore_index)

    def take_train_terms(self) -> dict[str, float]:
        """Each loss term's mean over the steps since the last call (per example)."""
        return {}

    def samples(self, trainer: "Trainer", epoch: int) -> list:
        """``Samples`` events showing the model's current work (eval mode is set by the caller)."""
        return []

    def summary(self, report: dict) -> dict:
        """Headline numbers for the report of a run (added at its top)."""
        return {}


# =========================================================================== supervised
class SupervisedMode(TrainingMode):
    """Inputs -> model -> outputs; loss(outputs, targets). Classification when the loss that reads the
    Target is a cross-entropy with class ids, regression otherwise."""

    name = "supervised"

    @classmethod
    def claims(cls, compiled):
        return True

    @classmethod
    def accepts(cls, compiled):
        plan = compiled.plan
        if not plan.losses:
            return ("the graph has no loss node: add one (e.g. CrossEntropyLoss for classes, MSELoss for values) "
                    "reading an Output and a Target")
        if not plan.inputs:
            return "the graph has no Input node for the data"
        if len(plan.targets) != 1:
            return (f"supervised training needs exactly one Target node for the labels; this graph has "
                    f"{len(plan.targets)}")
        return None

    def __init__(self, compiled):
        super().__init__(compiled)
        inf, plan, graph = compiled.inference, compiled.plan, compiled.inference.graph
        self.input_ids = [nid for nid, _ in plan.inputs]
        self.input_id = self.input_ids[0]
        self.target_id = plan.targets[0][0]
        out_index = {nid: k for k, (nid, _) in enumerate(plan.outputs)}
        # The loss node that reads the Target tells which output is scored against it, and how.
        self.output_index, self.loss_type = 0, None
        for lid in plan.losses:
            sources = inf.nodes[lid].sources
            if sources.get("target", (None,))[0] == self.target_id and sources.get("pred", (None,))[0] in out_index:
                self.output_index = out_index[sources["pred"][0]]
                self.loss_type = graph.nodes[lid].type
                # the class id this loss leaves out (a tagger's padding) counts in no metric either
                self.ignore_index = int((inf.nodes[lid].params or {}).get("ignore_index", -100))
                break
        self.output_id = plan.outputs[self.output_index][0]
        target_info = inf.shape(self.target_id)
        self.task = CLASSIFICATION if target_info.dtype == "int64" else REGRESSION
        self.step_accuracy = "argmax" if self.task == CLASSIFICATION else None
        self.single_output = len(plan.outputs) == 1
        scores = inf.nodes[self.output_id].inputs["in"]
        self.num_classes_out = scores.shape[1] if self.task == CLASSIFICATION and len(scores.shape) > 1 else None

    def _describe_input(self, nid):
        inf, graph = self.compiled.inference, self.compiled.inference.graph
        x = inf.shape(nid)
        return {"id": nid, "label": graph.nodes[nid].label, "shape": tuple(x.shape[1:]), "dtype": x.dtype}

    def describe_data(self):
        inf, graph = self.compiled.inference, self.compiled.inference.graph
        t = inf.shape(self.target_id)
        inputs = [self._describe_input(nid) for nid in self.input_ids]
        return {"input": inputs[0], "inputs": inputs,
                "target": {"id": self.target_id, "label": graph.nodes[self.target_id].label,
                           "shape": tuple(t.shape[1:]), "dtype": t.dtype},
                "task": self.task, "classes_out": self.num_classes_out}

    def _match_inputs(self, ds) -> list[tuple[dict, np.ndarray, str]]:
        """Each Input node with the data set's array for it: by name, then in order (x first)."""
        wanted = self.describe_data()["inputs"]
        if len(wanted) == 1:
            return [(wanted[0], ds.x, "x")]
        named = {w["label"]: ds.inputs[w["label"]] for w in wanted if w["label"] in ds.inputs}
        spare = [("x", ds.x)] + [(k, v) for k, v in ds.inputs.items() if k not in named]
        rest = [w for w in wanted if w["label"] not in named]
        if len(rest) > len(spare):
            have = ", ".join(["x", *ds.inputs]) or "x"
            raise DataError(f"the graph reads {len(wanted)} Inputs ({', '.join(w['label'] for w in wanted)}) but data "
                            f"set '{ds.name}' gives {1 + len(ds.inputs)} input array(s) ({have}); use a data set "
                            "with an input per Input node (named after them), or remove Inputs")
        spare_iter = iter(spare)
        out = []
        for w in wanted:
            if w["label"] in named:
                out.append((w, named[w["label"]], w["label"]))
            else:
                name, arr = next(spare_iter)
                out.append((w, arr, name))
        return out

    def prepare_data(self, ds):
        want = self.describe_data()
        if ds.task != self.task:
            tgt = want["target"]["label"]
            raise DataError(f"data set '{ds.name}' is a {ds.task} task, but Target '{tgt}' expects "
                            f"{'class ids (int64)' if self.task == CLASSIFICATION else 'values (float32)'}; "
                            "change the Target's dtype and the loss node, or pick another data set")
        xs, notes = [], []
        matched = self._match_inputs(ds)
        for w, arr, name in matched:
            part = ds if arr is ds.x else dataclasses.replace(ds, x=arr, inputs={})
            x, fit_notes = fit_inputs(part, w["shape"], w["label"], w["dtype"])
            xs.append(x)
            prefix = f"Input '{w['label']}' reads the data set's '{name}'" if len(matched) > 1 else ""
            if prefix:
                notes.append(prefix + (f" ({'; '.join(fit_notes)})" if fit_notes else ""))
            else:
                notes += fit_notes
        y = fit_targets(ds, want["target"]["shape"], want["target"]["label"], want["target"]["dtype"],
                        want["classes_out"])
        return (xs[0] if len(xs) == 1 else tuple(xs)), y, notes

    def _forward(self, model, loss_fn, xb, yb):
        outputs = call_model(model, xb)
        loss = loss_fn(*outputs, yb)
        return loss, outputs[self.output_index]

    def train_step(self, trainer, xb, yb):
        with trainer.autocast():
            loss, pred = self._forward(trainer.forward_model, trainer.loss_fn, xb, yb)
        apply_update(trainer, loss)
        return loss, pred

    def eval_step(self, trainer, xb, yb):
        with trainer.autocast():
            return self._forward(trainer.forward_model, trainer.loss_fn, xb, yb)

    def evaluate(self, trainer, part, full=False):
        sequence = self.task == CLASSIFICATION and part.y.ndim > 1
        if not sequence:
            return super().evaluate(trainer, part, full)
        # One class per position (a tagger, a seq2seq decoder): the per-position accuracy comes from
        # metrics.evaluate; whole sequences right (every position that counts: padding does not) are
        # counted in the same pass.
        from .metrics import counted, evaluate

        whole: list[torch.Tensor] = []

        def predict(xb, yb):
            loss, pred = trainer._predict(xb, yb)
            whole.append(((pred.argmax(1) == yb) | ~counted(yb, self.ignore_index)).flatten(1).all(1).sum())
            return loss, pred

        out = evaluate(predict, part.x, part.y, self.task, trainer.num_classes, trainer.config.eval_batch_size,
                       trainer.device, confusion=full, to_device=trainer._to_device if trainer._host_data else None,
                       ignore_index=self.ignore_index)
        if whole and len(part):
            out["metrics"] = {"sequence_accuracy": float(torch.stack(whole).sum()) / len(part)}
        return out

    def samples(self, trainer, epoch):
        from .trainer import Samples

        src = trainer.splits["dev"] if len(trainer.splits["dev"]) else trainer.splits["train"]
        k = min(8, len(src))
        # spread over the split, the same ones at every epoch (a data set stored in order, such as the
        # spirals from the centre out, showed its first eight: all alike)
        pick = torch.linspace(0, len(src) - 1, k).round().long().to(src.y.device)
        xb, yb = src.x[pick], src.y[pick]
        if trainer._host_data:
            xb, yb = trainer._to_device(xb, yb)
        _, pred = self.eval_step(trainer, xb, yb)
        conf = None
        if self.task == CLASSIFICATION:
            prob = torch.softmax(pred.float(), dim=1)
            conf, pred = prob.max(1)
            conf = conf.cpu()
        inputs = xb.tensors[0] if isinstance(xb, TensorTuple) else xb
        return [Samples(epoch, "predictions", inputs.cpu(), yb.cpu(), pred.cpu(), conf, trainer.dataset.classes,
                        step=trainer.step)]


# =========================================================================== shared by GAN and VAE
def _fit_images(mode_name: str, ds, want: dict) -> tuple[np.ndarray, list[str]]:
    if want["dtype"] != "float32":
        raise DataError(f"{mode_name} training reads images into Input '{want['label']}', which is "
                        f"{want['dtype']}; set its dtype to float32")
    if not np.issubdtype(ds.x.dtype, np.floating):
        raise DataError(f"{mode_name} training needs real-valued samples (images); data set '{ds.name}' gives "
                        f"{ds.x.dtype} values")
    return fit_inputs(ds, want["shape"], want["label"], want["dtype"])


def _labels_for_split(ds) -> np.ndarray:
    """The labels kept beside the inputs: unused by the loss, they keep the split stratified."""
    return ds.y


# =========================================================================== GAN
class GANMode(TrainingMode):
    """Alternating discriminator and generator steps on the two sides' GANLoss terms."""

    name = "gan"
    task = GENERATION
    makes_images = True
    selects_best = False

    @classmethod
    def claims(cls, compiled):
        graph = compiled.inference.graph
        return any(graph.nodes[lid].type == "GANLoss" for lid in compiled.plan.losses)

    @classmethod
    def _sides(cls, compiled) -> dict[str, list[str]]:
        inf = compiled.inference
        sides = {"discriminator": [], "generator": []}
        for lid in compiled.plan.losses:
            if inf.graph.nodes[lid].type == "GANLoss":
                sides[inf.nodes[lid].params["side"]].append(lid)
        return sides

    @classmethod
    def accepts(cls, compiled):
        plan, graph = compiled.plan, compiled.inference.graph
        others = [lid for lid in plan.losses if graph.nodes[lid].type != "GANLoss"]
        if others:
            return (f"GAN training steps each network on its side's GANLoss; '{_label(compiled, others[0])}' "
                    f"({graph.nodes[others[0]].type}) belongs to neither side: remove it")
        if plan.targets:
            return (f"GAN training feeds no Target node; remove '{_label(compiled, plan.targets[0][0])}' (real "
                    "images come through the discriminator's Input)")
        sides = cls._sides(compiled)
        if not sides["discriminator"] or not sides["generator"]:
            missing = "discriminator" if not sides["discriminator"] else "generator"
            return (f"a GAN needs a GANLoss with side '{missing}' too: add one (the generator side reads the "
                    "scores of generated samples; the discriminator side those and the real ones)")
        try:
            cls._wiring(compiled)
        except SetupError as exc:
            return str(exc)
        return None

    @classmethod
    def _wiring(cls, compiled) -> dict:
        """Which Input is the data, which are noise, and whose weights each side steps."""
        inf, plan = compiled.inference, compiled.plan
        sides = cls._sides(compiled)
        real_sources = [inf.nodes[lid].sources["real"][0] for lid in sides["discriminator"]]
        data_inputs = sorted({i for s in real_sources for i in _inputs_of(compiled, s)})
        d_label = _label(compiled, sides["discriminator"][0])
        if len(data_inputs) != 1:
            where = ("no Input" if not data_inputs else
                     "several Inputs (" + ", ".join(_label(compiled, i) for i in data_inputs) + ")")
            raise SetupError(f"the real scores of GANLoss '{d_label}' come from {where}; they must come from "
                             "exactly one Input, the real data")
        data_id = data_inputs[0]
        if inf.shape(data_id).dtype != "float32":
            raise SetupError(f"Input '{_label(compiled, data_id)}' holds the real samples and must be float32")
        noise_ids = [nid for nid, _ in plan.inputs if nid != data_id]
        for nid in noise_ids:
            if inf.shape(nid).dtype != "float32":
                raise SetupError(f"Input '{_label(compiled, nid)}' is fed Gaussian noise in GAN training and must "
                                 "be float32 (conditional GANs with class inputs are not supported yet)")
        if not noise_ids:
            raise SetupError("a GAN's generator needs an Input of its own for the noise (e.g. z, shaped [100])")
        d_nodes = {n for s in real_sources for n in _upstream(compiled, s)}
        d_attrs = sorted({plan.attrs[n] for n in d_nodes if n in plan.attrs})
        fake_sources = [inf.nodes[lid].sources["fake"][0] for lid in sides["discriminator"] + sides["generator"]]
        g_nodes = {n for s in fake_sources for n in _upstream(compiled, s)}
        g_attrs = sorted({plan.attrs[n] for n in g_nodes if n in plan.attrs} - set(d_attrs))
        if not d_attrs:
            raise SetupError(f"no layer with weights scores the real samples of GANLoss '{d_label}': the "
                             "discriminator is missing")
        if not g_attrs:
            raise SetupError("no layer with weights lies between the noise and the fake scores other than the "
                             "discriminator's: the generator is missing")
        # The generated samples: an Output that comes from the noise, not the data, shaped like the data.
        data_shape = inf.shape(data_id).shape
        fake_out = None
        for k, (oid, _) in enumerate(plan.outputs):
            ups = _upstream(compiled, oid)
            shape = inf.nodes[oid].inputs.get("in")
            if data_id not in ups and shape is not None and shape.shape == data_shape:
                fake_out = k
                break
        d_loss = sides["discriminator"][0]
        out_index = {nid: k for k, (nid, _) in enumerate(plan.outputs)}
        return {"data": data_id, "noise": noise_ids, "d_attrs": d_attrs, "g_attrs": g_attrs, "fake_output": fake_out,
                "real_score": out_index.get(inf.nodes[d_loss].sources["real"][0]),
                "fake_score": out_index.get(inf.nodes[d_loss].sources["fake"][0]),
                "threshold": 0.0 if inf.nodes[d_loss].params["objective"] == "bce" else 0.5}

    def __init__(self, compiled):
        super().__init__(compiled)
        inf, plan = compiled.inference, compiled.plan
        w = self._wiring(compiled)
        self.data_id, self.noise_ids = w["data"], w["noise"]
        self.d_attrs, self.g_attrs = w["d_attrs"], w["g_attrs"]
        self.fake_output, self.real_score, self.fake_score = w["fake_output"], w["real_score"], w["fake_score"]
        self.threshold = w["threshold"]
        self.positions = [nid for nid, _ in plan.inputs]
        self.noise_shapes = {nid: tuple(inf.shape(nid).shape[1:]) for nid in self.noise_ids}
        params = _loss_params(compiled)
        sides = self._sides(compiled)
        weight = {label: p["weight"] for label, p in params.items()}
        self.d_terms = {_label(compiled, lid): weight[_label(compiled, lid)] for lid in sides["discriminator"]}
        self.g_terms = {_label(compiled, lid): weight[_label(compiled, lid)] for lid in sides["generator"]}
        self.out_range = (_value_range(compiled, plan.outputs[self.fake_output][0])
                          if self.fake_output is not None else None)
        self.data_range: tuple[float, float] = (0.0, 1.0)
        self.meter = _TermMeter()
        self._param_cache: tuple[int, list, list] | None = None
        self._eval_gen: torch.Generator | None = None

    def describe_data(self):
        inf, graph = self.compiled.inference, self.compiled.inference.graph
        x = inf.shape(self.data_id)
        return {"input": {"id": self.data_id, "label": graph.nodes[self.data_id].label, "shape": tuple(x.shape[1:]),
                          "dtype": x.dtype},
                "noise": [{"id": nid, "label": graph.nodes[nid].label, "shape": self.noise_shapes[nid]}
                          for nid in self.noise_ids],
                "target": None, "task": self.task, "classes_out": None}

    def prepare_data(self, ds):
        want = self.describe_data()["input"]
        x, notes = _fit_images("GAN", ds, want)
        lo, hi = float(x.min()), float(x.max())
        self.data_range = (lo, hi) if hi > lo else (0.0, 1.0)
        if self.out_range == (-1.0, 1.0) and lo >= 0.0 and hi <= 1.0:
            x = (x * 2.0 - 1.0).astype(np.float32)
            self.data_range = (-1.0, 1.0)
            notes.append("real images scaled from [0, 1] to [-1, 1], the range of the generator's Tanh")
        return x, _labels_for_split(ds), notes

    def setup(self, trainer):
        gen = torch.Generator().manual_seed(trainer.config.seed + 17)
        k = trainer.config.sample_count
        self.fixed_noise = {nid: torch.randn(k, *shape, generator=gen).to(trainer.device)
                            for nid, shape in self.noise_shapes.items()}
        self.eval_seed = trainer.config.seed + 29
        if self.fake_output is None:
            trainer.notes.append("no Output shows the generated samples (shaped like the real ones); wire the "
                                 "generator's result to an Output to get sample grids")

    def _params(self, model) -> tuple[list, list]:
        if self._param_cache is None or self._param_cache[0] != id(model):
            self._param_cache = (id(model), _params_of(model, self.d_attrs), _params_of(model, self.g_attrs))
        return self._param_cache[1], self._param_cache[2]

    def _inputs(self, xb: torch.Tensor, noise: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [xb if nid == self.data_id else noise[nid] for nid in self.positions]

    def _side_loss(self, terms: dict, weights: dict) -> torch.Tensor:
        return sum(w * terms[label] for label, w in weights.items())

    def train_step(self, trainer, xb, yb):
        n = len(xb)
        noise = {nid: torch.randn(n, *shape, device=xb.device) for nid, shape in self.noise_shapes.items()}
        inputs = self._inputs(xb, noise)
        d_params, g_params = self._params(trainer.model)
        # Discriminator step: the generator's weights are frozen, so no gradient is computed for them.
        with frozen(g_params):
            with trainer.autocast():
                terms = trainer.loss_fn.terms(*call_model(trainer.forward_model, TensorTuple(inputs)))
                d_loss = self._side_loss(terms, self.d_terms)
            apply_update(trainer, d_loss, d_params)
        recorded = {k: terms[k] for k in self.d_terms}
        # Generator step on the same noise, scored by the updated discriminator (frozen now).
        kept = [(p, p.grad) for p in d_params]  # the discriminator's gradients stay visible to observers
        for p in d_params:
            p.grad = None
        with frozen(d_params):
            with trainer.autocast():
                terms = trainer.loss_fn.terms(*call_model(trainer.forward_model, TensorTuple(inputs)))
                g_loss = self._side_loss(terms, self.g_terms)
            apply_update(trainer, g_loss, g_params)
        for p, grad in kept:
            p.grad = grad
        recorded.update({k: terms[k] for k in self.g_terms})
        self.meter.add(recorded, n)
        return d_loss.detach() + g_loss.detach(), None

    def eval_step(self, trainer, xb, yb):
        """Losses on real samples against generated ones, from seeded noise (the same at every evaluation)."""
        n = len(xb)
        gen = self._eval_gen or torch.Generator().manual_seed(self.eval_seed)
        noise = {nid: torch.randn(n, *shape, generator=gen).to(xb.device) for nid, shape in self.noise_shapes.items()}
        with trainer.autocast():
            outputs = call_model(trainer.forward_model, TensorTuple(self._inputs(xb, noise)))
            terms = trainer.loss_fn.terms(*outputs)
        loss = self._side_loss(terms, self.d_terms) + self._side_loss(terms, self.g_terms)
        return loss, (terms, outputs)

    @torch.no_grad()
    def evaluate(self, trainer, part, full=False):
        n = len(part)
        if n == 0:
            return {"examples": 0}
        meter = _TermMeter()
        loss_sum, right = None, None
        self._eval_gen = torch.Generator().manual_seed(self.eval_seed)
        for _, xb, yb in _batches(trainer, part, trainer.batch_size):
            with batch_statistics(trainer.model):
                loss, (terms, outputs) = trainer._guard(self.eval_step, trainer, xb, yb)
            meter.add(terms, len(xb))
            loss_sum = loss.double() * len(xb) + (loss_sum if loss_sum is not None else 0)
            if self.real_score is not None and self.fake_score is not None:
                hits = ((outputs[self.real_score].float() > self.threshold).sum()
                        + (outputs[self.fake_score].float() <= self.threshold).sum())
                right = hits if right is None else right + hits
        self._eval_gen = None
        out = {"examples": n, "loss": float(loss_sum) / n, "terms": meter.take()}
        if right is not None:
            # How often the discriminator tells real from generated (0.5: fooled; 1.0: it always wins).
            out["metrics"] = {"discriminator_accuracy": float(right) / (2 * n)}
        return out

    def take_train_terms(self):
        return self.meter.take()

    @torch.no_grad()
    def samples(self, trainer, epoch):
        from .trainer import Samples

        if self.fake_output is None:
            return []
        k = trainer.config.sample_count
        data_shape = self.describe_data()["input"]["shape"]
        placeholder = torch.zeros(k, *data_shape, device=trainer.device)  # the real Input; its scores are unused
        with trainer.autocast(), batch_statistics(trainer.model):
            outputs = call_model(trainer.forward_model, TensorTuple(self._inputs(placeholder, self.fixed_noise)))
        fake = outputs[self.fake_output].float().cpu()
        from .images import image_grid, to_display

        shown = to_display(fake, self.out_range or self.data_range)
        images = _as_images(shown)
        grid = image_grid(images, columns=math.ceil(math.sqrt(k))) if images is not None else None
        z = self.fixed_noise[self.noise_ids[0]].cpu()
        return [Samples(epoch, "generated", z, None, shown, None, None, step=trainer.step, grid=grid)]

    def summary(self, report):
        return split_headline(report)


# =========================================================================== VAE
class VAEMode(TrainingMode):
    """The input is its own target: reconstruction loss(es) plus the sampler's KL term."""

    name = "vae"
    task = GENERATION
    makes_images = True

    @classmethod
    def claims(cls, compiled):
        graph = compiled.inference.graph
        return bool(compiled.plan.losses) and any(n.type == "Reparameterize" for n in graph.nodes.values())

    @classmethod
    def accepts(cls, compiled):
        plan, inf, graph = compiled.plan, compiled.inference, compiled.inference.graph
        if not plan.losses:
            return "the graph has no loss node: add a reconstruction loss and a TermLoss on the sampler's kl"
        if not any(n.type == "Reparameterize" for n in graph.nodes.values()):
            return "a VAE needs a Reparameterize node between the encoder and the decoder"
        if len(plan.inputs) != 1:
            return (f"VAE training feeds one Input (the data); this graph has {len(plan.inputs)} "
                    f"({', '.join(_label(compiled, i) for i, _ in plan.inputs)})")
        x = inf.shape(plan.inputs[0][0])
        if x.dtype != "float32":
            return f"Input '{_label(compiled, plan.inputs[0][0])}' must be float32 (images or values) for a VAE"
        if not plan.targets:
            return ("a VAE's reconstruction loss reads a Target shaped like the Input (it is fed the input "
                    "itself): add one")
        for tid, _ in plan.targets:
            t = inf.shape(tid)
            if t.shape != x.shape or t.dtype != x.dtype:
                return (f"Target '{_label(compiled, tid)}' is {t} {t.dtype}; in a VAE every Target is fed the input "
                        f"itself, so it must be {x} {x.dtype} like Input '{_label(compiled, plan.inputs[0][0])}'")
        if cls._reconstruction(compiled) is None:
            return "no loss node compares an Output with the Target: add the reconstruction loss"
        return None

    @classmethod
    def _reconstruction(cls, compiled) -> tuple[str, int] | None:
        """(loss node id, output index) of the first loss that reads a Target."""
        inf, plan = compiled.inference, compiled.plan
        targets = {tid for tid, _ in plan.targets}
        out_index = {nid: k for k, (nid, _) in enumerate(plan.outputs)}
        for lid in plan.losses:
            sources = inf.nodes[lid].sources
            if sources.get("target", (None,))[0] in targets and sources.get("pred", (None,))[0] in out_index:
                return lid, out_index[sources["pred"][0]]
        return None

    def __init__(self, compiled):
        super().__init__(compiled)
        plan, graph = compiled.plan, compiled.inference.graph
        self.input_id = plan.inputs[0][0]
        self.n_targets = len(plan.targets)
        lid, self.recon_output = self._reconstruction(compiled)
        self.recon_loss = _label(compiled, lid)
        self.logits = graph.nodes[lid].type == "BCEWithLogitsLoss"
        params = _loss_params(compiled)
        self.weights = {label: p.get("weight", 1.0) for label, p in params.items()}
        self.summed = {label for label, p in params.items() if p.get("reduction") == "sum"}
        self.decoder = self._find_decoder(compiled)
        self.meter = _TermMeter()

    @staticmethod
    def _find_decoder(compiled) -> dict | None:
        """The network that reads the sampler's z, when it is a composite with z as its only input: it
        turns z ~ N(0, I) into samples from the prior."""
        inf, plan, graph = compiled.inference, compiled.plan, compiled.inference.graph
        for nid, node in graph.nodes.items():
            if node.type != "Reparameterize":
                continue
            for edge in graph.edges:
                if edge.src != nid or edge.src_port != "z":
                    continue
                dst = graph.nodes[edge.dst]
                spec = graph.registry[dst.type]
                if spec.subgraph is None or edge.dst not in plan.attrs or len(inf.nodes[edge.dst].inputs) != 1:
                    continue
                # which of its outputs becomes the reconstruction
                rec_oid = plan.outputs[VAEMode._reconstruction(compiled)[1]][0]
                src, port = inf.nodes[rec_oid].sources["in"]
                if src != edge.dst:
                    continue
                return {"attr": plan.attrs[edge.dst], "port": port, "label": dst.label,
                        "z_shape": tuple(inf.shape(nid, "z").shape[1:])}
        return None

    def describe_data(self):
        inf, graph = self.compiled.inference, self.compiled.inference.graph
        x = inf.shape(self.input_id)
        return {"input": {"id": self.input_id, "label": graph.nodes[self.input_id].label,
                          "shape": tuple(x.shape[1:]), "dtype": x.dtype},
                "target": None, "task": self.task, "classes_out": None}

    def prepare_data(self, ds):
        x, notes = _fit_images("VAE", ds, self.describe_data()["input"])
        if self.logits and (x.min() < 0 or x.max() > 1):
            notes.append(f"'{self.recon_loss}' is a binary cross-entropy, which expects values in [0, 1]; the data "
                         f"ranges over [{x.min():.3g}, {x.max():.3g}]")
        return x, _labels_for_split(ds), notes

    def setup(self, trainer):
        gen = torch.Generator().manual_seed(trainer.config.seed + 17)
        self.fixed_z = (torch.randn(trainer.config.sample_count, *self.decoder["z_shape"], generator=gen)
                        .to(trainer.device) if self.decoder is not None else None)
        if self.decoder is None:
            trainer.notes.append("samples from the prior need the decoder drawn as a composite network that reads "
                                 "the sampler's z; only reconstructions are shown")

    def _terms(self, model, loss_fn, xb):
        outputs = call_model(model, xb)
        terms = loss_fn.terms(*outputs, *([xb] * self.n_targets))
        return outputs, terms

    def _per_example(self, terms: dict, n: int) -> dict:
        return {k: (v / n if k in self.summed else v) for k, v in terms.items()}

    def _report(self, terms: dict) -> torch.Tensor:
        return sum(self.weights[k] * v for k, v in terms.items())

    def train_step(self, trainer, xb, yb):
        with trainer.autocast():
            _, terms = self._terms(trainer.forward_model, trainer.loss_fn, xb)
            loss = sum(self.weights[k] * v for k, v in terms.items())  # what loss_fn(...) computes
        apply_update(trainer, loss)
        shown = self._per_example(terms, len(xb))
        self.meter.add(shown, len(xb))
        return self._report(shown).detach(), None

    def eval_step(self, trainer, xb, yb):
        with trainer.autocast():
            outputs, terms = self._terms(trainer.forward_model, trainer.loss_fn, xb)
        shown = self._per_example(terms, len(xb))
        return self._report(shown), (shown, outputs)

    @torch.no_grad()
    def evaluate(self, trainer, part, full=False):
        n = len(part)
        if n == 0:
            return {"examples": 0}
        meter, total = _TermMeter(), None
        for _, xb, yb in _batches(trainer, part):
            loss, (terms, _) = trainer._guard(self.eval_step, trainer, xb, yb)
            meter.add(terms, len(xb))
            total = loss.double() * len(xb) + (total if total is not None else 0)
        return {"examples": n, "loss": float(total) / n, "terms": meter.take()}

    def take_train_terms(self):
        return self.meter.take()

    def _display(self, t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        return torch.sigmoid(t) if self.logits else t.clamp(0, 1)

    @torch.no_grad()
    def samples(self, trainer, epoch):
        from .images import image_grid
        from .trainer import Samples

        out = []
        src = trainer.splits["dev"] if len(trainer.splits["dev"]) else trainer.splits["train"]
        k = min(max(trainer.config.sample_count // 2, 1), len(src))
        xb = src.x[:k]
        if trainer._host_data:
            xb = xb.to(trainer.device)
        with trainer.autocast():
            outputs = call_model(trainer.forward_model, xb)
        recon = self._display(outputs[self.recon_output]).cpu()
        original = xb.float().cpu()
        columns = min(8, k)
        rows = []
        for start in range(0, k, columns):  # a row of originals over the row of their reconstructions
            chunk = slice(start, start + columns)
            pad = columns - len(original[chunk])
            blank = torch.zeros(pad, *original.shape[1:])
            rows += [torch.cat([original[chunk], blank]), torch.cat([recon[chunk], blank])]
        images = _as_images(torch.cat(rows))
        grid = image_grid(images, columns=columns) if images is not None else None
        reconstructions = Samples(epoch, "reconstructions", original, original, recon, None, None,
                                  step=trainer.step, grid=grid)
        if self.decoder is not None:
            decoder = getattr(trainer.model, self.decoder["attr"])
            with trainer.autocast():
                result = decoder(self.fixed_z)
            if isinstance(result, tuple):
                names = list(getattr(decoder, "output_names", ()))
                result = result[names.index(self.decoder["port"])] if self.decoder["port"] in names else result[0]
            generated = self._display(result).cpu()
            images = _as_images(generated)
            count = len(generated)
            grid = image_grid(images, columns=math.ceil(math.sqrt(count))) if images is not None else None
            out.append(Samples(epoch, "generated", self.fixed_z.cpu(), None, generated, None, None,
                               step=trainer.step, grid=grid))
            reconstructions.samples = generated
        out.append(reconstructions)  # last, so a view showing the newest event shows both
        return out

    def summary(self, report):
        return split_headline(report)


# =========================================================================== triplet
class TripletMode(TrainingMode):
    """Anchor, positive (same class) and negative (another class) drawn from a labelled data set."""

    name = "triplet"
    task = EMBEDDING
    step_accuracy = "count"
    ROLES = ("anchor", "positive", "negative")

    @classmethod
    def claims(cls, compiled):
        graph = compiled.inference.graph
        return any(graph.nodes[lid].type == "TripletMarginLoss" for lid in compiled.plan.losses)

    @classmethod
    def accepts(cls, compiled):
        try:
            cls._wiring(compiled)
        except SetupError as exc:
            return str(exc)
        return None

    @classmethod
    def _wiring(cls, compiled) -> dict:
        plan, inf, graph = compiled.plan, compiled.inference, compiled.inference.graph
        triplets = [lid for lid in plan.losses if graph.nodes[lid].type == "TripletMarginLoss"]
        if len(plan.losses) != 1 or len(triplets) != 1:
            names = ", ".join(_label(compiled, lid) for lid in plan.losses)
            raise SetupError(f"triplet training optimises one TripletMarginLoss; this graph has the losses {names}")
        if plan.targets:
            raise SetupError(f"triplet training feeds no Target node (the labels choose the triplets); remove "
                             f"'{_label(compiled, plan.targets[0][0])}'")
        lid = triplets[0]
        sources = inf.nodes[lid].sources
        out_index = {nid: k for k, (nid, _) in enumerate(plan.outputs)}
        roles, outputs = {}, {}
        for role in cls.ROLES:
            src = sources[role][0]
            found = _inputs_of(compiled, src)
            if len(found) != 1:
                raise SetupError(f"the {role} of '{_label(compiled, lid)}' must come from exactly one Input, found "
                                 f"{len(found)}")
            roles[role] = found[0]
            outputs[role] = out_index[src]
        if len(set(roles.values())) != 3 or len(plan.inputs) != 3:
            raise SetupError("triplet training feeds three Inputs (anchor, positive, negative), one per port of the "
                             f"TripletMarginLoss '{_label(compiled, lid)}'")
        shapes = {(tuple(inf.shape(i).shape), inf.shape(i).dtype) for i in roles.values()}
        if len(shapes) != 1:
            raise SetupError("the anchor, positive and negative Inputs must have the same shape and dtype")
        return {"roles": roles, "outputs": outputs, "loss": lid, "params": dict(inf.nodes[lid].params)}

    def __init__(self, compiled):
        super().__init__(compiled)
        w = self._wiring(compiled)
        self.roles, self.outputs = w["roles"], w["outputs"]
        self.loss_label = _label(compiled, w["loss"])
        self.p = float(w["params"]["p"])
        self.summed = w["params"].get("reduction") == "sum"
        self.positions = [self._role_of(nid) for nid, _ in compiled.plan.inputs]
        self._embed_cache: tuple | None = None

    def _role_of(self, nid):
        return next(role for role, i in self.roles.items() if i == nid)

    def describe_data(self):
        inf, graph = self.compiled.inference, self.compiled.inference.graph
        a = self.roles["anchor"]
        x = inf.shape(a)
        return {"input": {"id": a, "label": graph.nodes[a].label, "shape": tuple(x.shape[1:]), "dtype": x.dtype},
                "roles": {role: graph.nodes[i].label for role, i in self.roles.items()},
                "target": None, "task": self.task, "classes_out": None}

    def prepare_data(self, ds):
        if ds.task != CLASSIFICATION or ds.y.ndim != 1:
            raise DataError(f"triplet training draws anchor, positive and negative from class labels; data set "
                            f"'{ds.name}' has no class label per example (it is a {ds.task} task)")
        if len(np.unique(ds.y)) < 2:
            raise DataError(f"data set '{ds.name}' has one class; negatives must come from another class")
        want = self.describe_data()["input"]
        x, notes = fit_inputs(ds, want["shape"], want["label"], want["dtype"])
        return x, ds.y.astype(np.int64, copy=False), notes

    # ---- drawing triplets
    @staticmethod
    def _index(y: torch.Tensor) -> dict:
        """Positions of each class in a split, for drawing: sorted order, start and count per class id."""
        order = torch.argsort(y, stable=True)
        classes = int(y.max()) + 1 if len(y) else 1
        counts = torch.bincount(y, minlength=classes)
        starts = torch.cumsum(counts, 0) - counts
        present = torch.nonzero(counts).flatten()
        rank = torch.full((classes,), -1, dtype=torch.long, device=y.device)
        rank[present] = torch.arange(len(present), device=y.device)
        return {"order": order, "counts": counts, "starts": starts, "present": present, "rank": rank}

    @staticmethod
    def _draw(index: dict, labels: torch.Tensor, generator: torch.Generator | None = None):
        """A positive (same class) and a negative (another class, uniformly) position per label."""
        dev = index["order"].device
        labels = labels.to(dev)
        n, kinds = len(labels), len(index["present"])

        def rand(*shape):
            return torch.rand(*shape, generator=generator, device="cpu" if generator is not None else dev).to(dev)

        def member(cls):
            pick = (rand(n) * index["counts"][cls]).long().clamp_max(index["counts"][cls] - 1)
            return index["order"][index["starts"][cls] + pick]

        positive = member(labels)
        offset = 1 + (rand(n) * (kinds - 1)).long().clamp_max(kinds - 2)
        negative_class = index["present"][(index["rank"][labels] + offset) % kinds]
        return positive, member(negative_class)

    def setup(self, trainer):
        self.pool = trainer.splits["train"]
        self.pool_index = self._index(self.pool.y)
        self.host = trainer._host_data
        self.device = trainer.device
        self.augment = trainer.augment
        self.seed = trainer.config.seed + 31
        self._eval_triplets: dict[int, tuple] = {}

    def _gather(self, x, positions):
        batch = x[positions.to(x.device)]
        return batch.to(self.device, non_blocking=True) if self.host else batch

    def _forward(self, model, loss_fn, anchor, positive, negative):
        by_role = {"anchor": anchor, "positive": positive, "negative": negative}
        outputs = call_model(model, TensorTuple(by_role[r] for r in self.positions))
        loss = loss_fn(*outputs)
        if self.summed:
            loss = loss / len(anchor)  # shown per example
        a, p, n = (outputs[self.outputs[r]].float() for r in self.ROLES)
        right = (F.pairwise_distance(a, p, self.p) < F.pairwise_distance(a, n, self.p)).sum()
        return loss, right, outputs

    def train_step(self, trainer, xb, yb):
        pos, neg = self._draw(self.pool_index, yb)
        xp, xn = self._gather(self.pool.x, pos), self._gather(self.pool.x, neg)
        if self.augment is not None:
            xp, xn = self.augment(xp), self.augment(xn)
        with trainer.autocast():
            outputs = call_model(trainer.forward_model,
                                 TensorTuple({"anchor": xb, "positive": xp, "negative": xn}[r] for r in self.positions))
            loss = trainer.loss_fn(*outputs)
        apply_update(trainer, loss)
        a, p, n = (outputs[self.outputs[r]].detach().float() for r in self.ROLES)
        right = (F.pairwise_distance(a, p, self.p) < F.pairwise_distance(a, n, self.p)).sum()
        shown = loss.detach() / len(xb) if self.summed else loss.detach()
        return shown, right

    def eval_step(self, trainer, xb, yb):
        """Triplets drawn within the batch's own split are set up by ``evaluate``; here xb is a
        TensorTuple (anchor, positive, negative)."""
        with trainer.autocast():
            loss, right, _ = self._forward(trainer.forward_model, trainer.loss_fn, *xb.tensors)
        return loss, right

    def _split_triplets(self, part):
        """Fixed triplets within a split (seeded), so dev numbers are comparable across epochs."""
        key = id(part)
        if key not in self._eval_triplets:
            index = self._index(part.y)
            gen = torch.Generator().manual_seed(self.seed)
            self._eval_triplets[key] = self._draw(index, part.y, gen) if len(index["present"]) > 1 else None
        return self._eval_triplets[key]

    @torch.no_grad()
    def embed(self, trainer, x) -> torch.Tensor:
        """Embeddings of examples (the anchor branch; the three share their weights)."""
        out = []
        for a in range(0, len(x), trainer.config.eval_batch_size):
            xb = x[a:a + trainer.config.eval_batch_size]
            if self.host:
                xb = xb.to(self.device)
            with trainer.autocast():
                outputs = trainer._guard(call_model, trainer.forward_model, TensorTuple([xb] * 3))
            out.append(outputs[self.outputs["anchor"]].float())
        return torch.cat(out)

    def _train_embeddings(self, trainer):
        if self._embed_cache is None or self._embed_cache[0] != trainer.step:
            self._embed_cache = (trainer.step, self.embed(trainer, self.pool.x))
        return self._embed_cache[1]

    def nearest_labels(self, trainer, x, exclude_self: bool = False) -> torch.Tensor:
        """The class of each example's nearest training example in embedding space."""
        train_emb = self._train_embeddings(trainer)
        emb = train_emb if exclude_self else self.embed(trainer, x)
        labels = self.pool.y.to(train_emb.device)
        out = []
        for a in range(0, len(emb), 1024):
            d = torch.cdist(emb[a:a + 1024], train_emb, p=self.p)
            if exclude_self:
                rows = torch.arange(a, min(a + 1024, len(emb)), device=d.device)
                d[rows - a, rows] = float("inf")
            out.append(labels[d.argmin(1)])
        return torch.cat(out)

    @torch.no_grad()
    def evaluate(self, trainer, part, full=False):
        n = len(part)
        if n == 0:
            return {"examples": 0}
        out: dict[str, Any] = {"examples": n}
        drawn = self._split_triplets(part)
        if drawn is not None:
            pos, neg = drawn
            loss_sum, right = None, None
            size = trainer.config.eval_batch_size
            for a in range(0, n, size):
                idx = torch.arange(a, min(a + size, n), device=pos.device)
                batch = TensorTuple([self._gather(part.x, idx), self._gather(part.x, pos[idx]),
                                     self._gather(part.x, neg[idx])])
                loss, hits = trainer._guard(self.eval_step, trainer, batch, None)
                loss_sum = loss.double() * len(idx) + (loss_sum if loss_sum is not None else 0)
                right = hits if right is None else right + hits
            out["loss"] = float(loss_sum) / n
            out["accuracy"] = float(right) / n
            out["error"] = 1.0 - out["accuracy"]
            out["terms"] = {self.loss_label: out["loss"]}
        guess = self.nearest_labels(trainer, part.x, exclude_self=part is self.pool)
        nn_acc = float((guess.to(part.y.device) == part.y).double().mean())
        out["metrics"] = {"nearest_neighbour_accuracy": nn_acc}
        return out

    @torch.no_grad()
    def samples(self, trainer, epoch):
        from .trainer import Samples

        src = trainer.splits["dev"] if len(trainer.splits["dev"]) else trainer.splits["train"]
        k = min(8, len(src))
        guess = self.nearest_labels(trainer, src.x[:k], exclude_self=False)
        return [Samples(epoch, "nearest-neighbour", src.x[:k].cpu(), src.y[:k].cpu(), guess.cpu(), None,
                        trainer.dataset.classes, step=trainer.step)]

    def summary(self, report):
        test = report.get("test") or {}
        return {"test_accuracy": test.get("accuracy"),
                "test_nearest_neighbour_accuracy": test.get("metrics", {}).get("nearest_neighbour_accuracy")}


# =========================================================================== choosing
# In the order ``auto`` asks them: the specialised modes claim a graph by its loss nodes; supervised
# takes the rest.
MODES: dict[str, type[TrainingMode]] = {"gan": GANMode, "vae": VAEMode, "triplet": TripletMode,
                                        "supervised": SupervisedMode}


def select_mode(compiled, name: str = "auto") -> TrainingMode:
    """The mode named, or (auto) the first that claims the graph; SetupError says why it cannot train it."""
    if name != "auto":
        if name not in MODES:
            raise SetupError(f"training.mode: unknown mode {name!r} (known: auto, {', '.join(MODES)})")
        cls = MODES[name]
    else:
        cls = next(c for c in MODES.values() if c.claims(compiled))
    reason = cls.accepts(compiled)
    if reason:
        raise SetupError(f"cannot train this graph in {cls.name} mode: {reason}")
    return cls(compiled)


def split_headline(report: dict) -> dict:
    """A generative mode's headline numbers: the test set's loss, its terms and metrics, named by the
    split they come from (the dev set's where the data has no test set, as a GAN's split often has not)."""
    split = "test" if report.get("test") else "dev" if report.get("dev") else None
    if split is None:
        return {}
    part = report[split]
    out = {f"{split}_loss": part.get("loss"), f"{split}_terms": part.get("terms", {})}
    out.update({f"{split}_{k}": v for k, v in part.get("metrics", {}).items()})
    return out


__all__ = ["TrainingMode", "SupervisedMode", "GANMode", "VAEMode", "TripletMode", "MODES", "select_mode",
           "SetupError", "DataError", "TensorTuple", "call_model", "GENERATION", "EMBEDDING"]
