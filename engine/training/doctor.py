"""The bias/variance doctor: what to do next, from train, dev (and test) error, the way Andrew Ng's
"basic recipe for machine learning" teaches it.

Given a human-level error (a proxy for the Bayes error, the best any classifier can do):

- avoidable bias = train error - human-level error: the network does not even fit the training set;
- variance = dev error - train error: what it learned does not carry over to new examples;
- (with a test error) dev overfitting = test error - dev error: the dev set was tuned to too hard.

The larger of bias and variance is the problem to work on first, with the recipe's remedies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BIAS_REMEDIES = [
    "train a bigger network (more layers or more units per layer)",
    "train longer (more epochs)",
    "use a better optimizer (Adam, momentum) or tune the learning rate (try the learning-rate finder)",
    "try another architecture better suited to the data (e.g. convolutions for images)",
    "reduce regularization (weight decay, dropout) if you added it",
]
VARIANCE_REMEDIES = [
    "get more training data (or augment the data you have)",
    "add regularization: L2 weight decay, dropout, early stopping",
    "try another architecture (fewer parameters, or one that builds in what you know about the data)",
]
DEV_OVERFIT_REMEDIES = ["get a bigger dev set: the network was tuned to this dev set too closely"]
# A train error no better than always answering the most frequent class: the network learned nothing, and
# a bigger network would not help; the usual causes come first.
NOTHING_LEARNED_REMEDIES = [
    "check the learning rate: one too high makes the loss diverge or jump about (look at the loss curve), one "
    "too low leaves it where it started (try the learning-rate finder)",
    "check the data: do the inputs and labels belong together, are the inputs on a sensible scale (try "
    "data.standardize)?",
    "train longer (more epochs)",
]


@dataclass
class Diagnosis:
    human_error: float
    train_error: float
    dev_error: float
    avoidable_bias: float
    variance: float
    problem: str  # "bias", "variance" or "none"
    remedies: list[str]
    message: str
    test_error: float | None = None
    dev_overfitting: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _pct(v: float) -> str:
    return f"{v * 100:.1f}%"


def chance_error(confusion_matrix) -> float | None:
    """The error of always answering the most frequent class, from a confusion matrix (rows: true class)."""
    rows = [sum(r) for r in confusion_matrix or []]
    total = sum(rows)
    return 1.0 - max(rows) / total if total else None


def diagnose(train_error: float, dev_error: float, human_error: float | None = None,
             test_error: float | None = None, tolerance: float = 0.01,
             chance_error: float | None = None) -> Diagnosis:
    """Name the dominant problem. ``tolerance`` is the gap (as a fraction, 0.01 = one percentage point)
    below which neither bias nor variance is called a problem. ``chance_error``: the train error of
    always answering the most frequent class (:func:`chance_error`); a train error no better than that
    is named as such (the network learned nothing), with its own first remedies."""
    notes = []
    if human_error is None:
        human_error = 0.0
        notes.append("no human-level error given: 0% assumed (enter one, e.g. what a person scores, for a "
                     "fairer avoidable bias)")
    bias = train_error - human_error
    variance = dev_error - train_error
    if bias < 0:
        notes.append(f"train error {_pct(train_error)} is below the human-level error {_pct(human_error)}: "
                     "the network is past human level, so the estimate of avoidable bias is unreliable")
    if variance < 0:
        notes.append(f"variance {_pct(variance)} is negative: dev error {_pct(dev_error)} is below train error "
                     f"{_pct(train_error)}. The dev set came out easier than the training set (a small dev set "
                     "varies by chance), or regularization or augmentation acts in training only (dropout, "
                     "random crops and flips make the training examples harder); variance is not a problem here")
    if max(bias, variance) < tolerance:
        problem, remedies = "none", []
        message = (f"avoidable bias {_pct(bias)} and variance {_pct(variance)} are both small: the network "
                   "does about as well as you asked; to do better, lower the target (human-level error) or get "
                   "harder data")
    elif bias >= variance and chance_error is not None and train_error >= chance_error - tolerance:
        problem = "bias"
        remedies = NOTHING_LEARNED_REMEDIES + [r for r in BIAS_REMEDIES if "longer" not in r]
        message = (f"nothing learned: train error {_pct(train_error)} is no better than always answering the "
                   f"most frequent class ({_pct(chance_error)}). The network has not started to fit the "
                   "training set: look at the learning rate and the data before its size.")
    elif bias >= variance:
        problem, remedies = "bias", list(BIAS_REMEDIES)
        than = (f"larger than the variance ({_pct(variance)})" if variance >= 0 else
                "while the dev error is below the train error (no variance)")
        message = (f"high bias: train error {_pct(train_error)} is {_pct(bias)} above human level "
                   f"({_pct(human_error)}), {than}. The network underfits: make it fit the training set first.")
    else:
        problem, remedies = "variance", list(VARIANCE_REMEDIES)
        message = (f"high variance: dev error {_pct(dev_error)} is {_pct(variance)} above train error "
                   f"({_pct(train_error)}), larger than the avoidable bias ({_pct(bias)}). The network "
                   "overfits: make what it learns carry over to new examples.")
    overfit = None
    if test_error is not None:
        overfit = test_error - dev_error
        if overfit >= max(tolerance, 0.5 * max(bias, variance, 0.0)):
            notes.append(f"test error {_pct(test_error)} is {_pct(overfit)} above dev error: "
                         + DEV_OVERFIT_REMEDIES[0])
    return Diagnosis(human_error, train_error, dev_error, bias, variance, problem, remedies, message,
                     test_error, overfit, notes)


def format_diagnosis(d: Diagnosis) -> str:
    lines = [f"human-level error {_pct(d.human_error)}, train error {_pct(d.train_error)}, dev error "
             f"{_pct(d.dev_error)}" + (f", test error {_pct(d.test_error)}" if d.test_error is not None else ""),
             f"avoidable bias {_pct(d.avoidable_bias)}, variance {_pct(d.variance)}", d.message]
    lines += [f"  - {r}" for r in d.remedies]
    lines += [f"note: {n}" for n in d.notes]
    return "\n".join(lines)
