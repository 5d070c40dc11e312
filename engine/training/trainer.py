"""The trainer: any compiled graph trained on a data set, on the best device there is, with events for
observers (the GUI, the CLI's progress bar, a metrics log), pause / resume / stop from another thread,
and checkpoints that load with ``weights_only=True``.

    trainer = Trainer(graph, config, callbacks=[MyCallback()], run_dir="runs/1")
    result = trainer.fit()                     # blocks; call pause(), resume(), stop() from elsewhere
    report = trainer.report(human_error=0.01)  # train/dev/test metrics, doctor, error analysis

How it stays fast: small data sets live on the device whole and batches are gathered there; the loss of
every step (and its count of right answers) stays on the device and is read once every ``log_every``
steps (or half a second), in one transfer, so no step waits for the device. Progress events (steps, epochs, samples) are
coalesced and only dispatched while the time spent in subscribers stays under 3% of the run's time: a
slow subscriber sees fewer, fuller events (every step's loss is still in them), and training does not
slow down. Lifecycle events (start, checkpoint, pause, end, failure) are always delivered.

What a step does depends on the training mode (``engine.training.modes``: supervised, GAN, VAE,
triplet), chosen from the graph's loss nodes. Modes that make images (a GAN's generated samples, a
VAE's reconstructions and samples from the prior) send ``Samples`` events every ``sample_every`` steps
(or at each epoch's end) and, with a run folder, save each grid as ``samples/<kind>_<step>.png`` (the
newest also as ``samples/<kind>_latest.png``). Those sample events are not throttled; they are rare.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import threading
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from .. import __version__
from ..onnx_weights import build_with_weights
from ..graph import Graph
from .augment import build_augmentation
from .config import TrainingConfig
from .data import CLASSIFICATION, REGRESSION, SPLITS, DataError, Dataset, split_dataset
from .datasets import load_dataset
from .doctor import chance_error, diagnose
from .metrics import error_analysis
from .modes import SetupError, TensorTuple, select_mode
from .optimizers import Schedule, make_optimizer

# The share of run time progress events may take; below the 3% promised, which leaves room for the
# lifecycle events and the final delivery of what is pending, both of which are always made.
PROGRESS_BUDGET = 0.02
# Step events may use this share of it; the rest is kept for epoch ends. Where step events are costly
# (a slow subscriber; on a GPU, reading the gradient norms waits for the device) they use their share up,
# and without the reserve the epoch events would find it spent and arrive all together at the end.
STEP_SHARE = 0.75
# Seconds of subscriber time a run may spend beyond the budget's share: without it, one costly event near
# the start (the first epoch's end with a live preview and a health inspection: 14 ms and more, against a
# budget of 2% of the 0.2 s trained so far) held every step event back for seconds, and the app's curves
# stood still at their first points while the progress moved on.
PROGRESS_ALLOWANCE = 0.02
MIN_EVENT_INTERVAL = 0.02  # seconds; nobody needs progress faster than 50 Hz
FLUSH_SECONDS = 0.5  # slow steps: read the metrics at least this often, whatever log_every says
BEST_WRITE_INTERVAL = 10.0  # seconds between writes of best.pt while training (always written at the end)
CHECKPOINT_FORMAT = "deepcanvas.checkpoint"
CHECKPOINT_VERSION = 1
DEVICE_DATA_LIMIT = 2 << 30  # bytes of data kept on a GPU whole (and at most half its free memory)


# =========================================================================== events
@dataclass
class RunStarted:
    epochs: int
    start_epoch: int  # 0, or the epochs already done when resumed from a checkpoint
    steps_per_epoch: int
    batch_size: int
    device: str
    dataset: str
    split_sizes: dict[str, int]
    parameters: int
    task: str
    notes: list[str]  # what was adapted or ignored (resized inputs, fp16 on a CPU, ...)
    config: dict


@dataclass
class StepMetrics:
    epoch: int  # 1-based
    step: int  # the latest step (1-based, counted over the run)
    steps: list[int]  # every step since the last step event ...
    losses: list[float]  # ... and its loss: coalescing loses no point of the curve
    lr: float
    train_loss: float  # running mean over this epoch so far
    train_accuracy: float | None  # running, when the mode scores steps (classification, triplets)
    examples_per_second: float
    elapsed: float  # seconds of training (pauses excluded)
    grad_norms: dict[str, float] = field(default_factory=dict)  # node id -> L2 norm of its gradients
    weight_norms: dict[str, float] = field(default_factory=dict)  # node id -> L2 norm of its weights


@dataclass
class EpochMetrics:
    epoch: int  # 1-based
    step: int
    train_loss: float
    train_accuracy: float | None
    dev_loss: float | None
    dev_accuracy: float | None
    dev_mse: float | None
    lr: float
    seconds: float
    best: bool  # the monitored dev metric improved this epoch
    # Each loss node's mean value per example (by label), on the training steps of this epoch and on
    # the dev set, when the mode reports them (GAN: d_loss and g_loss; VAE: reconstruction and KL).
    train_terms: dict[str, float] = field(default_factory=dict)
    dev_terms: dict[str, float] = field(default_factory=dict)
    # The mode's own dev metrics, e.g. {"sequence_accuracy": ...} (seq2seq), {"discriminator_accuracy":
    # ...} (GAN), {"nearest_neighbour_accuracy": ...} (triplet).
    dev_metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class EpochEnd:
    epochs: list[EpochMetrics]  # every epoch since the last epoch event; the last one is the newest

    @property
    def latest(self) -> EpochMetrics:
        return self.epochs[-1]


@dataclass
class Samples:
    """What the model does now, on the CPU. By kind:

    - "predictions" (supervised): inputs (k, *sample) of the first Input, targets, predictions (class ids
      or values), confidences (classification), labels (class names).
    - "generated" (GAN, VAE): inputs = the noise (k, *z), targets None, predictions = the images (k, C, H, W)
      in [0, 1] for display.
    - "reconstructions" (VAE): inputs = targets = the original images, predictions = their reconstructions,
      both in [0, 1]; ``samples`` also holds the images generated from the prior (sent just before as a
      "generated" event of their own).
    - "nearest-neighbour" (triplet): predictions = the class of each input's nearest training example in
      embedding space.

    ``grid`` is the images tiled into one (C, H, W) picture in [0, 1] (image kinds); ``path`` is the PNG it
    was saved to in the run folder (None without one)."""

    epoch: int
    kind: str
    inputs: torch.Tensor
    targets: torch.Tensor | None
    predictions: torch.Tensor
    confidences: torch.Tensor | None
    labels: list[str] | None  # class names
    step: int = 0  # the step after which the samples were made
    grid: torch.Tensor | None = None
    path: str | None = None
    samples: torch.Tensor | None = None  # further images shown with these (a VAE's samples from the prior)


@dataclass
class CheckpointWritten:
    path: str
    kind: str  # best, last or final
    epoch: int


@dataclass
class StateChanged:
    state: str  # paused, running, stopping


@dataclass
class RunFailed:
    reason: str
    epoch: int
    step: int


@dataclass
class RunResult:
    status: str  # finished, early-stopped, stopped, failed
    reason: str
    epochs: int  # completed
    steps: int
    seconds: float
    monitor: str
    best_epoch: int | None
    best_value: float | None
    history: list[dict]
    checkpoints: dict[str, str]
    notes: list[str]
    traceback: str = ""
    event_seconds: float = 0.0  # of ``seconds``, the time spent delivering events to subscribers

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop("traceback")
        return out


class Callback:
    """Subscribe to a training run by overriding any of these hooks (each does nothing by default).
    Hooks run in the training thread: a GUI forwards them to its own thread (e.g. as Qt signals). An
    exception in a hook is caught, reported once as a warning, and never stops training."""

    def on_run_start(self, trainer: "Trainer", event: RunStarted) -> None:
        """The run is set up and about to take its first step."""

    def on_step(self, trainer: "Trainer", event: StepMetrics) -> None:
        """Losses of the steps since the last call, learning rate, gradient and weight norms (throttled)."""

    def on_epoch_end(self, trainer: "Trainer", event: EpochEnd) -> None:
        """Train and dev metrics of the epochs since the last call (throttled; none is dropped)."""

    def on_samples(self, trainer: "Trainer", event: Samples) -> None:
        """A few dev examples with the model's current answers (throttled), or generated images and
        reconstructions (every ``sample_every`` steps or epoch)."""

    def on_checkpoint(self, trainer: "Trainer", event: CheckpointWritten) -> None:
        """A checkpoint file was written."""

    def on_state(self, trainer: "Trainer", event: StateChanged) -> None:
        """The run was paused, resumed or asked to stop."""

    def on_run_failed(self, trainer: "Trainer", event: RunFailed) -> None:
        """The run failed; the reason says why and what to try."""

    def on_run_end(self, trainer: "Trainer", result: RunResult) -> None:
        """The run ended (finished, stopped, early-stopped or failed); always the last call."""


HOOKS = [name for name in vars(Callback) if name.startswith("on_")]


def overrides(callback: Callback, hook: str) -> bool:
    """Whether a subscriber implements a hook (so work only it needs can be skipped otherwise)."""
    return getattr(type(callback), hook, None) is not getattr(Callback, hook)


class _Dispatcher:
    """Calls each subscriber's hook in isolation."""

    def __init__(self, trainer: "Trainer", callbacks: Iterable[Callback]):
        self.trainer = trainer
        self.callbacks: list[Callback] = list(callbacks)
        self.errors: list[str] = []
        self._warned: set[tuple[int, str]] = set()

    def wants(self, hook: str) -> bool:
        return any(overrides(cb, hook) for cb in self.callbacks)

    def emit(self, hook: str, event) -> None:
        for cb in self.callbacks:
            if not overrides(cb, hook):
                continue
            try:
                getattr(cb, hook)(self.trainer, event)
            except Exception as exc:  # a subscriber's bug must not end the run
                message = f"{type(cb).__name__}.{hook} raised {type(exc).__name__}: {exc}"
                self.errors.append(message)
                if (id(cb), hook) not in self._warned:
                    self._warned.add((id(cb), hook))
                    warnings.warn(f"training callback failed (training goes on): {message}", RuntimeWarning,
                                  stacklevel=2)


class _NonFinite(Exception):
    def __init__(self, step: int, epoch: int, value: float, last: tuple[int, float] | None):
        self.step, self.epoch, self.value, self.last = step, epoch, value, last
        what = "NaN" if math.isnan(value) else "infinite"
        last_txt = (f"the last finite loss was {last[1]:.6g} at step {last[0]}" if last
                    else "no step had a finite loss")
        super().__init__(f"the loss became {what} at step {step} (epoch {epoch}); {last_txt}. Try a lower "
                         "learning rate, gradient clipping (regularization.grad_clip), or check the data for "
                         "NaN or infinite values")


# =========================================================================== helpers
def is_out_of_memory(exc: BaseException) -> bool:
    """A device or the host ran out of memory (CUDA, MPS and CPU allocators word it differently)."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "not enough memory" in text)


def out_of_memory_message(device: torch.device, doing: str, batch_size: int, exc: BaseException) -> str:
    """What ran out, while doing what, and the settings that bring the run back within memory."""
    where = f"the GPU ({device_description(device)})" if device.type == "cuda" else f"{device.type} memory"
    detail = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
    if doing.startswith("evaluating"):
        fix = ("lower training.eval_batch_size (examples per forward pass when evaluating)")
    else:
        fix = (f"lower training.batch_size (now {batch_size}; `deepcanvas train FILE --out DIR --find-batch` "
               "measures the largest that fits)")
    extra = ", or use precision bf16" if device.type == "cuda" else ""
    return f"{where} ran out of memory {doing}: {fix}{extra}, or make the network or its input smaller. ({detail})"


def resolve_device(name: str) -> torch.device:
    """auto: CUDA when available, then Apple MPS, then the CPU. Asking for a device that is not there
    raises SetupError naming it."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SetupError(f"training.device: 'cuda' was asked for, but this torch ({torch.__version__}) sees no "
                         "CUDA GPU; use 'auto' or 'cpu'")
    if name == "mps" and not has_mps:
        raise SetupError("training.device: 'mps' was asked for, but Apple's Metal backend is not available here; "
                         "use 'auto' or 'cpu'")
    return torch.device(name)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def network_hash(graph: Graph) -> str:
    """SHA-256 of the network alone (nodes, params, wires): layout and training settings excluded, so a
    checkpoint stays loadable after the canvas is tidied or the epochs raised."""
    def network(g) -> dict:
        doc = {"nodes": [[n.id, n.type, n.params] for n in g.nodes.values()],
               "edges": sorted(str(e) for e in g.edges)}
        composites = getattr(g, "composites", None) or {}  # networks stored inside the file, by name
        if composites and g is graph:
            doc["composites"] = {name: network(sub) for name, sub in sorted(composites.items())}
        return doc

    return hashlib.sha256(json.dumps(network(graph), sort_keys=True, default=str).encode()).hexdigest()


def library_versions() -> dict[str, str]:
    import sys

    versions = {"python": platform.python_version(), "deepcanvas": __version__, "torch": torch.__version__,
                "numpy": np.__version__}
    for mod in ("sklearn", "kornia", "PIL"):
        if mod in sys.modules:
            versions[mod] = getattr(sys.modules[mod], "__version__", "?")
    if torch.cuda.is_available():
        versions["cuda"] = str(torch.version.cuda)
    return versions


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@dataclass
class SplitTensors:
    x: torch.Tensor
    y: torch.Tensor
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


# =========================================================================== the trainer
class Trainer:
    """Trains one compiled graph. Construction does everything that can fail for a user-level reason
    (invalid graph, config or data; a missing device) and raises ``GraphError``, ``ConfigError``,
    ``DataError`` or ``SetupError`` with a message naming the node, field or file. ``fit`` never
    raises for a failing run: it returns a ``RunResult`` whose status and reason say what happened."""

    def __init__(self, graph: Graph, config: TrainingConfig | None = None, dataset: Dataset | None = None,
                 callbacks: Iterable[Callback] = (), run_dir: str | os.PathLike | None = None,
                 event_interval: float = MIN_EVENT_INTERVAL):
        self.graph = graph
        self.event_interval = event_interval  # seconds at least between progress events (steps, epochs)
        self.config = cfg = config if config is not None else TrainingConfig.from_graph(graph)
        self.notes: list[str] = []
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._dispatch = _Dispatcher(self, callbacks)

        # An imported graph starts from the weights it names (engine.onnx_weights); others from the seed.
        self.compiled = build_with_weights(graph, seed=cfg.seed)
        self.mode = select_mode(self.compiled, cfg.mode)
        self.model = self.compiled.model
        self.loss_fn = self.compiled.loss
        self.device = resolve_device(cfg.device)

        # ---- data
        if dataset is None:
            dataset = load_dataset(cfg.data.dataset, cfg.data.options, seed=cfg.seed)
        self.dataset = dataset
        want = self.mode.describe_data()
        self.task = self.mode.task
        x, y, fit_notes = self.mode.prepare_data(dataset)
        self.notes += [f"data: {n}" for n in fit_notes]
        self.split = split_dataset(dataset, cfg.data.split, cfg.seed, cfg.data.stratify)
        self.input_norm: dict[str, torch.Tensor] = {}
        if cfg.data.standardize:
            x = self._standardize(x)
        self.splits = self._place(x, y)
        self.num_classes = (max(dataset.num_classes, want["classes_out"] or 0)
                            if self.task == CLASSIFICATION else None)
        if self.task == CLASSIFICATION and dataset.num_classes and (want["classes_out"] or 0) > dataset.num_classes:
            self.notes.append(f"data: the network scores {want['classes_out']} classes, the data has "
                              f"{dataset.num_classes}: the other {want['classes_out'] - dataset.num_classes} "
                              "outputs are never a right answer (set the last layer's size to the classes)")
        self._scored = self.mode.step_accuracy is not None

        n_train = len(self.splits["train"])
        self.batch_size = {"mini-batch": min(cfg.batch_size, n_train), "batch": n_train,
                           "stochastic": 1}[cfg.batching]
        self.steps_per_epoch = math.ceil(n_train / self.batch_size)
        if cfg.batching == "mini-batch" and cfg.batch_size > n_train:
            self.notes.append(f"batch size {cfg.batch_size} is above the {n_train} training examples: each step "
                              f"takes all {n_train} (batch gradient descent)")

        # ---- model, optimizer, precision, compile
        self.model.to(self.device)
        self.channels_last = bool(cfg.channels_last and getattr(x, "ndim", 0) == 4)
        if cfg.channels_last and not self.channels_last:
            self.notes.append("channels_last applies to image inputs (N, C, H, W); ignored")
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, cfg)
        self.schedule = Schedule(self.optimizer, cfg.schedule, cfg.epochs)
        self.grad_clip = cfg.regularization.grad_clip
        self.amp_dtype = None
        if cfg.precision != "fp32":
            # Autocast runs on every device: the forward passes' matrix products and convolutions in
            # bf16/fp16, the rest (losses, norms, softmax) in fp32. On a CPU it is correct but rarely faster
            # (only CPUs with bf16/fp16 instructions gain): the note says so.
            self.amp_dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
            if self.device.type == "cpu":
                self.notes.append(f"precision {cfg.precision} on the CPU: mixed precision pays off on a GPU; "
                                  "on a CPU it is faster only with bf16/fp16 instructions")
        self.scaler = (torch.amp.GradScaler(self.device.type)  # fp16 gradients need loss scaling
                       if self.amp_dtype == torch.float16 and self.device.type in ("cuda", "cpu") else None)
        self._null = contextlib.nullcontext()
        self.forward_model = self.model
        self._compiled_active = False
        if cfg.compile:
            try:
                self.forward_model = torch.compile(self.model)
                self._compiled_active = True
            except Exception as exc:  # compile is an option; eager always works
                self.notes.append(f"torch.compile is not available ({type(exc).__name__}: {exc}); running eagerly")
        train_x = self.splits["train"].x
        if isinstance(train_x, TensorTuple):
            self.augment = None
            if cfg.augmentation.enabled:
                self.notes.append("augmentation applies to a graph with one Input; ignored")
        else:
            self.augment, aug_notes = build_augmentation(cfg.augmentation, tuple(train_x.shape[1:]),
                                                         train_x.is_floating_point())
            self.notes += aug_notes
        if cfg.early_stopping.enabled and len(self.splits["dev"]) == 0:
            self.notes.append("early stopping needs a dev set; the split has none, so it is off")
        elif cfg.early_stopping.enabled and not self.mode.selects_best:
            self.notes.append(f"early stopping is off in {self.mode.name} mode: no dev metric tells its best epoch")

        # ---- run state
        self.epoch = 0  # epochs completed
        self.step = 0  # steps taken
        self.history: list[EpochMetrics] = []
        self.monitor = cfg.early_stopping.monitor
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self._bad_epochs = 0
        self._position: dict | None = None  # mid-epoch resume point
        self._last_finite: tuple[int, float] | None = None
        self.checkpoints: dict[str, str] = {}
        self.state = "ready"
        self._interrupt = threading.Event()
        self._pause_req = threading.Event()
        self._stop_req = threading.Event()
        self._wake = threading.Event()
        # Shuffling happens where the data is (CPU or CUDA; MPS draws on the CPU and moves the order).
        data_device = self.splits["train"].x.device
        self._perm_device = data_device if data_device.type in ("cpu", "cuda") else torch.device("cpu")
        self._gen = torch.Generator(device=self._perm_device)
        self._gen.manual_seed(cfg.seed + 1)
        self._elements_per_example = int(np.prod(y.shape[1:])) if y.ndim > 1 and self.task == CLASSIFICATION else 1
        self._layer_params = self._collect_layer_params()
        self._last_sample_step = -1
        self.mode.setup(self)
        if self.mode.makes_images and self.run_dir is not None:
            when = f"every {cfg.sample_every} steps" if cfg.sample_every else "at the end of every epoch"
            self.notes.append(f"samples: image grids are saved in {self.run_dir / 'samples'} {when}")

    # ------------------------------------------------------------------ set-up helpers
    def _standardize(self, x: np.ndarray) -> np.ndarray:
        if isinstance(x, tuple):
            self.notes.append("standardize applies to a graph with one Input; ignored")
            return x
        if self.mode.name in ("gan", "vae"):  # their images are matched to a generator's or decoder's range
            self.notes.append(f"standardize applies to supervised training; ignored in {self.mode.name} mode")
            return x
        if not np.issubdtype(x.dtype, np.floating):
            self.notes.append("standardize applies to float inputs; ignored for ids")
            return x
        train = x[self.split.train]
        axes = (0, 2, 3) if x.ndim == 4 else (0,)
        mean = train.mean(axis=axes, keepdims=True)
        std = train.std(axis=axes, keepdims=True)
        std = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        self.input_norm = {"mean": torch.from_numpy(np.ascontiguousarray(mean[0], dtype=np.float32)),
                           "std": torch.from_numpy(np.ascontiguousarray(std[0], dtype=np.float32))}
        self.notes.append("data: inputs standardized with the training set's mean and standard deviation")
        return ((x - mean) / std).astype(np.float32)

    def _place(self, x, y: np.ndarray) -> dict[str, SplitTensors]:
        """The splits as tensors (a ``TensorTuple`` of them when x is a tuple of arrays, one per Input),
        on the device when they fit."""
        several = isinstance(x, tuple)
        total = (sum(a.nbytes for a in x) if several else x.nbytes) + y.nbytes
        on_device = self.device.type == "cpu"
        if not on_device:
            limit = DEVICE_DATA_LIMIT
            if self.device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(self.device)
                limit = min(limit, free // 2)
            on_device = total <= limit
            if not on_device:
                self.notes.append(f"data: {total / 2**30:.1f} GiB is too big to keep on the {self.device.type}; "
                                  "batches are copied from pinned host memory")
        self._host_data = not on_device
        out = {}
        for name in SPLITS:
            idx = self.split.indices(name)
            xs = (TensorTuple(torch.from_numpy(np.ascontiguousarray(a[idx])) for a in x) if several
                  else torch.from_numpy(np.ascontiguousarray(x[idx])))
            ys = torch.from_numpy(np.ascontiguousarray(y[idx]))
            if on_device:
                xs, ys = xs.to(self.device), ys.to(self.device)
            elif self.device.type == "cuda":
                xs, ys = xs.pin_memory(), ys.pin_memory()
            out[name] = SplitTensors(xs, ys, idx)
        return out

    def _to_device(self, xb, yb: torch.Tensor):
        return xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)

    def _guard(self, fn, *args):
        """Run a forward pass; when torch.compile fails on it, go on eagerly (once) and run it again."""
        try:
            return fn(*args)
        except Exception as exc:
            if not self._compiled_active:
                raise
            self._compile_failed(exc)
            return fn(*args)

    def _collect_layer_params(self) -> list[tuple[str, list[torch.nn.Parameter]]]:
        out = []
        for nid, attr in self.compiled.plan.attrs.items():
            params = [p for p in getattr(self.model, attr).parameters() if p.requires_grad]
            if params:
                out.append((nid, params))
        return out

    def add_callback(self, callback: Callback) -> None:
        self._dispatch.callbacks.append(callback)

    @property
    def event_seconds(self) -> float:
        """Seconds this run has spent delivering events to subscribers (the budget keeps it near 2%)."""
        return getattr(self, "_spent", 0.0)

    @property
    def callback_errors(self) -> list[str]:
        return list(self._dispatch.errors)

    def autocast(self):
        """The mixed-precision context for forward passes (a no-op in fp32)."""
        if self.amp_dtype is None:
            return self._null
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ------------------------------------------------------------------ controls (any thread)
    def pause(self) -> None:
        """Pause after the current step; ``resume`` continues, ``stop`` ends the run."""
        self._pause_req.set()
        self._interrupt.set()

    def resume(self) -> None:
        self._pause_req.clear()
        if not self._stop_req.is_set():
            self._interrupt.clear()
        self._wake.set()

    def stop(self) -> None:
        """End the run after the current step; a resumable checkpoint is written when there is a run folder."""
        self._stop_req.set()
        self._interrupt.set()
        self._wake.set()

    # ------------------------------------------------------------------ the run
    def fit(self, resume_from: str | os.PathLike | None = None) -> RunResult:
        cfg = self.config
        self._t0 = time.perf_counter()
        self._stop_position: dict | None = None
        self._paused_time = 0.0
        self._spent = 0.0
        self._last_emit = -1e9
        self._last_epoch_emit = -1e9  # epochs keep their own interval: step events must not starve them
        self._last_best_write = self._last_ckpt_write = time.perf_counter()
        self._pending_steps: list[int] = []
        self._pending_losses: list[float] = []
        self._pending_epochs: list[EpochMetrics] = []
        self._want_steps = self._dispatch.wants("on_step")
        self._want_samples = self._dispatch.wants("on_samples") or (self.run_dir is not None
                                                                      and self.mode.makes_images)
        self._want_norms = self._want_steps
        es = cfg.early_stopping
        self._keep_best = self.run_dir is not None or (es.enabled and es.restore_best)
        self._last_cost = 0.0
        status, reason, tb = "finished", "", ""
        out_of_memory = False
        self._doing = "before the first step"
        self.state = "running"
        try:
            if resume_from is not None:
                self.load_checkpoint(resume_from)
            else:
                torch.manual_seed(cfg.seed)  # dropout and augmentation draw from the global generator
            if self.run_dir is not None:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            self._emit_always("on_run_start", RunStarted(
                cfg.epochs, self.epoch, self.steps_per_epoch, self.batch_size, device_description(self.device),
                self.dataset.summary(), {s: len(self.splits[s]) for s in SPLITS},
                sum(p.numel() for p in self.model.parameters()), self.task, list(self.notes), cfg.to_dict()))
            status = self._loop()
            if status == "stopped":
                reason = f"stopped by request after step {self.step}"
            elif status == "early-stopped":
                reason = (f"{self.monitor} did not improve for {cfg.early_stopping.patience} epochs; best at "
                          f"epoch {self.best_epoch}")
        except (_NonFinite, SetupError, DataError) as exc:  # the message says it all; no traceback
            status, reason = "failed", str(exc)
            if isinstance(exc, _NonFinite):  # the run ends at the step that failed (the losses are read a few
                self.step = exc.step  # steps late; those after it trained on non-finite values)
        except Exception as exc:
            if not is_out_of_memory(exc):
                status, reason, tb = "failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()
            else:
                status, reason = "failed", out_of_memory_message(self.device, self._doing, self.batch_size, exc)
                out_of_memory = True
        except KeyboardInterrupt:
            status, reason = "stopped", f"interrupted after step {self.step}"
        if out_of_memory:  # here, not in the handler: its traceback held the failed step's tensors
            self._release_memory()
        try:
            self._finish(status)
        except Exception as exc:  # writing the final files failed (disk full, ...): say so
            if status != "failed":
                status, reason, tb = "failed", f"could not finish the run: {type(exc).__name__}: {exc}", \
                    traceback.format_exc()
        self.state = status
        if status == "failed":
            self._emit_always("on_run_failed", RunFailed(reason, self.epoch + 1, self.step))
        result = RunResult(status, reason, self.epoch, self.step, self._elapsed(), self.monitor, self.best_epoch,
                           self.best_value, [m.to_json() for m in self.history], dict(self.checkpoints),
                           list(self.notes), tb, self.event_seconds)
        self.result = result
        self._emit_always("on_run_end", result)
        for flag in (self._stop_req, self._pause_req, self._interrupt):  # ready for another fit()
            flag.clear()
        return result

    def _loop(self) -> str:
        cfg = self.config
        while self.epoch < cfg.epochs:
            t_epoch = time.perf_counter()
            paused_before = self._paused_time
            lr = self.optimizer.param_groups[0]["lr"]
            if self._train_epoch(self.epoch + 1):
                return "stopped"
            self.epoch += 1
            seconds = time.perf_counter() - t_epoch - (self._paused_time - paused_before)
            if self._end_epoch(self.epoch, lr, seconds):
                return "early-stopped"
        return "finished"

    def _train_epoch(self, epoch: int) -> bool:
        """One pass over the training set; True when a stop was requested."""
        tr = self.splits["train"]
        n, bs, log_every = len(tr), self.batch_size, self.config.log_every
        if self._position is not None:
            pos, self._position = self._position, None
            perm, start = pos["perm"].to(tr.x.device), int(pos["batch"])
            self._ep = dict(pos["accumulators"])
        else:
            perm = torch.randperm(n, device=self._perm_device, generator=self._gen).to(tr.x.device)
            start = 0
            self._ep = {"loss": 0.0, "seen": 0, "correct": 0, "elements": 0}
        steps = self.steps_per_epoch
        self.model.train()
        self._doing = f"in a training step (epoch {epoch})"
        scoring = self.mode.step_accuracy
        sample_every = self.config.sample_every if self._want_samples else 0
        step_fn = self.mode.train_step
        # Per-step values stay on the device until the flush reads them all at once. Small class scores
        # are kept as they are and scored together at the flush (fewer tiny ops per step); large ones
        # (e.g. per-pixel scores) are scored at once so they are not held.
        losses: list[torch.Tensor] = []
        hits: list[torch.Tensor] = []  # right answers per step, or (scores, labels) pairs to score later
        x_all, y_all = tr.x, tr.y
        augment, channels_last, host = self.augment, self.channels_last, self._host_data
        sizes: list[int] = []
        k = 0
        clock = time.perf_counter
        next_flush = clock() + FLUSH_SECONDS
        for i in range(start, steps):
            idx = perm[i * bs:(i + 1) * bs]
            xb, yb = x_all[idx], y_all[idx]
            if host:
                xb, yb = self._to_device(xb, yb)
            if augment is not None:
                xb = augment(xb)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            try:
                loss, pred = step_fn(self, xb, yb)
            except Exception as exc:
                if not self._compiled_active:
                    raise
                self._compile_failed(exc)
                loss, pred = step_fn(self, xb, yb)
            losses.append(loss.detach())
            if scoring == "count":  # the mode counted the right answers itself
                hits.append(pred)
            elif scoring:
                if pred.numel() <= 65536:
                    hits.append((pred.detach(), yb))
                else:  # [right, counted] (the loss's ignore_index counts in neither)
                    hits.append(self.mode.score_step(pred.detach(), yb))
            sizes.append(len(idx))
            k += 1
            self.step += 1
            if k == log_every or i == steps - 1 or clock() >= next_flush:
                self._flush(epoch, losses, hits, sizes)
                k, losses, hits, sizes = 0, [], [], []
                next_flush = clock() + FLUSH_SECONDS
            if sample_every and self.step % sample_every == 0:
                self._emit_samples(epoch)
            if self._interrupt.is_set():
                if k:
                    self._flush(epoch, losses, hits, sizes)
                    k, losses, hits, sizes = 0, [], [], []
                if self._handle_interrupt(epoch, perm, i + 1):
                    return True
                self.model.train()
        return False

    def _flush(self, epoch: int, loss_t: list[torch.Tensor], hit_t: list, sizes: list[int]) -> None:
        """Read the last steps' losses from the device (one transfer), check them, account for them."""
        k = len(loss_t)
        values = torch.stack(loss_t).double()
        if hit_t:
            pairs = [h for h in hit_t if isinstance(h, tuple)]
            counts = [h for h in hit_t if not isinstance(h, tuple)]
            if pairs:  # one model, so the scores differ only in batch size: score them in one go
                counts.append(self.mode.score_step(torch.cat([p for p, _ in pairs]), torch.cat([y for _, y in pairs])))
            # "count" modes: right answers, one per example; "argmax": [right, counted] pairs
            total = torch.stack(counts).sum(0).double().reshape(-1)
            values = torch.cat([values, total])
        everything = values.tolist()
        losses, hit_counts = everything[:k], everything[k:]
        first = self.step - k + 1
        for j, v in enumerate(losses):
            if not math.isfinite(v):
                if self._want_steps:  # the steps up to the bad one still reach the plots and the log
                    self._pending_steps.extend(range(first, first + j + 1))
                    self._pending_losses.extend(losses[:j + 1])
                raise _NonFinite(first + j, epoch, v, self._last_finite)
            self._last_finite = (first + j, v)
        ep = self._ep
        ep["loss"] += sum(v * s for v, s in zip(losses, sizes))
        ep["seen"] += sum(sizes)
        if self._scored:
            ep["correct"] += int(hit_counts[0]) if hit_counts else 0
            # targets counted: those the mode scored (not the loss's ignore_index), else one per example
            ep["elements"] += int(hit_counts[1]) if len(hit_counts) > 1 else sum(sizes) * self._elements_per_example
        if self._want_steps:
            self._pending_steps.extend(range(first, self.step + 1))
            self._pending_losses.extend(losses)
            if self._may_emit(share=STEP_SHARE):
                self._emit_steps()

    # ------------------------------------------------------------------ events
    def _elapsed(self) -> float:
        return time.perf_counter() - self._t0 - self._paused_time

    def _may_emit(self, last: float | None = None, share: float = 1.0) -> bool:
        """Whether a progress event fits the budget, counting the cost of the last one in advance, so
        the share of time in subscribers stays under the budget instead of overshooting by a call.
        ``last``: when this kind of event was last sent (default: any event). Epoch-end events pass
        their own: steps are sent as soon as ``event_interval`` has passed, so an epoch's end nearly
        always comes within that interval of a step event and would otherwise wait for the run's end.
        ``share``: the part of the budget this kind of event may fill (steps leave the rest to epochs)."""
        now = time.perf_counter()
        return (now - (self._last_emit if last is None else last) >= self.event_interval
                and self._spent + self._last_cost
                <= share * PROGRESS_BUDGET * (now - self._t0 - self._paused_time) + PROGRESS_ALLOWANCE)

    def _timed(self, fn, *args) -> None:
        t = time.perf_counter()
        try:
            fn(*args)
        finally:
            end = time.perf_counter()
            self._last_cost = end - t
            self._spent += self._last_cost
            self._last_emit = end

    def _emit_always(self, hook: str, event) -> None:
        t = time.perf_counter()
        self._dispatch.emit(hook, event)
        self._spent += time.perf_counter() - t

    def epoch_of(self, step: int) -> int:
        """The (1-based) epoch that step ``step`` (1-based, counted over the run) belongs to."""
        return (step - 1) // self.steps_per_epoch + 1

    def _emit_steps(self) -> None:
        """The steps held back since the last step event. They may span epochs (short epochs end faster
        than events are sent): the event carries the epoch of its last step (``epoch_of`` gives any)."""
        if not self._pending_steps:
            return
        epoch = self.epoch_of(self._pending_steps[-1])

        def send():
            ep = self._ep
            grads, weights = self._norms() if self._want_norms else ({}, {})
            elapsed = self._elapsed()
            event = StepMetrics(
                epoch, self.step, self._pending_steps, self._pending_losses, self.optimizer.param_groups[0]["lr"],
                ep["loss"] / max(ep["seen"], 1),
                ep["correct"] / max(ep["elements"], 1) if self._scored else None,
                (self.step * self.batch_size) / max(elapsed, 1e-9), elapsed, grads, weights)
            self._pending_steps, self._pending_losses = [], []
            self._dispatch.emit("on_step", event)

        self._timed(send)

    @torch.no_grad()
    def _norms(self) -> tuple[dict[str, float], dict[str, float]]:
        if not self._layer_params:
            return {}, {}
        zero = torch.zeros((), device=self.device)
        w = [torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.float()) for p in ps]))
             for _, ps in self._layer_params]
        g = []
        for _, ps in self._layer_params:
            grads = [torch.linalg.vector_norm(p.grad.float()) for p in ps if p.grad is not None]
            g.append(torch.linalg.vector_norm(torch.stack(grads)) if grads else zero)
        values = torch.stack(w + g).tolist()
        names = [nid for nid, _ in self._layer_params]
        n = len(names)
        return dict(zip(names, values[n:])), dict(zip(names, values[:n]))

    def _emit_epochs(self, force: bool = False) -> None:
        if self._pending_epochs and (force or self._may_emit(self._last_epoch_emit)):
            event = EpochEnd(self._pending_epochs)
            self._pending_epochs = []
            self._timed(self._dispatch.emit, "on_epoch_end", event)
            self._last_epoch_emit = self._last_emit

    @torch.no_grad()
    def _emit_samples(self, epoch: int) -> None:
        """The mode's samples, in eval mode; image grids are saved as PNG in the run folder."""
        self._last_sample_step = self.step

        def send():
            was_training = self.model.training
            self.model.eval()
            try:
                events = self._guard(self.mode.samples, self, epoch)
            finally:
                self.model.train(was_training)
            for event in events:
                if event.grid is not None and self.run_dir is not None:
                    from .images import png_bytes
                    from ..fileio import write_atomic

                    folder = self.run_dir / "samples"
                    folder.mkdir(parents=True, exist_ok=True)
                    data = png_bytes(event.grid)
                    path = folder / f"{event.kind}_{event.step:06d}.png"
                    write_atomic(path, data)
                    write_atomic(folder / f"{event.kind}_latest.png", data)
                    event.path = str(path)
                self._dispatch.emit("on_samples", event)

        self._timed(send)

    # ------------------------------------------------------------------ epoch end
    def _end_epoch(self, epoch: int, lr: float, seconds: float) -> bool:
        """Dev metrics, schedule, best weights, events, checkpoints. True when early stopping ends the run."""
        cfg = self.config
        ep = self._ep
        self._doing = f"evaluating the dev set after epoch {epoch}"
        dev = self.evaluate_split("dev") if len(self.splits["dev"]) else {}
        self._doing = f"at the end of epoch {epoch} (samples, checkpoints)"
        self.schedule.step(dev.get("loss"))
        improved = self._track_best(dev, epoch)
        metrics = EpochMetrics(epoch, self.step, ep["loss"] / max(ep["seen"], 1),
                               ep["correct"] / max(ep["elements"], 1) if self._scored else None,
                               dev.get("loss"), dev.get("accuracy"), dev.get("mse"), lr, seconds, improved,
                               self.mode.take_train_terms(), dict(dev.get("terms", {})),
                               dict(dev.get("metrics", {})))
        self.history.append(metrics)
        self._pending_epochs.append(metrics)
        self._emit_epochs(force=epoch == cfg.epochs)
        if self._want_samples and self._last_sample_step != self.step:
            last = epoch == cfg.epochs
            if cfg.sample_every:  # samples come every sample_every steps; the last step's too
                due = last
            else:  # image grids after every epoch; supervised predictions when the budget allows
                due = self.mode.makes_images or last or self._may_emit(self._last_epoch_emit)
            if due:
                self._emit_samples(epoch)
        now = time.perf_counter()
        if self.run_dir is not None:
            if improved and now - self._last_best_write >= BEST_WRITE_INTERVAL:
                self._write_best()
            if cfg.checkpoint_seconds and now - self._last_ckpt_write >= cfg.checkpoint_seconds:
                self.save_checkpoint(self.run_dir / "last.pt", kind="last")
        es = cfg.early_stopping
        if es.enabled and len(self.splits["dev"]) and self.mode.selects_best:
            self._bad_epochs = 0 if improved else self._bad_epochs + 1
            if self._bad_epochs >= es.patience:
                return True
        return False

    def _track_best(self, dev: dict, epoch: int) -> bool:
        key = "loss" if self.monitor == "dev_loss" else ("accuracy" if self._scored else "loss")
        if key not in dev or not self.mode.selects_best:
            value, lower = -float(epoch), True  # no dev set: the latest weights are the best we know
        else:
            value, lower = dev[key], key == "loss"
        delta = self.config.early_stopping.min_delta
        if self.best_value is None:
            better = True
        elif lower:
            better = value < self.best_value - delta
        else:
            better = value > self.best_value + delta
        if better:
            self.best_value = value if key in dev and self.mode.selects_best else None
            self.best_epoch = epoch
            if self._keep_best:  # a copy only when something uses it (best.pt, restoring the best)
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return better and key in dev and self.mode.selects_best

    def _write_best(self) -> None:
        if self.best_state is None or self.run_dir is None:
            return
        path = self.run_dir / "best.pt"
        _save_atomic({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": "best",
                      "network_sha256": network_hash(self.graph), "model": self.best_state,
                      "epoch": self.best_epoch or 0, "monitor": self.monitor,
                      "value": self.best_value if self.best_value is not None else float("nan"),
                      "input_norm": self.input_norm, "config": self.config.to_dict()}, path)
        self._last_best_write = time.perf_counter()
        self.checkpoints["best"] = str(path)
        self._emit_always("on_checkpoint", CheckpointWritten(str(path), "best", self.best_epoch or 0))

    def _handle_interrupt(self, epoch: int, perm: torch.Tensor, next_batch: int) -> bool:
        position = {"perm": perm.detach().cpu(), "batch": next_batch, "accumulators": dict(self._ep),
                    "epoch": epoch}
        if self._want_steps:  # the curves reach the step it pauses or stops after, before the state says so
            self._emit_steps()
        if self._pause_req.is_set() and not self._stop_req.is_set():
            self.state = "paused"
            self._emit_always("on_state", StateChanged("paused"))
            t = time.perf_counter()
            while self._pause_req.is_set() and not self._stop_req.is_set():
                self._wake.wait(0.1)
                self._wake.clear()
            self._paused_time += time.perf_counter() - t
            if not self._stop_req.is_set():
                self.state = "running"
                self._emit_always("on_state", StateChanged("running"))
                return False
        self.state = "stopping"
        self._emit_always("on_state", StateChanged("stopping"))
        if next_batch < self.steps_per_epoch:
            self._stop_position = position
        return True

    def _compile_failed(self, exc: Exception) -> None:
        self.forward_model = self.model
        self._compiled_active = False
        self.optimizer.zero_grad(set_to_none=True)
        self.notes.append(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                          "training goes on eagerly")

    def _release_memory(self) -> None:
        """After running out of memory: drop the gradients and the allocator's cache, so the
        process (the app's training process lives on) has its memory back for the next run."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _finish(self, status: str) -> None:
        self._emit_steps()
        self._emit_epochs(force=True)
        if self.run_dir is not None and status != "failed":
            self.save_checkpoint(self.run_dir / "final.pt", kind="final", position=self._stop_position)
            self._write_best()
        elif self.run_dir is not None and self.best_state is not None:
            self._write_best()  # a failed run keeps its best finite weights
        es = self.config.early_stopping
        if es.enabled and es.restore_best and self.best_state is not None and status != "failed":
            self.model.load_state_dict(self.best_state)
            self.notes.append(f"restored the weights of the best epoch ({self.best_epoch})")

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self, position: dict | None = None) -> dict:
        """Everything needed to continue the run: weights, optimizer, schedule, random state, history.
        Only tensors and plain containers, so ``torch.load(..., weights_only=True)`` reads it."""
        rng = {"torch": torch.get_rng_state(), "shuffle": self._gen.get_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": "resumable",
            "network_sha256": network_hash(self.graph), "config": self.config.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "epoch": self.epoch, "step": self.step, "rng": rng,
            "best": {"value": self.best_value, "epoch": self.best_epoch, "bad_epochs": self._bad_epochs,
                     "state": self.best_state or {}},
            "history": [m.to_json() for m in self.history], "input_norm": self.input_norm,
            "position": position or {}, "last_finite": list(self._last_finite) if self._last_finite else [],
        }

    def save_checkpoint(self, path: str | os.PathLike, kind: str = "last", position: dict | None = None) -> str:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_atomic(self.checkpoint_state(position), path)
        self._last_ckpt_write = time.perf_counter()
        self.checkpoints[kind] = str(path)
        self._emit_always("on_checkpoint", CheckpointWritten(str(path), kind, self.epoch))
        return str(path)

    def check_resumable(self, path: str | os.PathLike) -> dict:
        """The state of a checkpoint this run can continue from (``final.pt`` or ``last.pt`` of a run of
        this network); raises SetupError when the file is not one or belongs to another network."""
        state = load_checkpoint_file(path)
        if state.get("kind") != "resumable":
            raise SetupError(f"{path}: a '{state.get('kind')}' checkpoint holds weights only; resume from "
                             "final.pt or last.pt")
        if state["network_sha256"] != network_hash(self.graph):
            raise SetupError(f"{path}: the checkpoint was written for a different network (the nodes, params or "
                             "wires changed since); start a new run instead")
        return state

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Continue from a resumable checkpoint (see ``check_resumable``)."""
        state = self.check_resumable(path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        self._gen.set_state(state["rng"]["shuffle"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        best = state["best"]
        self.best_value, self.best_epoch, self._bad_epochs = best["value"], best["epoch"], int(best["bad_epochs"])
        self.best_state = {k: v.to(self.device) for k, v in best["state"].items()} or None
        self.history = [EpochMetrics(**m) for m in state["history"]]
        self._position = state["position"] or None
        if state["last_finite"]:
            self._last_finite = (int(state["last_finite"][0]), float(state["last_finite"][1]))
        self.notes.append(f"resumed from {path} after epoch {self.epoch}, step {self.step}")

    # ------------------------------------------------------------------ evaluation
    def _predict(self, xb, yb):
        return self._guard(self.mode.eval_step, self, xb, yb)

    def evaluate_split(self, name: str, full: bool = False) -> dict:
        """Loss and metrics on one split (train, dev or test) in eval mode; ``full`` adds the confusion
        matrix and per-class precision, recall and F1."""
        part = self.splits[name]
        was_training = self.model.training
        self.model.eval()
        try:
            return self.mode.evaluate(self, part, full)
        finally:
            self.model.train(was_training)

    def error_analysis(self, split: str = "dev", limit: int = 20) -> list[dict]:
        """The misclassified examples of a split, most confident mistakes first."""
        if self.task != CLASSIFICATION:
            return []
        part = self.splits[split]
        was_training = self.model.training
        self.model.eval()
        try:
            mistakes = error_analysis(self._predict, part.x, part.y, part.indices, self.dataset.classes, limit,
                                      self.config.eval_batch_size, self._to_device if self._host_data else None,
                                      ignore_index=self.mode.ignore_index)
        finally:
            self.model.train(was_training)
        return [m.to_json() for m in mistakes]

    def report(self, human_error: float | None = None, mistakes: int = 20) -> dict:
        """The evaluation report: metrics on train, dev and test, the bias/variance doctor, and the dev
        set's most confident mistakes. ``test_accuracy`` (classification) or ``test_mse`` sits at the top."""
        human_error = self.config.human_error if human_error is None else human_error
        out: dict[str, Any] = {"task": self.task, "dataset": self.dataset.name, "classes": self.dataset.classes}
        for name in SPLITS:
            if len(self.splits[name]):
                out[name] = self.evaluate_split(name, full=True)
        test = out.get("test", {})
        if self.task == CLASSIFICATION:
            out["test_accuracy"] = test.get("accuracy")
        elif self.task == REGRESSION:
            out["test_mse"] = test.get("mse")
        else:  # generation, embedding: the mode's own headline numbers
            out["mode"] = self.mode.name
            out.update(self.mode.summary(out))
            if self.run_dir is not None and (self.run_dir / "samples").is_dir():
                out["samples"] = sorted(str(p) for p in (self.run_dir / "samples").glob("*_latest.png"))
        if "train" in out and "dev" in out and self.task in (CLASSIFICATION, REGRESSION):
            if self.task == CLASSIFICATION:
                d = diagnose(out["train"]["error"], out["dev"]["error"], human_error, test.get("error"),
                             chance_error=chance_error(out["train"].get("confusion_matrix")))
                out["doctor"] = d.to_json()
            else:
                out["doctor"] = None  # the recipe's thresholds are for error rates; see the MSE per split
        out["error_analysis"] = {"split": "dev", "mistakes": self.error_analysis("dev", mistakes)
                                 if len(self.splits["dev"]) else []}
        return out

    def run_record(self, graph_file: str | os.PathLike | None = None) -> dict:
        """What makes the run reproducible: graph hash, seed, split, configuration, versions, device."""
        rec = {"deepcanvas_run": 1, "graph": self.graph.name, "network_sha256": network_hash(self.graph),
               "seed": self.config.seed, "config": self.config.to_dict(),
               "dataset": {"name": self.dataset.name, "summary": self.dataset.summary(),
                           "options": self.config.data.options},
               "split": self.split.record(), "versions": library_versions(),
               "device": device_description(self.device), "platform": platform.platform(), "notes": list(self.notes)}
        if graph_file is not None:
            rec["graph_file"] = str(graph_file)
            rec["graph_file_sha256"] = hashlib.sha256(Path(graph_file).read_bytes()).hexdigest()
        if getattr(self, "result", None) is not None:
            rec["result"] = self.result.to_json()
        return rec


def load_checkpoint_file(path: str | os.PathLike) -> dict:
    """Read a DeepCanvas checkpoint with ``weights_only=True`` (no code in the file can run)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SetupError(f"{path}: no such checkpoint") from None
    except Exception as exc:
        from ..onnx_weights import torch_load_problem
        raise SetupError(f"{path}: not a readable checkpoint: {torch_load_problem(path, exc)}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise SetupError(f"{path}: not a DeepCanvas checkpoint")
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise SetupError(f"{path}: written by a newer DeepCanvas (checkpoint version {state.get('version')})")
    return state


def train(graph: Graph, config: TrainingConfig | None = None, callbacks: Iterable[Callback] = (),
          run_dir: str | os.PathLike | None = None, dataset: Dataset | None = None, **overrides) -> Trainer:
    """Set up and run a trainer in one call; ``overrides`` are dotted config paths with '__' for the dot
    (``epochs=5, optimizer__lr=0.01``). Returns the trainer (its ``result`` holds the outcome)."""
    config = config if config is not None else TrainingConfig.from_graph(graph)
    if overrides:
        config = config.with_overrides({k.replace("__", "."): v for k, v in overrides.items()})
    trainer = Trainer(graph, config, dataset=dataset, callbacks=callbacks, run_dir=run_dir)
    trainer.fit()
    return trainer
