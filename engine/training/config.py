"""The training configuration: plain dataclasses that round-trip through ``graph.training``, the JSON
object saved inside the ``.dcnet`` file, so a network and the way it is trained travel together.

    config = TrainingConfig.from_graph(graph)             # validated; every problem named by its field
    config = config.with_overrides({"optimizer.lr": 0.01, "epochs": 20})
    config.to_graph(graph)                                # graph.training = config.to_dict()

Every field has a default chosen so a first run works; the reason for each is next to it. Loading never
raises a traceback for bad values: ``ConfigError`` lists each problem as ``training.<path>: <what>``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..params import _describe  # one wording for 'what arrived' in every message


class ConfigError(ValueError):
    """A training configuration that cannot be used. ``problems`` names each field and what is wrong."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("the training configuration has problems:\n" + "\n".join(f"  - {p}" for p in problems))


# --------------------------------------------------------------------------- field descriptors
def _num(default, *, lo=None, hi=None, lo_open=False, whole=False, optional=False, doc=""):
    """A number field; the bounds and kind are kept in the dataclass field's metadata."""
    return field(default=default, metadata={"kind": "int" if whole else "float", "lo": lo, "hi": hi,
                                            "lo_open": lo_open, "optional": optional, "doc": doc})


def _choice(default, options, doc=""):
    return field(default=default, metadata={"kind": "choice", "options": tuple(options), "doc": doc})


def _flag(default, doc=""):
    return field(default=default, metadata={"kind": "bool", "doc": doc})


def _text(default, doc="", optional=False):
    return field(default=default, metadata={"kind": "text", "doc": doc, "optional": optional})


def _mapping(doc=""):
    return field(default_factory=dict, metadata={"kind": "dict", "doc": doc})


def _ratios(doc=""):
    return field(default=None, metadata={"kind": "ratios", "doc": doc, "optional": True})


def _section(cls):
    return field(default_factory=cls, metadata={"kind": "section"})


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
BATCHING = ("mini-batch", "batch", "stochastic")
SCHEDULES = ("constant", "step", "cosine", "plateau")
MONITORS = ("dev_loss", "dev_accuracy")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")
MODES = ("auto", "supervised", "gan", "vae", "triplet")  # engine.training.modes.MODES, plus auto


@dataclass
class DataConfig:
    dataset: str = _text("digits", "a built-in data set (deepcanvas datasets lists them) or a file/folder path")
    options: dict = _mapping("loader options, e.g. {'noise': 0.2} for spirals or {'target': 'price'} for a CSV")
    split: list | None = _ratios("train/dev/test fractions; null picks them from the data size "
                                 "(60/20/20 for small sets, 98/1/1 past a million examples)")
    stratify: bool = _flag(True, "keep class proportions equal across train, dev and test (classification)")
    standardize: bool = _flag(False, "shift and scale each input feature to mean 0, variance 1 (train statistics)")


@dataclass
class OptimizerConfig:
    name: str = _choice("adam", OPTIMIZERS, "the update rule (see engine.training.optimizers)")
    # Adam's lr of 1e-3 is the default of its paper and works for most small networks.
    lr: float = _num(1e-3, lo=0.0, lo_open=True, doc="learning rate (alpha)")
    momentum: float = _num(0.9, lo=0.0, hi=1.0, doc="beta of momentum and Nesterov: how much velocity is kept")
    beta: float = _num(0.9, lo=0.0, hi=1.0, doc="RMSprop's decay of the squared-gradient average")
    beta1: float = _num(0.9, lo=0.0, hi=1.0, doc="Adam's decay of the gradient average (first moment)")
    beta2: float = _num(0.999, lo=0.0, hi=1.0, doc="Adam's decay of the squared-gradient average (second moment)")
    eps: float = _num(1e-8, lo=0.0, lo_open=True, doc="epsilon added to the denominator for stability")


@dataclass
class ScheduleConfig:
    name: str = _choice("constant", SCHEDULES, "how the learning rate changes over epochs")
    step_size: int = _num(10, lo=1, whole=True, doc="step: epochs between decays")
    gamma: float = _num(0.1, lo=0.0, hi=1.0, lo_open=True, doc="step: factor the rate is multiplied by")
    min_lr: float = _num(0.0, lo=0.0, doc="cosine: the rate at the last epoch; plateau: the lowest rate")
    factor: float = _num(0.1, lo=0.0, hi=1.0, lo_open=True, doc="plateau: factor applied when dev loss stalls")
    patience: int = _num(3, lo=0, whole=True, doc="plateau: epochs without dev-loss progress before decaying")


@dataclass
class RegularizationConfig:
    weight_decay: float = _num(0.0, lo=0.0, doc="L2 lambda: adds lambda * w to each weight's gradient "
                                                "(decoupled for AdamW); biases and norm scales are exempt")
    grad_clip: float = _num(0.0, lo=0.0, doc="largest global gradient norm (0 = no clipping)")


@dataclass
class AugmentationConfig:
    """Random changes to training images on every step (kornia, on the training device)."""

    hflip: bool = _flag(False, "flip left-right with probability 1/2 (not for digits or text)")
    vflip: bool = _flag(False, "flip upside down with probability 1/2")
    rotation: float = _num(0.0, lo=0.0, hi=180.0, doc="largest rotation in degrees")
    crop_padding: int = _num(0, lo=0, whole=True, doc="pad by this many pixels, then crop back at a random place")
    color_jitter: float = _num(0.0, lo=0.0, hi=1.0, doc="strength of random brightness and contrast changes")
    noise: float = _num(0.0, lo=0.0, doc="standard deviation of added Gaussian noise")

    @property
    def enabled(self) -> bool:
        return bool(self.hflip or self.vflip or self.rotation or self.crop_padding or self.color_jitter
                    or self.noise)


@dataclass
class EarlyStoppingConfig:
    enabled: bool = _flag(False, "stop when the monitored dev metric stops improving")
    monitor: str = _choice("dev_loss", MONITORS, "the dev-set metric watched")
    patience: int = _num(5, lo=1, whole=True, doc="epochs without improvement before stopping")
    min_delta: float = _num(0.0, lo=0.0, doc="smallest change that counts as an improvement")
    restore_best: bool = _flag(True, "end with the weights of the best epoch, not the last")


@dataclass
class TrainingConfig:
    data: DataConfig = _section(DataConfig)
    epochs: int = _num(10, lo=1, hi=1_000_000, whole=True, doc="passes over the training set")
    batch_size: int = _num(64, lo=1, whole=True, doc="examples per step for mini-batch gradient descent")
    batching: str = _choice("mini-batch", BATCHING, "mini-batch: batch_size examples per step; batch: the whole "
                            "training set per step; stochastic: one example per step")
    optimizer: OptimizerConfig = _section(OptimizerConfig)
    schedule: ScheduleConfig = _section(ScheduleConfig)
    regularization: RegularizationConfig = _section(RegularizationConfig)
    augmentation: AugmentationConfig = _section(AugmentationConfig)
    early_stopping: EarlyStoppingConfig = _section(EarlyStoppingConfig)
    device: str = _choice("auto", DEVICES, "auto: CUDA when available, then Apple MPS, then the CPU")
    precision: str = _choice("fp32", PRECISIONS, "bf16/fp16 mixed precision (autocast; pays off on a GPU, on a "
                                                 "CPU only with bf16/fp16 instructions)")
    compile: bool = _flag(False, "torch.compile the model (GPU; falls back to eager with a message)")
    channels_last: bool = _flag(False, "channels-last memory layout for convolutions (GPU)")
    seed: int = _num(0, lo=0, whole=True, doc="fixes initial weights, data split, shuffling and dropout")
    mode: str = _choice("auto", MODES, "training mode; auto picks it from the graph's loss nodes (GANLoss: gan, "
                        "a Reparameterize node: vae, TripletMarginLoss: triplet, otherwise supervised)")
    sample_every: int = _num(0, lo=0, whole=True, doc="steps between samples (a GAN's generated images, a VAE's "
                             "reconstructions) sent to observers and saved as PNG in the run folder; 0 = at "
                             "the end of every epoch")
    sample_count: int = _num(64, lo=1, hi=1024, whole=True, doc="images in a sample grid")
    log_every: int = _num(25, lo=1, whole=True, doc="steps between reads of the metrics from the device (also "
                          "read at least twice a second); every step's loss is reported either way")
    eval_batch_size: int = _num(1024, lo=1, whole=True, doc="examples per forward pass when evaluating")
    checkpoint_seconds: float = _num(60.0, lo=0.0, doc="seconds between resumable checkpoints (last.pt) "
                                     "while training; 0 writes them only when the run ends")
    human_error: float | None = _num(None, lo=0.0, hi=1.0, optional=True,
                                     doc="human-level error (a proxy for Bayes error) for the bias/variance doctor")

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_dict(cls, raw: Any, where: str = "training") -> "TrainingConfig":
        problems: list[str] = []
        config = _build(cls, raw, where, problems)
        if config is not None:
            problems += config._cross_checks(where)
        if problems:
            raise ConfigError(problems)
        return config

    @classmethod
    def from_graph(cls, graph) -> "TrainingConfig":
        """The configuration saved in a graph (defaults for whatever it does not set)."""
        return cls.from_dict(graph.training or {})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_graph(self, graph) -> None:
        """Store this configuration in the graph; ``engine.save_graph`` then writes it into the file."""
        graph.training = self.to_dict()

    def with_overrides(self, overrides: dict[str, Any]) -> "TrainingConfig":
        """A copy with dotted-path overrides applied and validated: {"optimizer.lr": 0.01}."""
        raw = self.to_dict()
        problems = []
        for path, value in overrides.items():
            node, parts = raw, path.split(".")
            for i, part in enumerate(parts):
                if not isinstance(node, dict) or part not in node:
                    problems.append(f"training.{path}: no such setting")
                    break
                if i == len(parts) - 1:
                    if isinstance(node[part], dict) and part != "options":
                        problems.append(f"training.{path}: is a section; set one of its fields")
                    else:
                        node[part] = value
                else:
                    node = node[part]
        if problems:
            raise ConfigError(problems)
        return TrainingConfig.from_dict(raw)

    def _cross_checks(self, where: str) -> list[str]:
        problems = []
        split = self.data.split
        if split is not None and not math.isclose(sum(split), 1.0, abs_tol=1e-6):
            problems.append(f"{where}.data.split: the fractions must add up to 1, they add up to {sum(split):g}")
        return problems


def describe() -> list[dict]:
    """Every setting as plain data (path, kind, default, allowed, doc), for a GUI form or docs."""
    out = []

    def walk(cls, prefix):
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if meta.get("kind") == "section":
                walk(f.default_factory, f"{prefix}{f.name}.")
                continue
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            item = {"path": prefix + f.name, "kind": meta.get("kind"), "default": default, "doc": meta.get("doc", "")}
            if "options" in meta:
                item["options"] = list(meta["options"])
            for key in ("lo", "hi"):
                if meta.get(key) is not None:
                    item["min" if key == "lo" else "max"] = meta[key]
            out.append(item)

    walk(TrainingConfig, "")
    return out


# --------------------------------------------------------------------------- validation
def _build(cls, raw: Any, where: str, problems: list[str]):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected an object of settings, got {_describe(raw)}")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in sorted(set(raw) - set(fields)):
        problems.append(f"{where}.{key}: unknown setting (known: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        path = f"{where}.{name}"
        meta = f.metadata
        if meta["kind"] == "section":
            sub = _build(f.default_factory, raw[name], path, problems)
            if sub is not None:
                values[name] = sub
            continue
        ok, clean = _check(meta, raw[name], path, problems)
        if ok:
            values[name] = clean
    return cls(**values)


def _check(meta: dict, value: Any, path: str, problems: list[str]) -> tuple[bool, Any]:
    kind = meta["kind"]
    if value is None and meta.get("optional"):
        return True, None
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a {'whole ' if kind == 'int' else ''}number, got {_describe(value)}")
            return False, None
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                problems.append(f"{path}: expected a whole number, got {value!r}")
                return False, None
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                problems.append(f"{path}: expected a finite number, got {value!r}")
                return False, None
        lo, hi = meta.get("lo"), meta.get("hi")
        if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
            problems.append(f"{path}: must be {'above' if meta.get('lo_open') else 'at least'} {lo:g}, got {value!r}")
            return False, None
        if hi is not None and value > hi:
            problems.append(f"{path}: must be at most {hi:g}, got {value!r}")
            return False, None
        return True, value
    if kind == "bool":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected true or false, got {_describe(value)}")
            return False, None
        return True, value
    if kind == "choice":
        if value not in meta["options"]:
            problems.append(f"{path}: expected one of {', '.join(meta['options'])}; got {_describe(value)}")
            return False, None
        return True, value
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path}: expected non-empty text, got {_describe(value)}")
            return False, None
        return True, value
    if kind == "dict":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object of name: value, got {_describe(value)}")
            return False, None
        return True, dict(value)
    if kind == "ratios":
        if (not isinstance(value, (list, tuple)) or len(value) != 3
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1 for v in value)):
            problems.append(f"{path}: expected three fractions [train, dev, test] between 0 and 1, "
                            f"got {_describe(value)}")
            return False, None
        if value[0] <= 0:
            problems.append(f"{path}: the training fraction must be above 0, got {value[0]!r}")
            return False, None
        return True, [float(v) for v in value]
    raise AssertionError(f"unknown field kind {kind!r}")  # pragma: no cover


def set_training_defaults(graph, **settings: Any) -> TrainingConfig:
    """Save training defaults into a graph (templates use this): keyword names are dotted paths with
    '__' for the dot, e.g. ``set_training_defaults(g, epochs=30, optimizer__lr=0.01, data__dataset="digits")``.
    Settings already in the graph are kept unless named. Returns the validated configuration."""
    base = TrainingConfig.from_graph(graph)
    config = base.with_overrides({k.replace("__", "."): v for k, v in settings.items()})
    config.to_graph(graph)
    return config
