"""Data for training: the ``Dataset`` container, seeded (stratified) train/dev/test splits, and fitting a
data set to a compiled graph's Input and Target nodes.

A data set is a pair of NumPy arrays, ``x`` shaped (n, *sample) and ``y`` shaped (n,) for class ids or
(n, *target) for values, plus what the numbers mean (class names, vocabulary). ``fit_to_model`` maps
it onto the graph: the Input node's shape decides whether images are resized (the 8x8 digits become
the 32x32 LeNet-5 expects), flattened (an MLP over pixels) or refused with a message that names the
Input node and both shapes. Everything here works offline; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CLASSIFICATION, REGRESSION = "classification", "regression"
SPLITS = ("train", "dev", "test")


class DataError(ValueError):
    """A data set that cannot be loaded or does not fit the network; the message says which and why."""


@dataclass
class Dataset:
    name: str
    x: np.ndarray  # (n, *sample)
    y: np.ndarray  # (n,) class ids, or (n, *target) values or per-position class ids
    task: str  # CLASSIFICATION or REGRESSION
    classes: list[str] | None = None  # names of the class ids (classification)
    kind: str = "tabular"  # image, points, tabular, sequence, tokens: how a GUI shows a sample
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. the vocabulary of a text task
    # Further inputs per example, by name, for graphs with several Input nodes (a seq2seq decoder's
    # shifted targets): an Input labelled like one of them gets it, the other Inputs take ``x`` and the
    # rest in order (see ``engine.training.modes.SupervisedMode``).
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    # Some rows of a data set (see :meth:`rows`): their positions in it, ascending; None: the whole set.
    index: np.ndarray | None = None

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise DataError(f"data set '{self.name}': {len(self.x)} inputs but {len(self.y)} targets")
        if len(self.x) == 0 and self.index is None:
            raise DataError(f"data set '{self.name}' is empty")
        for key, value in self.inputs.items():
            if len(value) != len(self.x):
                raise DataError(f"data set '{self.name}': input '{key}' has {len(value)} examples, x has "
                                f"{len(self.x)}")

    def __len__(self) -> int:
        return len(self.x)

    def rows(self, positions) -> "Dataset":
        """Only the examples at ``positions`` in this data set (in any order, repeated or not; none is
        allowed), found again by those positions with :meth:`example`: what a run's report carries for
        the app's galleries, instead of the whole set (CIFAR-10's 737 MB with every run)."""
        if self.index is not None:
            raise ValueError(f"data set '{self.name}' holds some rows already: take rows of the whole set")
        index = np.unique(np.asarray(positions, dtype=np.int64).reshape(-1))
        if len(index) and (index[0] < 0 or index[-1] >= len(self.x)):
            raise IndexError(f"data set '{self.name}' has {len(self.x)} examples: no example {int(index[-1])}")
        return Dataset(self.name, self.x[index], self.y[index], self.task, self.classes, self.kind,
                       self.description, dict(self.meta), {k: v[index] for k, v in self.inputs.items()}, index)

    def example(self, position: int) -> np.ndarray:
        """The input of the example at ``position`` in the whole data set (one of the rows kept, for rows)."""
        return self.x[self._row(position)]

    def target(self, position: int) -> np.ndarray:
        """The target of the example at ``position`` in the whole data set (as :meth:`example`)."""
        return self.y[self._row(position)]

    def _row(self, position: int) -> int:
        if self.index is None:
            return position
        at = int(np.searchsorted(self.index, position))
        if at >= len(self.index) or self.index[at] != position:
            raise IndexError(f"example {position} of data set '{self.name}' is not among the rows kept")
        return at

    def same_as(self, other: "Dataset") -> bool:
        """Whether ``other`` holds the same examples (names, targets, rows, inputs and what ``meta`` says
        of them, value for value)."""
        if other is self:
            return True
        if (other.name, other.task, other.kind, other.classes, set(other.inputs)) != \
                (self.name, self.task, self.kind, self.classes, set(self.inputs)):
            return False
        if (self.index is None) != (other.index is None) or (
                self.index is not None and not np.array_equal(self.index, other.index)):
            return False
        try:
            if self.meta != other.meta:  # (a vocabulary)
                return False
        except (ValueError, TypeError):  # (an array in it: not compared, so not known to be the same)
            return False
        pairs = [(self.x, other.x), (self.y, other.y)] + [(v, other.inputs[k]) for k, v in self.inputs.items()]
        return all(a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b) for a, b in pairs)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int | None:
        if self.task != CLASSIFICATION:
            return None
        return len(self.classes) if self.classes else int(self.y.max()) + 1

    def summary(self) -> str:
        what = f"{self.num_classes} classes" if self.task == CLASSIFICATION else "regression"
        return f"{self.name}: {len(self):,} examples of shape {tuple(self.sample_shape)}, {what}"


# --------------------------------------------------------------------------- splitting
def default_ratios(n: int) -> tuple[float, float, float]:
    """Dev and test sets big enough to trust, no bigger: 60/20/20 up to 10,000 examples; past that each
    of dev and test holds about 2,000 examples (at least 1%), so 98/1/1 past a million."""
    hold = min(0.2, max(0.01, 2000 / max(n, 1)))
    return (1 - 2 * hold, hold, hold)


@dataclass
class Split:
    """Indices into a data set for train, dev and test, with how they were made (for the run record)."""

    train: np.ndarray
    dev: np.ndarray
    test: np.ndarray
    ratios: tuple[float, float, float]
    seed: int
    stratified: bool

    def indices(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def record(self) -> dict:
        digest = hashlib.sha256()
        for part in (self.train, self.dev, self.test):
            digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
            digest.update(b"|")
        return {"ratios": list(self.ratios), "seed": self.seed, "stratified": self.stratified,
                "sizes": {s: int(len(self.indices(s))) for s in SPLITS}, "indices_sha256": digest.hexdigest()}


def _counts(n: int, ratios) -> tuple[int, int, int]:
    n_dev = int(round(n * ratios[1]))
    n_test = int(round(n * ratios[2]))
    n_train = n - n_dev - n_test
    return n_train, n_dev, n_test


def split_dataset(ds: Dataset, ratios=None, seed: int = 0, stratify: bool = True) -> Split:
    """Seeded split; stratified (each class split in the same proportions) for class-id targets."""
    n = len(ds)
    ratios = tuple(float(r) for r in (ratios or default_ratios(n)))
    rng = np.random.default_rng(seed)
    stratified = bool(stratify and ds.task == CLASSIFICATION and ds.y.ndim == 1)
    if stratified:
        parts = ([], [], [])
        # Allocate by largest remainder across classes so totals match the unstratified counts.
        for cls in np.unique(ds.y):
            idx = np.flatnonzero(ds.y == cls)
            rng.shuffle(idx)
            n_train, n_dev, _ = _counts(len(idx), ratios)
            parts[0].append(idx[:n_train])
            parts[1].append(idx[n_train:n_train + n_dev])
            parts[2].append(idx[n_train + n_dev:])
        train, dev, test = (np.sort(np.concatenate(p)) for p in parts)
    else:
        perm = rng.permutation(n)
        n_train, n_dev, _ = _counts(n, ratios)
        train, dev, test = (np.sort(p) for p in (perm[:n_train], perm[n_train:n_train + n_dev],
                                                 perm[n_train + n_dev:]))
    if len(train) == 0:
        raise DataError(f"data set '{ds.name}' has {n} examples: too few for a training split of {ratios[0]:.0%}")
    return Split(train, dev, test, ratios, seed, stratified)


# --------------------------------------------------------------------------- fitting to a model
@dataclass
class Fitted:
    """Arrays shaped for the model: ``x`` matches the Input node, ``y`` the Target node."""

    x: np.ndarray
    y: np.ndarray
    notes: list[str]  # what was changed to fit (resized 8x8 -> 32x32), for the run record


def _resize_images(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (n, C, H, W) images in chunks (antialiased when shrinking)."""
    import torch
    import torch.nn.functional as F

    out = np.empty((x.shape[0], x.shape[1], *size), dtype=np.float32)
    shrink = size[0] < x.shape[2] or size[1] < x.shape[3]
    for start in range(0, len(x), 4096):
        chunk = torch.from_numpy(np.ascontiguousarray(x[start:start + 4096], dtype=np.float32))
        out[start:start + 4096] = F.interpolate(chunk, size=size, mode="bilinear", align_corners=False,
                                                antialias=shrink).numpy()
    return out


def _fit_channels(x: np.ndarray, want: int) -> np.ndarray | None:
    have = x.shape[1]
    if have == want:
        return x
    if have == 1 and want == 3:
        return np.repeat(x, 3, axis=1)
    if have == 3 and want == 1:  # ITU-R BT.601 luma
        w = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1)
        return (x.astype(np.float32) * w).sum(axis=1, keepdims=True)
    return None


def fit_inputs(ds: Dataset, want: tuple[int, ...], input_label: str, want_dtype: str) -> tuple[np.ndarray, list[str]]:
    """Shape the data set's inputs as the Input node wants them, when that is meaningful."""
    x, have, notes = ds.x, ds.sample_shape, []
    if want_dtype == "int64":
        if not np.issubdtype(x.dtype, np.integer):
            raise DataError(f"Input '{input_label}' expects int64 token or class ids, but data set '{ds.name}' "
                            f"gives {x.dtype} values; set the Input's dtype to float32")
    elif np.issubdtype(x.dtype, np.integer) and ds.kind == "tokens":
        raise DataError(f"data set '{ds.name}' gives token ids but Input '{input_label}' expects float32; "
                        "set the Input's dtype to int64 and follow it with an Embedding")
    if have == want:
        return x, notes
    shape_msg = f"data set '{ds.name}' gives samples shaped {have} but Input '{input_label}' expects {want}"
    image = ds.kind == "image" and len(have) in (2, 3)
    if image and len(have) == 2:
        x, have = x[:, None], (1, *have)
    if image and len(want) == 3:
        fitted = _fit_channels(x, want[0])
        if fitted is None:
            raise DataError(f"{shape_msg}: {have[0]} colour channels cannot become {want[0]}")
        if fitted.shape[1] != have[0]:
            notes.append(f"channels {have[0]} -> {want[0]}")
        x = fitted
        if tuple(x.shape[2:]) != tuple(want[1:]):
            notes.append(f"resized {have[1]}x{have[2]} -> {want[1]}x{want[2]}")
            x = _resize_images(x, tuple(want[1:]))
        return x, notes
    if len(want) == 1 and math.prod(have) == want[0]:
        notes.append(f"flattened {have} -> {want}")
        return x.reshape(len(x), -1), notes
    if image and len(want) == 1:
        # An MLP over pixels: resize to a square of the right size, then flatten.
        side = math.isqrt(want[0] // have[0]) if want[0] % have[0] == 0 else 0
        if side and side * side * have[0] == want[0]:
            notes.append(f"resized {have[1]}x{have[2]} -> {side}x{side}, flattened to {want}")
            return _resize_images(x, (side, side)).reshape(len(x), -1), notes
    if len(have) == len(want) - 1 and want[-1] == 1 and tuple(want[:-1]) == have:
        notes.append(f"added a feature axis {have} -> {want}")
        return x[..., None], notes
    raise DataError(f"{shape_msg}; change the Input's shape to {list(have)} or pick another data set")


def fit_targets(ds: Dataset, want: tuple[int, ...], target_label: str, want_dtype: str,
                classes_out: int | None) -> np.ndarray:
    """Shape the targets as the Target node wants them; check class ids against the Output's scores."""
    y = ds.y
    if ds.task == CLASSIFICATION:
        if want_dtype != "int64":
            raise DataError(f"data set '{ds.name}' has class labels but Target '{target_label}' expects float32 "
                            "values; set the Target's dtype to int64")
        if tuple(y.shape[1:]) != want:
            raise DataError(f"data set '{ds.name}' gives targets shaped {tuple(y.shape[1:])} but Target "
                            f"'{target_label}' expects {want}")
        if classes_out is not None and ds.num_classes > classes_out:
            raise DataError(f"data set '{ds.name}' has {ds.num_classes} classes but the network's output gives "
                            f"{classes_out} class scores; make its last layer produce {ds.num_classes}")
        return y.astype(np.int64, copy=False)
    if want_dtype != "float32":
        raise DataError(f"data set '{ds.name}' has real-valued targets but Target '{target_label}' expects int64 "
                        "class ids; set the Target's dtype to float32")
    have = tuple(y.shape[1:])
    if have != want:
        if math.prod(have) == math.prod(want):
            y = y.reshape(len(y), *want)
        else:
            raise DataError(f"data set '{ds.name}' gives targets shaped {have} but Target '{target_label}' "
                            f"expects {want}")
    return y.astype(np.float32, copy=False)
