"""The optimizer lab: why momentum, RMSprop and Adam beat plain gradient descent, seen on 2-D loss
surfaces and on the user's own network. Pure Python + torch (imported when first needed); never Qt.

On a surface (the GUI's playground, ``deepcanvas optimizer-paths``)::

    from engine import optlab
    surface = optlab.SURFACES["rosenbrock"]
    path = optlab.trajectory(surface, "adam", start=(-1.5, 2.0), steps=300, lr=0.05)
    path.points, path.losses          # (x, y) after each step, and f there (index 0 is the start)

Every step is taken by the same ``torch.optim`` optimizer the trainer uses: the lab builds a
``TrainingConfig`` for the method and hands a one-weight module to ``engine.training.optimizers.
make_optimizer``; the surface is an ordinary torch function whose gradient autograd computes. A
"stochastic" surface is a finite sum of ``examples`` losses, f_i(w) = f(w) + xi_i . w with the xi_i
summing to zero: the full-batch gradient is exactly f's, a mini-batch of B examples sees f's gradient
plus the mean of its xi_i (noise whose variance falls as 1/B), and batch GD, SGD and mini-batch GD
differ as they do on real data.

On the user's network (the GUI's comparison tab, ``deepcanvas compare-optimizers``)::

    comparison = optlab.Comparison(graph, optlab.parse_runs("sgd,momentum,rmsprop,adam"), epochs=5)
    outcomes = comparison.run(parallel=False)
    comparison.write(out_dir)         # curves.csv, summary.csv, curves.png

Every run is a ``Trainer`` of the same graph and seed, so each starts from the same initial weights and
sees the training examples in the same order (the shuffle does not depend on the batch size); the data
set is loaded once and shared.
"""

from __future__ import annotations

import csv
import io
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Tableau 10: readable on both the dark and the light theme, and apart from each other.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")


# =========================================================================== methods
@dataclass(frozen=True)
class Hyper:
    """An editable hyperparameter of a method: its training-config path, symbol and bounds."""

    name: str
    path: str  # where it lives in TrainingConfig
    symbol: str
    doc: str
    lo: float
    hi: float
    log: bool = False  # edited on a log scale (learning rates, epsilon)


HYPERS = {
    "lr": Hyper("lr", "optimizer.lr", "α", "learning rate", 1e-6, 100.0, True),
    "momentum": Hyper("momentum", "optimizer.momentum", "β", "velocity kept each step", 0.0, 0.999),
    "beta": Hyper("beta", "optimizer.beta", "β", "decay of the squared-gradient average", 0.0, 0.9999),
    "beta1": Hyper("beta1", "optimizer.beta1", "β₁", "decay of the gradient average", 0.0, 0.9999),
    "beta2": Hyper("beta2", "optimizer.beta2", "β₂", "decay of the squared-gradient average", 0.0, 0.99999),
    "eps": Hyper("eps", "optimizer.eps", "ε", "added to the denominator", 1e-12, 1.0, True),
    "weight_decay": Hyper("weight_decay", "regularization.weight_decay", "λ", "decoupled weight decay", 0.0, 10.0),
}


@dataclass(frozen=True)
class Method:
    """A way of stepping: one of the trainer's optimizers with a batching mode. ``rule`` is the update as
    textbooks write it, for a parameter w with (mini-batch) gradient g; it is what the tests check."""

    key: str
    label: str
    optimizer: str  # TrainingConfig.optimizer.name
    batching: str | None  # fixed for the three gradient-descent variants; else the lab's mini-batch
    params: tuple[str, ...]  # keys of HYPERS the user can edit
    rule: str
    source: str  # where the rule comes from
    color: str


METHODS: dict[str, Method] = {m.key: m for m in (
    Method("batch-gd", "Batch GD", "sgd", "batch", ("lr",),
           "g = ∇L(w), the mean over all N examples\nw ← w − α·g", "Cauchy 1847", "#bab0ac"),
    Method("sgd", "SGD", "sgd", "stochastic", ("lr",),
           "g = ∇Lᵢ(w), one example i per step\nw ← w − α·g", "Robbins and Monro 1951", "#9c755f"),
    Method("mini-batch-gd", "Mini-batch GD", "sgd", "mini-batch", ("lr",),
           "g = ∇L_B(w), the mean over a mini-batch B\nw ← w − α·g", "", "#b07aa1"),
    Method("momentum", "Momentum", "momentum", None, ("lr", "momentum"),
           "v ← β·v + g\nw ← w − α·v", "Polyak 1964", "#f28e2b"),
    Method("nesterov", "Nesterov", "nesterov", None, ("lr", "momentum"),
           "v ← β·v + g\nw ← w − α·(g + β·v)", "Nesterov 1983; Sutskever et al. 2013", "#edc948"),
    Method("adagrad", "Adagrad", "adagrad", None, ("lr", "eps"),
           "G ← G + g²\nw ← w − α·g / (√G + ε)", "Duchi et al. 2011", "#59a14f"),
    Method("rmsprop", "RMSprop", "rmsprop", None, ("lr", "beta", "eps"),
           "S ← β·S + (1 − β)·g²\nw ← w − α·g / (√S + ε)", "Hinton 2012", "#76b7b2"),
    Method("adam", "Adam", "adam", None, ("lr", "beta1", "beta2", "eps"),
           "m ← β₁·m + (1 − β₁)·g\nv ← β₂·v + (1 − β₂)·g²\nm̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)\n"
           "w ← w − α·m̂ / (√v̂ + ε)", "Kingma and Ba 2015", "#e15759"),
    Method("adamw", "AdamW", "adamw", None, ("lr", "beta1", "beta2", "eps", "weight_decay"),
           "w ← w − α·λ·w   (decay decoupled from g)\nthen Adam's step:\nm ← β₁·m + (1 − β₁)·g\n"
           "v ← β₂·v + (1 − β₂)·g²\nw ← w − α·m̂ / (√v̂ + ε)", "Loshchilov and Hutter 2019", "#4e79a7"),
)}


def _config_defaults() -> dict[str, float]:
    """The trainer's defaults for every hyperparameter (one source: engine.training.config)."""
    from .training.config import TrainingConfig

    cfg = TrainingConfig()
    o = cfg.optimizer
    return {"lr": o.lr, "momentum": o.momentum, "beta": o.beta, "beta1": o.beta1, "beta2": o.beta2, "eps": o.eps,
            "weight_decay": cfg.regularization.weight_decay}


def method_config(method: Method | str, values: dict[str, float] | None = None, batch_size: int | None = None,
                  base=None):
    """The ``TrainingConfig`` of a method with the given hyperparameters; raises ConfigError naming a
    value out of range. The trainer, the lab and the CLI all build their optimizer from such a config."""
    from .training.config import TrainingConfig

    m = METHODS[method] if isinstance(method, str) else method
    over: dict[str, Any] = {"optimizer.name": m.optimizer}
    if m.batching is not None:
        over["batching"] = m.batching
    if batch_size is not None:
        over["batch_size"] = int(batch_size)
    for key, value in (values or {}).items():
        if key not in HYPERS:
            raise ValueError(f"{m.label}: unknown hyperparameter {key!r} (known: {', '.join(HYPERS)})")
        over[HYPERS[key].path] = value
    return (base if base is not None else TrainingConfig()).with_overrides(over)


# =========================================================================== surfaces
@dataclass(frozen=True)
class Surface:
    """A 2-D loss surface f(x, y), written once with operators that work on torch tensors (autograd
    takes the gradient), numpy arrays (the contour plot) and floats."""

    key: str
    title: str
    formula: str
    fn: Callable[[Any, Any], Any]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    min_value: float  # f at its minima: the plots show f − f*
    lr: dict[str, float]  # a learning rate per method that shows it at its best here
    steps: int = 300
    noise: float = 0.0  # the stochastic surface's gradient noise; any surface can be made stochastic
    note: str = ""

    def __call__(self, x, y):
        return self.fn(x, y)

    def grid(self, nx: int = 200, ny: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """f on a regular grid over the plotting range: xs (nx,), ys (ny,), values (ny, nx)."""
        xs = np.linspace(*self.x_range, nx)
        ys = np.linspace(*self.y_range, ny)
        gx, gy = np.meshgrid(xs, ys)
        return xs, ys, np.asarray(self.fn(gx, gy), dtype=np.float64)

    def default_values(self, method: Method | str) -> dict[str, float]:
        """The trainer's defaults for the method's hyperparameters, with this surface's learning rate."""
        m = METHODS[method] if isinstance(method, str) else method
        defaults = _config_defaults()
        values = {k: defaults[k] for k in m.params}
        values["lr"] = self.lr.get(m.key, values["lr"])
        if "weight_decay" in values and values["weight_decay"] == 0:
            values["weight_decay"] = 0.01  # AdamW without decay is Adam; torch's default for AdamW
        return values


def _quadratic(x, y):
    return 0.01 * x ** 2 + y ** 2


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def _beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2 + (2.625 - x + x * y ** 3) ** 2


def _saddle(x, y):
    return x ** 2 - y ** 2 + 0.25 * y ** 4


def _himmelblau(x, y):
    return (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2


_GD = ("batch-gd", "sgd", "mini-batch-gd")


def _lrs(gd: float, momentum: float, adagrad: float, rmsprop: float, adam: float) -> dict[str, float]:
    out = {k: gd for k in _GD}
    out.update(momentum=momentum, nesterov=momentum, adagrad=adagrad, rmsprop=rmsprop, adam=adam, adamw=adam)
    return out


SURFACES: dict[str, Surface] = {s.key: s for s in (
    Surface("quadratic", "Ill-conditioned quadratic", "f = 0.01·x² + y²   (condition number 100)", _quadratic,
            (-10.0, 10.0), (-5.0, 5.0), (-9.0, 3.5), ((0.0, 0.0),), 0.0, _lrs(0.9, 0.2, 1.0, 0.1, 0.3), steps=150,
            note="A long narrow valley: gradient descent zig-zags across it and crawls along it; momentum "
                 "averages the zig-zag away, RMSprop and Adam rescale each direction."),
    Surface("rosenbrock", "Rosenbrock", "f = (1 − x)² + 100·(y − x²)²", _rosenbrock,
            (-2.0, 2.0), (-1.0, 3.0), (-1.5, 2.0), ((1.0, 1.0),), 0.0, _lrs(1e-3, 5e-4, 0.5, 0.01, 0.1),
            steps=800, note="A curved banana-shaped valley; the minimum at (1, 1) is easy to reach and hard to "
                            "approach."),
    Surface("beale", "Beale", "f = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²", _beale,
            (-4.5, 4.5), (-4.5, 4.5), (0.7, 1.4), ((3.0, 0.5),), 0.0, _lrs(0.01, 3e-3, 0.5, 0.02, 0.1),
            steps=500, note="Flat plateaus and sharp ridges: gradient sizes vary by orders of magnitude, where "
                            "adaptive methods shine."),
    Surface("saddle", "Saddle point", "f = x² − y² + ¼·y⁴   (saddle at the origin)", _saddle,
            (-3.0, 3.0), (-3.0, 3.0), (-2.8, 0.001), ((0.0, math.sqrt(2.0)), (0.0, -math.sqrt(2.0))), -1.0,
            _lrs(0.05, 0.02, 0.3, 0.02, 0.05), steps=200,
            note="Started almost on the ridge, gradient descent stalls at the saddle, where the gradient "
                 "vanishes; momentum and the adaptive methods escape to a minimum at (0, ±√2)."),
    Surface("himmelblau", "Himmelblau", "f = (x² + y − 11)² + (x + y² − 7)²", _himmelblau,
            (-5.0, 5.0), (-5.0, 5.0), (-0.3, -0.9), ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186),
                                                     (3.584428, -1.848126)), 0.0,
            _lrs(0.01, 3e-3, 0.5, 0.05, 0.1), steps=300,
            note="Four minima of equal depth: which one a method falls into depends on its path."),
    Surface("stochastic", "Stochastic quadratic (mini-batches)",
            "f = 0.01·x² + y² = mean of N example losses fᵢ = f + ξᵢ·w", _quadratic,
            (-10.0, 10.0), (-5.0, 5.0), (-9.0, 3.5), ((0.0, 0.0),), 0.0, _lrs(0.5, 0.1, 1.0, 0.1, 0.3),
            steps=200, noise=1.0,
            note="Each step sees the gradient of a mini-batch: SGD (one example) jitters most, batch GD "
                 "(all examples) not at all. Averaging methods (momentum, Adam) smooth the noise."),
)}


# =========================================================================== walking a surface
class Problem:
    """A surface and how its gradient is seen: exactly (``noise`` 0), or as the mean of ``examples``
    example losses f_i(w) = f(w) + xi_i . w whose xi_i (drawn with ``seed``) sum to zero."""

    def __init__(self, surface: Surface | str, noise: float | None = None, examples: int = 64, seed: int = 0):
        import torch

        self.surface = SURFACES[surface] if isinstance(surface, str) else surface
        self.noise = float(self.surface.noise if noise is None else noise)
        if self.noise < 0 or not math.isfinite(self.noise):
            raise ValueError(f"gradient noise must be 0 or more, got {noise!r}")
        if int(examples) < 1:
            raise ValueError(f"examples must be at least 1, got {examples!r}")
        self.examples = int(examples)
        self.seed = int(seed)
        self.xi = None
        if self.noise > 0:
            g = torch.Generator().manual_seed(self.seed)
            xi = torch.randn(self.examples, 2, generator=g, dtype=torch.float64) * self.noise
            self.xi = xi - xi.mean(0)  # (N, 2): the example losses average to f exactly

    @property
    def stochastic(self) -> bool:
        return self.xi is not None

    def batch_size(self, batching: str, mini_batch: int) -> int:
        n = self.examples
        return {"batch": n, "stochastic": 1, "mini-batch": max(1, min(int(mini_batch), n))}[batching]

    def batches(self, batch_size: int) -> Iterator[list[int]]:
        """Example indices of each step: a fresh permutation each epoch (the same for every method, as
        in the trainer), cut into batches; the last batch of an epoch may be smaller."""
        import torch

        gen = torch.Generator().manual_seed(self.seed + 1)
        n = self.examples
        while True:
            perm = torch.randperm(n, generator=gen).tolist()
            for i in range(0, n, batch_size):
                yield perm[i:i + batch_size]


@dataclass
class Trajectory:
    method: str
    values: dict[str, float]  # the hyperparameters used
    batch_size: int | None  # examples per step on a stochastic surface
    points: list[tuple[float, float]]  # the start, then w after each step
    losses: list[float]  # f at each point
    batches: list[list[int]] = field(default_factory=list)  # example indices of each step (stochastic only)
    diverged: int | None = None  # the step at which w left every sensible range

    @property
    def steps(self) -> int:
        return len(self.points) - 1

    @property
    def final(self) -> tuple[float, float]:
        return self.points[-1]


DIVERGED = 1e8  # |w| beyond this (or not finite) ends a walk


class Walker:
    """One method walking one surface, a step at a time (the GUI steps it from a timer)."""

    def __init__(self, problem: Problem, method: Method | str, values: dict[str, float] | None = None,
                 start: Sequence[float] | None = None, mini_batch: int = 8):
        import torch

        from .training.optimizers import make_optimizer

        self.problem = problem
        self.method = METHODS[method] if isinstance(method, str) else method
        surface = problem.surface
        foreign = sorted(set(values or {}) - set(self.method.params))
        if foreign:
            raise ValueError(f"{self.method.label} has no {', '.join(map(repr, foreign))} "
                             f"(it has {', '.join(self.method.params)})")
        self.values = dict(surface.default_values(self.method))
        self.values.update(values or {})
        batching = self.method.batching or "mini-batch"
        self.batch_size = problem.batch_size(batching, mini_batch) if problem.stochastic else None
        self.config = method_config(self.method, self.values)
        start = tuple(float(v) for v in (start if start is not None else surface.start))
        # A (1, 2) weight: a matrix to make_optimizer, so weight decay applies as to any layer's weight.
        self.weight = torch.nn.Parameter(torch.tensor([start], dtype=torch.float64))
        holder = torch.nn.Module()
        holder.weight = self.weight
        self.optimizer = make_optimizer(holder, self.config)
        self._batches = problem.batches(self.batch_size) if problem.stochastic else None
        self.trajectory = Trajectory(self.method.key, dict(self.values), self.batch_size, [start],
                                     [float(surface(*start))])

    @property
    def done(self) -> bool:
        return self.trajectory.diverged is not None

    def step(self, k: int = 1) -> int:
        """Take up to ``k`` steps (fewer once the walk diverged); returns how many were taken."""
        taken = 0
        surface, xi, w, traj = self.problem.surface, self.problem.xi, self.weight, self.trajectory
        for _ in range(k):
            if traj.diverged is not None:
                break
            loss = surface(w[0, 0], w[0, 1])
            if xi is not None:
                idx = next(self._batches)
                traj.batches.append(idx)
                loss = loss + (xi[idx].mean(0) * w[0]).sum()  # the mini-batch's mean of f_i
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            x, y = w.detach()[0].tolist()
            taken += 1
            if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > DIVERGED:
                traj.diverged = traj.steps + 1
                if not (math.isfinite(x) and math.isfinite(y)):
                    break  # nothing to draw
            traj.points.append((x, y))
            traj.losses.append(float(surface(x, y)))
        return taken


def trajectory(surface: Surface | str, method: Method | str, start: Sequence[float] | None = None,
               steps: int | None = None, noise: float | None = None, examples: int = 64, mini_batch: int = 8,
               seed: int = 0, **values: float) -> Trajectory:
    """``steps`` steps of a method on a surface from ``start`` (the surface's default start and step
    count when not given); ``values`` override hyperparameters (lr, momentum, beta, beta1, beta2, eps,
    weight_decay)."""
    problem = Problem(surface, noise, examples, seed)
    walker = Walker(problem, method, values, start, mini_batch)
    walker.step(problem.surface.steps if steps is None else int(steps))
    return walker.trajectory


def trajectories(surface: Surface | str, methods: Iterable[str] = tuple(METHODS), start=None, steps=None,
                 noise=None, examples: int = 64, mini_batch: int = 8, seed: int = 0,
                 values: dict[str, dict[str, float]] | None = None) -> dict[str, Trajectory]:
    """Every method from the same start on the same problem (same examples, same data order)."""
    problem = Problem(surface, noise, examples, seed)
    out = {}
    for key in methods:
        walker = Walker(problem, key, (values or {}).get(key), start, mini_batch)
        walker.step(problem.surface.steps if steps is None else int(steps))
        out[key] = walker.trajectory
    return out


def trajectories_csv(paths: dict[str, Trajectory]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "step", "x", "y", "loss"])
    for key, t in paths.items():
        for i, ((x, y), loss) in enumerate(zip(t.points, t.losses)):
            w.writerow([key, i, repr(x), repr(y), repr(loss)])
    return buf.getvalue()


# =========================================================================== comparing on a network
# A first learning rate per optimizer for runs that do not give one (and do not use the graph's own
# optimizer, whose rate the graph file already holds): the values textbooks and library docs start from.
STARTING_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 0.001, "adam": 0.001,
               "adamw": 0.001}


@dataclass
class RunSpec:
    """One configuration to compare: an optimizer and a batching mode, optionally its own batch size,
    learning rate and any other training settings (dotted config paths)."""

    optimizer: str = "adam"
    batching: str | None = None  # None: the graph's setting
    batch_size: int | None = None  # None: the graph's setting (mini-batch only)
    lr: float | None = None  # None: the graph's rate for the graph's optimizer, else STARTING_LR
    settings: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def name(self, base) -> str:
        if self.label:
            return self.label
        batching = self.batching or base.batching
        text = self.optimizer
        if batching == "mini-batch":
            text += f" (mini-batch {self.batch_size or base.batch_size})"
        else:
            text += f" ({batching})"
        if self.lr is not None:
            text += f" lr={self.lr:g}"
        return text

    def config(self, base):
        """The run's TrainingConfig: the base (the graph's settings) with this run's changes."""
        over: dict[str, Any] = dict(self.settings)
        over["optimizer.name"] = self.optimizer
        if self.batching is not None:
            over["batching"] = self.batching
        if self.batch_size is not None:
            over["batch_size"] = self.batch_size
        if self.lr is not None:
            over["optimizer.lr"] = self.lr
        elif self.optimizer != base.optimizer.name and self.optimizer in STARTING_LR:
            over["optimizer.lr"] = STARTING_LR[self.optimizer]
        return base.with_overrides(over)


def parse_runs(text: str, batching: Sequence[str] = (), batch_size: int | None = None,
               lr: float | None = None) -> list[RunSpec]:
    """Runs from the command line's ``--optimizers``: comma-separated ``NAME[:BATCHING[:SIZE]][@LR]``,
    e.g. ``sgd:batch,sgd:mini-batch:32,momentum@0.01,adam``. A name without a batching mode is run with
    each of ``batching`` (the graph's setting when empty). Raises ValueError naming a bad item."""
    from .training.config import BATCHING, OPTIMIZERS

    runs: list[RunSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        head, _, rate = item.partition("@")
        run_lr = lr
        if rate:
            try:
                run_lr = float(rate)
            except ValueError:
                raise ValueError(f"{item!r}: the learning rate after '@' must be a number, got {rate!r}") from None
            if not run_lr > 0 or not math.isfinite(run_lr):
                raise ValueError(f"{item!r}: the learning rate must be above 0")
        parts = head.split(":")
        name = parts[0].strip().lower()
        if name not in OPTIMIZERS:
            raise ValueError(f"{item!r}: unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
        if len(parts) > 3:
            raise ValueError(f"{item!r}: expected NAME[:BATCHING[:SIZE]][@LR]")
        modes: list[str | None] = list(batching) or [None]
        size = batch_size
        if len(parts) >= 2:
            modes = [parts[1].strip().lower()]
        if len(parts) == 3:
            try:
                size = int(parts[2])
            except ValueError:
                raise ValueError(f"{item!r}: the batch size must be a whole number, got {parts[2]!r}") from None
            if size < 1:
                raise ValueError(f"{item!r}: the batch size must be at least 1")
        for mode in modes:
            if mode is not None and mode not in BATCHING:
                raise ValueError(f"{item!r}: unknown batching {mode!r} (known: {', '.join(BATCHING)})")
            runs.append(RunSpec(name, mode, size if mode in (None, "mini-batch") else None, run_lr))
    if not runs:
        raise ValueError("no optimizer given (e.g. --optimizers sgd,momentum,rmsprop,adam)")
    return runs


@dataclass
class RunOutcome:
    """One run of a comparison: its curves, how it ended and its final metrics."""

    index: int
    label: str
    optimizer: str
    batching: str
    batch_size: int  # examples per step as trained
    lr: float
    color: str
    status: str = "waiting"  # waiting, running, finished, early-stopped, stopped, failed, skipped
    reason: str = ""
    history: list[dict] = field(default_factory=list)  # EpochMetrics as dicts, one per epoch
    steps: int = 0
    total_steps: int = 0
    seconds: float = 0.0
    best_epoch: int | None = None  # epoch of the best dev score (None without a dev set)
    best_value: float | None = None
    monitor: str = "dev_loss"
    final: dict[str, float | None] = field(default_factory=dict)  # train/dev loss, accuracy, mse at the end

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("index", "label", "optimizer", "batching", "batch_size", "lr", "status",
                                              "reason", "steps", "seconds", "best_epoch", "best_value", "monitor",
                                              "final", "history")}


class ComparisonError(ValueError):
    """A comparison that cannot start; the message names the run and the setting."""


Listener = Callable[[str, int, Any], None]  # (kind, run index, payload): "start", "progress", "epoch", "end"


class Comparison:
    """Several configurations of one graph trained from the same initial weights and the same data order.

    ``listener(kind, index, payload)`` is called from the training threads: ("start", i, RunOutcome),
    ("progress", i, (step, total_steps)), ("epoch", i, EpochMetrics) and ("end", i, RunOutcome). ``stop``
    (any thread) ends the running runs after their current step and skips the ones not started."""

    def __init__(self, graph, runs: Sequence[RunSpec], base=None, dataset=None, **overrides: Any):
        from .training.config import ConfigError, TrainingConfig

        if not runs:
            raise ComparisonError("nothing to compare: give at least one optimizer")
        self.graph = graph.copy()
        base = base if base is not None else TrainingConfig.from_graph(graph)
        if overrides:
            base = base.with_overrides({k.replace("__", "."): v for k, v in overrides.items()})
        self.base = base
        self.runs = list(runs)
        self.configs = []
        for i, run in enumerate(self.runs):
            try:
                self.configs.append(run.config(base))
            except ConfigError as exc:
                raise ComparisonError(f"run {i + 1} ({run.name(base)}): " + "; ".join(exc.problems)) from None
        self.dataset = dataset
        self.outcomes = [RunOutcome(i, run.name(base), cfg.optimizer.name, cfg.batching,
                                    cfg.batch_size, cfg.optimizer.lr, PALETTE[i % len(PALETTE)])
                         for i, (run, cfg) in enumerate(zip(self.runs, self.configs))]
        self.trainers: list = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.seconds = 0.0

    # ------------------------------------------------------------------ set-up
    def prepare(self) -> None:
        """Load the data once and set up every trainer (compiling the graph with the same seed gives the
        same initial weights). Raises the trainer's GraphError, DataError, ConfigError or SetupError."""
        if self.trainers:
            return
        from .training.datasets import load_dataset
        from .training.trainer import Trainer

        if self.dataset is None:
            d = self.base.data
            self.dataset = load_dataset(d.dataset, d.options, seed=self.base.seed)
        trainers = []
        for outcome, cfg in zip(self.outcomes, self.configs):
            trainer = Trainer(self.graph, cfg, dataset=self.dataset, callbacks=[_Relay(self, outcome.index)])
            outcome.batch_size = trainer.batch_size
            outcome.total_steps = trainer.steps_per_epoch * cfg.epochs
            outcome.monitor = trainer.monitor
            trainers.append(trainer)
        self.trainers = trainers

    # ------------------------------------------------------------------ running
    def run(self, parallel: bool = False, listener: Listener | None = None, workers: int = 2) -> list[RunOutcome]:
        """Train every run, one after another or ``workers`` at a time in threads, and return the outcomes.
        In parallel the runs share the processor, so their times are longer than alone."""
        self.listener = listener
        t0 = time.perf_counter()
        self.prepare()
        if parallel and len(self.trainers) > 1:
            import torch

            n = max(1, min(workers, len(self.trainers)))
            threads = torch.get_num_threads()
            # The workers share the cores: more intra-op threads than cores makes every run wait on the others.
            torch.set_num_threads(max(1, threads // n))
            try:
                with ThreadPoolExecutor(max_workers=n) as pool:
                    list(pool.map(self._run_one, range(len(self.trainers))))
            finally:
                torch.set_num_threads(threads)
        else:
            for i in range(len(self.trainers)):
                self._run_one(i)
        self.seconds = time.perf_counter() - t0
        return self.outcomes

    def stop(self) -> None:
        self._stop.set()
        for trainer in list(self.trainers):
            trainer.stop()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _emit(self, kind: str, index: int, payload: Any) -> None:
        listener = getattr(self, "listener", None)
        if listener is not None:
            try:
                listener(kind, index, payload)
            except Exception:  # a subscriber's bug must not end the comparison
                pass

    def _run_one(self, index: int) -> None:
        outcome, trainer = self.outcomes[index], self.trainers[index]
        if self._stop.is_set():
            outcome.status, outcome.reason = "skipped", "the comparison was stopped before this run started"
            self._emit("end", index, outcome)
            return
        outcome.status = "running"
        self._emit("start", index, outcome)
        result = trainer.fit()
        outcome.status, outcome.reason = result.status, result.reason
        outcome.history = list(result.history)
        outcome.steps, outcome.seconds = result.steps, result.seconds
        has_dev = len(trainer.splits["dev"]) > 0
        outcome.best_epoch = result.best_epoch if has_dev and result.best_value is not None else None
        outcome.best_value = result.best_value if has_dev else None
        if result.status != "failed" and result.epochs > 0:
            final: dict[str, float | None] = {}
            for split in ("train", "dev"):
                if len(trainer.splits[split]):
                    m = trainer.evaluate_split(split)
                    final[f"{split}_loss"] = m.get("loss")
                    final[f"{split}_accuracy"] = m.get("accuracy")
                    final[f"{split}_mse"] = m.get("mse")
            outcome.final = final
        self._emit("end", index, outcome)

    # ------------------------------------------------------------------ results
    @property
    def task(self) -> str | None:
        return self.dataset.task if self.dataset is not None else None

    def curves_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = ["train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "dev_mse", "lr", "seconds"]
        w.writerow(["run", "label", "optimizer", "batching", "batch_size", "epoch", "step", *cols])
        for o in self.outcomes:
            for h in o.history:
                w.writerow([o.index + 1, o.label, o.optimizer, o.batching, o.batch_size, h["epoch"], h["step"],
                            *(_cell(h.get(c)) for c in cols)])
        return buf.getvalue()

    def summary_rows(self) -> list[dict[str, Any]]:
        rows = []
        for o in self.outcomes:
            rows.append({"run": o.index + 1, "label": o.label, "optimizer": o.optimizer, "batching": o.batching,
                         "batch_size": o.batch_size, "lr": o.lr, "status": o.status, "epochs": len(o.history),
                         "steps": o.steps, "seconds": round(o.seconds, 3), "best_epoch": o.best_epoch,
                         "monitor": o.monitor, "best_dev": o.best_value,
                         **{k: o.final.get(k) for k in FINAL_COLUMNS}})
        return rows

    def summary_csv(self) -> str:
        rows = self.summary_rows()
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        keys = list(rows[0]) if rows else []
        w.writerow(keys)
        for r in rows:
            w.writerow([_cell(r[k]) for k in keys])
        return buf.getvalue()

    def write(self, out_dir: str | Path) -> list[Path]:
        """curves.csv (one row per run and epoch), summary.csv (one row per run) and curves.png."""
        from .fileio import write_atomic

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = [out / "curves.csv", out / "summary.csv", out / "curves.png"]
        write_atomic(files[0], self.curves_csv())
        write_atomic(files[1], self.summary_csv())
        write_atomic(files[2], curves_png(self.outcomes, classification=self.task == "classification",
                                          title=f"{self.graph.name}: optimizers compared on "
                                                f"{self.dataset.name if self.dataset is not None else '?'}"))
        return files


FINAL_COLUMNS = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "dev_mse")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _relay_class():
    from .training.trainer import Callback

    class Relay(Callback):
        """Forwards one trainer's events to the comparison's listener, tagged with the run's index."""

        def __init__(self, comparison: Comparison, index: int):
            self.comparison, self.index = comparison, index

        def on_step(self, trainer, event):
            self.comparison.outcomes[self.index].steps = event.step
            self.comparison._emit("progress", self.index, (event.step, self.comparison.outcomes[self.index]
                                                           .total_steps))

        def on_epoch_end(self, trainer, event):
            outcome = self.comparison.outcomes[self.index]
            for m in event.epochs:
                outcome.history.append(m.to_json())
                self.comparison._emit("epoch", self.index, m)

    return Relay


_RELAY = None


def _Relay(comparison: Comparison, index: int):
    global _RELAY
    if _RELAY is None:
        _RELAY = _relay_class()
    return _RELAY(comparison, index)


# =========================================================================== pictures (Pillow)
# System fonts with the mathematical signs the formulas use (−, ², ·, ξ); Pillow's own font lacks them,
# so with it the text is written in plain ASCII instead.
_FONT_FILES = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf", "Arial Unicode.ttf",
               "arial.ttf", "Arial.ttf", "segoeui.ttf")
_FONT_FILE: list[str | None] = []  # [found file or None], looked up once
_ASCII = {"−": "-", "²": "^2", "³": "^3", "⁴": "^4", "·": "*", "½": "1/2", "¼": "1/4", "ᵢ": "_i", "ξ": "xi",
          "α": "a", "β": "b", "λ": "l", "ε": "eps", "√": "sqrt", "←": "<-", "…": "..."}


def _font(size: int):
    from PIL import ImageFont

    if not _FONT_FILE:
        found = None
        for name in _FONT_FILES:
            try:
                ImageFont.truetype(name, 12)
                found = name
                break
            except OSError:
                continue
        _FONT_FILE.append(found)
    if _FONT_FILE[0] is not None:
        return ImageFont.truetype(_FONT_FILE[0], size)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def _t(text: str) -> str:
    """Text as the picture's font can draw it."""
    _font(10)
    if _FONT_FILE[0] is not None:
        return text
    return "".join(_ASCII.get(ch, ch if ord(ch) < 128 else "?") for ch in text)


def _hex(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.4g}"


class _Panel:
    """An x/y plot area inside a Pillow image: axes, ticks, grid, and lines in data coordinates."""

    def __init__(self, draw, box, x_range, y_range, title, x_label, y_label, log_y=False):
        self.draw, self.log_y = draw, log_y
        self.left, self.top, self.right, self.bottom = box
        self.x0, self.x1 = x_range
        ylo, yhi = y_range
        if log_y:
            ylo, yhi = math.log10(ylo), math.log10(yhi)
        if yhi - ylo < 1e-12:
            ylo, yhi = ylo - 0.5, yhi + 0.5
        if self.x1 - self.x0 < 1e-12:
            self.x1 = self.x0 + 1
        pad = (yhi - ylo) * 0.05
        self.y0, self.y1 = ylo - pad, yhi + pad
        f, small = _font(16), _font(13)
        ink, grid = (40, 44, 52), (225, 228, 232)
        draw.text(((self.left + self.right) / 2, self.top - 30), _t(title), fill=ink, font=f, anchor="mm")
        x_ticks = nice_ticks(self.x0, self.x1, 6)
        if self.x1 - self.x0 >= 1:  # epochs: whole numbers only
            x_ticks = [t for t in x_ticks if float(t).is_integer()] or [self.x0, self.x1]
        for t in x_ticks:
            px = self.px(t)
            draw.line([(px, self.top), (px, self.bottom)], fill=grid)
            draw.text((px, self.bottom + 6), _t(_fmt(t)), fill=ink, font=small, anchor="mt")
        if log_y:
            every = max(1, math.ceil((self.y1 - self.y0) / 7))  # at most about 8 decades labelled
            ticks = [float(10 ** e) for e in range(math.floor(self.y0), math.ceil(self.y1) + 1) if e % every == 0]
            ticks = [t for t in ticks if self.y0 <= math.log10(t) <= self.y1] or [10 ** ((self.y0 + self.y1) / 2)]
        else:
            ticks = nice_ticks(self.y0, self.y1, 5)
        for t in ticks:
            py = self.py(t)
            draw.line([(self.left, py), (self.right, py)], fill=grid)
            draw.text((self.left - 6, py), _t(_fmt(t)), fill=ink, font=small, anchor="rm")
        draw.rectangle([self.left, self.top, self.right, self.bottom], outline=(120, 126, 136))
        draw.text(((self.left + self.right) / 2, self.bottom + 28), _t(x_label), fill=ink, font=small, anchor="mt")
        draw.text((self.left, self.top - 6), _t(y_label), fill=ink, font=small, anchor="lb")

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def py(self, y: float) -> float:
        """Pixel row of y; values beyond the range sit on the panel's edge (a diverged run's last points)."""
        if self.log_y:
            y = math.log10(max(y, 1e-300))
        y = min(max(y, self.y0), self.y1)
        return self.bottom - (y - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def line(self, xs, ys, color, width=2, dash: int = 0) -> None:
        pts = [(self.px(x), self.py(y)) for x, y in zip(xs, ys)
               if y is not None and math.isfinite(y) and (not self.log_y or y > 0)]
        if not pts:
            return
        if len(pts) == 1:
            x, y = pts[0]
            self.draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
            return
        if not dash:
            self.draw.line(pts, fill=color, width=width, joint="curve")
            return
        for (ax, ay), (bx, by) in zip(pts, pts[1:]):  # dashes along each segment
            length = math.hypot(bx - ax, by - ay)
            k = max(1, int(length // dash))
            for j in range(0, k, 2):
                t0, t1 = j / k, min((j + 1) / k, 1.0)
                self.draw.line([(ax + (bx - ax) * t0, ay + (by - ay) * t0), (ax + (bx - ax) * t1, ay + (by - ay) * t1)],
                               fill=color, width=width)


def curves_png(outcomes: Sequence[RunOutcome], classification: bool = True, title: str = "") -> bytes:
    """The comparison as a PNG: train (solid) and dev (dashed) loss per run, and accuracy for
    classification, with a legend."""
    from PIL import Image, ImageDraw

    panels = 2 if classification else 1
    cols = 2 if panels == 2 else 1
    legend_top = 420
    width, height = 620 * panels + 80, legend_top + 22 * math.ceil(max(len(outcomes), 1) / cols) + 14
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((width / 2, 18), _t(title), fill=(20, 20, 20), font=_font(18), anchor="mm")
    max_epoch = max((len(o.history) for o in outcomes), default=1) or 1

    # The scale follows the runs that worked; a failed (diverged) run is drawn up to the panel's edge.
    scaled = [o for o in outcomes if o.status != "failed"] or list(outcomes)

    def values(key):
        return [h.get(key) for o in scaled for h in o.history if h.get(key) is not None
                and math.isfinite(h.get(key))]

    losses = [v for v in values("train_loss") + values("dev_loss")]
    pos = [v for v in losses if v > 0]
    log_y = bool(pos) and max(pos) / min(pos) > 30
    lo, hi = ((min(pos), max(pos)) if log_y else ((min(losses), max(losses)) if losses else (0.0, 1.0)))
    plots = [("loss", ("train_loss", "dev_loss"), (lo, hi), log_y)]
    if classification:
        accs = values("train_accuracy") + values("dev_accuracy")
        plots.append(("accuracy", ("train_accuracy", "dev_accuracy"),
                      (min(accs), max(accs)) if accs else (0.0, 1.0), False))
    for k, (name, keys, y_range, log) in enumerate(plots):
        left = 90 + k * 620
        panel = _Panel(draw, (left, 70, left + 520, 360), (1, max_epoch), y_range,
                       f"{name}: train (solid), dev (dashed)", "epoch", name, log)
        for o in outcomes:
            color = _hex(o.color)
            epochs = [h["epoch"] for h in o.history]
            panel.line(epochs, [h.get(keys[0]) for h in o.history], color, 2)
            panel.line(epochs, [h.get(keys[1]) for h in o.history], color, 2, dash=7)
    small = _font(14)
    for i, o in enumerate(outcomes):
        x = 90 + (i % cols) * 620
        y = legend_top + (i // cols) * 22
        draw.line([(x, y + 8), (x + 28, y + 8)], fill=_hex(o.color), width=3)
        best = f", best dev at epoch {o.best_epoch}" if o.best_epoch else ""
        status = "" if o.status in ("finished", "early-stopped") else f" [{o.status}]"
        draw.text((x + 36, y + 8), _t(f"{o.label}: {o.seconds:.1f}s{best}{status}"), fill=(30, 30, 30), font=small,
                  anchor="lm")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# Colours of the contour picture: dark blue low, pale yellow high (like the GUI's map).
_CMAP = ((0.0, (22, 27, 66)), (0.25, (39, 76, 130)), (0.5, (53, 134, 141)), (0.75, (142, 192, 118)),
         (1.0, (246, 236, 170)))


def colormap_lut(n: int = 256) -> np.ndarray:
    """(n, 3) uint8: the colour map shared by the contour PNG and the GUI."""
    stops = np.array([s for s, _ in _CMAP])
    rgb = np.array([c for _, c in _CMAP], dtype=np.float64)
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, stops, rgb[:, k]) for k in range(3)], axis=1).astype(np.uint8)


def log_levels(surface: Surface, values: np.ndarray) -> np.ndarray:
    """log10(f − f* + a small floor): what the colour map and the contour lines follow."""
    span = float(np.nanmax(values) - surface.min_value)
    floor = max(span, 1e-12) * 1e-6
    return np.log10(np.maximum(values - surface.min_value, 0.0) + floor)


def surface_png(surface: Surface, paths: dict[str, Trajectory], size: tuple[int, int] = (760, 600)) -> bytes:
    """The surface as a log-coloured map with contour lines, each method's path in its colour and a
    legend: the same picture as the lab's playground, without Qt."""
    from PIL import Image, ImageDraw

    w, h = size
    margin, legend_w = 60, 230
    pw, ph = w - margin - 20, h - 2 * margin
    xs, ys, z = surface.grid(pw, ph)
    lv = log_levels(surface, z)
    lo, hi = float(np.nanmin(lv)), float(np.nanmax(lv))
    t = (lv - lo) / max(hi - lo, 1e-12)
    lut = colormap_lut()
    rgb = lut[np.clip((t * 255).astype(int), 0, 255)]
    band = np.floor(t * 14)  # contour lines where the level band changes
    edge = np.zeros_like(band, dtype=bool)
    edge[:, 1:] |= band[:, 1:] != band[:, :-1]
    edge[1:, :] |= band[1:, :] != band[:-1, :]
    rgb[edge] = (rgb[edge] * 0.55 + 255 * 0.45).astype(np.uint8)
    img = Image.new("RGB", (w + legend_w, h), "white")
    img.paste(Image.fromarray(rgb[::-1].copy(), "RGB"), (margin, margin))
    draw = ImageDraw.Draw(img)
    small = _font(13)
    x0, x1 = surface.x_range
    y0, y1 = surface.y_range

    def to_px(x, y):
        return margin + (x - x0) / (x1 - x0) * (pw - 1), margin + (y1 - y) / (y1 - y0) * (ph - 1)

    draw.text(((margin + margin + pw) / 2, 22), _t(f"{surface.title}: {surface.formula}"), fill=(20, 20, 20),
              font=_font(15), anchor="mm")
    for t_ in nice_ticks(x0, x1, 6):
        px, _ = to_px(t_, y0)
        draw.text((px, margin + ph + 6), _t(_fmt(t_)), fill=(40, 40, 40), font=small, anchor="mt")
    for t_ in nice_ticks(y0, y1, 6):
        _, py = to_px(x0, t_)
        draw.text((margin - 6, py), _t(_fmt(t_)), fill=(40, 40, 40), font=small, anchor="rm")
    draw.rectangle([margin, margin, margin + pw, margin + ph], outline=(90, 90, 90))
    for mx, my in surface.minima:
        px, py = to_px(mx, my)
        draw.line([(px - 6, py), (px + 6, py)], fill="white", width=2)
        draw.line([(px, py - 6), (px, py + 6)], fill="white", width=2)
    draw.rectangle([margin, margin, margin + pw, margin + ph], outline=(90, 90, 90))
    clip = (x0 - (x1 - x0), x1 + (x1 - x0), y0 - (y1 - y0), y1 + (y1 - y0))
    for i, (key, tr) in enumerate(paths.items()):
        color = _hex(METHODS[key].color) if key in METHODS else _hex(PALETTE[i % len(PALETTE)])
        pts = [to_px(x, y) for x, y in tr.points if clip[0] <= x <= clip[1] and clip[2] <= y <= clip[3]]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        if pts:
            px, py = pts[-1]
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=color, outline="white")
        ly = margin + i * 22
        draw.line([(w + 8, ly + 8), (w + 34, ly + 8)], fill=color, width=3)
        label = METHODS[key].label if key in METHODS else key
        end = f"diverged at {tr.diverged}" if tr.diverged else f"f−f* {tr.losses[-1] - surface.min_value:.2e}"
        draw.text((w + 40, ly + 8), _t(f"{label}: {end}"), fill=(30, 30, 30), font=small, anchor="lm")
    sx, sy = to_px(*paths[next(iter(paths))].points[0]) if paths else to_px(*surface.start)
    draw.ellipse([sx - 5, sy - 5, sx + 5, sy + 5], outline="white", width=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# =========================================================================== command line
def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare-optimizers", help="train a graph with several optimizers and batch modes; write curves and a plot",
        description="Train the graph once per optimizer / batching mode, all from the same initial weights and "
                    "data order, and write curves.csv, summary.csv and curves.png to --out.")
    p.add_argument("file", help="the .dcnet graph")
    p.add_argument("--optimizers", required=True, metavar="LIST",
                   help="comma-separated NAME[:BATCHING[:SIZE]][@LR], e.g. sgd,momentum,rmsprop,adam or "
                        "sgd:batch,sgd:stochastic,sgd:mini-batch:32,adam@0.003")
    p.add_argument("--batching", metavar="LIST", default="",
                   help="batch, stochastic and/or mini-batch (comma-separated): each optimizer without its own "
                        "mode runs once per mode (default: the graph's setting)")
    p.add_argument("--batch-size", type=int, help="examples per mini-batch")
    p.add_argument("--lr", type=float, help="one learning rate for every run without its own '@LR'")
    p.add_argument("--epochs", type=int)
    p.add_argument("--dataset", help="a built-in data set (see `deepcanvas datasets`) or a file/folder path")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a data set option")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="settings",
                   help="any training setting for every run, e.g. schedule.name=cosine (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or mps")
    p.add_argument("--parallel", action="store_true", help="train the runs at the same time (two threads)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for curves.csv, summary.csv, curves.png")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser(
        "optimizer-paths", help="the optimizer lab's 2-D surfaces: each method's path as CSV and a picture",
        description="Walk a 2-D loss surface with each method from the same start (torch.optim steps) and "
                    "write paths.csv and paths.png. Surfaces: " + ", ".join(SURFACES) + ".")
    p.add_argument("surface", choices=tuple(SURFACES))
    p.add_argument("--methods", default=",".join(METHODS), metavar="LIST",
                   help=f"comma-separated, from {', '.join(METHODS)} (default: all)")
    p.add_argument("--start", metavar="X,Y", help="start point (default: the surface's)")
    p.add_argument("--steps", type=int, help="steps per method (default: the surface's)")
    p.add_argument("--noise", type=float, help="gradient noise (0: exact gradients; the stochastic surface has 2)")
    p.add_argument("--examples", type=int, default=64, help="examples N of a stochastic surface")
    p.add_argument("--batch-size", type=int, default=8, help="mini-batch size on a stochastic surface")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="METHOD.PARAM=VALUE", dest="settings",
                   help="a hyperparameter, e.g. adam.lr=0.05 or momentum.momentum=0.95 (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(func=cmd_paths)


def _fail(command: str, message: str, code: int = EXIT_USAGE) -> int:
    import sys

    print(f"deepcanvas {command}: {message}", file=sys.stderr)
    return code


def cmd_compare(args) -> int:
    import sys

    from .fileio import GraphFileError, load_graph
    from .inference import GraphError
    from .training.cli import _pairs
    from .training.config import ConfigError, TrainingConfig
    from .training.data import DataError
    from .training.modes import SetupError

    fail = lambda message, code=EXIT_USAGE: _fail("compare-optimizers", message, code)  # noqa: E731
    try:
        graph = load_graph(args.file)
    except GraphFileError as exc:
        return fail(str(exc))
    try:
        over = _pairs(args.settings, "--set")
        for flag, path in (("epochs", "epochs"), ("dataset", "data.dataset"), ("seed", "seed"),
                           ("device", "device"), ("batch_size", "batch_size")):
            if getattr(args, flag) is not None:
                over[path] = getattr(args, flag)
        options = _pairs(args.option, "--option")
        if options or args.dataset is not None:
            over["data.options"] = options
        base = TrainingConfig.from_graph(graph).with_overrides(over)
        batching = [b.strip().lower() for b in args.batching.split(",") if b.strip()]
        runs = parse_runs(args.optimizers, batching, args.batch_size, args.lr)
        comparison = Comparison(graph, runs, base)
    except (ConfigError, ValueError) as exc:
        return fail(f"{args.file}: {exc}")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail(f"{out}: cannot create the folder ({exc.strerror})")

    def listener(kind, index, payload):
        if args.quiet:
            return
        o = comparison.outcomes[index]
        if kind == "start":
            print(f"[{index + 1}/{len(comparison.outcomes)}] {o.label}: {o.total_steps:,} steps", file=sys.stderr)
        elif kind == "end":
            fin = o.final
            acc = f", dev accuracy {fin['dev_accuracy']:.1%}" if fin.get("dev_accuracy") is not None else ""
            dev = f", dev loss {fin['dev_loss']:.4f}" if fin.get("dev_loss") is not None else ""
            print(f"[{index + 1}/{len(comparison.outcomes)}] {o.label}: {o.status} in {o.seconds:.1f}s{dev}{acc}"
                  + (f" ({o.reason})" if o.status == "failed" else ""), file=sys.stderr)

    try:
        comparison.run(parallel=args.parallel, listener=listener)
    except GraphError as exc:
        return fail(f"{args.file}: {exc}", EXIT_FAILED)
    except (ConfigError, DataError, SetupError) as exc:
        return fail(f"{args.file}: {exc}")
    except KeyboardInterrupt:
        comparison.stop()
        return 130
    files = comparison.write(out)
    if not args.quiet:
        print(format_summary(comparison))
        print(f"wrote {', '.join(str(f) for f in files)}")
    return EXIT_FAILED if all(o.status == "failed" for o in comparison.outcomes) else EXIT_OK


def format_summary(comparison: Comparison) -> str:
    rows = [("run", "status", "train loss", "dev loss", "dev acc", "seconds", "best epoch")]
    for o in comparison.outcomes:
        f = o.final
        rows.append((o.label, o.status, _num(f.get("train_loss")), _num(f.get("dev_loss")),
                     f"{f['dev_accuracy']:.1%}" if f.get("dev_accuracy") is not None else "-", f"{o.seconds:.1f}",
                     str(o.best_epoch) if o.best_epoch else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _num(v) -> str:
    return f"{v:.4f}" if v is not None else "-"


def parse_method_settings(items: Sequence[str]) -> dict[str, dict[str, float]]:
    """``METHOD.PARAM=VALUE`` items (``--set adam.lr=0.05``) as {method: {param: value}}; ValueError names a
    bad one."""
    out: dict[str, dict[str, float]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        method, dot, param = key.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"--set {item!r}: expected METHOD.PARAM=VALUE, e.g. adam.lr=0.05")
        if method not in METHODS:
            raise ValueError(f"--set {item!r}: unknown method {method!r} (known: {', '.join(METHODS)})")
        if param not in METHODS[method].params:
            raise ValueError(f"--set {item!r}: {METHODS[method].label} has no {param!r} "
                             f"(it has {', '.join(METHODS[method].params)})")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--set {item!r}: {value!r} is not a number") from None
        out.setdefault(method, {})[param] = number
    return out


def cmd_paths(args) -> int:
    from .fileio import write_atomic
    from .training.config import ConfigError

    fail = lambda message: _fail("optimizer-paths", message)  # noqa: E731
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        return fail(f"--methods: unknown {', '.join(unknown) or 'nothing given'} (known: {', '.join(METHODS)})")
    start = None
    if args.start:
        try:
            start = tuple(float(v) for v in args.start.split(","))
            assert len(start) == 2 and all(math.isfinite(v) for v in start)
        except (ValueError, AssertionError):
            return fail(f"--start {args.start!r}: expected two numbers X,Y")
    if args.steps is not None and args.steps < 1:
        return fail("--steps must be at least 1")
    try:
        values = parse_method_settings(args.settings)
        paths = trajectories(args.surface, methods, start, args.steps, args.noise, args.examples, args.batch_size,
                             args.seed, values)
    except ConfigError as exc:
        return fail("; ".join(exc.problems))
    except ValueError as exc:
        return fail(str(exc))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "paths.csv", trajectories_csv(paths))
    write_atomic(out / "paths.png", surface_png(SURFACES[args.surface], paths))
    surface = SURFACES[args.surface]
    for key, t in paths.items():
        end = f"diverged at step {t.diverged}" if t.diverged else \
            f"({t.final[0]:.4f}, {t.final[1]:.4f}), f − f* = {t.losses[-1] - surface.min_value:.3e}"
        print(f"{METHODS[key].label:<14} {t.steps} steps -> {end}")
    print(f"wrote {out / 'paths.csv'}, {out / 'paths.png'}")
    return EXIT_OK
