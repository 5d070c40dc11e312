"""Evaluation: loss, accuracy, precision / recall / F1 per class and macro-averaged, the confusion
matrix, MSE and MAE for regression, and error analysis (the misclassified examples, most confident
mistakes first).

Sums are accumulated on the device and read once per evaluation, so evaluating never stalls a GPU on
every batch. ``predict`` is any callable ``x_batch, y_batch -> (loss, prediction)`` (the training mode
provides it); predictions are class scores (N, C, ...) for classification and values for regression.

A class id the loss ignores (its ``ignore_index``: a tagger's padding) is ignored by every metric too:
such targets are left out of the accuracy, the confusion matrix, the per-class report and the mistakes,
so the figures are those of the real targets. Negative class ids (PyTorch's -100) never count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .data import CLASSIFICATION

Predict = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

NO_IGNORE = -100  # a loss's ignore_index when no class is ignored (PyTorch's default)


def counted(y, ignore_index: int = NO_IGNORE):
    """Which class ids count (a torch tensor or a NumPy array of the same shape): those that are not
    negative and not ``ignore_index``."""
    keep = y >= 0
    return keep & (y != ignore_index) if ignore_index >= 0 else keep


def score_classes(scores: torch.Tensor, labels: torch.Tensor, ignore_index: int = NO_IGNORE) -> torch.Tensor:
    """Right answers and targets counted for class scores (N, C, ...) against class ids (N, ...), as one
    int64 tensor [right, counted] on the scores' device (not read, so no sync)."""
    keep = counted(labels, ignore_index)
    right = ((scores.argmax(1) == labels) & keep).sum()
    return torch.stack([right, keep.sum()])


def batches(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


@torch.no_grad()
def evaluate(predict: Predict, x: torch.Tensor, y: torch.Tensor, task: str, num_classes: int | None = None,
             batch_size: int = 1024, device: torch.device | None = None, confusion: bool = False,
             to_device: Callable | None = None, ignore_index: int = NO_IGNORE) -> dict:
    """Loss and the task's metrics over (x, y). ``confusion`` adds the confusion matrix and the
    per-class report (classification). ``to_device`` moves a host batch to the device when the data
    set does not live there. ``device`` is kept for callers; sums stay where the batches are.
    ``ignore_index`` (classification): targets of this class id (and negative ones) are left out of
    the accuracy, the confusion matrix and the per-class report, as the loss leaves them out; the
    result then says how many were left out (``ignored``) and, for a class id, which (``ignore_index``)."""
    n = len(x)
    if n == 0:
        return {"examples": 0}
    classify = task == CLASSIFICATION
    loss_sum = hits = sq = ab = conf = kept = None
    elements = 0

    def add(total, value):
        return value if total is None else total + value

    for a, b in batches(n, batch_size):
        xb, yb = x[a:b], y[a:b]
        if to_device is not None:
            xb, yb = to_device(xb, yb)
        loss, pred = predict(xb, yb)
        loss_sum = add(loss_sum, loss.detach().double() * (b - a))
        elements += yb.numel()
        if classify:
            guess = pred.argmax(1)
            keep = counted(yb, ignore_index)
            hits = add(hits, ((guess == yb) & keep).sum())
            kept = add(kept, keep.sum())
            if confusion:  # targets left out go to one more cell, dropped below (no sync to select them)
                cells = num_classes * num_classes
                cell = torch.where(keep, yb * num_classes + guess, cells)
                conf = add(conf, torch.bincount(cell.reshape(-1), minlength=cells + 1)[:cells])
        else:
            diff = pred.double() - yb.double()
            sq = add(sq, (diff * diff).sum())
            ab = add(ab, diff.abs().sum())
    # One read from the device for the whole evaluation.
    sums = torch.stack([loss_sum, hits.double(), kept.double()] if classify else [loss_sum, sq, ab]).tolist()
    out = {"examples": n, "loss": sums[0] / n}
    if classify:
        scored = int(sums[2])
        acc = sums[1] / max(scored, 1)
        out.update(accuracy=acc, error=1.0 - acc)
        if scored < elements:
            out["ignored"] = elements - scored
        if ignore_index >= 0:
            out["ignore_index"] = ignore_index
        if conf is not None:
            out.update(per_class_report(conf.reshape(num_classes, num_classes).cpu().numpy(), ignore_index))
    else:
        out.update(mse=sums[1] / max(elements, 1), mae=sums[2] / max(elements, 1))
        out["error"] = out["mse"]
    return out


def per_class_report(matrix: np.ndarray, ignore_index: int = NO_IGNORE) -> dict:
    """Precision, recall and F1 for each class (rows: true class, columns: predicted) and their macro
    averages over the classes that occur (in the truth or the predictions), but the class ``ignore_index``
    (a loss's: a tagger's padding, in no target counted; its predictions are mistakes all the same)."""
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(0).astype(np.float64)
    actual = matrix.sum(1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (actual > 0) | (predicted > 0)
    if 0 <= ignore_index < len(present):
        present[ignore_index] = False
    rows = [{"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
             "support": int(actual[i])} for i in range(len(tp))]
    macro = {k: float(v[present].mean()) if present.any() else 0.0
             for k, v in (("precision", precision), ("recall", recall), ("f1", f1))}
    return {"per_class": rows, "macro": macro, "confusion_matrix": matrix.astype(int).tolist()}


@dataclass
class Mistake:
    index: int  # position in the whole data set
    true: int
    predicted: int
    confidence: float  # the model's probability for its (wrong) answer
    true_label: str
    predicted_label: str
    position: int | None = None  # targets with a class per position: where in the example (flat index)

    def to_json(self) -> dict:
        out = dict(self.__dict__)
        if self.position is None:
            del out["position"]
        return out


@torch.no_grad()
def class_answers(predict: Predict, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
                  to_device: Callable | None = None) -> tuple[np.ndarray, ...] | None:
    """Each example's true class, the model's answer, its probability and the cross-entropy of the
    scores, as flat arrays; for targets with a class per position (scores (N, C, *positions), targets
    (N, *positions): a tagger's words) each position's, example after example. None when the scores do
    not match the targets that way. Every target is here, those a loss ignores too: callers leave them
    out with ``counted(truth, ignore_index)``."""
    answers, confs, losses = [], [], []
    for a, b in batches(len(x), batch_size):
        xb, yb = x[a:b], y[a:b]
        if to_device is not None:
            xb, yb = to_device(xb, yb)
        _, scores = predict(xb, yb)
        scores = scores.float()
        if scores.ndim != yb.ndim + 1 or scores.shape[0] != yb.shape[0] or scores.shape[2:] != yb.shape[1:]:
            return None
        losses.append(torch.nn.functional.cross_entropy(scores, yb, reduction="none").reshape(-1))
        conf, answer = torch.softmax(scores, dim=1).max(1)
        answers.append(answer.reshape(-1))
        confs.append(conf.reshape(-1))
    return (y.cpu().numpy().reshape(-1), *(torch.cat(v).cpu().numpy() for v in (answers, confs, losses)))


def error_analysis(predict: Predict, x: torch.Tensor, y: torch.Tensor, indices: np.ndarray,
                   classes: list[str] | None, limit: int = 20, batch_size: int = 1024,
                   to_device: Callable | None = None, ignore_index: int = NO_IGNORE) -> list[Mistake]:
    """The misclassified examples, most confident mistakes first; for targets with a class per position
    (a tagger's words), the misclassified positions. Targets the loss ignores (class ``ignore_index``: a
    tagger's padding; any negative class id) are left out."""
    got = class_answers(predict, x, y, batch_size, to_device) if y.ndim and len(x) else None
    if got is None:
        return []
    truth, guess, conf, _ = got
    per = len(truth) // len(x)  # positions per example (1: a class per example)
    wrong = np.flatnonzero((guess != truth) & counted(truth, ignore_index))
    wrong = wrong[np.argsort(-conf[wrong], kind="stable")][:limit]

    def name(c):
        return classes[c] if classes and c < len(classes) else str(c)

    return [Mistake(int(indices[i // per]), int(truth[i]), int(guess[i]), float(conf[i]), name(int(truth[i])),
                    name(int(guess[i])), int(i % per) if y.ndim > 1 else None) for i in wrong]
