"""engine.inspect, without Qt: node-by-node evaluation equals the compiled model, activation statistics
(dead ReLU units), where a NaN first appears, gradient health, previews, real examples fitted to a
graph, per-example results, and the health monitor on real training runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import engine
from engine.compiler import build
from engine.inspect import (HealthMonitor, NodeRunner, activation_stats, dead_units, example_results,
                            find_nonfinite, gradient_level, gradient_levels, gradient_score, histogram, load_matching,
                            preview, sample_batch, tile, trainer_preview)
from engine.training import Trainer, TrainingConfig
from tests import graphs

torch.set_num_threads(1)


def _x(compiled, n=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, *compiled.inference.shape(nid).shape[1:], generator=gen) for nid, _ in compiled.plan.inputs]


def test_node_by_node_outputs_equal_the_compiled_model():
    for g in (graphs.lenet5(), engine.load_graph("templates/vae.dcnet"), graphs.inception_block()):
        c = build(g, seed=0)
        c.model.eval()
        xs = _x(c)
        values = NodeRunner(c).run(xs, model=c.model)
        with torch.no_grad():
            out = c.model(*xs)
        out = out if isinstance(out, tuple) else (out,)
        mine = NodeRunner(c).model_outputs(values)
        assert len(mine) == len(out)
        for a, b in zip(mine, out):
            torch.testing.assert_close(a, b)


def test_functional_nodes_and_losses_get_values():
    g = graphs.mlp(4, 8, 3)
    c = build(g, seed=0)
    x = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    values = NodeRunner(c).run([x], [y])
    hidden, relu = values["hidden"]["out"], values["relu"]["out"]  # ReLU has no submodule
    torch.testing.assert_close(relu, torch.relu(hidden))
    logits = c.model(x)
    torch.testing.assert_close(values["ce"]["loss"], torch.nn.functional.cross_entropy(logits, y))
    assert "ce" not in NodeRunner(c).run([x])  # no targets: no loss
    assert list(NodeRunner(c).run([x], upto="hidden")) == ["hidden"]


def test_dead_units_counted_per_unit_over_the_batch():
    g = graphs.mlp(4, 8, 3, with_loss=False)
    c = build(g, seed=0)
    with torch.no_grad():
        c.model.hidden.bias[:2] = -100.0  # two of eight units never fire
        c.model.hidden.bias[2:] = 100.0
    values = NodeRunner(c).run([torch.randn(32, 4)])
    stats = activation_stats(c, values)
    assert stats["relu"].dead == pytest.approx(0.25)
    assert stats["relu"].units == 8
    assert stats["hidden"].dead is None  # only ReLU-like nodes have dead units
    assert stats["relu"].zeros == pytest.approx(0.25)
    assert dead_units(torch.zeros(3, 4, 5, 5)) == 1.0  # maps: a unit is a channel
    maps = torch.zeros(3, 4, 5, 5)
    maps[0, 1, 2, 2] = 1.0
    assert dead_units(maps) == pytest.approx(0.75)


def _reference_stats(t: torch.Tensor, dead: bool) -> dict:
    """activation_stats' figures for one output, computed plainly in NumPy (float64)."""
    a = t.detach().double().numpy()
    safe = np.where(np.isfinite(a), a, 0.0)
    units = a.shape[1] if a.ndim == 4 else 1 if a.ndim <= 1 else a.shape[-1]
    per_unit = np.moveaxis(a, 1, -1).reshape(-1, units) if a.ndim == 4 else a.reshape(-1, units)
    return {"mean": safe.mean(), "std": safe.std(), "zeros": float((a == 0).mean()), "units": units,
            "nonfinite": int((~np.isfinite(a)).sum()),
            "dead": float(1 - (per_unit != 0).any(axis=0).mean()) if dead else None}


@pytest.mark.parametrize("poison", [False, True])
def test_activation_stats_match_a_plain_computation(poison):
    """Every figure of every layer of LeNet-5 (feature maps and vectors), with NaN and infinities in the
    input in one case (they count as non-finite values and as 0 in the mean and spread)."""
    g = graphs.lenet5(with_loss=False)
    for node in g.nodes.values():  # (ReLUs: their dead units too)
        if node.type == "Tanh":
            node.type = "ReLU"
    c = build(g, seed=0)
    with torch.no_grad():
        c.model.conv2.bias[:3] = -100.0  # three channels of maps that never fire
    x = torch.randn(16, 1, 32, 32)
    values = NodeRunner(c).run([x])
    if poison:
        out = next(iter(values["conv1"].values()))
        out[0, 0, 0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
        out[1, 2] = 0.0
        relu = next(iter(values["tanh1"].values()))  # (a ReLU now): a channel only NaN and 0 is alive
        relu[:, 4] = 0.0
        relu[3, 4, 5, 5] = float("nan")
    stats = activation_stats(c, values)
    graph = c.inference.graph
    checked = 0
    for nid, ports in values.items():
        t = next(iter(ports.values()))
        if graph.registry[graph.nodes[nid].type].role != "layer":
            assert nid not in stats
            continue
        ref = _reference_stats(t, graph.nodes[nid].type == "ReLU")
        got = stats[nid]
        assert got.units == ref["units"] and got.nonfinite == ref["nonfinite"], nid
        assert got.mean == pytest.approx(ref["mean"], rel=1e-4, abs=1e-6), nid
        assert got.std == pytest.approx(ref["std"], rel=1e-4, abs=1e-6), nid
        assert got.zeros == pytest.approx(ref["zeros"], abs=1e-7), nid
        assert (got.dead is None) == (ref["dead"] is None), nid
        if ref["dead"] is not None:
            assert got.dead == pytest.approx(ref["dead"], abs=1e-7), nid
        checked += 1
    assert checked >= 8 and stats["conv1"].nonfinite == (3 if poison else 0)
    assert stats["tanh1"].nonfinite == (1 if poison else 0)
    assert stats["tanh2"].dead >= 3 / 16  # (a ReLU now, under its old id)


def test_find_nonfinite_names_the_node():
    g = graphs.mlp(4, 8, 3)
    c = build(g, seed=0)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    assert find_nonfinite(c, [x], [y]) is None
    bad = x.clone()
    bad[0, 0] = float("nan")
    found = find_nonfinite(c, [bad], [y])
    assert (found.node, found.where) == ("x", "input")
    with torch.no_grad():
        c.model.head.weight[0, 0] = float("nan")
    found = find_nonfinite(c, [x], [y])
    assert (found.node, found.where) == ("head", "weights")
    assert "head" in found.message and "learning rate" in found.message
    c = build(g, seed=0)
    with torch.no_grad():
        c.model.hidden.weight.fill_(1e30)
        c.model.head.weight.fill_(1e30)  # finite weights, but (1e30)^2 overflows float32
    found = find_nonfinite(c, [x.abs() + 1], [y])
    assert (found.node, found.where) == ("head", "output")
    assert c.model.training  # the model's mode is restored


def test_gradient_health():
    assert gradient_level(float("nan"), 1.0) == "nonfinite"
    assert gradient_level(1e3, 1e3) == "exploding"
    assert gradient_level(1e-8, 1e-8) == "vanishing"
    assert gradient_level(1e-5, 1.0) == "vanishing"  # a thousand times below the largest layer
    assert gradient_level(0.3, 1.0) == "healthy"
    assert gradient_levels({"a": 1.0, "b": 1e-6, "c": 5e3}) == {"a": "healthy", "b": "vanishing", "c": "exploding"}
    norms = [1e-4, 1e-2, 1.0]
    assert gradient_score(1e-4, norms) == pytest.approx(-2.0)
    assert gradient_score(1.0, norms) == pytest.approx(2.0)
    assert gradient_score(1e-2, norms) == pytest.approx(0.0)
    assert gradient_score(float("inf"), norms) == 3.0
    # a norm as large from the start of the run is the loss's scale (a loss summed over the batch), not an
    # explosion; one grown ten times past its early value is
    assert gradient_level(7e2, 7e2, typical=6e2) == "healthy"
    assert gradient_level(7e3, 7e3, typical=6e2) == "exploding"
    assert gradient_levels({"enc": 7e2, "dec": 9e2}, {"enc": 8e2, "dec": 1.2e3}) == {"enc": "healthy",
                                                                                     "dec": "healthy"}
    assert gradient_score(7e2, [7e2, 9e2], "healthy") < 1 and gradient_score(7e2, [7e2, 9e2]) >= 2


def test_the_health_monitor_judges_explosions_against_the_runs_early_norms():
    from engine.training.trainer import StepMetrics

    seen = []
    monitor = HealthMonitor(seen.append)
    monitor._params = 10 ** 9  # (no weight snapshots: no trainer here)

    def step(i, norms):
        monitor.on_step(None, StepMetrics(1, i, [i], [1.0], 0.1, 1.0, None, 1.0, 1.0, norms))
        return seen[-1].grad_levels

    for i in range(1, 21):  # steady, large: a summed loss's scale
        assert step(i, {"enc": 700.0 + i, "dec": 900.0}) == {"enc": "healthy", "dec": "healthy"}
    assert step(21, {"enc": 9000.0, "dec": 900.0}) == {"enc": "exploding", "dec": "healthy"}
    # a divergence in the first seconds is not learned as the layer's typical norm
    seen.clear()
    monitor = HealthMonitor(seen.append)
    monitor._params = 10 ** 9
    levels = [step(i, {"fc": v})["fc"] for i, v in enumerate([5, 8, 20, 60, 200, 800, 6000] + [6000] * 30, 1)]
    assert levels[:4] == ["healthy"] * 4 and set(levels[4:]) == {"exploding"}


def test_previews_of_maps_and_values():
    c = build(graphs.lenet5(with_loss=False), seed=0)
    c.model.eval()
    values = NodeRunner(c).run(_x(c, 2), upto="fc1")
    assert "fc2" not in values
    maps = preview(c, values, "conv1", index=1)
    assert (maps.kind, maps.shape, maps.channels, maps.data.shape) == ("maps", (6, 28, 28), 6, (6, 28, 28))
    torch.testing.assert_close(torch.from_numpy(maps.data), values["conv1"]["out"][1])
    dense = preview(c, values, "fc1")
    assert dense.kind == "values" and dense.data.shape == (120,)
    assert dense.stats["min"] <= dense.stats["mean"] <= dense.stats["max"]
    grid = tile(maps.data)
    assert grid.shape == (2 * 29 - 1, 3 * 29 - 1)  # 6 maps in 2 rows of 3, 1-pixel gaps
    assert np.nanmax(grid) == pytest.approx(1.0) and np.nanmin(grid) == pytest.approx(0.0)
    counts, edges = histogram(dense.data, bins=10)
    assert counts.sum() == 120 and len(edges) == 11
    with pytest.raises(KeyError):
        preview(c, values, "image")


def test_sample_batch_fits_real_examples_to_the_inputs():
    g = graphs.lenet5()
    c = build(g, seed=0)
    batch = sample_batch(c, TrainingConfig.from_dict({}), count=3)  # digits, resized 8x8 -> 32x32 as in training
    assert batch.inputs[0].shape == (3, 1, 32, 32) and batch.targets[0].shape == (3,)
    assert batch.data_input == "image" and not batch.notes
    assert batch.targets[0].tolist() == [int(batch.dataset.y[i]) for i in batch.indices]
    gan = build(engine.load_graph("templates/dcgan.dcnet"), seed=0)
    batch = sample_batch(gan, TrainingConfig.from_dict({"data": {"options": {"size": 32}}}), count=2)
    ids = [nid for nid, _ in gan.plan.inputs]
    assert batch.data_input == "real"  # the images, not the latent code
    assert batch.inputs[ids.index("real")].shape == (2, 1, 32, 32)
    assert any("Input 'z': random values" in n for n in batch.notes)
    # a data set with an array per Input (a seq2seq's source and decoder input) feeds each, as in training
    s2s = engine.load_graph(Path(__file__).resolve().parent.parent / "templates" / "seq2seq_attention.dcnet")
    batch = sample_batch(build(s2s, seed=0), TrainingConfig.from_graph(s2s), count=4)
    assert not batch.notes and batch.data_input == "source"
    ds, rows = batch.dataset, batch.indices
    assert np.array_equal(batch.inputs[0].numpy(), ds.x[rows])
    assert np.array_equal(batch.inputs[1].numpy(), ds.inputs["decoder_input"][rows])
    assert np.array_equal(batch.targets[0].numpy(), ds.y[rows])


def test_load_matching_keeps_the_layers_that_still_fit():
    a = build(graphs.mlp(4, 8, 3), seed=0).model
    b = build(graphs.mlp(4, 8, 5), seed=1).model  # a wider head: only the hidden layer matches
    got, total = load_matching(b, a.state_dict())
    assert (got, total) == (2, 4)
    torch.testing.assert_close(b.hidden.weight, a.hidden.weight)


def _digits_mlp():
    g = graphs.mlp(64, 32, 10)
    return g


def test_health_monitor_on_a_run_and_a_nan_run():
    got = []
    cfg = TrainingConfig.from_dict({"epochs": 2, "batch_size": 64})
    trainer = Trainer(_digits_mlp(), cfg, callbacks=[HealthMonitor(got.append, budget=1.0)])
    assert trainer.fit().status == "finished"
    full = [h for h in got if h.stats]
    assert full and full[-1].final
    assert 0.0 <= full[-1].dead["relu"] <= 1.0
    assert set(full[-1].grad_norms) == {"hidden", "head"}
    assert all(level in ("healthy", "vanishing", "exploding") for level in full[-1].grad_levels.values())
    results = example_results(trainer, "dev")
    assert len(results.true) == len(trainer.splits["dev"])
    for true, pred in [(0, 0), (3, 8)]:
        rows = results.cell(true, pred)
        assert all((results.true[rows] == true) & (results.predicted[rows] == pred))
        assert all(np.diff(results.loss[rows]) <= 0)  # highest loss first
    assert results.loss[results.mistakes()[:1]].tolist() == [results.loss[results.true != results.predicted].max()]

    got = []
    cfg = TrainingConfig.from_dict({"epochs": 1, "batch_size": 32, "optimizer": {"name": "sgd", "lr": 1e20}})
    trainer = Trainer(_digits_mlp(), cfg, callbacks=[HealthMonitor(got.append)])
    result = trainer.fit()
    assert result.status == "failed"
    bad = [h.nonfinite for h in got if h.nonfinite is not None]
    assert bad and bad[-1].node in ("hidden", "relu", "head", "ce")
    assert bad[-1].where in ("weights", "output", "loss", "gradient")
    assert bad[-1].label in bad[-1].message


def test_health_inspects_only_the_nodes_that_can_have_dead_units():
    """Dead units are all an inspection reports: statistics of the ReLU nodes only, and a network without
    any is never inspected (no forward pass in the run's time); its gradient norms still come."""
    cfg = TrainingConfig.from_dict({"epochs": 2, "batch_size": 64})
    got = []
    trainer = Trainer(_digits_mlp(), cfg, callbacks=[HealthMonitor(got.append, budget=1.0, every=0.0)])
    assert trainer.fit().status == "finished"
    inspected = [h for h in got if h.stats]
    assert len(inspected) >= 2 and all(set(h.stats) == {"relu"} for h in inspected)
    runner = NodeRunner(trainer.compiled)  # the same figure as from a whole forward pass
    inputs = [trainer.splits["dev"].x[:64]]
    with torch.no_grad():
        trainer.model.eval()
        whole = activation_stats(trainer.compiled, runner.run(inputs, model=trainer.model, losses=False))
    assert inspected[-1].dead["relu"] == whole["relu"].dead and "head" in whole

    tanh = _digits_mlp()
    tanh.nodes["relu"].type = "Tanh"
    got = []
    monitor = HealthMonitor(got.append, budget=1.0, every=0.0)
    assert Trainer(tanh, cfg, callbacks=[monitor]).fit().status == "finished"
    assert not [h for h in got if h.stats] and monitor.runner is None
    assert any(h.grad_norms for h in got)


def test_health_inspections_are_spaced_in_time_the_first_and_the_final_always_come():
    """Activation statistics cost the run what they take: at most one every ``every`` seconds (the first
    epoch end the trainer reports has one, so a window shows dead units soon), and one at the end."""
    cfg = TrainingConfig.from_dict({"epochs": 8, "batch_size": 64})
    counts = {}
    for every in (1e9, 0.0):
        got = []
        trainer = Trainer(_digits_mlp(), cfg, callbacks=[HealthMonitor(got.append, budget=1.0, every=every)])
        assert trainer.fit().status == "finished"
        inspected = [h for h in got if h.stats]
        assert not inspected[0].final and inspected[-1].final and inspected[-1].epoch == 8
        counts[every] = len(inspected)
    assert counts[1e9] == 2 and counts[0.0] > 2


def test_trainer_preview_uses_the_trainers_weights_and_dev_examples():
    """The live preview computed in the training thread: the node's output for the index-th dev example
    (fitted and standardized as trained on), with the current weights, in eval mode, leaving the mode be."""
    from engine.training.job import event_forwarder

    events = []
    wanted = [("hidden", 2)]
    cfg = TrainingConfig.from_dict({"epochs": 2, "batch_size": 64})
    trainer = Trainer(_digits_mlp(), cfg, callbacks=[event_forwarder(lambda *e: events.append(e), lambda: wanted[0])])
    assert trainer.fit().status == "finished"
    live = [p for kind, p in events if kind == "preview"]
    assert live and all((node, index, error) == ("hidden", 2, "") for node, index, _, _, _, error in live)
    assert len(live) == 1  # the same node again within PREVIEW_EVERY (2 s) of the first: not recomputed

    trainer.model.train()
    pv, sample = trainer_preview(trainer, "hidden", 2)
    assert trainer.model.training
    x = trainer.splits["dev"].x[:3]
    torch.testing.assert_close(sample, x[2].cpu())  # (the preview comes back on the CPU, for the window)
    with torch.no_grad():
        trainer.model.eval()
        expected = trainer.model.hidden(x)[2]
    torch.testing.assert_close(torch.from_numpy(pv.data), expected.cpu())
    assert (pv.node, pv.kind, pv.shape) == ("hidden", "values", (32,))
    head, _ = trainer_preview(trainer, "logits", 0)  # an Output shows what flows into it
    assert head.node == "head" and head.shape == (10,)
    image, sample = trainer_preview(trainer, "x", 1)  # an Input shows the example itself
    torch.testing.assert_close(torch.from_numpy(image.data), x[1].cpu())
    with pytest.raises(KeyError):
        trainer_preview(trainer, "nowhere")


def _tagger_trainer(samples: int = 200):
    """The BiGRU tagger template (a tag per word of 40) for one epoch on a small 'tagging' set."""
    from pathlib import Path

    g = engine.load_graph(Path(__file__).resolve().parent.parent / "templates" / "bigru_tagger.dcnet")
    cfg = TrainingConfig.from_graph(g).with_overrides(
        {"epochs": 1, "data.dataset": "tagging", "data.options": {"samples": samples}})
    trainer = Trainer(g, cfg)
    assert trainer.fit().status == "finished"
    return trainer


def test_example_results_per_position_a_row_per_word_that_adds_up_to_the_report(monkeypatch):
    """A tagger scores each word: its results have a row per (sentence, word), the padding left out (the
    template's loss ignores tag 0), the rows agree with the report's dev accuracy and confusion matrix,
    and say which word each is; the gallery's highest-loss rows are kept when a split has more positions
    than the cap."""
    import engine.inspect as inspect_module

    trainer = _tagger_trainer()
    dev = trainer.splits["dev"]
    results = example_results(trainer, "dev")
    n, length = dev.y.shape
    assert results.per_position and results.target_shape == (length,) and not results.capped
    flat = np.flatnonzero(dev.y.numpy().reshape(-1) != 0)  # the words, sentence after sentence
    assert 0 < len(flat) < n * length and len(results.true) == results.total == len(flat)
    np.testing.assert_array_equal(results.true, dev.y.numpy().reshape(-1)[flat])
    np.testing.assert_array_equal(results.indices, np.repeat(np.asarray(dev.indices), length)[flat])
    np.testing.assert_array_equal(results.positions, np.tile(np.arange(length), n)[flat])
    report = trainer.evaluate_split("dev", full=True)
    assert (results.true == results.predicted).mean() == pytest.approx(report["accuracy"], abs=1e-9)
    classes = len(report["confusion_matrix"])
    counts = np.bincount(results.true * classes + results.predicted, minlength=classes * classes)
    np.testing.assert_array_equal(counts.reshape(classes, classes), np.asarray(report["confusion_matrix"]))
    row = int(results.mistakes(1)[0])
    s, p = int(flat[row] // length), int(flat[row] % length)  # its sentence and word
    assert results.where(row) == f"position {p + 1} of {length}"
    # the loss of a row is the cross-entropy of that word's scores
    trainer.model.eval()
    with torch.no_grad():
        _, scores = trainer.mode.eval_step(trainer, dev.x[s:s + 1], dev.y[s:s + 1])
    word = scores[0, :, p]
    expected = torch.nn.functional.cross_entropy(word[None], dev.y[s, p][None])
    assert results.loss[row] == pytest.approx(float(expected), rel=1e-4)

    # positions of the class the loss ignores (its ignore_index: the template's padding, tag 0) are left out
    ignored = dev.y.clone()
    ignored[:, -5:] = 0
    monkeypatch.setattr(dev, "y", ignored)
    some = example_results(trainer, "dev")
    assert len(some.true) == some.total == int((ignored > 0).sum()) and (some.true > 0).all()
    assert some.positions.max() <= length - 6
    monkeypatch.undo()

    monkeypatch.setattr(inspect_module, "MAX_POSITION_ROWS", 500)
    capped = example_results(trainer, "dev")
    assert capped.capped and len(capped.true) == 500 and capped.total == len(flat)
    assert capped.loss.min() >= np.sort(results.loss)[-500]  # the 500 of highest loss
    assert np.all(np.diff(capped.indices * length + capped.positions) > 0)  # in the data set's order


def test_example_results_name_the_place_of_a_position_in_one_or_two_dimensions():
    from engine.inspect import ExampleResults

    one = np.zeros(3, dtype=np.int64)
    flat = ExampleResults("dev", one, one, np.zeros(3), np.ones(3), one, None)
    assert not flat.per_position and flat.where(0) == ""
    words = ExampleResults("dev", one, one, np.zeros(3), np.ones(3), one, None, np.array([0, 7, 39]), (40,), 3)
    assert [words.where(i) for i in range(3)] == ["position 1 of 40", "position 8 of 40", "position 40 of 40"]
    assert words.where(1, short=True) == "pos 8/40"
    pixels = ExampleResults("dev", one, one, np.zeros(3), np.ones(3), one, None, np.array([0, 17, 63]), (8, 8), 3)
    assert [pixels.where(i) for i in range(3)] == ["pixel (0, 0)", "pixel (2, 1)", "pixel (7, 7)"]
    assert pixels.where(1, short=True) == "(2, 1)" and not pixels.capped
