"""A classification loss's ``ignore_index`` (a tagger's padding) counts in no metric either: evaluation
accuracy and error, the confusion matrix, the per-class report, sequence accuracy, the running step
accuracy, error analysis and the per-example results leave those targets out, as the loss does. The
bidirectional GRU tagger template ignores its padding (tag 0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import engine
from engine.compiler import build
from engine.inspect import example_results
from engine.training import Trainer, TrainingConfig
from engine.training.metrics import counted, error_analysis, evaluate, score_classes
from engine.training.modes import select_mode

TAGGER = Path(__file__).resolve().parent.parent / "templates" / "bigru_tagger.dcnet"

# A tiny (N=2, C=3, T=4) example; class 0 is padding. The scores say `GUESS`.
LABELS = torch.tensor([[1, 2, 0, 0],
                       [2, 2, 1, 0]])
GUESS = torch.tensor([[1, 1, 0, 2],
                      [2, 0, 1, 1]])
# Positions that count (label != 0): (0,0) 1->1 right, (0,1) 2->1, (1,0) 2->2 right, (1,1) 2->0, (1,2) 1->1 right:
# 3 right of 5. Counting the padding too would give 4 of 8 (the pad at (0,2) is "right").
CONFUSION = [[0, 0, 0],  # no true padding: padding positions are left out
             [0, 2, 0],
             [1, 1, 1]]


def _scores() -> torch.Tensor:
    scores = torch.zeros(2, 3, 4)
    scores.scatter_(1, GUESS[:, None], 2.0)  # (N, C, T) with the guess 2 above the others
    return scores


def _predict(ignore_index: int):
    return lambda xb, yb: (F.cross_entropy(xb, yb, ignore_index=ignore_index), xb)


def test_counted_and_score_classes_by_hand():
    assert counted(LABELS, 0).tolist() == [[True, True, False, False], [True, True, True, False]]
    assert counted(np.array([3, -100, 0]), -100).tolist() == [True, False, True]  # NumPy arrays too
    assert score_classes(_scores(), LABELS, 0).tolist() == [3, 5]
    assert score_classes(_scores(), LABELS).tolist() == [4, 8]  # nothing ignored: every position counts


def test_evaluate_leaves_the_ignored_class_out_of_accuracy_confusion_and_per_class_report():
    out = evaluate(_predict(0), _scores(), LABELS, "classification", 3, batch_size=1, confusion=True,
                   ignore_index=0)
    assert out["accuracy"] == pytest.approx(3 / 5) and out["error"] == pytest.approx(2 / 5)
    assert out["examples"] == 2 and out["ignored"] == 3 and out["ignore_index"] == 0
    assert out["loss"] == pytest.approx(np.mean([F.cross_entropy(_scores()[i:i + 1], LABELS[i:i + 1],
                                                                 ignore_index=0).item() for i in range(2)]))
    assert out["confusion_matrix"] == CONFUSION
    rows = out["per_class"]
    assert rows[0] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert rows[1] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert rows[2] == pytest.approx({"precision": 1.0, "recall": 1 / 3, "f1": 0.5, "support": 3})
    assert sum(r["support"] for r in rows) == 5
    # class 0 is predicted once (at (1,1)), a mistake in class 1's recall; the macro averages are over the
    # real classes alone
    assert out["macro"]["precision"] == pytest.approx((2 / 3 + 1) / 2)

    every = evaluate(_predict(-100), _scores(), LABELS, "classification", 3, batch_size=1, confusion=True)
    assert every["accuracy"] == pytest.approx(4 / 8) and "ignored" not in every and "ignore_index" not in every
    assert np.asarray(every["confusion_matrix"])[0].tolist() == [1, 1, 1]

    # PyTorch's own -100 (no ignore_index set) is left out too, instead of breaking the confusion matrix
    minus = torch.where(LABELS == 0, -100, LABELS)
    out = evaluate(_predict(-100), _scores(), minus, "classification", 3, batch_size=2, confusion=True)
    assert out["accuracy"] == pytest.approx(3 / 5) and out["ignored"] == 3 and out["confusion_matrix"] == CONFUSION


def test_error_analysis_leaves_the_ignored_positions_out():
    def mistakes(ignore_index):
        found = error_analysis(lambda xb, yb: (None, xb), _scores(), LABELS, np.array([7, 8]), ["<pad>", "a", "b"],
                               limit=100, ignore_index=ignore_index)
        return sorted((m.index, m.position) for m in found)

    assert mistakes(0) == [(7, 1), (8, 1)]
    assert mistakes(-100) == [(7, 1), (7, 3), (8, 1), (8, 3)]  # padding guessed as a tag is a "mistake"


def test_the_mode_takes_the_ignore_index_of_the_loss_that_reads_the_target():
    graph = engine.load_graph(TAGGER)
    loss = next(n for n in graph.nodes.values() if n.type == "CrossEntropyLoss")
    assert loss.params["ignore_index"] == 0  # the template's padding neither trains nor counts
    mode = select_mode(build(graph, seed=0))
    assert mode.ignore_index == 0
    assert mode.score_step(_scores(), LABELS).tolist() == [3, 5]
    loss.params["ignore_index"] = -100
    assert select_mode(build(graph, seed=0)).ignore_index == -100


def _tagger_trainer(**overrides) -> Trainer:
    graph = engine.load_graph(TAGGER)
    cfg = TrainingConfig.from_graph(graph).with_overrides(
        {"epochs": 1, "data.options": {"samples": 200}, **overrides})
    trainer = Trainer(graph, cfg)
    assert trainer.fit().status == "finished"
    return trainer


@torch.no_grad()
def _by_hand(trainer: Trainer, split: str) -> tuple[np.ndarray, ...]:
    """True tags and the model's answers on the words (not the padding) of a split; which positions are
    words; and all the tags and answers, (sentences, positions)."""
    part = trainer.splits[split]
    trainer.model.eval()
    _, scores = trainer.mode.eval_step(trainer, part.x, part.y)
    trainer.model.train()
    y, guess = part.y.numpy(), scores.argmax(1).numpy()
    words = y != 0
    return y[words], guess[words], words, y, guess


def test_a_short_tagger_run_reports_the_accuracy_of_the_words():
    trainer = _tagger_trainer()
    report = trainer.report()
    for split in ("train", "dev", "test"):
        truth, guess, words, y, all_guess = _by_hand(trainer, split)
        got = report[split]
        assert got["accuracy"] == pytest.approx((truth == guess).mean(), abs=1e-12)
        assert got["ignored"] == int((~words).sum()) and got["ignore_index"] == 0
        matrix = np.asarray(got["confusion_matrix"])
        np.testing.assert_array_equal(matrix, np.bincount(truth * 18 + guess, minlength=18 * 18).reshape(18, 18))
        assert matrix[0].sum() == 0 and got["per_class"][0]["support"] == 0
        assert sum(r["support"] for r in got["per_class"]) == words.sum()
        whole = ((y == all_guess) | ~words).all(1).mean()  # every word of the sentence right
        assert got["metrics"]["sequence_accuracy"] == pytest.approx(whole)
    truth, guess, *_ = _by_hand(trainer, "test")
    assert report["test_accuracy"] == pytest.approx((truth == guess).mean(), abs=1e-12)
    assert report["doctor"]["dev_error"] == pytest.approx(report["dev"]["error"])

    # the per-word results (Results' gallery, a confusion-matrix cell) list the words only
    results = example_results(trainer, "dev")
    truth, guess, words, *_ = _by_hand(trainer, "dev")
    assert len(results.true) == results.total == words.sum() and (results.true != 0).all()
    np.testing.assert_array_equal(results.true, truth)
    np.testing.assert_array_equal(results.predicted, guess)
    dev = trainer.splits["dev"]
    length = dev.y.shape[1]
    flat = np.flatnonzero(words.reshape(-1))  # (sentence, word) of each word, sentence after sentence
    np.testing.assert_array_equal(results.indices, np.asarray(dev.indices)[flat // length])
    np.testing.assert_array_equal(results.positions, flat % length)
    np.testing.assert_array_equal(np.bincount(results.true * 18 + results.predicted, minlength=18 * 18),
                                  np.asarray(report["dev"]["confusion_matrix"]).reshape(-1))


def test_the_running_accuracy_and_the_mistakes_leave_the_padding_out():
    # SGD at 1e-30 leaves the weights as they were, so the running accuracy of the one epoch is the
    # accuracy of the untrained model on the training set's words
    trainer = _tagger_trainer(**{"optimizer.name": "sgd", "optimizer.lr": 1e-30})
    truth, guess, *_ = _by_hand(trainer, "train")
    assert trainer.history[0].train_accuracy == pytest.approx((truth == guess).mean(), abs=1e-12)
    truth, guess, *_ = _by_hand(trainer, "dev")
    mistakes = trainer.error_analysis("dev", limit=10 ** 6)
    assert len(mistakes) == (truth != guess).sum() and all(m["true"] != 0 for m in mistakes)


def test_the_ignored_class_is_out_of_the_macro_averages_even_when_predicted():
    from engine.training.metrics import per_class_report

    m = np.array([[0, 0, 0, 0],     # class 0: ignored, no target counted
                  [2, 1, 0, 0],     # two real targets of class 1 predicted as the ignored class
                  [1, 0, 2, 0],
                  [0, 0, 3, 0]])
    r = per_class_report(m, ignore_index=0)
    assert r["macro"]["recall"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert per_class_report(m)["macro"]["recall"] == pytest.approx((0 + 1 / 3 + 2 / 3 + 0) / 4)
