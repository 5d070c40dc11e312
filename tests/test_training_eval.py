"""Evaluation metrics against hand computation, error analysis, and the bias/variance doctor."""

import numpy as np
import pytest
import torch

from engine.training import diagnose, format_diagnosis
from engine.training.metrics import error_analysis, evaluate, per_class_report


def test_precision_recall_f1_by_hand():
    # rows: true class, columns: predicted
    m = np.array([[5, 1, 0],
                  [2, 3, 1],
                  [0, 0, 0]])  # class 2 never occurs but is predicted once, so the macro average counts it
    r = per_class_report(m)
    p0, r0 = 5 / 7, 5 / 6
    p1, r1 = 3 / 4, 3 / 6
    assert r["per_class"][0] == pytest.approx({"precision": p0, "recall": r0, "f1": 2 * p0 * r0 / (p0 + r0),
                                               "support": 6})
    assert r["per_class"][1]["f1"] == pytest.approx(2 * p1 * r1 / (p1 + r1))
    assert r["per_class"][2] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert r["macro"]["precision"] == pytest.approx((p0 + p1 + 0.0) / 3)  # class 2 is predicted once: counted
    assert r["confusion_matrix"] == m.tolist()


def test_evaluate_classification_and_regression():
    scores = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 1, 0])

    def predict(xb, yb):
        return torch.nn.functional.cross_entropy(xb, yb), xb

    out = evaluate(predict, scores, labels, "classification", 2, batch_size=2, confusion=True)
    assert out["accuracy"] == pytest.approx(0.8) and out["error"] == pytest.approx(0.2)
    assert out["loss"] == pytest.approx(torch.nn.functional.cross_entropy(scores, labels).item(), rel=1e-6)
    assert out["confusion_matrix"] == [[2, 0], [1, 2]]
    pred = torch.tensor([[1.0], [2.0], [4.0]])
    truth = torch.tensor([[1.5], [2.0], [1.0]])
    reg = evaluate(lambda xb, yb: (((xb - yb) ** 2).mean(), xb), pred, truth, "regression", batch_size=2)
    assert reg["mse"] == pytest.approx((0.25 + 0 + 9) / 3) and reg["mae"] == pytest.approx(3.5 / 3)


def test_error_analysis_lists_the_most_confident_mistakes_first():
    scores = torch.tensor([[0.0, 5.0], [0.0, 1.0], [4.0, 0.0], [0.0, 3.0]])
    labels = torch.tensor([0, 0, 0, 1])
    mistakes = error_analysis(lambda xb, yb: (None, xb), scores, labels, np.array([10, 11, 12, 13]), ["cat", "dog"])
    assert [m.index for m in mistakes] == [10, 11]
    assert mistakes[0].true_label == "cat" and mistakes[0].predicted_label == "dog"
    assert mistakes[0].confidence > mistakes[1].confidence
    assert "position" not in mistakes[0].to_json()


def test_error_analysis_per_position_names_the_example_and_the_position():
    """A class per position (scores (N, classes, T), targets (N, T)): the mistaken positions, most
    confident first, each with its example's index and its place; ignored positions (-100) left out."""
    scores = torch.zeros(2, 2, 3)
    scores[0, 1, 2] = 4.0  # example 0, position 2: says class 1, very sure
    scores[1, 1, 0] = 1.0  # example 1, position 0: says class 1, less sure
    scores[1, 1, 1] = 9.0  # example 1, position 1: class 1, ignored
    labels = torch.tensor([[0, 0, 0], [0, -100, 0]])
    mistakes = error_analysis(lambda xb, yb: (None, xb), scores, labels, np.array([20, 21]), ["a", "b"])
    assert [(m.index, m.position, m.true_label, m.predicted_label) for m in mistakes] == \
        [(20, 2, "a", "b"), (21, 0, "a", "b")]
    assert mistakes[0].to_json()["position"] == 2


def test_doctor_names_the_dominant_problem_and_the_recipe():
    bias = diagnose(train_error=0.15, dev_error=0.16, human_error=0.01)
    assert bias.problem == "bias" and bias.avoidable_bias == pytest.approx(0.14) and bias.variance == pytest.approx(0.01)
    assert any("bigger network" in r for r in bias.remedies) and any("train longer" in r for r in bias.remedies)
    variance = diagnose(train_error=0.01, dev_error=0.11, human_error=0.005)
    assert variance.problem == "variance" and variance.variance == pytest.approx(0.10)
    assert any("more training data" in r for r in variance.remedies)
    assert any("regularization" in r for r in variance.remedies)
    fine = diagnose(0.012, 0.015, human_error=0.01)
    assert fine.problem == "none" and not fine.remedies
    assumed = diagnose(0.05, 0.06)
    assert assumed.human_error == 0 and "0% assumed" in assumed.notes[0]
    overfit_dev = diagnose(0.02, 0.03, human_error=0.01, test_error=0.09)
    assert any("bigger dev set" in n for n in overfit_dev.notes)
    text = format_diagnosis(variance)
    assert "avoidable bias 0.5%, variance 10.0%" in text and "high variance" in text


def test_doctor_says_when_a_network_learned_nothing():
    """A diverged run (loss huge, accuracy at chance): a bigger network is not the first remedy."""
    from engine.training.doctor import BIAS_REMEDIES, NOTHING_LEARNED_REMEDIES, chance_error

    assert chance_error([[50, 0, 0], [30, 0, 0], [20, 0, 0]]) == pytest.approx(0.5)
    assert chance_error([]) is None
    d = diagnose(train_error=0.89, dev_error=0.90, human_error=0.01, chance_error=0.9)
    assert d.problem == "bias" and d.message.startswith("nothing learned: train error 89.0%")
    assert d.remedies[:3] == NOTHING_LEARNED_REMEDIES and "learning rate" in d.remedies[0]
    assert BIAS_REMEDIES[0] in d.remedies[3:]  # (the bigger network comes after)
    assert len(d.remedies) == len(set(d.remedies))
    learning = diagnose(train_error=0.30, dev_error=0.31, human_error=0.01, chance_error=0.9)
    assert learning.message.startswith("high bias") and learning.remedies == BIAS_REMEDIES
