"""The trainer: accuracy on real data, events, pause/resume/stop, checkpoints, failures, options."""

import threading
import time
import warnings

import numpy as np
import pytest
import torch

import engine
import graphs
from engine.training import (Callback, DataError, Dataset, SetupError, Trainer, TrainingConfig, load_checkpoint_file,
                             resolve_device)
from engine.training.augment import build_augmentation
from engine.training.config import AugmentationConfig
from engine.training.finders import find_lr, find_max_batch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small networks train fastest on one thread (and leave the other core to the rest of the suite)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def spiral_mlp() -> engine.Graph:
    """The MLP template's network: 2 -> 64 -> 64 -> 3 with ReLU."""
    g = engine.Graph("spiral MLP")
    nodes = [g.add_node("Input", "point", {"shape": [2]}), g.add_node("Linear", "fc1", {"out_features": 64}),
             g.add_node("ReLU", "relu1"), g.add_node("Linear", "fc2", {"out_features": 64}),
             g.add_node("ReLU", "relu2"), g.add_node("Linear", "fc3", {"out_features": 3}),
             g.add_node("Output", "logits")]
    graphs.chain(g, nodes)
    t, ce = g.add_node("Target", "label"), g.add_node("CrossEntropyLoss", "ce")
    g.connect(nodes[-1].id, "out", ce.id, "pred")
    g.connect(t.id, "out", ce.id, "target")
    return g


def spirals_config(**over) -> TrainingConfig:
    base = {"data.dataset": "spirals", "epochs": 4, "optimizer.lr": 0.01}
    base.update(over)
    return TrainingConfig().with_overrides(base)


class Recorder(Callback):
    def __init__(self):
        self.calls, self.steps, self.losses, self.epochs, self.samples = [], [], [], [], []

    def on_run_start(self, trainer, event):
        self.calls.append("start")
        self.start = event

    def on_step(self, trainer, event):
        self.calls.append("step")
        self.steps += event.steps
        self.losses += event.losses
        self.last_step = event

    def on_epoch_end(self, trainer, event):
        self.calls.append("epoch")
        self.epochs += [m.epoch for m in event.epochs]

    def on_samples(self, trainer, event):
        self.samples.append(event)

    def on_checkpoint(self, trainer, event):
        self.calls.append(f"checkpoint:{event.kind}")

    def on_run_end(self, trainer, result):
        self.calls.append("end")
        self.result = result


# --------------------------------------------------------------------------- learning on real data
def test_mlp_reaches_95_percent_on_noisy_spirals():
    tr = Trainer(spiral_mlp(), spirals_config(epochs=60))
    result = tr.fit()
    report = tr.report()
    assert result.status == "finished"
    assert report["test_accuracy"] >= 0.95, report["test_accuracy"]


def test_regression_on_a_curve_reports_mse():
    g = engine.Graph("curve fit")
    nodes = [g.add_node("Input", "x", {"shape": [1]}), g.add_node("Linear", "h", {"out_features": 32}),
             g.add_node("Tanh", "t"), g.add_node("Linear", "y", {"out_features": 1}), g.add_node("Output", "pred")]
    graphs.chain(g, nodes)
    tgt = g.add_node("Target", "value", {"shape": [1], "dtype": "float32"})
    mse = g.add_node("MSELoss", "mse")
    g.connect(nodes[-1].id, "out", mse.id, "pred")
    g.connect(tgt.id, "out", mse.id, "target")
    tr = Trainer(g, TrainingConfig().with_overrides({"data.dataset": "curve", "epochs": 60, "optimizer.lr": 0.01}))
    assert tr.fit().status == "finished"
    report = tr.report()
    assert report["test_mse"] < 0.05 and report["doctor"] is None
    assert tr.history[-1].dev_mse is not None and tr.history[-1].dev_accuracy is None


# --------------------------------------------------------------------------- events
def test_events_cover_every_step_and_epoch_in_order(tmp_path):
    rec = Recorder()
    tr = Trainer(spiral_mlp(), spirals_config(), callbacks=[rec], run_dir=tmp_path)
    result = tr.fit()
    assert rec.calls[0] == "start" and rec.calls[-1] == "end" and rec.result is result
    assert rec.steps == list(range(1, result.steps + 1))  # coalesced, none lost
    assert len(rec.losses) == result.steps and all(np.isfinite(rec.losses))
    assert rec.epochs == [1, 2, 3, 4]
    assert "checkpoint:final" in rec.calls and "checkpoint:best" in rec.calls
    assert rec.start.split_sizes == {"train": 900, "dev": 300, "test": 300} and rec.start.task == "classification"
    last = rec.last_step
    assert set(last.grad_norms) == {"fc1", "fc2", "fc3"} and all(v > 0 for v in last.weight_norms.values())
    assert last.lr == 0.01 and 0 <= last.train_accuracy <= 1
    assert rec.samples and rec.samples[0].inputs.shape == (8, 2) and rec.samples[0].labels[0] == "arm 0"
    assert result.history[-1]["epoch"] == 4 and result.history[-1]["dev_accuracy"] > 0.5


def test_epoch_events_are_not_starved_by_step_events():
    """Step events go out as soon as MIN_EVENT_INTERVAL has passed, so an epoch's end nearly always
    falls within that interval of one; epoch events keep their own interval and still come every epoch
    (when epochs take longer than the interval), not only with the last."""
    calls = []

    class Timeline(Callback):
        def on_step(self, trainer, event):
            calls.append("step")

        def on_epoch_end(self, trainer, event):
            calls.append(("epochs", [m.epoch for m in event.epochs]))

    cfg = spirals_config(epochs=8, batching="stochastic")  # 900 steps an epoch: far longer than 20 ms
    tr = Trainer(spiral_mlp(), cfg, callbacks=[Timeline()])
    assert tr.fit().status == "finished"
    sent = [c[1] for c in calls if c != "step"]
    assert sum(sent, []) == list(range(1, 9))
    assert len(sent) >= 6, sent  # (before the fix: one event with all eight epochs, at the end)
    assert calls.count("step") > 8


def test_epoch_events_are_not_starved_when_step_events_use_up_the_budget():
    """When each step event is costly (a slow subscriber, or a GPU where reading the gradient norms waits for
    the device), step events are throttled by the event budget; they leave part of it to the epoch ends, so
    the dev curve still moves every epoch instead of arriving in one event at the end."""
    calls = []

    class SlowSteps(Callback):
        def on_step(self, trainer, event):
            calls.append("step")
            end = time.perf_counter() + 0.004  # 4 ms a step event: 20% of a 20 ms interval, ten times the budget
            while time.perf_counter() < end:
                pass

        def on_epoch_end(self, trainer, event):
            calls.append(("epochs", [m.epoch for m in event.epochs]))

    cfg = spirals_config(epochs=8, batching="stochastic")
    tr = Trainer(spiral_mlp(), cfg, callbacks=[SlowSteps()])
    assert tr.fit().status == "finished"
    sent = [c[1] for c in calls if c != "step"]
    assert sum(sent, []) == list(range(1, 9))
    assert len(sent) >= 7, sent
    assert tr.event_seconds <= 0.03 * tr.result.seconds + 0.02  # the budget still holds
    # ... and the result says how much of the run went to its events (all but the run's end, delivered
    # after it): the GUI benchmark prints it
    assert tr.event_seconds >= tr.result.event_seconds >= 0.004 * len([c for c in calls if c == "step"])


def test_one_costly_event_at_the_start_does_not_hold_the_step_events_back():
    """The first epoch's end can be costly (the app's live preview and health inspection: 14 ms and more);
    counted against 2% of the fraction of a second trained so far, it held every step event back for
    seconds, and the app's curves stood still while the progress moved on."""
    calls = []

    class CostlyFirstEpoch(Callback):
        def on_step(self, trainer, event):
            calls.append("step")

        def on_epoch_end(self, trainer, event):
            if not any(c != "step" for c in calls):
                end = time.perf_counter() + 0.015
                while time.perf_counter() < end:
                    pass
            calls.append("epochs")

    cfg = spirals_config(epochs=3, batching="stochastic")  # 900 steps an epoch: several step events each
    tr = Trainer(spiral_mlp(), cfg, callbacks=[CostlyFirstEpoch()], event_interval=0.05)
    assert tr.fit().status == "finished"
    first, second = [i for i, c in enumerate(calls) if c == "epochs"][:2]
    assert "step" in calls[first + 1:second], calls  # (before the fix: none until the second second)


def test_a_failing_subscriber_never_stops_training():
    class Broken(Callback):
        def on_epoch_end(self, trainer, event):
            raise RuntimeError("plot widget gone")

    rec = Recorder()
    tr = Trainer(spiral_mlp(), spirals_config(epochs=3), callbacks=[Broken(), rec])
    with pytest.warns(RuntimeWarning, match="plot widget gone"):
        result = tr.fit()
    assert result.status == "finished" and rec.epochs == [1, 2, 3]
    assert tr.callback_errors and "Broken.on_epoch_end raised RuntimeError" in tr.callback_errors[0]


# --------------------------------------------------------------------------- control from another thread
def test_pause_resume_stop_and_resume_from_the_checkpoint_exactly(tmp_path):
    config = spirals_config(epochs=3, batch_size=16)
    reference = Trainer(spiral_mlp(), config)
    reference.fit()

    class PauseAtFirstStep(Callback):
        done = False

        def on_step(self, trainer, event):
            if not self.done:
                self.done = True
                trainer.pause()

    tr = Trainer(spiral_mlp(), config, callbacks=[PauseAtFirstStep()], run_dir=tmp_path / "run")
    worker = threading.Thread(target=tr.fit)
    worker.start()
    deadline = time.time() + 30
    while tr.state != "paused" and time.time() < deadline:
        time.sleep(0.01)
    assert tr.state == "paused"
    held = tr.step
    time.sleep(0.2)
    assert tr.step == held  # nothing moves while paused
    tr.resume()
    while tr.step < held + 5 and time.time() < deadline:
        time.sleep(0.001)
    tr.stop()
    worker.join(30)
    assert tr.result.status == "stopped" and 0 < tr.result.steps < reference.result.steps
    ckpt = tmp_path / "run" / "final.pt"
    state = torch.load(ckpt, weights_only=True)  # loads with weights_only
    assert state["step"] == tr.result.steps

    resumed = Trainer(spiral_mlp(), config)
    result = resumed.fit(resume_from=ckpt)
    assert result.status == "finished" and result.steps == reference.result.steps
    for key, value in reference.model.state_dict().items():
        assert torch.allclose(resumed.model.state_dict()[key], value, atol=1e-6), key


def test_the_steps_before_a_pause_or_stop_reach_subscribers_before_the_state_does():
    """Step events are coalesced (``event_interval``); a pause must not leave the curves short of the
    step it paused after until the run goes on."""
    seen: list = []

    class Record(Callback):
        def on_step(self, trainer, event):
            seen.append(("step", event.steps[-1]))

        def on_state(self, trainer, event):
            seen.append((event.state, trainer.step))
            if event.state == "paused":
                trainer.stop()

    config = spirals_config(epochs=50, batching="stochastic")
    tr = Trainer(spiral_mlp(), config, callbacks=[Record()], event_interval=3600.0)  # one step event, then none
    worker = threading.Thread(target=tr.fit)
    worker.start()
    deadline = time.time() + 30
    while tr.step < 50 and time.time() < deadline:
        time.sleep(0.001)
    tr.pause()
    worker.join(30)
    assert seen[0][0] == "step" and seen[0][1] < 50  # (the first event goes out at once)
    for i, (kind, step) in enumerate(seen):
        if kind in ("paused", "stopping"):
            last_step = next(s for k, s in reversed(seen[:i]) if k == "step")
            assert last_step == step, seen[max(0, i - 3):i + 1]
    assert [k for k, _ in seen].count("paused") == 1 and tr.result.status == "stopped"


def test_a_checkpoint_of_another_network_is_refused(tmp_path):
    Trainer(spiral_mlp(), spirals_config(epochs=1), run_dir=tmp_path).fit()
    other = spiral_mlp()
    other.set_param("fc1", "out_features", 32)
    result = Trainer(other, spirals_config(epochs=2)).fit(resume_from=tmp_path / "final.pt")
    assert result.status == "failed" and "written for a different network" in result.reason
    with pytest.raises(SetupError, match="not a DeepCanvas checkpoint"):
        torch.save({"hello": torch.zeros(1)}, tmp_path / "x.pt")
        load_checkpoint_file(tmp_path / "x.pt")
    best = load_checkpoint_file(tmp_path / "best.pt")
    assert best["kind"] == "best" and "fc1.weight" in best["model"]


# --------------------------------------------------------------------------- failures
def test_nan_loss_stops_the_run_naming_the_step_and_the_last_finite_loss():
    tr = Trainer(spiral_mlp(), spirals_config(**{"optimizer.name": "sgd", "optimizer.lr": 1e12, "epochs": 5}))
    failed = []

    latest = []

    class Watch(Callback):
        def on_run_failed(self, trainer, event):
            failed.append(event)

        def on_step(self, trainer, event):
            latest.append(event.step)

    rec = Recorder()
    tr.add_callback(Watch())
    tr.add_callback(rec)
    result = tr.fit()
    assert result.status == "failed" and failed and failed[0].reason == result.reason
    # every step up to the bad one reached the subscribers (the plots mark where it went), the bad one last
    assert rec.steps == list(range(1, len(rec.steps) + 1)) and rec.steps
    assert all(np.isfinite(rec.losses[:-1])) and not np.isfinite(rec.losses[-1])
    import re
    m = re.search(r"the loss became (NaN|infinite) at step (\d+) \(epoch \d+\); the last finite loss was "
                  r"\S+ at step (\d+)", result.reason)
    assert m, result.reason
    assert int(m.group(3)) == int(m.group(2)) - 1
    assert "lower learning rate" in result.reason
    # one step number for the failure everywhere: the reason, the result, the event, the last step event
    # (the losses are read a few steps late: the trainer had gone on past the bad one)
    bad = int(m.group(2))
    assert result.steps == failed[0].step == rec.steps[-1] == latest[-1] == bad


def test_running_out_of_memory_names_what_to_lower_and_the_next_run_works(monkeypatch):
    """A step or an evaluation that runs out of memory (CUDA's error, raised here on the CPU) fails the
    run with what ran out, where, and which setting to lower; no traceback; the next fit runs."""
    tr = Trainer(spiral_mlp(), spirals_config(epochs=2, batch_size=32))
    real_step, real_eval = tr.mode.train_step, tr.mode.eval_step
    calls = {"train": 0}

    def step(trainer, xb, yb):
        calls["train"] += 1
        if calls["train"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 4.00 GiB total)")
        return real_step(trainer, xb, yb)

    monkeypatch.setattr(tr.mode, "train_step", step)
    result = tr.fit()
    assert result.status == "failed" and not result.traceback
    assert "ran out of memory in a training step (epoch 1)" in result.reason
    assert "training.batch_size (now 32" in result.reason and "--find-batch" in result.reason
    assert "Tried to allocate 2.00 GiB" in result.reason  # torch's own words, at the end

    monkeypatch.setattr(tr.mode, "train_step", real_step)
    monkeypatch.setattr(tr.mode, "eval_step", lambda *a: (_ for _ in ()).throw(
        RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)")))
    result = tr.fit()
    assert result.status == "failed" and "ran out of memory evaluating the dev set after epoch 1" in result.reason
    assert "training.eval_batch_size" in result.reason

    monkeypatch.setattr(tr.mode, "eval_step", real_eval)
    assert tr.fit().status == "finished"


def test_setup_problems_are_named():
    with pytest.raises(SetupError, match="the graph has no loss node"):
        Trainer(graphs.mlp(2, 8, 3, with_loss=False), spirals_config())
    with pytest.raises(DataError, match=r"data set 'curve' is a regression task, but Target 'label' expects "
                                        r"class ids"):
        Trainer(spiral_mlp(), spirals_config(**{"data.dataset": "curve"}))
    with pytest.raises(DataError, match=r"gives samples shaped \(2,\) but Input 'x' expects \(4,\)"):
        Trainer(graphs.mlp(4, 8, 3), spirals_config())
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(SetupError, match="training.device: 'cuda' was asked for"):
            resolve_device("cuda")


# --------------------------------------------------------------------------- options
def test_early_stopping_restores_the_best_weights():
    config = spirals_config(**{"epochs": 20, "early_stopping.enabled": True, "early_stopping.patience": 2,
                               "early_stopping.min_delta": 100.0})  # nothing after epoch 1 counts as better
    tr = Trainer(spiral_mlp(), config)
    result = tr.fit()
    assert result.status == "early-stopped" and result.epochs == 3 and result.best_epoch == 1
    for key, value in tr.model.state_dict().items():
        assert torch.equal(value, tr.best_state[key])


def test_same_seed_same_run_and_options_are_explained():
    a = Trainer(spiral_mlp(), spirals_config(epochs=2))
    b = Trainer(spiral_mlp(), spirals_config(epochs=2))
    def without_time(history):
        return [{k: v for k, v in m.items() if k != "seconds"} for m in history]

    assert without_time(a.fit().history) == without_time(b.fit().history)
    c = Trainer(spiral_mlp(), spirals_config(epochs=2, channels_last=True))
    assert any("channels_last applies to image inputs" in n for n in c.notes)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_and_channels_last_train_lenet(precision):
    """The GPU options run on any device (autocast on the CPU here; the same code on CUDA): the matrix
    products in bf16/fp16, the weights and the loss in fp32, fp16 with loss scaling, the weights of an image
    network in channels_last; and the run learns as the fp32 run does."""
    from engine.templates import load_template

    def run(**over):
        g = load_template("lenet5")
        cfg = TrainingConfig.from_graph(g).with_overrides({"epochs": 2, **over})
        tr = Trainer(g, cfg)
        return tr, tr.fit()

    ref, ref_result = run()
    tr, result = run(precision=precision, channels_last=True)
    assert result.status == "finished", result.reason
    assert tr.amp_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert (tr.scaler is not None) == (precision == "fp16")
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())
    conv = tr.model.conv2.weight  # (conv1 has one input channel: both layouts coincide)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    with tr.autocast():
        out = tr.model.conv1(torch.randn(2, 1, 32, 32, device=tr.device).to(memory_format=torch.channels_last))
    assert out.dtype == tr.amp_dtype
    if tr.device.type == "cpu":
        assert any(f"precision {precision} on the CPU" in n for n in tr.notes)
    ours, theirs = result.history[-1], ref_result.history[-1]
    assert ours["train_loss"] < result.history[0]["train_loss"] or ours["dev_loss"] < 1.0
    assert ours["dev_loss"] == pytest.approx(theirs["dev_loss"], rel=0.05)
    assert ours["dev_accuracy"] == pytest.approx(theirs["dev_accuracy"], abs=0.03)


def test_torch_compile_trains_lenet_as_eager_does(tmp_path):
    """A real torch.compile (inductor, on the CPU here; ~30 s of compiling): the compiled forward is
    used, the run matches the eager run, and the checkpoint holds the plain module's keys."""
    from engine.templates import load_template

    def run(**over):
        g = load_template("lenet5")
        cfg = TrainingConfig.from_graph(g).with_overrides({"epochs": 1, **over})
        tr = Trainer(g, cfg, run_dir=tmp_path / str(bool(over)))
        return tr, tr.fit()

    eager, eager_result = run()
    tr, result = run(compile=True)
    assert result.status == "finished" and tr._compiled_active, tr.notes
    assert tr.forward_model is not tr.model
    ours, theirs = result.history[-1], eager_result.history[-1]
    assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-3)
    assert ours["dev_accuracy"] == pytest.approx(theirs["dev_accuracy"], abs=0.01)
    state = load_checkpoint_file(tmp_path / "True" / "final.pt")["model"]
    assert set(state) == set(eager.model.state_dict())  # no "_orig_mod." prefixes


def test_a_failing_torch_compile_falls_back_to_eager(monkeypatch):
    def broken_compile(model, **kw):
        def run(*args):
            raise RuntimeError("inductor stride assertion")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    tr = Trainer(spiral_mlp(), spirals_config(epochs=2, compile=True))
    result = tr.fit()
    assert result.status == "finished"
    assert any("torch.compile failed (RuntimeError: inductor stride assertion)" in n for n in tr.notes)


def test_augmentation_with_kornia_and_on_non_images():
    cfg = AugmentationConfig(hflip=True, rotation=20.0, crop_padding=2, color_jitter=0.3, noise=0.05)
    aug, notes = build_augmentation(cfg, (1, 16, 16), True)
    x = torch.rand(6, 1, 16, 16)
    out = aug(x)
    assert out.shape == x.shape and not torch.equal(out, x) and not notes
    aug, notes = build_augmentation(cfg, (2,), True)
    assert aug(torch.zeros(4, 2)).abs().sum() > 0 and "only noise is applied" in notes[0]
    config = TrainingConfig().with_overrides({"epochs": 1, "augmentation.rotation": 10.0,
                                              "augmentation.noise": 0.02, "data.split": [0.3, 0.1, 0.6]})
    tr = Trainer(graphs.lenet5(), config)  # the digits, rotated and noisy on every step
    assert tr.augment is not None and tr.fit().status == "finished"


def test_report_metrics_and_error_analysis():
    tr = Trainer(spiral_mlp(), spirals_config(epochs=3))
    tr.fit()
    report = tr.report(human_error=0.01)
    test = report["test"]
    assert report["test_accuracy"] == test["accuracy"]
    assert np.sum(test["confusion_matrix"]) == 300 and len(test["per_class"]) == 3
    assert 0 <= test["macro"]["f1"] <= 1
    assert report["doctor"]["human_error"] == 0.01 and report["doctor"]["problem"] in ("bias", "variance", "none")
    mistakes = report["error_analysis"]["mistakes"]
    assert mistakes and all(m["true"] != m["predicted"] for m in mistakes)
    conf = [m["confidence"] for m in mistakes]
    assert conf == sorted(conf, reverse=True)


def test_finders_work_on_a_copy():
    tr = Trainer(spiral_mlp(), spirals_config(device="cpu"))  # (on a GPU the batch finder measures: test_cuda.py)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    res = find_lr(tr, steps=60)
    assert 1e-7 <= res.suggestion <= 10 and len(res.lrs) == len(res.losses) > 10
    # the more careful of the two rules: never above a tenth of the rate with the lowest loss
    assert res.suggestion == min(res.steepest_lr, res.min_loss_lr / 10) <= res.min_loss_lr / 10
    low = res.losses.index(min(res.losses))
    assert res.lrs[low] == res.min_loss_lr and res.steepest_lr <= res.min_loss_lr
    assert all(np.isfinite(res.losses))
    assert all(torch.equal(v, tr.model.state_dict()[k]) for k, v in before.items())
    found = find_max_batch(tr, limit=1000, fits=lambda b: b <= 300)
    assert 282 <= found.batch_size <= 300 and found.method == "custom"
    small = find_max_batch(tr, memory_budget=2_000_000)
    big = find_max_batch(tr, memory_budget=20_000_000)
    assert small.method == "estimated" and 1 <= small.batch_size <= big.batch_size <= 900


def test_dataset_objects_can_be_passed_directly():
    x = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    ds = Dataset("mine", x, (x[:, 1] > 0).astype(np.int64), "classification", ["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = Trainer(spiral_mlp(), spirals_config(epochs=2), dataset=ds)
        assert tr.fit().status == "finished" and tr.dataset.name == "mine"


def test_more_outputs_than_classes_is_noted():
    g = spiral_mlp()
    assert not any("outputs are never a right answer" in n for n in Trainer(g, spirals_config()).notes)
    g.set_param("fc3", "out_features", 10)
    tr = Trainer(g, spirals_config())
    assert "data: the network scores 10 classes, the data has 3: the other 7 outputs are never a right answer" \
        in " ".join(tr.notes)


def test_a_classifiers_samples_are_spread_over_the_dev_set():
    """The same eight dev examples at every epoch, spread over the split (its first eight, in a data set
    stored in order, were all alike)."""
    tr = Trainer(spiral_mlp(), spirals_config(epochs=2))
    rec = Recorder()
    tr.add_callback(rec)
    assert tr.fit().status == "finished"
    dev = tr.splits["dev"]
    pick = np.linspace(0, len(dev) - 1, 8).round().astype(int)
    assert rec.samples and all(s.kind == "predictions" for s in rec.samples)
    for s in rec.samples:
        torch.testing.assert_close(s.inputs, dev.x[torch.from_numpy(pick)].cpu())
        torch.testing.assert_close(s.targets, dev.y[torch.from_numpy(pick)].cpu())
    assert pick[-1] == len(dev) - 1
