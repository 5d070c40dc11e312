"""The optimizer lab's engine (engine.optlab): surfaces, trajectories against the textbook update rules
computed by hand with hand-derived gradients, the comparison runner, its files and its CLI."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
import torch

import engine
import graphs
from engine import optlab
from engine.cli import main
from engine.training import ConfigError, Dataset, TrainingConfig


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- surfaces
GRADIENTS = {  # worked out by hand, independent of autograd
    "quadratic": lambda x, y: np.array([0.02 * x, 2 * y]),
    "stochastic": lambda x, y: np.array([0.02 * x, 2 * y]),
    "rosenbrock": lambda x, y: np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)]),
    "beale": lambda x, y: np.array([
        2 * (1.5 - x + x * y) * (y - 1) + 2 * (2.25 - x + x * y ** 2) * (y ** 2 - 1)
        + 2 * (2.625 - x + x * y ** 3) * (y ** 3 - 1),
        2 * (1.5 - x + x * y) * x + 2 * (2.25 - x + x * y ** 2) * 2 * x * y + 2 * (2.625 - x + x * y ** 3) * 3 * x * y ** 2]),
    "saddle": lambda x, y: np.array([2 * x, -2 * y + y ** 3]),
    "himmelblau": lambda x, y: np.array([4 * x * (x * x + y - 11) + 2 * (x + y * y - 7),
                                         2 * (x * x + y - 11) + 4 * y * (x + y * y - 7)]),
}


def test_every_surface_has_a_hand_gradient_and_its_minima_are_minima():
    assert set(GRADIENTS) == set(optlab.SURFACES)
    for key, s in optlab.SURFACES.items():
        for point in [s.start, (0.3, -0.7), (1.1, 2.2)]:  # autograd through the torch function = the hand gradient
            w = torch.tensor(point, dtype=torch.float64, requires_grad=True)
            s(w[0], w[1]).backward()
            np.testing.assert_allclose(w.grad.numpy(), GRADIENTS[key](*point), rtol=1e-10, atol=1e-10)
        for m in s.minima:
            assert s(*m) == pytest.approx(s.min_value, abs=1e-6), (key, m)
            assert np.abs(GRADIENTS[key](*m)).max() < 1e-4, (key, m)
        xs, ys, z = s.grid(40, 30)
        assert z.shape == (30, 40) and np.all(np.isfinite(z)) and z.min() >= s.min_value - 1e-9
        assert s.x_range[0] < s.start[0] < s.x_range[1] and s.y_range[0] < s.start[1] < s.y_range[1]
        levels = optlab.log_levels(s, z)
        assert np.all(np.isfinite(levels))


# --------------------------------------------------------------------------- textbook rules
def textbook(method: str, grad_fn, start, steps: int, v: dict, batches=None, xi=None):
    """The update rules as written in the textbook (and shown by the lab), in float64 numpy."""
    lr = v["lr"]
    w = np.array(start, dtype=np.float64)
    vel = np.zeros(2)
    G = np.zeros(2)
    S = np.zeros(2)
    m = np.zeros(2)
    s2 = np.zeros(2)
    points = [w.copy()]
    for t in range(1, steps + 1):
        g = grad_fn(*w)
        if xi is not None:
            g = g + xi[batches[t - 1]].mean(0)  # the mini-batch's mean of f_i = f + xi_i . w
        if method in ("batch-gd", "sgd", "mini-batch-gd"):
            w = w - lr * g
        elif method == "momentum":
            vel = v["momentum"] * vel + g
            w = w - lr * vel
        elif method == "nesterov":
            vel = v["momentum"] * vel + g
            w = w - lr * (g + v["momentum"] * vel)
        elif method == "adagrad":
            G = G + g * g
            w = w - lr * g / (np.sqrt(G) + v["eps"])
        elif method == "rmsprop":
            S = v["beta"] * S + (1 - v["beta"]) * g * g
            w = w - lr * g / (np.sqrt(S) + v["eps"])
        elif method in ("adam", "adamw"):
            if method == "adamw":
                w = w - lr * v["weight_decay"] * w
            b1, b2 = v["beta1"], v["beta2"]
            m = b1 * m + (1 - b1) * g
            s2 = b2 * s2 + (1 - b2) * g * g
            m_hat = m / (1 - b1 ** t)
            s_hat = s2 / (1 - b2 ** t)
            w = w - lr * m_hat / (np.sqrt(s_hat) + v["eps"])
        else:  # pragma: no cover
            raise AssertionError(method)
        points.append(w.copy())
    return np.array(points)


NON_DEFAULT = {"momentum": 0.8, "beta": 0.95, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1}
CASES = [("rosenbrock", 60), ("beale", 60), ("stochastic", 60)]


@pytest.mark.parametrize("method", list(optlab.METHODS))
@pytest.mark.parametrize("surface,steps", CASES)
def test_trajectory_matches_the_textbook_rule(method, surface, steps):
    s = optlab.SURFACES[surface]
    m = optlab.METHODS[method]
    values = {k: NON_DEFAULT[k] for k in m.params if k in NON_DEFAULT}
    problem = optlab.Problem(s, examples=24, seed=5)
    walker = optlab.Walker(problem, m, values, mini_batch=5)
    assert walker.step(steps) == steps
    path = walker.trajectory
    used = path.values
    assert all(used[k] == values[k] for k in values)
    xi = problem.xi.numpy() if problem.stochastic else None
    want = textbook(method, GRADIENTS[surface], s.start, steps, used, path.batches, xi)
    np.testing.assert_allclose(np.array(path.points), want, rtol=0, atol=1e-6)
    assert path.losses[-1] == pytest.approx(s(*path.points[-1]))
    # the step is torch.optim's, built by the trainer's make_optimizer
    expected = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "nesterov": torch.optim.SGD,
                "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
                "adamw": torch.optim.AdamW}[m.optimizer]
    assert type(walker.optimizer) is expected


def test_rule_texts_name_the_quantities_the_tests_check():
    checks = {"momentum": ["v ← β·v + g"], "nesterov": ["g + β·v"], "adagrad": ["G ← G + g²", "√G + ε"],
              "rmsprop": ["S ← β·S + (1 − β)·g²"], "adam": ["m̂ = m / (1 − β₁ᵗ)", "v̂ = v / (1 − β₂ᵗ)"],
              "adamw": ["w ← w − α·λ·w"], "batch-gd": ["all N"], "sgd": ["one example"],
              "mini-batch-gd": ["mini-batch"]}
    for key, parts in checks.items():
        for part in parts:
            assert part in optlab.METHODS[key].rule, (key, part)


def test_batching_on_the_stochastic_surface_uses_the_same_data_order():
    problem = optlab.Problem("stochastic", examples=12, seed=1)
    paths = {k: optlab.Walker(problem, k, mini_batch=5) for k in ("batch-gd", "sgd", "mini-batch-gd", "adam")}
    for w in paths.values():
        w.step(12)
    b = {k: w.trajectory.batches for k, w in paths.items()}
    assert [len(x) for x in b["batch-gd"]] == [12] * 12
    assert [len(x) for x in b["sgd"]] == [1] * 12
    assert [len(x) for x in b["mini-batch-gd"][:3]] == [5, 5, 2]  # an epoch of 12 in batches of 5
    first_epoch = [i for x in b["sgd"] for i in x]
    assert sorted(first_epoch) == list(range(12))
    assert [i for x in b["mini-batch-gd"][:3] for i in x] == first_epoch == b["batch-gd"][0]
    assert b["adam"] == b["mini-batch-gd"]
    # batch GD sees the exact gradient, so it walks the deterministic quadratic's path
    exact = optlab.trajectory("quadratic", "batch-gd", start=optlab.SURFACES["stochastic"].start, steps=12,
                              lr=optlab.SURFACES["stochastic"].lr["batch-gd"])
    np.testing.assert_allclose(paths["batch-gd"].trajectory.points, exact.points, atol=1e-12)
    assert not np.allclose(paths["sgd"].trajectory.points, exact.points)


def test_divergence_ends_a_walk_without_an_error():
    path = optlab.trajectory("quadratic", "batch-gd", steps=200, lr=5.0)  # lr above 2 / curvature
    assert path.diverged is not None and path.steps <= 200
    assert all(math.isfinite(x) and math.isfinite(y) for x, y in path.points)


def test_bad_hyperparameters_are_named():
    with pytest.raises(ConfigError) as err:
        optlab.trajectory("beale", "momentum", steps=3, momentum=1.5)
    assert "training.optimizer.momentum" in str(err.value)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        optlab.method_config("adam", {"momentum2": 0.5})
    with pytest.raises(ValueError, match="Adam has no 'momentum'"):
        optlab.trajectory("beale", "adam", steps=3, momentum=0.5)


def test_every_method_beats_or_matches_gd_where_the_textbook_says():
    """The lab's defaults tell the story: on the ill-conditioned quadratic, momentum and Adam end far
    closer to the minimum than gradient descent in the same number of steps."""
    paths = optlab.trajectories("quadratic", ["batch-gd", "momentum", "adam"])
    gap = {k: t.losses[-1] for k, t in paths.items()}
    assert gap["momentum"] < gap["batch-gd"] / 100 and gap["adam"] < gap["batch-gd"] / 100


def test_paths_csv_and_picture(tmp_path):
    paths = optlab.trajectories("himmelblau", ["sgd", "adam"], steps=20)
    rows = list(csv.DictReader(io.StringIO(optlab.trajectories_csv(paths))))
    assert len(rows) == 2 * 21 and rows[0]["method"] == "sgd"
    png = optlab.surface_png(optlab.SURFACES["himmelblau"], paths)
    from PIL import Image
    assert Image.open(io.BytesIO(png)).size[0] > 500


# --------------------------------------------------------------------------- comparisons
def _points(n=120):
    r = np.random.default_rng(0)
    x = r.normal(size=(n, 4)).astype(np.float32)
    return Dataset("toy", x, (x[:, 0] + x[:, 1] > 0).astype(np.int64), "classification", ["neg", "pos"],
                   kind="points")


def test_parse_runs():
    runs = optlab.parse_runs("sgd:batch, sgd:mini-batch:32 ,momentum@0.01,adam", ["mini-batch", "stochastic"])
    got = [(r.optimizer, r.batching, r.batch_size, r.lr) for r in runs]
    assert got == [("sgd", "batch", None, None), ("sgd", "mini-batch", 32, None), ("momentum", "mini-batch", None, 0.01),
                   ("momentum", "stochastic", None, 0.01), ("adam", "mini-batch", None, None),
                   ("adam", "stochastic", None, None)]
    for bad, what in [("adamm", "unknown optimizer 'adamm'"), ("sgd:minibatch", "unknown batching"),
                      ("sgd@fast", "must be a number"), ("sgd:mini-batch:0", "at least 1"), ("", "no optimizer")]:
        with pytest.raises(ValueError, match=what):
            optlab.parse_runs(bad)


def test_comparison_one_curve_per_optimizer_from_the_same_start(tmp_path):
    graph = graphs.mlp(4, 8, 2)
    base = TrainingConfig().with_overrides({"epochs": 3, "batch_size": 16, "data.split": [0.6, 0.2, 0.2]})
    runs = optlab.parse_runs("sgd,momentum,rmsprop,adam") + [optlab.RunSpec("sgd", "batch", lr=0.5)]
    comparison = optlab.Comparison(graph, runs, base, dataset=_points())
    comparison.prepare()
    first = comparison.trainers[0]
    for tr in comparison.trainers[1:]:  # the same initial weights and the same shuffle
        for (k, a), b in zip(first.model.state_dict().items(), tr.model.state_dict().values()):
            assert torch.equal(a, b), k
        assert torch.equal(tr._gen.get_state(), first._gen.get_state())
    events = []
    outcomes = comparison.run(listener=lambda kind, i, payload: events.append((kind, i)))
    assert [o.optimizer for o in outcomes] == ["sgd", "momentum", "rmsprop", "adam", "sgd"]
    assert [o.lr for o in outcomes] == [0.1, 0.01, 0.001, 0.001, 0.5]  # the graph's optimizer (adam) keeps its rate
    assert [o.batch_size for o in outcomes] == [16, 16, 16, 16, 72]
    for o in outcomes:
        assert o.status == "finished" and [h["epoch"] for h in o.history] == [1, 2, 3]
        assert o.final["train_loss"] is not None and 0 <= o.final["dev_accuracy"] <= 1
        assert o.best_epoch in (1, 2, 3) and o.seconds > 0
    assert outcomes[4].steps == 3 and outcomes[0].steps == 15
    assert ("start", 0) in events and ("end", 4) in events and events.count(("epoch", 2)) == 3
    curves = list(csv.DictReader(io.StringIO(comparison.curves_csv())))
    assert len(curves) == 5 * 3 and {r["optimizer"] for r in curves} == {"sgd", "momentum", "rmsprop", "adam"}
    files = comparison.write(tmp_path / "out")
    assert [f.name for f in files] == ["curves.csv", "summary.csv", "curves.png"]
    summary = list(csv.DictReader(io.StringIO(files[1].read_text())))
    assert len(summary) == 5 and summary[4]["batching"] == "batch" and summary[0]["best_epoch"]
    from PIL import Image
    assert Image.open(files[2]).size[0] > 1000


def test_comparison_in_parallel_gives_the_same_curves_and_stops():
    graph = graphs.mlp(4, 8, 2)
    base = TrainingConfig().with_overrides({"epochs": 2, "batch_size": 16, "data.split": [0.6, 0.2, 0.2]})
    runs = optlab.parse_runs("sgd,adam")
    seq = optlab.Comparison(graph, runs, base, dataset=_points()).run()
    par = optlab.Comparison(graph, runs, base, dataset=_points()).run(parallel=True)
    for a, b in zip(seq, par):
        assert [h["train_loss"] for h in a.history] == pytest.approx([h["train_loss"] for h in b.history])

    stopping = optlab.Comparison(graph, runs, base, dataset=_points())
    stopping.run(listener=lambda kind, i, p: stopping.stop() if kind == "progress" else None)
    assert stopping.outcomes[0].status == "stopped" and stopping.outcomes[1].status == "skipped"


def test_comparison_errors_name_the_run():
    graph = graphs.mlp(4, 8, 2)
    with pytest.raises(optlab.ComparisonError, match="run 2"):
        optlab.Comparison(graph, [optlab.RunSpec("sgd"), optlab.RunSpec("adam", batch_size=0)])
    with pytest.raises(optlab.ComparisonError, match="at least one"):
        optlab.Comparison(graph, [])


def test_cli_compare_optimizers(tmp_path, capsys):
    graph = graphs.mlp(2, 8, 2)
    path = tmp_path / "mlp.dcnet"
    engine.save_graph(graph, path)
    out = tmp_path / "cmp"
    code = main(["compare-optimizers", str(path), "--optimizers", "sgd,momentum,rmsprop,adam", "--epochs", "2",
                 "--dataset", "xor", "--option", "samples=120", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    curves = list(csv.DictReader((out / "curves.csv").open()))
    assert {r["optimizer"] for r in curves} == {"sgd", "momentum", "rmsprop", "adam"} and len(curves) == 8
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best epoch" in captured.out and "summary.csv" in captured.out

    assert main(["compare-optimizers", str(path), "--optimizers", "sgd,adamm", "--out", str(out)]) == 2
    assert "unknown optimizer 'adamm'" in capsys.readouterr().err
    assert main(["compare-optimizers", str(tmp_path / "none.dcnet"), "--optimizers", "sgd", "--out", str(out)]) == 2


def test_cli_optimizer_paths(tmp_path, capsys):
    out = tmp_path / "paths"
    code = main(["optimizer-paths", "saddle", "--methods", "batch-gd,adam", "--steps", "30", "--set", "adam.lr=0.1",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader((out / "paths.csv").open()))
    assert len(rows) == 62
    assert (out / "paths.png").stat().st_size > 1000
    assert main(["optimizer-paths", "saddle", "--set", "adam.momentum=0.9", "--out", str(out)]) == 2
    assert "Adam has no 'momentum'" in capsys.readouterr().err
