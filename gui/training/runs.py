"""Training runs as the GUI keeps them: growable series for the live plots, the epochs, the latest
samples and health, the result and the evaluation report. Plain Python + NumPy (no Qt); the controller
fills a :class:`Run` from trainer events, the panels read it.

Each run is labelled with what changed since the run before it ("optimizer.lr 0.001 → 0.01", "network
edited"), so overlaid curves say what they compare.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Colours of successive runs (chosen to read on both themes and to stay apart from each other).
RUN_COLORS = ("#4c9aff", "#f0508c", "#3ecf8e", "#f0b429", "#b57cf0", "#20b2a0", "#f06a4a", "#9aa83a")
FINAL_STATES = ("finished", "early-stopped", "stopped", "failed")


def _hue(color: str) -> float:
    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    hi, lo = max(r, g, b), min(r, g, b)
    if hi == lo:
        return 0.0
    d = hi - lo
    h = (g - b) / d % 6 if hi == r else (b - r) / d + 2 if hi == g else (r - g) / d + 4
    return h / 6


def run_color(used: list[str]) -> str:
    """The colour for a new run beside runs of the colours ``used``: the first of RUN_COLORS that no kept
    run has, else a hue as far as can be from every kept run's (run 9 was drawn in run 1's blue, and the
    two could not be told apart on the plots or in the legend)."""
    taken = {c.lower() for c in used}
    for color in RUN_COLORS:
        if color not in taken:
            return color
    import colorsys

    hues = sorted({_hue(c) for c in used})
    gaps = [((hues[(i + 1) % len(hues)] - h) % 1.0 or 1.0, h) for i, h in enumerate(hues)]
    width, start = max(gaps)
    r, g, b = colorsys.hsv_to_rgb((start + width / 2) % 1.0, 0.62, 0.93)  # (as light and bright as the others)
    return "#{:02x}{:02x}{:02x}".format(*(round(v * 255) for v in (r, g, b)))


class Series:
    """x/y points appended from the training run's events, kept in amortised-doubling arrays so the
    plots get NumPy views without copying."""

    def __init__(self, capacity: int = 1024):
        self.x = np.empty(capacity, dtype=np.float64)
        self.y = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def extend(self, xs, ys) -> None:
        xs = np.asarray(xs, dtype=np.float64).reshape(-1)
        ys = np.asarray(ys, dtype=np.float64).reshape(-1)
        k = len(xs)
        if self.n + k > len(self.x):
            size = max(2 * len(self.x), self.n + k)
            for name in ("x", "y"):
                grown = np.empty(size, dtype=np.float64)
                grown[:self.n] = getattr(self, name)[:self.n]
                setattr(self, name, grown)
        self.x[self.n:self.n + k] = xs
        self.y[self.n:self.n + k] = ys
        self.n += k

    def append(self, x: float, y: float) -> None:
        self.extend([x], [y])

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[:self.n], self.y[:self.n]

    @property
    def last(self) -> float | None:
        return float(self.y[self.n - 1]) if self.n else None


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "options":
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return "/".join(_short(v) for v in value)
    return str(value)


def describe_change(before: dict | None, after: dict, network_changed: bool = False, limit: int = 3) -> str:
    """What changed between two configurations, e.g. 'optimizer.lr 0.001→0.01, epochs 10→20'."""
    if before is None:
        return "first run"
    a, b = flatten(before), flatten(after)
    changes = [f"{k} {_short(a.get(k))}→{_short(b.get(k))}" for k in sorted(set(a) | set(b))
               if a.get(k) != b.get(k) and k != "human_error"]
    if network_changed:
        changes.insert(0, "network edited")
    if not changes:
        return "same settings"
    more = f" (+{len(changes) - limit} more)" if len(changes) > limit else ""
    return ", ".join(changes[:limit]) + more


@dataclass
class Run:
    """One training run as the panels see it."""

    number: int
    color: str
    config: dict
    network: str  # network hash (engine.training.trainer.network_hash)
    graph_name: str
    change: str  # what changed since the previous run
    run_dir: str = ""
    status: str = "starting"  # starting, running, paused, stopping, evaluating + FINAL_STATES
    phase: str = ""  # what the worker is doing before the first step / after the last
    visible: bool = True  # overlaid on the plots
    started_at: float = field(default_factory=time.time)
    info: Any = None  # the RunStarted event
    # live series (x is the step unless said otherwise)
    step_loss: Series = field(default_factory=Series)
    lr: Series = field(default_factory=Series)
    grad: dict[str, Series] = field(default_factory=dict)  # node id -> gradient norm over steps
    epochs: list = field(default_factory=list)  # EpochMetrics, in order
    step: int = 0
    epoch: int = 0
    elapsed: float = 0.0
    examples_per_second: float = 0.0
    train_loss: float | None = None
    train_accuracy: float | None = None
    samples: Any = None  # the latest Samples event
    samples_history: list = field(default_factory=list)  # (epoch, Samples), the last few
    health: Any = None  # the latest engine.inspect.Health with activation statistics
    grad_levels: dict[str, str] = field(default_factory=dict)
    grad_norms: dict[str, float] = field(default_factory=dict)
    nonfinite: Any = None  # engine.inspect.NonFinite when the run went NaN
    result: Any = None  # RunResult
    report: dict | None = None  # Trainer.report()
    examples: Any = None  # engine.inspect.ExampleResults of the dev split
    dataset: Any = None  # the Dataset trained on (for galleries)
    weights: dict | None = None  # final weights on the CPU (preview, export)
    preview: tuple | None = None  # (node, example index, epoch, Preview, sample, error) from the run
    weights_epoch: int = 0
    input_norm: dict | None = None
    error: str = ""  # set-up failure (bad config, data that does not fit), shown as is
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"run {self.number}: {self.change}"

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def total_steps(self) -> int:
        if self.info is None:
            return 0
        return self.info.epochs * self.info.steps_per_epoch

    @property
    def eta(self) -> float | None:
        """Seconds left, from the pace so far (pauses excluded)."""
        total = self.total_steps
        if not total or self.step <= 0 or self.elapsed <= 0:
            return None
        start = self.info.start_epoch * self.info.steps_per_epoch
        done = max(self.step - start, 1)
        return max(0.0, self.elapsed / done * (total - self.step))

    @property
    def has_accuracy(self) -> bool:
        return any(e.train_accuracy is not None or e.dev_accuracy is not None for e in self.epochs)

    def term_names(self) -> list[tuple[str, str]]:
        """(split, loss label) pairs the epochs report, in a stable order."""
        seen = []
        for e in self.epochs:
            for split in ("train", "dev"):
                for name in _terms(e, split):
                    if (split, name) not in seen:
                        seen.append((split, name))
        return seen

    def term_series(self, split: str, name: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for e in self.epochs:
            v = _terms(e, split).get(name)
            if v is not None and math.isfinite(v):
                xs.append(e.step if x == "step" else e.epoch)
                ys.append(v)
        return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)

    def lr_series(self, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
        """The learning rate, drawn as it was: constant through each epoch (the schedule steps between
        epochs), each finished epoch's rate from the epoch's start to its end, then the running epoch's
        (from the latest progress event) up to the latest step. (Points where progress events came, joined,
        drew a change of rate as a ramp across the steps between two events, and the run's last event the
        rate after the schedule's last step, which no step used.)"""
        per = self.info.steps_per_epoch if self.info is not None else 0
        if not per:
            return np.zeros(0), np.zeros(0)
        xs, ys = [], []
        end = self.info.start_epoch * per
        for e in self.epochs:
            if e.lr is not None and math.isfinite(e.lr):
                xs += [end, e.step]
                ys += [e.lr, e.lr]
            end = e.step
        current = self.lr.last
        if self.step > end and current is not None:
            start = max(end, (max(self.epoch, 1) - 1) * per)
            xs += [start, self.step]
            ys += [current, current]
        scale = 1.0 / per if x == "epoch" else 1.0
        return np.asarray(xs, dtype=np.float64) * scale, np.asarray(ys, dtype=np.float64)

    def accuracy_metrics(self) -> list[str]:
        """The accuracies a training mode reports of its own on the dev set (EpochMetrics.dev_metrics: a
        GAN's discriminator accuracy), where the run has no classification accuracy to plot."""
        if not self.epochs or self.epochs[-1].dev_accuracy is not None:
            return []
        metrics = getattr(self.epochs[-1], "dev_metrics", None) or {}
        return sorted(k for k in metrics if "accuracy" in k)

    def metric_series(self, name: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for e in self.epochs:
            v = (getattr(e, "dev_metrics", None) or {}).get(name)
            if v is not None and math.isfinite(v):
                xs.append(e.step if x == "step" else e.epoch)
                ys.append(v)
        return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)

    def epoch_series(self, key: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for e in self.epochs:
            v = getattr(e, key)
            if v is not None and math.isfinite(v):
                xs.append(e.step if x == "step" else e.epoch)
                ys.append(v)
        return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


def _terms(epoch, split: str) -> dict:
    """An epoch's loss terms by loss-node label (EpochMetrics.train_terms / dev_terms: a GAN's d_loss and
    g_loss, a VAE's reconstruction and KL), when the training mode reports them."""
    terms = getattr(epoch, f"{split}_terms", None)
    return terms if isinstance(terms, dict) else {}


def format_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    s = int(round(s))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
