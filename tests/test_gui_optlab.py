"""The optimizer lab window under pytest-qt (offscreen): opened from the main window's menu, the surface
playground runs, pauses, restarts from a clicked start point; the comparison on the canvas's network
runs to the end, stops on request, saves its files and reports what cannot run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

import graphs
from engine import optlab
from engine.training import set_training_defaults

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def window(qtbot, tmp_path):
    from gui.document import Document
    from gui.mainwindow import MainWindow

    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings, tmp_path / "autosave")
    g = graphs.mlp(2, 16, 2)
    set_training_defaults(g, data__dataset="xor", data__options={"samples": 160}, epochs=3, batch_size=32)
    w.set_document(Document(g))
    w.resize(1200, 800)
    w.show()
    QTest.qWaitForWindowExposed(w)
    yield w
    lab = getattr(w, "optimizer_lab", None)
    if lab is not None:
        lab.close()
    w.doc.undo_stack.setClean()
    w.close()
    w.deleteLater()


def open_lab(w, qtbot):
    action = next(a for m in w.menuBar().actions() if m.menu() for a in m.menu().actions()
                  if a.objectName() == "action_optimizer_lab")
    assert action.text().replace("&", "") == "Optimizer Lab…"
    action.trigger()
    lab = w.optimizer_lab
    QTest.qWaitForWindowExposed(lab)
    return lab


def test_surface_playground_runs_pauses_and_restarts(window, qtbot):
    lab = open_lab(window, qtbot)
    s = lab.surface
    assert s.surface.key == "quadratic" and s.steps_taken() == 0
    for key, card in s.cards.items():  # every method shows its textbook rule
        assert card.rule.text() == optlab.METHODS[key].rule and card.rule.isVisible()
    s.speed.setValue(600)
    qtbot.mouseClick(s.run_button, QtCore.Qt.MouseButton.LeftButton)
    assert s.running and s.run_button.text() == "Pause"
    qtbot.waitUntil(lambda: s.steps_taken() >= 20, timeout=10_000)
    qtbot.mouseClick(s.run_button, QtCore.Qt.MouseButton.LeftButton)
    assert not s.running
    n = s.steps_taken()
    qtbot.wait(150)
    assert s.steps_taken() == n  # paused means paused
    for key, w in s.walkers.items():  # the curves show what the engine walked
        xs, ys = s.paths[key].getData()
        assert len(xs) == w.trajectory.steps + 1 and xs[-1] == w.trajectory.points[-1][0]
        steps, gaps = s.losses[key].getData()
        assert len(steps) == len(xs)
    adam = s.walkers["adam"].trajectory
    want = optlab.trajectory("quadratic", "adam", steps=adam.steps, lr=0.3)
    np.testing.assert_allclose(adam.points, want.points, atol=1e-12)

    # run to the end: it stops by itself at the step limit
    s.max_steps.setValue(n + 10)
    s.run()
    qtbot.waitUntil(lambda: not s.running, timeout=10_000)
    assert s.steps_taken() == n + 10

    # a hyperparameter change starts every method again, with the new value
    s.cards["adam"].spins["lr"].setValue(0.05)
    assert s.steps_taken() == 0 and s.walkers["adam"].values["lr"] == 0.05
    # without gradient noise SGD would retrace batch GD: off by default, with a hint saying why
    assert "sgd" not in s.walkers and s.cards["sgd"].hint.isVisible()
    s.cards["sgd"].check.setChecked(True)
    assert s.walkers["sgd"].trajectory.steps == 0
    s.cards["adagrad"].check.setChecked(False)
    assert "adagrad" not in s.walkers
    xs, _ = s.losses["adagrad"].getData()
    assert xs is None or len(xs) == 0

    # a click on the map moves the start point
    vb = s.map.getPlotItem().getViewBox()
    target = QtCore.QPointF(-4.0, 2.0)
    pos = s.map.mapFromScene(vb.mapViewToScene(target))
    QTest.mouseClick(s.map.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, pos)
    qtbot.waitUntil(lambda: abs(s.start_x.value() + 4.0) < 0.2, timeout=3000)
    assert abs(s.start_y.value() - 2.0) < 0.2
    assert s.walkers["adam"].trajectory.points[0] == s.start()

    # every surface draws and steps, the stochastic one with noise; the view shows the whole surface
    vb = s.map.getPlotItem().getViewBox()
    for key in ("rosenbrock", "quadratic", "beale", "saddle", "himmelblau", "stochastic"):
        s.surface_box.setCurrentIndex(s.surface_box.findData(key))
        s.advance(5)
        assert s.steps_taken() == 5 and not s.error and len(s.isocurves) > 5
        (x0, x1), (y0, y1) = vb.viewRange()
        sx, sy = optlab.SURFACES[key].x_range, optlab.SURFACES[key].y_range
        assert x0 == pytest.approx(sx[0], abs=0.05 * (sx[1] - sx[0])) and x1 == pytest.approx(sx[1], abs=0.05 * (sx[1] - sx[0]))
        assert y0 == pytest.approx(sy[0], abs=0.05 * (sy[1] - sy[0]))
    assert s.noise.value() > 0 and s.mini_batch.isEnabled()
    assert len(s.walkers["mini-batch-gd"].trajectory.batches[0]) == s.mini_batch.value()

    # switching tabs pauses the walk
    s.run()
    lab.show_network()
    assert not s.running


def test_comparison_on_the_canvas_network_runs_stops_and_saves(window, qtbot, tmp_path):
    lab = open_lab(window, qtbot)
    lab.show_network()
    n = lab.network
    assert n.graph_label.text() == "Network: tiny MLP"
    assert n.dataset.currentText() == "xor" and n.epochs.value() == 3
    assert [r.optimizer.currentText() for r in n.rows] == ["sgd", "momentum", "rmsprop", "adam"]
    n.rows[0].batching.setCurrentText("batch")  # batch gradient descent beside the mini-batch runs
    assert not n.rows[0].batch_size.isEnabled()
    qtbot.mouseClick(n.run_button, QtCore.Qt.MouseButton.LeftButton)
    assert n.running and n.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not n.running, timeout=30_000)
    n.poll()
    outcomes = n.comparison.outcomes
    assert [o.status for o in outcomes] == ["finished"] * 4
    assert outcomes[0].batching == "batch" and outcomes[0].steps == 3  # one step per epoch
    assert n.results.rowCount() == 4
    for row in range(4):
        cells = [n.results.item(row, c).text() for c in range(n.results.columnCount())]
        assert cells[1] == "finished" and cells[5] and cells[6].endswith("%") and cells[8] in ("1", "2", "3")
    # one train and one dev curve per run, three epochs each, one legend entry per run
    assert len(n.curves) == 8 and all(len(c.getData()[0]) == 3 for c in n.curves.values())
    assert len(n.plot.getPlotItem().legend.items) == 4
    n.metric.setCurrentIndex(1)  # accuracy
    ys = n.curves[(0, "train_accuracy")].getData()[1]
    assert all(0 <= y <= 1 for y in ys)
    assert "4 finished" in n.message.text()

    files = n.save_results(tmp_path / "saved")
    assert [f.name for f in files] == ["curves.csv", "summary.csv", "curves.png"] and all(f.exists() for f in files)

    # a longer comparison, stopped from the button: the running run stops, the rest are skipped
    n.epochs.setValue(400)
    n.rows[0].batching.setCurrentText("stochastic")
    n.start()
    qtbot.waitUntil(lambda: n.comparison.outcomes[0].steps > 0, timeout=20_000)
    qtbot.mouseClick(n.stop_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not n.running, timeout=20_000)
    n.poll()
    assert [o.status for o in n.comparison.outcomes] == ["stopped", "skipped", "skipped", "skipped"]
    assert n.run_button.isEnabled() and not n.stop_button.isEnabled()

    # what cannot run is said in the window, never raised
    n.dataset.setCurrentText("no-such-data")
    assert n.start()
    qtbot.waitUntil(lambda: not n.running, timeout=20_000)
    n.poll()
    assert "could not run" in n.message.text() and "no-such-data" in n.message.text()
    assert n.run_button.isEnabled()
    n.runs.setRowCount(0)
    n.rows = []
    assert not n.start()
    assert "at least one" in n.message.text()
