"""Training in the app, headless (pytest-qt, offscreen Qt), through the widgets a person uses: the settings
form, the Train / Pause / Stop buttons, the plots, the runs list, the confusion matrix, the doctor, the
preview, the canvas health marks and the export dialog. Real (tiny) training runs on the digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

import engine
from tests import graphs
from gui.training.dock import STAGGER_MS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
LEFT = QtCore.Qt.MouseButton.LeftButton
RUN_TIMEOUT = 60_000  # ms; a tiny run takes about a second


@pytest.fixture
def window(qtbot, tmp_path):
    from gui.mainwindow import MainWindow

    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings, tmp_path / "autosave")
    w.training.controller._runs_dir = tmp_path / "runs"
    w.ask = lambda title, text, buttons: "Discard"
    w.report = lambda title, text: None
    w.resize(1500, 950)
    w.show()
    QTest.qWaitForWindowExposed(w)
    yield w
    w.training.controller.shutdown()
    w.doc.undo_stack.setClean()
    w.doc._recovered = False
    w.close()
    w.deleteLater()


def open_graph(w, graph, training: dict | None = None):
    from gui.document import Document

    if training is not None:
        graph.training = training
    w.set_document(Document(graph))
    QtWidgets.QApplication.processEvents()
    return w.training


def digits_mlp(training=None, hidden=32):
    """Input (64) -> Linear -> ReLU -> Linear (10 classes); the 8x8 digits are flattened to fit."""
    g = graphs.mlp(64, hidden, 10)
    g.name = "digits MLP"
    return g, training if training is not None else {"epochs": 1, "batch_size": 32}


def train(w, qtbot, click: bool = True):
    ui = w.training
    if click:
        qtbot.mouseClick(ui.dock_widget.start_button, LEFT)
    run = ui.controller.current
    assert run is not None, ui.dock_widget.status.text()
    qtbot.waitUntil(lambda: run.done, timeout=RUN_TIMEOUT)
    qtbot.wait(4 * STAGGER_MS)  # the results, samples and canvas fill a moment apart after the end
    return run


def widget(ui, path):
    return ui.dock_widget.settings.widgets[path]


def test_one_epoch_puts_points_on_the_loss_plot(window, qtbot, tmp_path):
    ui = open_graph(window, *digits_mlp({}))
    spin = widget(ui, "epochs")  # the settings form edits the graph: saved with it
    spin.setValue(1)
    batch = widget(ui, "batch_size")
    batch.setValue(32)
    assert window.doc.graph.training == {"epochs": 1, "batch_size": 32}
    assert window.doc.modified
    path = tmp_path / "mlp.dcnet"
    engine.save_graph(window.doc.graph, path)
    assert engine.load_graph(path).training == {"epochs": 1, "batch_size": 32}

    run = train(window, qtbot)
    assert run.status == "finished", run.error
    steps = run.info.steps_per_epoch
    assert run.step == steps == int(np.ceil(run.info.split_sizes["train"] / 32))
    plots = ui.dock_widget.plots
    qtbot.waitUntil(lambda: plots.point_count(run, "raw") == steps, timeout=5000)
    x, y = plots.curves[(run.number, "raw")].getData()
    assert list(x) == list(range(1, steps + 1)) and np.isfinite(y).all()
    assert plots.point_count(run, "dev") == 1  # the dev loss at the end of the epoch
    assert plots.curves[("grad", "hidden")].yData.size > 0  # per-layer gradient norms
    assert plots._x_end == steps and not plots._outgrown()  # a run ended at its range's end: no refit, no repaint
    assert ui.dock_widget.progress.value() == 1000
    assert "finished" in ui.dock_widget.status.text()
    # training health on the canvas: layers tinted by gradient norm, the ReLU's dead units
    marks = ui.health.marks
    assert {"hidden", "head", "relu"} <= set(marks)
    assert marks["hidden"].tag.startswith("∇") and marks["relu"].tag.startswith("dead ")
    assert marks["hidden"].parentItem() is window.canvas.node_item("hidden")


def test_pause_resume_and_stop_mid_epoch(window, qtbot, monkeypatch):
    from engine.training.remote import RemoteJob
    paced = []
    monkeypatch.setattr(RemoteJob, "pace", lambda job, *a: paced.append(a))
    # One example per step, and long enough to be resumed and stopped before its end: the window drains the
    # run's events once a second while a CPU run shares the cores, and 4 epochs could end between two drains.
    ui = open_graph(window, *digits_mlp({"epochs": 12, "batching": "stochastic"}))
    dock = ui.dock_widget
    qtbot.mouseClick(dock.start_button, LEFT)
    run = ui.controller.current
    qtbot.waitUntil(lambda: run.step >= 10, timeout=RUN_TIMEOUT)
    qtbot.mouseClick(dock.pause_button, LEFT)
    from gui.training.controller import CONTROL_DRAIN_MS
    # its answer is drained soon, not in a second (a coarse Qt timer may fire up to 5% late)
    assert ui.controller.timer.remainingTime() <= 1.05 * CONTROL_DRAIN_MS + 1
    qtbot.waitUntil(lambda: run.status == "paused", timeout=10_000)
    assert dock.pause_button.text() == "Resume"
    paused_at = run.step
    total = run.info.steps_per_epoch * run.info.epochs
    assert 0 < paused_at < total and paused_at % run.info.steps_per_epoch  # mid-epoch
    assert run.step_loss.x[len(run.step_loss) - 1] == paused_at  # the curve ends at the step it paused after
    from engine.training.remote import TrainingProcess
    from gui.training.controller import usable_cores
    threads = TrainingProcess.shared().info["threads"]  # the training process's torch threads
    assert run.info.device.startswith("cpu")  # a CPU run on every core takes the window's drawing time: it draws less
    assert ui.controller.shares_cores == (threads >= usable_cores())
    from gui.training.controller import DRAIN_HZ, SHARED_DRAIN_HZ
    qtbot.waitUntil(lambda: ui.controller.timer.interval() == 1000 // (
        SHARED_DRAIN_HZ if ui.controller.shares_cores else DRAIN_HZ), timeout=2000)
    from engine.training.job import PREVIEW_EVERY
    # ... and the run reports as often as the window drains, and computes its preview as often as it is drawn
    assert paced == ([(1 / SHARED_DRAIN_HZ, 3 * PREVIEW_EVERY)] if ui.controller.shares_cores else [])
    qtbot.wait(400)
    assert run.step == paused_at and run.status == "paused"  # nothing moves while paused
    from gui.training.plots import LIVE_CACHE
    live = [item for key, item in dock.plots.curves.items() if key[0] == run.number]
    assert live and all(item.curve.cacheMode() == LIVE_CACHE for item in live)  # (it changes: drawn anew)
    assert run.step_loss.x[len(run.step_loss) - 1] == paused_at
    qtbot.mouseClick(dock.pause_button, LEFT)
    qtbot.waitUntil(lambda: run.status == "running" and run.step > paused_at + 20, timeout=RUN_TIMEOUT)
    assert dock.pause_button.text() == "Pause"
    qtbot.mouseClick(dock.stop_button, LEFT)
    qtbot.waitUntil(lambda: run.done, timeout=RUN_TIMEOUT)
    assert run.status == "stopped"
    assert paused_at < run.step < total
    assert Path(run.result.checkpoints["final"]).is_file()  # resumable
    assert dock.start_button.isEnabled() and not dock.stop_button.isEnabled()


def test_two_runs_overlay_each_labelled_with_what_changed(window, qtbot):
    ui = open_graph(window, *digits_mlp({"epochs": 1, "batch_size": 64}))
    first = train(window, qtbot)
    lr = widget(ui, "optimizer.lr")
    lr.setText("0.01")
    lr.editingFinished.emit()
    assert window.doc.graph.training["optimizer"] == {"lr": 0.01}
    second = train(window, qtbot)
    assert second.label == "run 2: optimizer.lr 0.001→0.01"
    plots = ui.dock_widget.plots
    for run in (first, second):
        assert plots.point_count(run, "train") > 0
    names = [label.text for _, label in plots.loss_legend.items]
    assert sorted(names) == ["run 1", "run 2"]  # each once (its dev curve: the same colour, dashed)
    layers = [label.text for _, label in plots.grad_legend.items]
    assert sorted(layers) == ["head", "hidden"]
    runs = ui.dock_widget.runs
    assert runs.count() == 2 and "optimizer.lr 0.001→0.01" in runs.item(0).text()
    # Each run's report brings the examples its galleries show; runs of the same data keep one copy.
    assert first.dataset is not None and second.dataset is first.dataset and first.dataset.index is not None
    runs.item(1).setCheckState(QtCore.Qt.CheckState.Unchecked)  # hide run 1
    assert plots.point_count(first, "train") == 0 and plots.point_count(second, "train") > 0
    runs.item(1).setCheckState(QtCore.Qt.CheckState.Checked)
    assert plots.point_count(first, "train") > 0
    # Runs that have ended keep their curves as pictures (Qt's item cache): the same pixels as drawn anew.
    from gui.training.plots import KEPT_CACHE, LIVE_CACHE
    curves = [item for key, item in plots.curves.items() if isinstance(key[0], int)]
    assert len(curves) >= 8 and all(item.curve.cacheMode() == KEPT_CACHE for item in curves)
    cached = plots.view.grab().toImage()
    for item in curves:
        item.curve.setCacheMode(LIVE_CACHE)
        item.scatter.setCacheMode(LIVE_CACHE)
    assert plots.view.grab().toImage() == cached
    # So do the axes, until their range, scale or look changes: the same pixels as an axis drawn anew.
    axes = [plot.getAxis(side) for plot in plots.plots.values() for side in ("left", "bottom")]
    assert all(axis.cacheMode() == KEPT_CACHE for axis in axes)
    plots.view.grab()
    plots.loss.setXRange(0, 3)
    plots.lr.setYRange(0, 0.5)
    plots.log_loss.setChecked(True)
    for axis in axes:
        axis.setTextPen("#ff0000") if axis is plots.acc.getAxis("left") else None
    cached = plots.view.grab().toImage()
    for axis in axes:
        axis.setCacheMode(LIVE_CACHE)
    fresh = plots.view.grab().toImage()
    assert fresh == cached
    ui.controller.remove(first)  # a removed run's curves go, and so does what was kept to draw them
    assert plots.point_count(first, "train") == 0 and first.number not in plots._smoothers
    assert second.number in plots._smoothers


def test_a_runs_curves_are_made_while_it_is_set_up_and_shown_with_their_first_point(window, qtbot):
    """Made while the run is set up (not in its time at its first update), hidden and out of the legend
    until they have a point: a run without a dev split never shows an empty "dev" entry."""
    ui = open_graph(window, *digits_mlp({"epochs": 2, "batch_size": 64}))
    plots = ui.dock_widget.plots
    qtbot.mouseClick(ui.dock_widget.start_button, LEFT)
    run = ui.controller.current
    n = run.number
    keys = [(n, "raw"), (n, "train"), (n, "dev"), (n, "train_accuracy"), (n, "dev_accuracy"), (n, "lr")]
    qtbot.waitUntil(lambda: all(k in plots.curves for k in keys), timeout=2000)  # (a turn of the loop each)
    if not run.step_loss.data()[0].size:  # (the run has not sent its first steps yet: nothing is shown)
        assert not any(plots.curves[k].isVisible() for k in keys)
        assert not [label.text for _, label in plots.loss_legend.items]
    train(window, qtbot, click=False)
    assert all(plots.curves[k].isVisible() for k in keys) and plots.point_count(run, "dev") == 2
    assert [label.text for _, label in plots.loss_legend.items] == [f"run {n}"]


def test_train_from_the_menu_brings_the_dock_forward_only_when_it_is_not(window, qtbot):
    """F5 (Train in the menu) shows the Training dock when it is hidden; with the dock in front it leaves
    the dock be: show() and raise_() laid the main window out again and repainted the whole dock, the
    largest part of the click's own time."""
    ui = open_graph(window, *digits_mlp({"epochs": 1, "batch_size": 64}))
    ui.dock.hide()
    ui.actions["train"].trigger()
    assert ui.dock.isVisible() and not ui.dock.visibleRegion().isEmpty()
    train(window, qtbot, click=False)
    raised = []
    ui.dock.raise_ = lambda: raised.append("raise")
    ui.dock.show = lambda: raised.append("show")
    ui.actions["train"].trigger()
    assert ui.controller.running and raised == []
    train(window, qtbot, click=False)


def test_the_gradient_plot_shares_the_step_axis_of_the_plots_above(window, qtbot):
    """Against steps, a step lines up across the four plots, also when the run in focus is shorter than a
    run kept beside it (the gradient plot's axis used to start again at each run)."""
    ui = open_graph(window, *digits_mlp({"epochs": 2, "batch_size": 64}))
    train(window, qtbot)
    widget(ui, "epochs").setValue(1)
    short = train(window, qtbot)
    plots = ui.dock_widget.plots
    assert plots.focus is short and short.total_steps < ui.controller.runs[0].total_steps
    x_range = plots.loss.getViewBox().viewRange()[0]
    assert x_range[1] >= ui.controller.runs[0].total_steps
    assert plots.grad.getViewBox().viewRange()[0] == x_range
    plots.set_x_mode("epoch")  # (the gradient norms stay against steps: the axis is the run's own)
    assert plots.grad.getViewBox().viewRange()[0][1] == pytest.approx(short.total_steps * 1.01, abs=1)


def test_the_gradient_plots_range_is_kept_while_a_run_of_the_same_network_trains(window, qtbot, monkeypatch):
    """A new run's first norms span a sliver of the last run's range: fitted to them, the axis was widened
    two or three times as they spread, each a new layout of its ticks and a repaint (10-15 ms each, at the
    start of every run). While a run of the same network trains, the range stays as long as the norms fit
    in it; at the run's end it is fitted to the run."""
    # The second run's first norms must be drained before it has trained past the first run's 220 steps:
    # at the once-a-second pace of a run on every core, a drain that missed them came a second later,
    # hundreds of steps on, with norms below the first run's (seen once on CI).
    monkeypatch.setattr("gui.training.controller.SHARED_DRAIN_HZ", 10)
    ui = open_graph(window, *digits_mlp({"epochs": 10, "batch_size": 64}))
    plots = ui.dock_widget.plots
    train(window, qtbot)
    first = plots.grad.getViewBox().viewRange()[1]
    widget(ui, "epochs").setValue(100)
    qtbot.mouseClick(ui.dock_widget.start_button, LEFT)
    run = ui.controller.current
    qtbot.waitUntil(lambda: bool(run.grad), timeout=RUN_TIMEOUT)  # (its first norms: the first run's, same seed)
    ui.controller.pause()
    plots.flush()
    lo, hi = plots.grad.getViewBox().viewRange()[1]
    data_lo, data_hi = plots._data_range("grad", True)
    assert data_lo >= first[0] and data_hi <= first[1]  # (the case: the new norms fit in the old range)
    assert (lo, hi) == tuple(first)
    ui.controller.stop()
    qtbot.waitUntil(lambda: run.done, timeout=RUN_TIMEOUT)
    plots.flush()
    lo, hi = plots.grad.getViewBox().viewRange()[1]
    data_lo, data_hi = plots._data_range("grad", True)
    assert lo <= data_lo and data_hi <= hi and hi - lo <= 3 * max(data_hi - data_lo, abs(data_hi) * 0.05)


def test_the_runs_list_shows_a_running_runs_epochs_every_two_seconds_and_its_state_at_once(qtbot, monkeypatch):
    """Each change of an item's text lays out and repaints the whole list (word-wrapped items): while a
    run trains, its best dev figure in the list follows its epochs at most every RUNS_LIST_EVERY seconds."""
    from types import SimpleNamespace

    from gui.training import dock
    from gui.training.controller import RunController
    from gui.training.runs import Run

    controller = RunController()
    run = Run(1, "#4c9aff", {}, "", "net", "first run")
    controller.runs.append(run)
    runs = dock.RunsList(controller)
    qtbot.addWidget(runs)
    runs.fill()
    clock = [100.0]
    monkeypatch.setattr(dock.time, "perf_counter", lambda: clock[0])

    def epoch(accuracy, at, changes=frozenset({"epochs"})):
        clock[0] = at
        run.epochs.append(SimpleNamespace(dev_accuracy=accuracy, dev_loss=1 - accuracy))
        controller.updated.emit(run, set(changes))
        return runs.item(0).text().splitlines()[1]

    run.status = "running"
    controller.updated.emit(run, {"state"})
    assert runs.item(0).text() == "run 1: first run\nrunning"
    assert epoch(0.5, 100.0) == "running · dev acc 50.0%"
    assert epoch(0.6, 100.5) == "running · dev acc 50.0%"  # (within two seconds of the last)
    assert epoch(0.7, 100.0 + dock.RUNS_LIST_EVERY) == "running · dev acc 70.0%"
    run.status = "paused"
    assert epoch(0.8, 102.1, {"state", "epochs"}) == "paused · dev acc 80.0%"  # a new state: at once
    run.status = "finished"
    controller.finished.emit(run)
    assert runs.item(0).text().splitlines()[1] == "finished · dev acc 80.0%"


def test_confusion_matrix_per_class_metrics_gallery_and_doctor(window, qtbot):
    ui = open_graph(window, *digits_mlp({"epochs": 2, "batch_size": 32}))
    run = train(window, qtbot)
    results = ui.dock_widget.results
    assert ui.dock_widget.tabs.currentWidget() is results
    matrix = results.matrix
    dev = run.report["dev"]
    assert matrix.matrix.sum() == dev["examples"] == len(run.examples.true)
    assert results.per_class.rowCount() == 11  # ten digits and the macro average
    assert float(results.per_class.item(10, 3).text()) == pytest.approx(dev["macro"]["f1"], abs=1e-3)
    # the gallery starts with every mistake, highest loss first
    ex = run.examples
    wrong = int((ex.true != ex.predicted).sum())
    assert results.gallery.count() == min(wrong, 60)
    # click the busiest off-diagonal cell: its examples, highest loss first
    off = matrix.matrix.copy()
    np.fill_diagonal(off, -1)
    i, j = np.unravel_index(off.argmax(), off.shape)
    centre = matrix.cell_rect(int(i), int(j)).center().toPoint()
    qtbot.mouseClick(matrix, LEFT, pos=centre)
    assert matrix.selected == (i, j)
    shown = results.gallery_indices()
    assert len(shown) == min(int(matrix.matrix[i, j]), 60)
    rows = [int(np.flatnonzero(ex.indices == idx)[0]) for idx in shown]
    assert all(ex.true[r] == i and ex.predicted[r] == j for r in rows)
    assert list(ex.loss[rows]) == sorted(ex.loss[rows], reverse=True)
    # the doctor: human-level error in, avoidable bias and variance out; saved with the graph
    doctor = results.doctor
    doctor.human.setValue(1.0)
    d = doctor.diagnosis
    train_err, dev_err = run.report["train"]["error"], dev["error"]
    assert d.avoidable_bias == pytest.approx(train_err - 0.01)
    assert d.variance == pytest.approx(dev_err - train_err)
    assert f"{d.avoidable_bias * 100:.1f}%" in doctor.figures.text()
    assert doctor.verdict.text() == d.message
    assert window.doc.graph.training["human_error"] == pytest.approx(0.01)



def test_gallery_of_a_tagger_lists_words_with_the_word_marked_in_its_sentence(window, qtbot):
    """A class per position (the BiGRU tagger: a tag per word): the gallery lists mistaken words, highest
    loss first, each with its place and its sentence around it, the word bracketed; a cell of the
    confusion matrix lists its words."""
    graph = engine.load_graph(Path(__file__).resolve().parent.parent / "templates" / "bigru_tagger.dcnet")
    training = dict(graph.training)
    training.update(epochs=1, data={**training["data"], "options": {"samples": 200}})
    ui = open_graph(window, graph, training)
    run = train(window, qtbot)
    assert run.status == "finished", run.error
    results = ui.dock_widget.results
    ex = run.examples
    assert ex.per_position and ex.target_shape == (40,)
    wrong = ex.mistakes()
    assert len(wrong) and results.gallery.count() == min(len(wrong), 60)
    assert f"{len(wrong):,}" in results.gallery_title.text() and "positions" in results.gallery_title.text()
    first = results.gallery.item(0).text()
    row = int(wrong[0])
    word = int(run.dataset.example(int(ex.indices[row]))[int(ex.positions[row])])
    tags = run.report["classes"]
    assert f"{tags[ex.true[row]]} → {tags[ex.predicted[row]]} · pos {int(ex.positions[row]) + 1}/40" in first
    assert ex.where(row) in results.gallery.item(0).toolTip()
    assert f"[{word}]" in first.splitlines()[0]  # the word, bracketed in its sentence
    # the busiest off-diagonal cell of the matrix: its words
    matrix = results.matrix
    off = matrix.matrix.copy()
    np.fill_diagonal(off, -1)
    i, j = np.unravel_index(off.argmax(), off.shape)
    qtbot.mouseClick(matrix, LEFT, pos=matrix.cell_rect(int(i), int(j)).center().toPoint())
    assert results.gallery.count() == min(int(matrix.matrix[i, j]), 60)
    assert all(f"{tags[i]} → {tags[j]} · pos " in results.gallery.item(k).text()
               for k in range(results.gallery.count()))

def tiny_gan():
    """A GAN small enough for a test: 8-d noise -> Linear -> Sigmoid makes an 8x8 image (64 values); one
    Linear discriminator scores generated and real images (shared weights)."""
    g = engine.Graph("tiny GAN")
    z = g.add_node("Input", "z", {"shape": [8]})
    real = g.add_node("Input", "real", {"shape": [64]})
    gen = g.add_node("Linear", "gen", {"out_features": 64})
    sig = g.add_node("Sigmoid", "gen_out")
    fake = g.add_node("Output", "fake")
    d_fake = g.add_node("Linear", "disc", {"out_features": 1})
    d_real = g.add_node("Linear", "disc_real", {"out_features": 1})
    g.set_shares(d_real.id, d_fake.id)
    s_fake, s_real = g.add_node("Output", "score_fake"), g.add_node("Output", "score_real")
    d_loss = g.add_node("GANLoss", "d_loss", {"side": "discriminator"})
    g_loss = g.add_node("GANLoss", "g_loss", {"side": "generator"})
    for a, ap, b, bp in [(z, "out", gen, "in"), (gen, "out", sig, "in"), (sig, "out", fake, "in"),
                         (sig, "out", d_fake, "in"), (real, "out", d_real, "in"), (d_fake, "out", s_fake, "in"),
                         (d_real, "out", s_real, "in"), (s_fake, "out", d_loss, "fake"),
                         (s_real, "out", d_loss, "real"), (s_fake, "out", g_loss, "fake")]:
        g.connect(a.id, ap, b.id, bp)
    return g


def test_a_gan_run_shows_generated_samples_and_both_losses(window, qtbot):
    from engine.training import modes

    if "gan" not in modes.MODES:
        pytest.skip("the trainer has no GAN mode yet (engine.training.modes)")
    ui = open_graph(window, tiny_gan(), {"epochs": 2, "batch_size": 64})
    run = train(window, qtbot)
    assert run.status == "finished", run.error
    assert run.samples is not None and run.samples.kind == "generated"
    samples = ui.dock_widget.samples
    assert samples.kind == "generated" and len(samples.cells) == len(run.samples.predictions)
    pix = samples.cells[0].findChild(QtWidgets.QLabel).pixmap()
    assert not pix.isNull() and pix.width() > 8  # each sample drawn as an image
    assert "generated" in samples.title.text()
    plots = ui.dock_widget.plots
    for name in ("d_loss", "g_loss"):  # the two players' losses, epoch by epoch
        assert plots.curves[(run.number, "term", "train", name)].yData.size == 2
    # the Accuracy plot shows the discriminator's accuracy on the dev set (it stayed empty)
    accuracy = plots.curves[(run.number, "metric", "discriminator_accuracy")]
    assert list(accuracy.yData) == [e.dev_metrics["discriminator_accuracy"] for e in run.epochs]
    QtWidgets.QApplication.processEvents()
    # the results of a run that is not a classifier leave the window its size (a long unwrapped line in
    # the doctor once made the window wider than the screen)
    assert window.minimumSizeHint().width() <= window.width()


def test_export_writes_a_verified_onnx_file_code_and_checkpoint(window, qtbot, tmp_path):
    ui = open_graph(window, *digits_mlp({"epochs": 1, "batch_size": 64}))
    run = train(window, qtbot)
    dialog = ui.open_export()
    qtbot.addWidget(dialog)
    assert dialog.weights.currentText().startswith("trained: run 1")
    dialog.onnx_path.setText(str(tmp_path / "mlp.onnx"))
    qtbot.mouseClick(dialog.onnx_button, LEFT)
    dialog.wait(180)
    qtbot.waitUntil(lambda: dialog.report is not None or dialog.error, timeout=10_000)
    assert dialog.error == ""
    report = dialog.report
    assert report.ok and Path(report.path).is_file() and report.weights == "run 1 (epoch 1)"
    assert "onnx.checker passed" in dialog.verdict.text() and "max |difference|" in dialog.verdict.text()
    assert "onnxruntime vs PyTorch" in dialog.details.toPlainText()
    # the file holds the trained weights: onnxruntime gives the trained model's answers
    import onnxruntime as ort
    import torch

    from engine.compiler import build
    model = build(window.doc.graph).model.eval()
    model.load_state_dict(run.weights)
    x = torch.randn(3, 64)
    got = ort.InferenceSession(report.path).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4)
    dialog.code_path.setText(str(tmp_path / "mlp.py"))
    qtbot.mouseClick(dialog.code_button, LEFT)
    assert "class DigitsMLP(nn.Module)" in (tmp_path / "mlp.py").read_text()
    dialog.ckpt_path.setText(str(tmp_path / "mlp.pt"))
    qtbot.mouseClick(dialog.ckpt_button, LEFT)
    state = torch.load(tmp_path / "mlp.pt", weights_only=True)
    torch.testing.assert_close(state["model"]["hidden.weight"], run.weights["hidden.weight"])
    # a file that exists is replaced only when the user says so
    (tmp_path / "mlp.py").write_text("# mine")
    asked = []
    window.ask = lambda title, text, buttons: asked.append(text) or "Cancel"
    qtbot.mouseClick(dialog.code_button, LEFT)
    assert (tmp_path / "mlp.py").read_text() == "# mine" and asked == [f"{tmp_path / 'mlp.py'} exists. Replace it?"]
    window.ask = lambda title, text, buttons: "Replace"
    qtbot.mouseClick(dialog.code_button, LEFT)
    assert "class DigitsMLP(nn.Module)" in (tmp_path / "mlp.py").read_text()
    # a folder that does not exist is named as such (no temporary file's name, no bare 'No such file')
    for field, button, what in ((dialog.code_path, dialog.code_button, "Code"),
                                (dialog.ckpt_path, dialog.ckpt_button, "Checkpoint")):
        field.setText(str(tmp_path / "nowhere" / "out.x"))
        qtbot.mouseClick(button, LEFT)
        assert dialog.other.text() == (f"{what} not saved: cannot write {tmp_path / 'nowhere' / 'out.x'}: "
                                       f"the folder {tmp_path / 'nowhere'} does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_live_preview_of_the_selected_node(window, qtbot):
    ui = open_graph(window, graphs.lenet5(), {})
    ui.preview_dock.show()
    ui.preview_dock.raise_()
    qtbot.waitUntil(lambda: ui.preview.shown, timeout=5000)
    window.canvas.select(["conv1"])
    preview = ui.preview
    qtbot.waitUntil(lambda: preview.result is not None and preview.result.node == "conv1", timeout=30_000)
    from gui.document import Document
    before = preview.result.serial
    window.set_document(Document(graphs.lenet5()))  # another document, and the node of the same id selected
    assert preview.node is None                     # in it before the event loop turns (as a program does):
    window.canvas.select(["conv1"])
    assert preview.node == "conv1"  # (the canvas said nothing: the selection was the same as before)
    qtbot.waitUntil(lambda: preview.result.serial > before and preview.result.node == "conv1", timeout=30_000)
    result = preview.result
    assert result.error == "" and result.preview.kind == "maps" and result.preview.channels == 6
    assert preview.image is not None  # drawn as an image grid
    image, pixels = preview.image, np.array(preview.image.image, copy=True)
    preview.example.setValue(3)
    qtbot.waitUntil(lambda: "dev example 3" in preview.where.text(), timeout=30_000)
    assert preview.image is image and not np.array_equal(pixels, image.image)  # updated in place
    preview.example.setValue(1)
    qtbot.waitUntil(lambda: "dev example 1" in preview.where.text(), timeout=30_000)
    assert "conv1 · Conv2d · output (6, 28, 28)" == preview.title.text()
    assert "digits, dev example 1" in preview.where.text() and "initial weights" in preview.where.text()
    window.canvas.select(["fc1"])
    qtbot.waitUntil(lambda: preview.result.node == "fc1", timeout=30_000)
    assert preview.result.preview.kind == "values" and preview.plot is not None  # a histogram
    # a refresh of the same node shown the same way updates what is on screen (the live preview as a run's
    # weights change: building the plot anew each time took the UI thread 10-25 ms)
    plot, bars = preview.plot, preview.bars
    heights = np.array(bars.opts["height"], copy=True)
    preview.example.setValue(2)
    qtbot.waitUntil(lambda: "dev example 2" in preview.where.text(), timeout=30_000)
    assert preview.plot is plot and preview.bars is bars
    assert not np.array_equal(heights, bars.opts["height"])  # another example's values
    # an edit refreshes it: fc1 narrower, drawn anew
    window.doc.set_param("fc1", "out_features", 50)
    qtbot.waitUntil(lambda: preview.result.preview.shape == (50,), timeout=30_000)
    assert preview.plot is not plot and preview.bars is not None
    assert sum(preview.bars.opts["height"]) == 50


def test_a_nan_run_marks_the_node_where_it_started(window, qtbot):
    ui = open_graph(window, *digits_mlp({"epochs": 1, "batch_size": 32, "optimizer": {"name": "sgd",
                                                                                        "lr": 1e20}}))
    run = train(window, qtbot)
    assert run.status == "failed" and "NaN" in run.error
    assert run.nonfinite is not None
    mark = ui.health.marks[run.nonfinite.node]
    assert mark.tag == "NaN here" and mark.alarm
    assert "First non-finite value" in mark.toolTip()
    assert "failed" in ui.dock_widget.status.text() and run.nonfinite.label in ui.dock_widget.status.text()
    assert ". First non-finite value" in ui.dock_widget.status.text()
    assert run.step >= 1 and ui.dock_widget.plots.point_count(run, "raw") >= 1  # the steps before it, plotted


def test_a_run_with_one_step_shows_it_as_a_dot(window, qtbot):
    """A run that fails at its second step has one point per curve: a line through one point has no
    length, so it is drawn as a dot (and as a line again once a curve has two points)."""
    graph = engine.load_graph(Path(__file__).resolve().parent.parent / "templates" / "mlp.dcnet")
    ui = open_graph(window, graph, {"data": {"dataset": "spirals"}, "epochs": 1,
                                    "optimizer": {"name": "sgd", "lr": 1e20}})
    run = train(window, qtbot)
    plots = ui.dock_widget.plots
    _, y = plots.curves[(run.number, "raw")].getData()
    assert run.status == "failed" and np.isfinite(y).sum() == 1  # the loss of step 1 (step 2's is not finite)
    for part in ("raw", "train"):
        assert plots.curves[(run.number, part)].opts["symbol"] == "o"
    plots._set([1.0, 2.0, 3.0], [1.0, 0.5, 0.4], "loss", (run.number, "raw"), None)  # more finite points
    assert plots.curves[(run.number, "raw")].opts["symbol"] is None


def test_bad_settings_and_invalid_graphs_are_refused_with_the_reason(window, qtbot):
    ui = open_graph(window, *digits_mlp({"epochs": 1}))
    lr = widget(ui, "optimizer.lr")
    lr.setText("-1")
    lr.editingFinished.emit()
    assert "optimizer" not in window.doc.graph.training  # not stored
    assert "must be above 0" in ui.dock_widget.settings.message.text()
    assert lr.text() == "0.001"
    window.doc.edit("break", lambda g: g.disconnect(g.edges[0]))
    qtbot.mouseClick(ui.dock_widget.start_button, LEFT)
    assert ui.controller.current is None
    assert "error" in ui.dock_widget.status.text()
    window.doc.undo_stack.undo()
    open_graph(window, *digits_mlp({"data": {"dataset": "moons"}, "epochs": 1}))
    run = train(window, qtbot)  # moons points do not fit a 64-value Input: the engine says so
    assert run.status == "failed" and "Input 'x'" in run.error


def test_health_marks_belong_to_the_top_level_graph(window, qtbot):
    """Inside an opened composite (whose nodes may reuse top-level ids) the marks come off; they return
    when the canvas goes back to the graph they were measured on."""
    from engine.composites import collapse

    g, training = digits_mlp()
    block = collapse(g, ["hidden", "relu"], "HiddenBlock", "block")
    ui = open_graph(window, g, training)
    run = train(window, qtbot)
    assert run.status == "finished", run.error
    assert block in ui.health.marks and ui.health.legend.isVisibleTo(window)
    assert window.canvas.open_composite(block)
    QtWidgets.QApplication.processEvents()
    assert ui.health.marks == {} and not ui.health.legend.isVisibleTo(window)
    window.canvas.close_scope()
    QtWidgets.QApplication.processEvents()
    assert block in ui.health.marks
    assert ui.health.marks[block].parentItem() is window.canvas.node_item(block)


def test_runs_of_another_network_step_aside_and_its_gradient_curves_go(window, qtbot):
    """A run of another file or template hides the earlier runs (they stay in the list, unticked) and
    the gradient plot shows only the new network's layers."""
    ui = open_graph(window, *digits_mlp())
    first = train(window, qtbot)
    plots = ui.dock_widget.plots
    assert {k[1] for k in plots.curves if k[0] == "grad"} == {"hidden", "head"}
    other = engine.Graph("another MLP")
    nodes = [other.add_node("Input", "x", {"shape": [64]}), other.add_node("Linear", "wide", {"out_features": 16}),
             other.add_node("Tanh", "act"), other.add_node("Linear", "last", {"out_features": 10}),
             other.add_node("Output", "logits")]
    graphs.chain(other, nodes)
    target, ce = other.add_node("Target", "label"), other.add_node("CrossEntropyLoss", "ce")
    other.connect(nodes[-1].id, "out", ce.id, "pred")
    other.connect(target.id, "out", ce.id, "target")
    ui = open_graph(window, other, {"epochs": 1, "batch_size": 64})
    second = train(window, qtbot)
    assert not first.visible and second.visible
    assert second.label == "run 2: first run of another MLP"  # not compared with a run of another graph
    runs = ui.dock_widget.runs
    assert [runs.item(i).checkState() for i in range(runs.count())] == [QtCore.Qt.CheckState.Checked,
                                                                         QtCore.Qt.CheckState.Unchecked]
    qtbot.waitUntil(lambda: plots.point_count(first, "train") == 0, timeout=5000)
    assert plots.point_count(second, "train") > 0
    assert {k[1] for k in plots.curves if k[0] == "grad"} == {"wide", "last"}
    assert sorted(label.text for _, label in plots.grad_legend.items) == ["last", "wide"]


def test_export_offers_the_newest_run_that_did_not_fail_first(window, qtbot):
    ui = open_graph(window, *digits_mlp({"epochs": 1, "batch_size": 64}))
    good = train(window, qtbot)
    lr = widget(ui, "optimizer.lr")
    lr.setText("1e20")
    lr.editingFinished.emit()
    bad = train(window, qtbot)
    assert (good.status, bad.status) == ("finished", "failed")
    dialog = ui.open_export()
    qtbot.addWidget(dialog)
    items = [dialog.weights.itemText(i) for i in range(dialog.weights.count())]
    assert items[0].startswith("trained: run 1 (finished") and items[1].startswith("trained: run 2 (failed")
    assert items[-1].startswith("initial weights")
    dialog.close()


def test_the_x_axis_grows_with_the_run_in_a_few_steps():
    from gui.training.plots import LivePlots

    span = LivePlots._span
    assert [span(1000, s) for s in (0, 100, 120, 230, 400, 480, 600, 1000)] == \
        [125, 125, 250, 250, 500, 1000, 1000, 1000]
    assert span(3, 0) == 1 and span(0, 0) == 1  # a tiny plan: no fractions of an epoch


def test_the_cores_the_window_has_are_its_affinity_where_it_is_pinned(monkeypatch):
    """Pinned to fewer cores than the machine has (taskset, a container's cpuset), a CPU run on all of
    them shares them with the window: the window counts the cores it may use, not the machine's."""
    import os

    from gui.training import controller
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert controller.usable_cores() == 1

    def no_affinity(pid):
        raise OSError("not here")
    monkeypatch.setattr(os, "sched_getaffinity", no_affinity, raising=False)
    assert controller.usable_cores() == (os.cpu_count() or 1)


def test_log_axes_label_only_the_ticks_they_have_room_for(qtbot):
    """pyqtgraph labels each of 2..9 in a decade on a log axis; over a decade and a half in a small plot
    the labels ran into each other (the gradient-norm plot)."""
    from PySide6 import QtGui

    from gui.training.plots import LogAxis
    axis = LogAxis("left")
    axis.setLogMode(False, True)
    height = QtGui.QFontMetricsF(axis.style.get("tickFont") or axis.font()).height()
    for lo, hi, size in ((-1.4, 0.3, 100), (-1.4, 0.3, 400), (-0.3, -0.05, 100), (-3.0, 0.5, 80)):
        ticks = sorted(v for _, values in axis.tickValues(lo, hi, size) for v in values)
        assert ticks, (lo, hi, size)
        gaps = np.diff(ticks) * size / (hi - lo)
        assert (gaps >= height).all(), (lo, hi, size, [round(10 ** v, 3) for v in ticks])
    # ... and where there is room, the in-between values are kept
    ticks = [round(10 ** v, 3) for _, values in axis.tickValues(-1.4, 0.3, 100) for v in values]
    assert {0.05, 0.1, 0.2, 0.5, 1.0} <= set(ticks)


def test_the_first_points_are_drawn_soon_after_a_run_starts(window, qtbot):
    """The plots' redraw interval follows what an update costs; making the curves at the start costs once
    and must not hold back the first points (it held them back for seconds)."""
    ui = open_graph(window, *digits_mlp({"epochs": 20, "batching": "stochastic"}))
    qtbot.mouseClick(ui.dock_widget.start_button, LEFT)
    run = ui.controller.current
    plots = ui.dock_widget.plots
    qtbot.waitUntil(lambda: run.step > 0, timeout=RUN_TIMEOUT)
    qtbot.waitUntil(lambda: plots.point_count(run, "raw") > 0, timeout=1500)
    assert not run.done
    qtbot.mouseClick(ui.dock_widget.stop_button, LEFT)
    qtbot.waitUntil(lambda: run.done, timeout=RUN_TIMEOUT)


def test_confusion_matrix_labels_stand_upright_only_when_they_would_overlap(qtbot):
    from engine.training.datasets import TAGS
    from gui.training.results import MARGIN_TOP, ConfusionMatrix

    for labels, upright in [(TAGS, True), ([str(d) for d in range(10)], False), (["cat", "dog"], False)]:
        w = ConfusionMatrix()
        qtbot.addWidget(w)
        w.resize(300, 260)
        w.set_matrix(np.eye(len(labels), dtype=int) * 5, labels)
        k, ml, mt, side = w._geometry()
        assert (mt > MARGIN_TOP) == upright, labels
        assert mt + k * side <= w.height()  # the matrix still fits below its labels
        w.grab()  # paints


def test_the_y_ranges_follow_the_curves_as_they_grow_and_when_their_data_is_replaced(qtbot):
    """The plots keep each curve's range from its new points only (a long run's history is not rescanned
    at every update); data that replaces a curve's (shorter, or after the x axis changed) is scanned anew."""
    import math

    from gui.training.controller import RunController
    from gui.training.plots import LivePlots

    plots = LivePlots(RunController())
    qtbot.addWidget(plots)
    y = np.array([3.0, np.nan, 2.0, 0.5])
    plots._set(np.arange(4.0), y, "loss", (1, "raw"), None)
    plots._set(np.arange(3.0), np.array([0.1, 0.01, 0.2]), "lr", (1, "lr"), None)
    assert plots._data_range("loss", False) == (0.5, 3.0)
    assert np.allclose(plots._data_range("loss", True), (math.log10(0.5), math.log10(3.0)))
    plots._set(np.arange(7.0), np.append(y, [-1.0, 10.0, np.inf]), "loss", (1, "raw"), None)  # grown
    assert plots._data_range("loss", False) == (-1.0, 10.0)
    assert np.allclose(plots._data_range("loss", True), (math.log10(0.5), 1.0))  # (no log of -1)
    plots._set(np.arange(2.0), np.array([5.0, 6.0]), "loss", (1, "raw"), None)  # replaced by a shorter series
    assert plots._data_range("loss", False) == (5.0, 6.0)
    assert plots._data_range("lr", False) == (0.01, 0.2)  # another plot's curve is its own
    plots.set_x_mode("epoch")  # every curve gets other data: ranges from scratch
    plots._set(np.arange(3.0), np.array([7.0, 8.0, 9.0]), "loss", (1, "raw"), None)
    assert plots._data_range("loss", False) == (7.0, 9.0)
    plots._set([], [], "loss", (1, "raw"), None)
    assert plots._data_range("loss", False) == (None, None)


def test_per_epoch_curves_mark_their_points_until_the_marks_would_crowd_the_line(qtbot):
    from gui.training.controller import RunController
    from gui.training.plots import MARKED_POINTS, LivePlots, _pen

    plots = LivePlots(RunController())
    qtbot.addWidget(plots)
    key = (1, "dev_accuracy")
    for n, symbol in [(3, "o"), (MARKED_POINTS, "o"), (MARKED_POINTS + 1, None)]:
        x = np.arange(1.0, n + 1)
        plots._set(x, x / (n + 1), "acc", key, _pen("#4c9aff"), None, "o", "#4c9aff")
        assert plots.curves[key].opts["symbol"] == symbol, n
    plots.set_x_mode("epoch")  # (other data for every curve; a short one is marked again)
    plots._set(np.arange(1.0, 4), np.array([0.2, 0.5, 0.7]), "acc", key, _pen("#4c9aff"), None, "o", "#4c9aff")
    assert plots.curves[key].opts["symbol"] == "o"


def test_token_examples_read_as_text_around_what_matters():
    """A sequence of token ids as its vocabulary's text: its end where it runs on (what a next-character
    model answers from), line breaks shown, padding dropped; with a position, the text around it."""
    from types import SimpleNamespace

    from gui.training.images import describe

    vocab = ["\0", "a", "b", "\n", " "]
    chars = SimpleNamespace(kind="tokens", meta={"vocab": vocab})
    ids = np.array([1, 2, 3, 1, 4, 2] * 5 + [0, 0], dtype=np.int64)
    text = "".join(vocab[i] for i in ids[:-2]).replace("\n", "↵")
    assert describe(ids, chars, 12) == "…" + text[-11:] and len(describe(ids, chars, 12)) == 12
    assert describe(ids[:5], chars, 12) == "ab↵a "
    words = SimpleNamespace(kind="tokens", meta={})
    sentence = np.array([11, 12, 13, 14, 15, 16, 17, 0, 0], dtype=np.int64)
    assert describe(sentence, words, 40) == "11 12 13 14 15 16 17"
    assert describe(sentence, words, 15, mark=3) == "…12 13 [14] 15…"  # (15 characters at most)
    assert describe(sentence, words, 40, mark=0) == "[11] 12 13 14 15 16 17"


def test_legends_move_off_the_newest_points_and_take_columns_to_fit(qtbot):
    """A legend left at the top right hid the curves' newest points once a run reached the axis's end
    (the gradient norms, a flat loss), and three runs' train and dev entries ran past a small plot."""
    from gui.training.controller import RunController
    from gui.training.plots import LivePlots, _pen

    plots = LivePlots(RunController())
    qtbot.addWidget(plots)
    plots.resize(900, 420)
    plots.show()
    qtbot.waitExposed(plots)
    box = plots.loss.getViewBox()

    def draw(y, runs=1):  # (a curve given as many points as before keeps its data: each call adds one)
        for n in range(1, runs + 1):
            plots._set(np.linspace(0, 100, len(y)), y, "loss", (n, "train"), _pen("#4c9aff"), f"run {n} train")
        plots.loss.setXRange(0, 100, padding=0)
        plots.loss.setYRange(0, 1, padding=0)
        plots._place_legends()
        QtWidgets.QApplication.processEvents()

    def hidden() -> float:  # the curves' last fifth under the legend
        rect = box.mapSceneToView(plots.loss_legend.sceneBoundingRect()).boundingRect()
        return plots._hidden_under("loss", QtCore.QRectF(80, rect.top(), 20, rect.height()))

    x = np.arange(0.0, 101)
    draw(0.95 - 0.9 * x / 100)  # a falling loss: the top right is free, and the legend stays there
    corner = plots.loss_legend.sceneBoundingRect().center()
    assert corner.x() > box.sceneBoundingRect().center().x() and corner.y() < box.sceneBoundingRect().center().y()
    draw(np.full(102, 0.9))  # a flat loss along the top: the legend goes to the bottom
    assert plots.loss_legend.sceneBoundingRect().center().y() > box.sceneBoundingRect().center().y()
    assert hidden() == 0
    draw(0.5 + 0.45 * np.sin(np.arange(103) / 5), runs=12)  # curves everywhere, twelve entries: in columns
    assert plots.loss_legend.columnCount > 1
    assert box.sceneBoundingRect().contains(plots.loss_legend.sceneBoundingRect())


def shown_plots(qtbot, height: int = 700):
    """The live plots on their own, shown at the size they have in the window, with no run."""
    from gui.training.controller import RunController
    from gui.training.plots import LivePlots

    plots = LivePlots(RunController())
    qtbot.addWidget(plots)
    plots.resize(900, height)
    plots.show()
    qtbot.waitExposed(plots)
    return plots


def test_a_long_noisy_curve_draws_each_pixel_columns_extremes_and_no_more(qtbot):
    """A one-example-per-step run's raw loss is a band of noise: drawn as each pixel column's lowest and
    highest point (peak downsampling at one bin a pixel), not the ten points a pixel pyqtgraph draws by
    default (5,300 points for 14,000 steps, a quarter of the window's time during such a run)."""
    plots = shown_plots(qtbot)
    n = 200_000
    y = np.random.default_rng(0).exponential(1.0, n)
    plots.loss.setXRange(0, n, padding=0)
    plots._set(np.arange(1.0, n + 1), y, "loss", (1, "raw"), None)
    qtbot.wait(50)  # (the view's range and size settle)
    plots._set(np.arange(1.0, n + 2), np.append(y, 1.0), "loss", (1, "raw"), None)
    x_shown, y_shown = plots.curves[(1, "raw")].getData()
    width = plots.loss.getViewBox().width()
    assert width > 100
    assert len(x_shown) <= 2 * (width + 4), (len(x_shown), width)
    assert y_shown.max() == y.max() and y_shown.min() == y.min()  # the extremes are all still there


def test_curves_made_ahead_of_a_run_repaint_nothing(qtbot):
    """A run's curves are made while it is set up, hidden: made shown and then hidden, each marked its
    rectangle (all of its plot) for a repaint, and with runs kept on the plots each such repaint drew all
    of their curves again (six a run, in its first second)."""
    from gui.training.plots import _pen

    plots = shown_plots(qtbot)
    for plot in (plots.loss, plots.lr):
        plot.setXRange(0, 100, padding=0)
        plot.setYRange(0, 2.5, padding=0)
    plots._set(np.arange(1.0, 101), np.linspace(2.0, 0.1, 100), "loss", (1, "train"), _pen("#4c9aff"), "run 1 train")
    qtbot.wait(100)  # (drawn)
    paints = []
    plots.view.on_paint = paints.append
    for key, plot in [((2, "raw"), "loss"), ((2, "train"), "loss"), ((2, "lr"), "lr")]:
        plots._curve(plot, key, _pen("#f0508c"), None, hidden=True)
        plots._unshown[key] = None
    qtbot.wait(100)
    assert not paints and not any(plots.curves[(2, k)].isVisible() for k in ("raw", "train", "lr"))
    plots._set(np.arange(1.0, 11), np.linspace(2.0, 1.0, 10), "loss", (2, "train"), _pen("#f0508c"), "run 2 train")
    qtbot.wait(100)
    assert paints and plots.curves[(2, "train")].isVisible()  # (shown with its first points)


def test_a_curves_marks_keep_their_rectangle_until_their_data_or_the_view_changes(qtbot, monkeypatch):
    """Qt asks each item for its rectangle several times a paint, and pyqtgraph's scatter (a curve's marks)
    works it out in Python each time: with 15 runs kept, their marked per-epoch curves took more than half
    of each repaint of the plots. The rectangle is kept (MarkScatter), and worked out again, the same as
    pyqtgraph's, when the marks' data, the view's range or the plot's size change."""
    import pyqtgraph as pg

    from gui.training.plots import _pen

    plots = shown_plots(qtbot)
    plots.acc.setXRange(0, 10, padding=0)
    plots.acc.setYRange(0, 1, padding=0)
    key, pen = (1, "dev_accuracy"), _pen("#4c9aff", 2.0, dash=True)
    plots._set(np.arange(1.0, 6), np.linspace(0.2, 0.6, 5), "acc", key, pen, None, "o", "#4c9aff")
    qtbot.wait(50)
    scatter = plots.curves[key].scatter
    worked_out = pg.ScatterPlotItem.boundingRect
    assert scatter.isVisible() and len(scatter.data) == 5
    assert scatter.boundingRect() == worked_out(scatter) and worked_out(scatter).width() > 4
    calls = []
    monkeypatch.setattr(pg.ScatterPlotItem, "boundingRect", lambda self: calls.append(self) or worked_out(self))
    plots.view.viewport().repaint()
    assert scatter not in calls  # (painted with the rectangle it kept)
    plots._set(np.arange(1.0, 8), np.linspace(0.2, 0.9, 7), "acc", key, pen, None, "o", "#4c9aff")
    assert scatter.boundingRect() == worked_out(scatter)  # new points
    plots.acc.setXRange(0, 40, padding=0)
    qtbot.wait(20)
    assert scatter.boundingRect() == worked_out(scatter)  # another range: the marks' pixels in other units
    plots.resize(500, 400)
    qtbot.wait(50)
    assert scatter.boundingRect() == worked_out(scatter)  # another size: the same


def curve_twins(plot, x, y, symbol=None) -> list:
    """A RunCurve and pyqtgraph's own curve, with the same data and the live plots' options, in ``plot``."""
    import pyqtgraph as pg

    from gui.training.plots import DOWNSAMPLE_FACTOR, RunCurve, _pen

    pen = _pen("#4c9aff")
    twins = []
    for kind in (RunCurve, pg.PlotDataItem):
        item = kind(pen=pen, symbol=symbol, symbolPen=pen, autoDownsampleFactor=DOWNSAMPLE_FACTOR)
        item.setClipToView(True)
        item.setDownsampling(auto=True, method="peak")
        plot.addItem(item)
        item.setData(x, y)
        twins.append(item)
    return twins


def test_a_curve_does_its_points_over_only_when_a_change_of_range_changes_what_it_shows(qtbot, monkeypatch):
    """pyqtgraph works out the points a curve shows (clipped to the view, downsampled to its width) again
    at every change of the view's range, x or y, and gives them to the line and the marks: with 25 runs
    kept, the x axis's refit at a run's end took 90 ms. A RunCurve keeps its points where they would come
    out the same. Checked against pyqtgraph's own curve in the same view, through a walk of ranges:
    the same points shown after each change, and work skipped where nothing changed."""
    from gui.training.plots import DOWNSAMPLE_FACTOR, RunCurve

    plots = shown_plots(qtbot)
    plot = plots.loss
    plot.getAxis("left").setWidth(48)  # (the view's width in pixels, which the downsampling step follows,
    # then stays the same whatever the tick labels of a y range)
    rng = np.random.default_rng(3)
    pairs = []
    for n, symbol in ((4000, None), (25, "o"), (1, None)):
        x = np.arange(1.0, n + 1) * (1 if n > 100 else 160)
        y = np.exp(-x / 3000) + 0.05 * rng.random(n) + 0.01
        pairs.append(curve_twins(plot, x, y, symbol))
    qtbot.wait(50)  # (laid out with the axis's width)
    done = []
    original = RunCurve.updateItems
    monkeypatch.setattr(RunCurve, "updateItems", lambda self, *a, **k: done.append(self) or original(self, *a, **k))
    mid = pairs[0][1]._datasetMapped.dataRect().center().y()  # (in the plot's units: a log scale's too)
    # x spans the long curve's 4000 points wholly, at a downsampling step of 10 (its points a pixel)
    a, b = (round(plot.getViewBox().width() * DOWNSAMPLE_FACTOR * k) for k in (10.3, 10.7))
    assert 4000 < a < b
    walk = [((0, a), (0, 1.2)), ((0, a), (0, 0.8)), ((0, a), (0.2, 3.0)),  # y only
            ((0, b), (0.2, 3.0)), ((-10, a), (0.2, 3.0)),  # the x axis refit: everything still inside
            ((1000, 2000), (0.2, 3.0)), ((1500, 2500), (0.2, 3.0)),  # zoomed in and panned: clipped
            ((-50000, 90000), (0, 2)), ((-60000, 95000), (0, 2)),  # zoomed out: downsampled
            ((0, a), (mid, mid + 1e-7))]  # a y range a million times narrower than the data: cut
    for xr, yr in walk:
        done.clear()
        plot.setXRange(*xr, padding=0)
        plot.setYRange(*yr, padding=0)
        qtbot.wait(5)
        for ours, theirs in pairs:
            for a, b in zip(ours.getData(), theirs.getData()):
                np.testing.assert_array_equal(a, b)
            if ours.opts["symbol"]:
                np.testing.assert_array_equal(ours.scatter.getData()[0], theirs.scatter.getData()[0])
        if (xr, yr) in walk[1:5]:
            assert not done, (xr, yr)  # (each curve lies wholly inside the view, at the same step)
        if (xr, yr) in (walk[5], walk[6], walk[7], walk[9]):
            assert pairs[0][0] in done, (xr, yr)  # (the long curve's clip, step or cut changed)


def test_curves_whose_points_a_change_of_range_made_stale_are_done_again_in_slices(qtbot, monkeypatch):
    """With many runs kept, a change of the x range that changes every long curve's downsampling step (a
    run's end) was all of their points worked out again at once (20-80 ms with 25 runs). Beyond a slice
    of time, the rest wait for the next turns of the event loop: each shows its former points meanwhile,
    gives its new ones when asked, and all end up as pyqtgraph's own curves show them."""
    from gui.training import plots as module
    from gui.training.plots import REFITS

    plots = shown_plots(qtbot)
    plot = plots.loss
    pairs = []
    for i in range(12):
        x = np.arange(1.0, 3001)
        y = np.exp(-x / (500 + 100 * i)) + 0.01
        pairs.append(curve_twins(plot, x, y))
    plot.getAxis("left").setWidth(48)  # (the view's width, which the step follows, fixed: see above)
    plot.setXRange(0, 3200, padding=0)
    qtbot.wait(50)
    qtbot.waitUntil(lambda: not REFITS.pending)
    monkeypatch.setattr(module._Refits, "SLICE", 0.0)  # (no time for any at once: all wait)
    before = [ours.curve.xData.copy() for ours, _ in pairs]
    plot.setXRange(0, 30000, padding=0)  # (a downsampling step ten times larger)
    assert set(REFITS.pending) == {ours for ours, _ in pairs}
    assert all(np.array_equal(ours.curve.xData, b) for (ours, _), b in zip(pairs, before))  # (shown as they were)
    plots.view.viewport().repaint()  # (painted meanwhile: fine)
    first, theirs = pairs[0]
    for a, b in zip(first.getData(), theirs.getData()):  # asked for: done at once
        np.testing.assert_array_equal(a, b)
    assert first not in REFITS.pending
    x, _ = pairs[1][0].points_for_layout()  # (a legend's placement: all of its points, no refit now)
    assert len(x) == 3000 and pairs[1][0] in REFITS.pending
    qtbot.waitUntil(lambda: not REFITS.pending)
    for ours, theirs in pairs:
        for a, b in zip(ours.getData(), theirs.getData()):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ours.curve.xData, theirs.curve.xData)


def test_legend_entries_are_kept_as_pictures_and_redrawn_when_their_curves_marks_change(qtbot):
    """pyqtgraph paints each legend entry in Python at every repaint of the legend's corner, which a running
    run's curves pass under; the entries are kept as pictures (Qt's item cache), and a sample's picture is
    drawn again when its curve's marks change (a dev curve loses them beyond MARKED_POINTS points)."""
    from gui.training.plots import KEPT_CACHE, LIVE_CACHE, MARKED_POINTS, _pen

    plots = shown_plots(qtbot)
    plots.loss.setXRange(0, 40, padding=0)
    plots.loss.setYRange(0, 2.5, padding=0)
    key, pen = (1, "dev"), _pen("#f0508c", 2.0, dash=True)
    plots._set(np.arange(1.0, 6), np.linspace(2.0, 1.5, 5), "loss", key, pen, "run 1 dev", "o", "#f0508c")
    qtbot.wait(50)
    [(sample, label)] = plots.loss_legend.items
    assert sample.cacheMode() == KEPT_CACHE and label.item.cacheMode() == KEPT_CACHE

    def looks():
        return plots.view.grab(plots.view.mapFromScene(sample.sceneBoundingRect()).boundingRect()).toImage()

    marked = looks()
    n = MARKED_POINTS + 2
    plots._set(np.arange(1.0, n + 1), np.linspace(2.0, 0.5, n), "loss", key, pen, "run 1 dev", "o", "#f0508c")
    qtbot.wait(50)
    assert plots.curves[key].opts["symbol"] is None
    unmarked = looks()
    assert unmarked != marked  # (the picture was drawn again)
    sample.setCacheMode(LIVE_CACHE)
    assert looks() == unmarked  # (the same pixels as drawn anew)


def test_a_plots_auto_range_from_its_menu_still_follows_the_data(qtbot):
    """The view boxes skip pyqtgraph's refit-at-the-next-paint while auto-range is off (the plots fit their
    ranges themselves); switched on from a plot's menu ("View All"), it follows the data as before."""
    from gui.training.plots import _pen

    plots = shown_plots(qtbot)
    plots.lr.setXRange(0, 10, padding=0)
    plots._set(np.arange(1.0, 101), np.linspace(0.1, 0.2, 100), "lr", (1, "lr"), _pen("#4c9aff"))
    qtbot.wait(50)
    assert plots.lr.getViewBox().viewRange()[0][1] == 10  # (off: left alone)
    plots.lr.getViewBox().enableAutoRange()
    plots._set(np.arange(1.0, 301), np.linspace(0.1, 0.2, 300), "lr", (1, "lr"), _pen("#4c9aff"))
    qtbot.waitUntil(lambda: plots.lr.getViewBox().viewRange()[0][1] >= 300, timeout=2000)


def test_a_curves_new_points_are_painted_though_the_view_box_no_longer_repaints_itself(qtbot):
    """Without the view box's own repaint (QuietViewBox), a curve's new points still reach the screen: the
    curve has Qt repaint what it covers, and the paint that follows covers where its new points are."""
    from gui.training.plots import _pen

    plots = shown_plots(qtbot)
    plots.lr.setXRange(0, 100, padding=0)
    plots.lr.setYRange(0, 1, padding=0)
    plots._set(np.arange(0.0, 50), np.full(50, 0.2), "lr", (1, "lr"), _pen("#f0508c", 3.0))
    qtbot.wait(100)
    box = plots.lr.getViewBox()
    right = box.mapViewToScene(QtCore.QRectF(60, 0.5, 35, 0.45)).boundingRect()  # where the new points go
    area = plots.view.mapFromScene(right).boundingRect()
    assert area.width() > 50 and area.height() > 30

    class Painted(QtCore.QObject):  # the regions the screen is repainted in
        def __init__(self):
            super().__init__()
            self.regions: list[QtGui.QRegion] = []

        def eventFilter(self, obj, event):
            if event.type() == QtCore.QEvent.Type.Paint:
                self.regions.append(QtGui.QRegion(event.region()))
            return False

    painted = Painted()
    plots.view.viewport().installEventFilter(painted)
    plots._set(np.arange(0.0, 100), np.r_[np.full(50, 0.2), np.full(50, 0.7)], "lr", (1, "lr"), _pen("#f0508c", 3.0))
    qtbot.waitUntil(lambda: any(r.contains(area) for r in painted.regions), timeout=2000)
    image = plots.view.grab(area).toImage()
    assert len({image.pixelColor(x, y).name() for x in range(image.width()) for y in range(image.height())}) > 1


def test_the_first_runs_imports_go_without_the_garbage_collector_which_comes_back_after(qapp, monkeypatch):
    """The window imports what training needs (about 800 modules) in the UI thread, behind a busy
    cursor; with the collector on, the growing heap set off seven full collections in them (0.9 s of a
    4.2 s wait). It is off while they run and on again after, also when an import fails; the heap they
    made is frozen (out of later collections' sight)."""
    import gc

    from gui.training import warmup

    seen, frozen = [], []
    fail = {"deepcanvas_test_missing_b"}

    def fake_import(name):
        seen.append((name, gc.isenabled()))
        if name in fail:
            raise ImportError(name)

    monkeypatch.setattr(warmup.importlib, "import_module", fake_import)
    monkeypatch.setattr(warmup.gc, "freeze", lambda: frozen.append(gc.isenabled()))
    assert gc.isenabled()
    assert warmup.ensure_imported(("deepcanvas_test_missing_a",), optional=("deepcanvas_test_missing_b",))
    assert seen == [("deepcanvas_test_missing_a", False), ("deepcanvas_test_missing_b", False)]
    assert frozen == [False] and gc.isenabled()
    fail.add("deepcanvas_test_missing_a")
    with pytest.raises(ImportError):
        warmup.ensure_imported(("deepcanvas_test_missing_a",), optional=())
    assert gc.isenabled() and frozen == [False, False]
    assert QtWidgets.QApplication.overrideCursor() is None


def test_closing_the_window_during_a_run_asks_first(window, qtbot):
    from gui.training.ui import STOP_AND_CLOSE

    ui = open_graph(window, *digits_mlp({"epochs": 50, "batching": "stochastic"}))
    window.doc.undo_stack.setClean()  # (saved: the only question is about the run)
    qtbot.mouseClick(ui.dock_widget.start_button, LEFT)
    run = ui.controller.current
    qtbot.waitUntil(lambda: run.step >= 5, timeout=RUN_TIMEOUT)
    asked = []
    window.ask = lambda title, text, buttons: asked.append((title, text, buttons)) or "Cancel"
    assert not window.close()
    assert window.isVisible() and not run.done and ui.controller.running
    [(title, text, buttons)] = asked
    assert title == "A run is training" and f"Run {run.number} is training (epoch 1 of 50)" in text
    assert "final.pt" in text and buttons == [STOP_AND_CLOSE, "Cancel"]
    window.ask = lambda title, text, buttons: STOP_AND_CLOSE
    assert window.close()
    # stopped: its checkpoint written (the closed window no longer drains the run's events)
    qtbot.waitUntil(lambda: (Path(run.run_dir) / "final.pt").is_file(), timeout=RUN_TIMEOUT)
    assert not ui.controller.job.alive


def test_the_learning_rate_is_drawn_as_the_schedule_set_it(window, qtbot):
    """Constant through each epoch, dropping at the epochs' ends (a step schedule), never the rate after the
    schedule's last step (which no step used); against steps and against epochs."""
    ui = open_graph(window, *digits_mlp({"epochs": 3, "batch_size": 64, "optimizer": {"lr": 0.05},
                                         "schedule": {"name": "step", "step_size": 1, "gamma": 0.1}}))
    run = train(window, qtbot)
    assert run.status == "finished", run.error
    per = run.info.steps_per_epoch
    plots = ui.dock_widget.plots
    x, y = plots.curves[(run.number, "lr")].getData()
    assert list(x) == [0, per, per, 2 * per, 2 * per, 3 * per]
    assert plots._log("lr")  # (a hundredfold decay: drawn on a log scale, so y is in log10 units)
    np.testing.assert_allclose(10 ** y, [0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005])
    plots.set_x_mode("epoch")
    qtbot.waitUntil(lambda: list(plots.curves[(run.number, "lr")].getData()[0]) == [0, 1, 1, 2, 2, 3], timeout=5000)
    plots.set_x_mode("step")
    # On a log x axis (the plot's menu) the first epoch's rate starts at the axis's start, step 1: at
    # step 0 (log10: -inf) pyqtgraph dropped it, and the curve began at the second epoch.
    ui.dock_widget.tabs.setCurrentIndex(0)  # (the Curves tab, where the plot's menu is)
    plots.lr.ctrl.logXCheck.setChecked(True)
    qtbot.waitUntil(lambda: plots.curves[(run.number, "lr")].getData()[0][0] == 0.0, timeout=5000)
    x, y = plots.curves[(run.number, "lr")].getData()
    assert np.isfinite(x).all() and np.allclose(10 ** x, [1, per, per, 2 * per, 2 * per, 3 * per])
    (x0, x1), _ = plots.lr.getViewBox().viewRange()
    assert x0 <= 0 and x1 >= np.log10(3 * per)
    plots.lr.ctrl.logXCheck.setChecked(False)
    qtbot.waitUntil(lambda: plots.curves[(run.number, "lr")].getData()[0][0] == 0.0, timeout=5000)
    assert list(plots.curves[(run.number, "lr")].getData()[0]) == [0, per, per, 2 * per, 2 * per, 3 * per]


def test_a_run_stopped_mid_epoch_draws_its_rate_to_its_last_step(window, qtbot):
    ui = open_graph(window, *digits_mlp({"epochs": 20, "batching": "stochastic", "optimizer": {"lr": 0.01}}))
    qtbot.mouseClick(ui.dock_widget.start_button, LEFT)
    run = ui.controller.current
    qtbot.waitUntil(lambda: run.step >= 20, timeout=RUN_TIMEOUT)
    qtbot.mouseClick(ui.dock_widget.stop_button, LEFT)
    qtbot.waitUntil(lambda: run.done, timeout=RUN_TIMEOUT)
    qtbot.wait(4 * STAGGER_MS)
    x, y = ui.dock_widget.plots.curves[(run.number, "lr")].getData()
    per = run.info.steps_per_epoch
    assert x[-1] == run.step and x[-2] == (run.epoch - 1) * per and y[-1] == y[-2] == 0.01


def test_removing_the_run_shown_shows_the_newest_run_kept_or_nothing(window, qtbot):
    ui = open_graph(window, *digits_mlp({"epochs": 1, "batch_size": 64}))
    first = train(window, qtbot)
    second = train(window, qtbot)
    dock = ui.dock_widget
    assert dock.focus is second and dock.results.run is second and ui.health.run is second
    ui.controller.remove(second)
    qtbot.waitUntil(lambda: dock.results.run is first, timeout=5000)
    assert dock.focus is first and ui.health.run is first
    assert dock.runs.currentItem().data(QtCore.Qt.ItemDataRole.UserRole) == first.number
    ui.controller.remove(first)
    qtbot.wait(4 * STAGGER_MS)
    assert dock.focus is None and dock.results.run is None and ui.health.run is None
    assert "Results appear here" in dock.results.summary.text()
    assert not ui.health.legend.isVisible()
    third = train(window, qtbot)  # (and the next run is numbered after both)
    assert third.number == 3 and dock.results.run is third


def test_a_runs_folder_can_be_opened_or_its_path_copied_from_the_runs_list(window, qtbot, monkeypatch):
    """The app keeps a session's runs in a folder of its own: the list says where, and opens it."""
    ui = open_graph(window, *digits_mlp({"epochs": 1, "batch_size": 64}))
    run = train(window, qtbot)
    runs = ui.dock_widget.runs
    item = runs.item(0)
    assert run.run_dir and f"Files: {run.run_dir}" in item.toolTip()
    opened = []
    monkeypatch.setattr(QtGui.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))

    def choose(text):
        next(a for a in runs.run_menu(run).actions() if a.text() == text).trigger()
    choose("Copy Folder Path")
    assert QtWidgets.QApplication.clipboard().text() == run.run_dir
    choose("Open Run Folder")
    assert opened == [run.run_dir] and (Path(run.run_dir) / "final.pt").is_file()
    choose("Remove run")
    assert run not in ui.controller.runs
