"""Built-in data sets, all made or read offline: real handwritten digits (shipped with scikit-learn), 2-D
toy sets for MLPs, regression curves, and sequence tasks (sine-wave forecasting, characters of a
public-domain play, a synthetic date-format translation task, part-of-speech tagging on sentences of a
small grammar). ``load_dataset`` also reads the user's
own files (see ``engine.training.files``).

Every generator is seeded: the same name, options and seed always give the same arrays.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .data import CLASSIFICATION, REGRESSION, DataError, Dataset


@dataclass(frozen=True)
class Builtin:
    name: str
    doc: str
    make: Callable[..., Dataset]
    options: dict[str, Any]  # option name -> default (also gives its type)
    option_docs: dict[str, str]


BUILTINS: dict[str, Builtin] = {}


def _builtin(name: str, doc: str, **options: tuple[Any, str]):
    def register(fn):
        BUILTINS[name] = Builtin(name, doc, fn, {k: v[0] for k, v in options.items()},
                                 {k: v[1] for k, v in options.items()})
        return fn
    return register


def _coerce_option(ds: str, key: str, value: Any, default: Any) -> Any:
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise DataError(f"data set '{ds}': option '{key}' expects {kind.__name__}, got {value!r}") from None


# --------------------------------------------------------------------------- images
@_builtin("digits", "1,797 real 8x8 handwritten digits (scikit-learn's copy of the UCI set), 10 classes",
          size=(8, "side of the images: 8 as recorded, or 28 / 32 (resized) for MNIST-style networks"))
def digits(size: int = 8, seed: int = 0) -> Dataset:
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = (raw.images.astype(np.float32) / 16.0)[:, None]  # (n, 1, 8, 8) in [0, 1]
    if size != 8:
        if size < 8:
            raise DataError(f"data set 'digits': option 'size' must be 8 or more, got {size}")
        from .data import _resize_images
        x = _resize_images(x, (size, size))
    return Dataset("digits", x, raw.target.astype(np.int64), CLASSIFICATION, [str(d) for d in range(10)],
                   kind="image", description=f"handwritten digits, {size}x{size} grey levels in [0, 1]")


# --------------------------------------------------------------------------- 2-D toy sets
def _points(name, x, y, classes, doc):
    return Dataset(name, x.astype(np.float32), y.astype(np.int64), CLASSIFICATION, classes, kind="points",
                   description=doc)


@_builtin("moons", "two interleaving half circles, 2 classes",
          samples=(1000, "number of points"), noise=(0.1, "standard deviation of Gaussian noise"))
def moons(samples: int = 1000, noise: float = 0.1, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n_out = samples // 2
    n_in = samples - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], 1)
    inner = np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], 1)
    x = np.concatenate([outer, inner]) + rng.normal(0, noise, (samples, 2))
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _points("moons", x, y, ["upper", "lower"], f"two moons, noise {noise}")


@_builtin("circles", "a small circle inside a large one, 2 classes",
          samples=(1000, "number of points"), noise=(0.05, "standard deviation of Gaussian noise"),
          factor=(0.5, "radius of the inner circle relative to the outer"))
def circles(samples: int = 1000, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n_out = samples // 2
    n_in = samples - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], 1)
    inner = factor * np.stack([np.cos(t_in), np.sin(t_in)], 1)
    x = np.concatenate([outer, inner]) + rng.normal(0, noise, (samples, 2))
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _points("circles", x, y, ["outer", "inner"], f"two circles, noise {noise}")


@_builtin("spirals", "interleaved spiral arms (CS231n's toy set), one class per arm",
          samples=(1500, "number of points"), classes=(3, "number of arms"),
          noise=(0.2, "standard deviation of the angle noise"))
def spirals(samples: int = 1500, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Dataset:
    if classes < 2:
        raise DataError(f"data set 'spirals': option 'classes' must be 2 or more, got {classes}")
    rng = np.random.default_rng(seed)
    per = samples // classes
    xs, ys = [], []
    for k in range(classes):
        r = np.linspace(0.0, 1.0, per)
        # CS231n's arms: angle from 4k to 4(k+1) radians (scaled so any number of arms share the turn).
        t = np.linspace(k * 4.0, (k + 1) * 4.0, per) * 3.0 / classes + rng.normal(0, noise, per)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(per, k))
    return _points("spirals", np.concatenate(xs), np.concatenate(ys), [f"arm {k}" for k in range(classes)],
                   f"{classes} spiral arms, noise {noise}")


@_builtin("xor", "points in four quadrants; the class is whether x and y have the same sign",
          samples=(1000, "number of points"), noise=(0.1, "standard deviation of Gaussian noise"))
def xor(samples: int = 1000, noise: float = 0.1, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    clean = rng.uniform(-1, 1, (samples, 2))
    y = (clean[:, 0] * clean[:, 1] > 0).astype(np.int64)
    return _points("xor", clean + rng.normal(0, noise, clean.shape), y, ["different sign", "same sign"],
                   f"XOR, noise {noise}")


# --------------------------------------------------------------------------- regression
CURVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sine": np.sin,
    "cubic": lambda x: x ** 3 / 9 - x,
    "abs": np.abs,
    "step": lambda x: np.where(x > 0, 1.0, -1.0),
}


@_builtin("curve", "noisy samples of a 1-D function for regression (sine, cubic, abs, step)",
          samples=(500, "number of points"), curve=("sine", "sine, cubic, abs or step"),
          noise=(0.1, "standard deviation of Gaussian noise on y"))
def curve(samples: int = 500, curve: str = "sine", noise: float = 0.1, seed: int = 0) -> Dataset:
    if curve not in CURVES:
        raise DataError(f"data set 'curve': option 'curve' must be one of {', '.join(CURVES)}, got {curve!r}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (samples, 1))
    y = CURVES[curve](x) + rng.normal(0, noise, x.shape)
    return Dataset("curve", x.astype(np.float32), y.astype(np.float32), REGRESSION, kind="points",
                   description=f"y = {curve}(x) + noise {noise}")


# --------------------------------------------------------------------------- sequences
@_builtin("sine-wave", "forecast the next value of a noisy sine wave from the previous ones",
          samples=(2000, "number of windows"), window=(40, "values the model sees"),
          noise=(0.05, "standard deviation of noise on each value"))
def sine_wave(samples: int = 2000, window: int = 40, noise: float = 0.05, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    t = np.arange(window + 1) * 0.1
    freq = rng.uniform(0.5, 2.0, (samples, 1))
    phase = rng.uniform(0, 2 * np.pi, (samples, 1))
    amp = rng.uniform(0.5, 1.5, (samples, 1))
    series = amp * np.sin(2 * np.pi * freq * t / 2 + phase) + rng.normal(0, noise, (samples, window + 1))
    x = series[:, :window, None]  # (n, T, 1)
    y = series[:, window:]  # (n, 1)
    return Dataset("sine-wave", x.astype(np.float32), y.astype(np.float32), REGRESSION, kind="sequence",
                   description=f"{window} values of a sine wave; predict the next")


CORPUS = "coriolanus.txt"


def corpus_text() -> str:
    """The bundled public-domain text: the opening of Shakespeare's Coriolanus (about 32 KB)."""
    return resources.files(__package__).joinpath("data").joinpath(CORPUS).read_text(encoding="utf-8")


@_builtin("shakespeare", "character-level text: the opening of Shakespeare's Coriolanus (public domain)",
          window=(32, "characters the model sees"), stride=(1, "characters between window starts"),
          target=("next", "next: the character after the window; sequence: the next character at every position"))
def shakespeare(window: int = 32, stride: int = 1, target: str = "next", seed: int = 0) -> Dataset:
    if target not in ("next", "sequence"):
        raise DataError(f"data set 'shakespeare': option 'target' must be 'next' or 'sequence', got {target!r}")
    if window < 1 or stride < 1:
        raise DataError("data set 'shakespeare': options 'window' and 'stride' must be at least 1")
    text = corpus_text()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.array([index[c] for c in text], dtype=np.int64)
    starts = np.arange(0, len(ids) - window - 1, stride)
    x = ids[starts[:, None] + np.arange(window)]
    y = ids[starts + window] if target == "next" else ids[starts[:, None] + np.arange(1, window + 1)]
    return Dataset("shakespeare", x, y, CLASSIFICATION, vocab, kind="tokens",
                   description=f"{window}-character windows; predict the {target} character",
                   meta={"vocab": vocab})


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_DATE_FORMATS: list[Callable[[_dt.date], str]] = [
    lambda d: f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{d.day:02d} {_MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{_MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{_DAYS[d.weekday()]}, {_MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{_DAYS[d.weekday()][:3]} {d.day} {_MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    lambda d: f"{d.day} {_MONTHS[d.month - 1].lower()} {d.year}",
    lambda d: f"{_MONTHS[d.month - 1].upper()} {d.day} {d.year}",
    lambda d: f"{d.year}/{d.month}/{d.day}",
]
DATE_IN_LEN, DATE_OUT_LEN = 30, 10
PAD = "\0"


@_builtin("dates", "translate human-written dates ('Tuesday, May 3, 1987') to ISO form ('1987-05-03'): seq2seq",
          samples=(10000, "number of dates"))
def dates(samples: int = 10000, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    first = _dt.date(1950, 1, 1).toordinal()
    span = _dt.date(2049, 12, 31).toordinal() - first
    days = first + rng.integers(0, span + 1, samples)
    fmt = rng.integers(0, len(_DATE_FORMATS), samples)
    human = [_DATE_FORMATS[f](_dt.date.fromordinal(int(d))) for f, d in zip(fmt, days)]
    iso = [_dt.date.fromordinal(int(d)).isoformat() for d in days]
    in_vocab = [PAD] + sorted({c for s in human for c in s} | set("0123456789 ,./"))
    out_vocab = list("0123456789-")
    in_index = {c: i for i, c in enumerate(in_vocab)}
    out_index = {c: i for i, c in enumerate(out_vocab)}
    x = np.zeros((samples, DATE_IN_LEN), dtype=np.int64)  # padded with id 0
    for i, s in enumerate(human):
        x[i, :len(s)] = [in_index[c] for c in s]
    y = np.array([[out_index[c] for c in s] for s in iso], dtype=np.int64)
    # Teacher forcing: a decoder reads the target shifted right behind a start token (one id past the
    # output characters), so at each position it sees the characters before the one it scores.
    start = len(out_vocab)
    shifted = np.concatenate([np.full((samples, 1), start, dtype=np.int64), y[:, :-1]], axis=1)
    return Dataset("dates", x, y, CLASSIFICATION, out_vocab, kind="tokens",
                   description="human-written dates -> YYYY-MM-DD, one class per output character",
                   meta={"input_vocab": in_vocab, "output_vocab": out_vocab, "examples": human[:5],
                         "start_token": start},
                   inputs={"decoder_input": shifted})


# Part-of-speech tagging on sentences from a small English-like grammar: the 17 Universal POS tags, a
# 5,000-word vocabulary split among them, and words that belong to two tags ("run" as a noun or a verb),
# so that a word's tag often depends on its neighbours on both sides.
TAGS = ["<pad>", "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
        "PUNCT", "SCONJ", "SYM", "VERB", "X"]
TAG_VOCAB = 5000
# Words of one tag only, per tag; then pairs of tags sharing words, with how many and how often a word of
# the first tag is drawn from the shared ones.
_TAG_WORDS = {"NOUN": 1500, "VERB": 900, "ADJ": 600, "PROPN": 500, "ADV": 200, "NUM": 100, "X": 40,
              "INTJ": 20, "SYM": 15, "DET": 12, "ADP": 30, "AUX": 16, "CCONJ": 6, "PART": 6, "PRON": 25,
              "SCONJ": 12, "PUNCT": 8}
_SHARED = [("NOUN", "VERB", 500, 0.30), ("ADJ", "NOUN", 200, 0.25), ("ADV", "ADJ", 120, 0.30),
           ("ADP", "SCONJ", 8, 0.40), ("ADP", "ADV", 20, 0.20), ("PROPN", "NOUN", 100, 0.15)]


def _tag_lexicon() -> dict[str, list[np.ndarray]]:
    """For each tag, its own word ids and the shared sets it draws from (id 0 is padding)."""
    next_id = 1
    own: dict[str, np.ndarray] = {}
    for tag, n in _TAG_WORDS.items():
        own[tag] = np.arange(next_id, next_id + n)
        next_id += n
    shared = []
    for a, b, n, _ in _SHARED:
        shared.append(np.arange(next_id, next_id + n))
        next_id += n
    assert next_id <= TAG_VOCAB
    return {"own": own, "shared": shared}


def _tag_sentence(rng: np.random.Generator) -> list[str]:
    """The tags of one sentence: clauses of a noun phrase and a verb phrase, joined by conjunctions."""
    def noun_phrase():
        r = rng.random()
        if r < 0.2:
            return ["PRON"]
        if r < 0.35:
            return ["PROPN"]
        if r < 0.45:
            return ["NUM", "NOUN"]
        adjectives = int(rng.choice(3, p=[0.6, 0.3, 0.1]))
        adverb = ["ADV"] * int(adjectives > 0 and rng.random() < 0.15)  # "a very old house"
        return ["DET"] + adverb + ["ADJ"] * adjectives + ["NOUN"]

    def verb_phrase():
        tags = ["AUX"] * int(rng.random() < 0.3) + ["ADV"] * int(rng.random() < 0.2) + ["VERB"]
        if rng.random() < 0.6:
            tags += noun_phrase()
        if rng.random() < 0.4:
            tags += ["ADP"] + noun_phrase()
        if rng.random() < 0.15:
            tags += ["PART", "VERB"]
        return tags

    tags = ["INTJ", "PUNCT"] if rng.random() < 0.05 else []
    tags += noun_phrase() + verb_phrase()
    while rng.random() < 0.55:  # more clauses: "..., and ...", "... because ..."
        tags += ["PUNCT", "CCONJ"][int(rng.random() < 0.7):] if rng.random() < 0.6 else ["SCONJ"]
        tags += noun_phrase() + verb_phrase()
    if rng.random() < 0.05:
        tags.insert(int(rng.integers(0, len(tags) + 1)), ["SYM", "X"][int(rng.random() < 0.5)])
    return tags + ["PUNCT"]


def _zipf_cdf(n: int) -> np.ndarray:
    """Cumulative word frequencies of a pool of n words: the k-th most frequent has weight 1/k (Zipf)."""
    weights = 1.0 / np.arange(1, n + 1)
    return np.cumsum(weights) / weights.sum()


@_builtin("tagging", "part-of-speech tagging: sentences of word ids from an English-like grammar, one of 17 tags "
          "per word (plus 0 for padding); many words have two tags, told apart by their neighbours",
          samples=(10000, "number of sentences"),
          length=(40, "words per sentence, padded with id 0 (longer sentences are cut)"))
def tagging(samples: int = 10000, length: int = 40, seed: int = 0) -> Dataset:
    if length < 4:
        raise DataError(f"data set 'tagging': option 'length' must be at least 4, got {length}")
    rng = np.random.default_rng(seed)
    lex = _tag_lexicon()
    index = {t: i for i, t in enumerate(TAGS)}
    # Per tag: its own words, and the shared sets it may draw from with their probabilities.
    draws: dict[str, list[tuple[np.ndarray, float]]] = {t: [] for t in _TAG_WORDS}
    for (a, b, _, p), words in zip(_SHARED, lex["shared"]):
        draws[a].append((words, p))
        draws[b].append((words, p / 2))
    cdfs = {len(w): _zipf_cdf(len(w)) for w in list(lex["own"].values()) + lex["shared"]}
    x = np.zeros((samples, length), dtype=np.int64)
    y = np.zeros((samples, length), dtype=np.int64)
    for i in range(samples):
        tags = _tag_sentence(rng)[:length]
        r_pool, r_word = rng.random(len(tags)), rng.random(len(tags))
        for j, tag in enumerate(tags):
            pool, r = lex["own"][tag], r_pool[j]
            for words, p in draws[tag]:
                if r < p:
                    pool = words
                    break
                r -= p
            x[i, j] = pool[min(int(np.searchsorted(cdfs[len(pool)], r_word[j])), len(pool) - 1)]
            y[i, j] = index[tag]
    return Dataset("tagging", x, y, CLASSIFICATION, list(TAGS), kind="tokens",
                   description=f"sentences of {length} word ids (0 = padding) -> a part-of-speech tag per word",
                   meta={"vocab_size": TAG_VOCAB, "tags": list(TAGS)})


# --------------------------------------------------------------------------- entry point
def builtin_names() -> list[str]:
    return list(BUILTINS)


def load_dataset(name: str, options: dict | None = None, seed: int = 0) -> Dataset:
    """A built-in data set by name, or the user's file or folder at that path. Raises ``DataError``
    naming the data set (or file) and what is wrong."""
    options = dict(options or {})
    spec = BUILTINS.get(name)
    if spec is not None:
        clean = {}
        for key, value in options.items():
            if key not in spec.options:
                known = ", ".join(spec.options) or "none"
                raise DataError(f"data set '{name}' has no option '{key}' (its options: {known})")
            clean[key] = _coerce_option(name, key, value, spec.options[key])
        for key in ("samples",):
            if key in clean and clean[key] < 10:
                raise DataError(f"data set '{name}': option '{key}' must be at least 10, got {clean[key]}")
        return spec.make(seed=seed, **clean)
    path = Path(name).expanduser()
    if path.exists():
        from .files import load_path
        return load_path(path, options)
    looks_like_path = any(ch in name for ch in "/\\.") or name.startswith("~")
    if looks_like_path:
        raise DataError(f"{name}: no such file or folder")
    raise DataError(f"unknown data set '{name}': the built-in ones are {', '.join(BUILTINS)}; "
                    "or give the path of a CSV, .npy/.npz, MNIST IDX, CIFAR-10 or image folder")
