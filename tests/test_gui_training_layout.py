"""The Training dock's layout at the window's default size (1600x1000): the settings fit their column, the
dock keeps its height across a run's end and a failure, the Results tab shows the per-class table and
labels the confusion matrix's rows, the plots' legends keep off the curves and the axes have titles,
the canvas's health legend covers no node, and the doctor explains a negative variance."""

from __future__ import annotations

import types

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from tests import test_gui_training as base
from tests.test_gui_training import digits_mlp, open_graph, train

window = base.window  # (the fixture: the main window at its size in those tests)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def default_size(w) -> None:
    w.resize(1600, 1000)
    QtWidgets.QApplication.processEvents()


def test_the_data_set_row_fits_the_settings_column(window, qtbot):
    default_size(window)
    ui = open_graph(window, *digits_mlp())
    form = ui.dock_widget.settings
    qtbot.wait(50)
    port = form.viewport().rect()
    for name in ("data_file_button", "data_folder_button"):
        button = form.findChild(QtWidgets.QToolButton, name)
        assert button.width() >= button.sizeHint().width()  # its whole text ("Folder…", not "Fo")
        shown = QtCore.QRect(button.mapTo(form.viewport(), QtCore.QPoint(0, 0)), button.size())
        assert port.contains(shown), (name, shown, port)
    assert form.widget().width() <= port.width()  # nothing cut off at the right
    note = form.dataset_note
    assert QtCore.QRect(note.mapTo(form.viewport(), QtCore.QPoint(0, 0)), note.size()).right() <= port.right()


def test_a_long_data_path_shows_elided_with_its_file_name_and_whole_in_the_tooltip(window, qtbot):
    default_size(window)
    ui = open_graph(window, *digits_mlp())
    form = ui.dock_widget.settings
    path = "/home/someone/projects/experiments/data/2026/holdout/train_images.npy"
    form.dataset.setEditText(path)
    shown = form.dataset.lineEdit().shown_text()
    assert shown != path and shown.startswith("…/") and shown.endswith("train_images.npy")
    assert path in form.dataset.toolTip()
    assert form.dataset.currentText() == path  # (the setting's value is the whole path)


def test_the_dock_keeps_its_height_when_a_run_ends_and_when_one_fails(window, qtbot):
    default_size(window)
    ui = open_graph(window, *digits_mlp({"epochs": 1, "batch_size": 32}))
    qtbot.wait(100)
    height, canvas = ui.dock.height(), window.canvas.viewer.height()
    settings = ui.dock_widget.settings.height()
    run = train(window, qtbot)
    assert run.status == "finished"
    qtbot.wait(200)
    assert (ui.dock.height(), window.canvas.viewer.height()) == (height, canvas)
    ui.dock_widget.settings.set_value("optimizer.name", "sgd")
    ui.dock_widget.settings.set_value("optimizer.lr", 1e20)
    run = train(window, qtbot)
    assert run.status == "failed"
    qtbot.wait(200)
    assert (ui.dock.height(), window.canvas.viewer.height()) == (height, canvas)
    # the long failure message scrolls in its own area; the settings keep their rows
    assert ui.dock_widget.settings.height() == settings
    area = ui.dock_widget.status_area
    assert area.height() < 4 * ui.dock_widget.status.fontMetrics().lineSpacing() + 8


def test_the_results_tab_shows_the_per_class_table_at_the_default_size(window, qtbot):
    default_size(window)
    ui = open_graph(window, *digits_mlp({"epochs": 1, "batch_size": 32}))
    run = train(window, qtbot)
    dock = ui.dock_widget
    assert run.report and dock.tabs.currentWidget() is dock.results
    qtbot.wait(100)
    table = dock.results.per_class
    assert table.rowCount() == 11
    port = table.viewport().rect()
    whole = [i for i in range(table.rowCount())
             if port.contains(table.visualRect(table.model().index(i, 0)))]
    assert len(whole) >= 8, (len(whole), port)
    # the doctor scrolls within its own pane: its remedies are all there to read
    scroll = dock.results.doctor_scroll
    assert scroll.widget() is dock.results.doctor
    assert scroll.verticalScrollBar().maximum() > 0 or dock.results.doctor.height() <= scroll.viewport().height()


def test_the_confusion_matrix_names_its_rows_true(qtbot, monkeypatch):
    from gui.training import results

    matrix = results.ConfusionMatrix()
    qtbot.addWidget(matrix)
    matrix.resize(300, 300)
    matrix.set_matrix(np.eye(3, dtype=int) * 5, ["a", "b", "c"])
    drawn = []
    original = QtGui.QPainter.drawText

    def spy(self, *args):
        drawn.extend(a for a in args if isinstance(a, str))
        return original(self, *args)
    monkeypatch.setattr(QtGui.QPainter, "drawText", spy)
    matrix.grab()
    assert "predicted →" in drawn
    assert any(text.startswith("true") for text in drawn)


def test_a_gan_run_shows_its_headline_not_an_empty_confusion_matrix(qtbot):
    from gui.training.results import ResultsView

    view = ResultsView()
    qtbot.addWidget(view)
    report = {"task": "generation", "mode": "gan", "dataset": "digits", "classes": None,
              "train": {"loss": 3.79, "examples": 1618, "terms": {"g_loss": 2.5, "d_loss": 1.29}},
              "dev": {"loss": 3.8, "examples": 179, "terms": {"g_loss": 2.6, "d_loss": 1.2},
                      "metrics": {"discriminator_accuracy": 0.9}}}
    run = types.SimpleNamespace(number=4, status="finished", result=types.SimpleNamespace(seconds=22.6),
                                report=report, error="", samples=None, examples=None, config={})
    view.show_run(run)
    text = view.summary.text()
    assert "gan" in text and "g_loss" in text and "d_loss" in text and "MSE" not in text
    assert "classifiers" in view.matrix.empty_text
    assert "MSE" not in view.doctor.figures.text()


def shown_plots(qtbot):
    return base.shown_plots(qtbot, height=420)  # (the plots' height in a dock at the default window size)


def test_a_legend_with_no_free_corner_gets_room_above_the_curves(qtbot):
    from gui.training.plots import _pen

    plots = shown_plots(qtbot)
    x = np.linspace(0, 100, 101)
    for n, phase in ((1, 0.0), (2, 1.5), (3, 3.0)):  # curves through every corner of the plot
        plots._set(x, 0.5 + 0.45 * np.sin(x / 5 + phase), "loss", (n, "train"), _pen("#4c9aff"), f"run {n} train")
    plots.loss.setXRange(0, 100, padding=0)
    plots.loss.setYRange(0, 1, padding=0)
    plots._place_legends()
    QtWidgets.QApplication.processEvents()
    box = plots.loss.getViewBox()
    legend = plots.loss_legend
    assert box.sceneBoundingRect().contains(legend.sceneBoundingRect())
    rect = box.mapSceneToView(legend.sceneBoundingRect()).boundingRect()
    assert plots._hidden_under("loss", rect) == 0


def test_the_plots_axes_have_titles_that_follow_the_x_axis_choice(qtbot):
    plots = shown_plots(qtbot)
    assert plots.loss.getAxis("left").labelText == "loss"
    assert plots.acc.getAxis("left").labelText == "accuracy"
    assert plots.loss.getAxis("bottom").labelText == "step"
    plots.x_axis.setCurrentText("epoch")
    assert plots.loss.getAxis("bottom").labelText == "epoch"
    assert plots.grad.getAxis("bottom").labelText == "step"  # (the gradient norms: always per step)


def test_an_empty_gradient_plot_shows_no_legend(qtbot):
    from gui.training.plots import _pen

    plots = shown_plots(qtbot)
    x = np.arange(1.0, 20)
    plots._set(x, np.full(len(x), 0.5), "grad", ("grad", "fc1"), _pen("#4c9aff"), "fc1")
    plots._place_legends()
    assert plots.grad_legend.isVisible()
    plots._drop(("grad", "fc1"))  # a run that failed before training: no norms, the layer's curve gone
    plots._set([], [], "grad", ("grad", "fc2"), _pen("#4c9aff"), "fc2")
    plots._curve("grad", ("grad", "fc3"), _pen("#4c9aff"), "fc3")  # (a named curve with no points)
    plots._place_legends()
    assert not plots.grad_legend.isVisible()


def test_the_health_legend_covers_no_node_of_a_framed_network(window, qtbot):
    from tests import graphs

    default_size(window)
    open_graph(window, graphs.lenet5(), {})
    canvas = window.canvas
    canvas.frame()
    legend = window.training.health.legend
    legend.setText("Training health (run 1, step 68): gradient norm ■ vanishing ■ healthy ■ exploding · "
                   "dead = ReLU units never active")
    legend.adjustSize()
    legend.show()
    qtbot.wait(100)
    canvas.place_overlays()
    one_line = canvas._legend_sizes(legend, canvas.viewer.viewport().width())[0]  # (its size on one line)
    viewer = canvas.viewer
    port = viewer.viewport()
    cards = []
    for nid in window.doc.graph.nodes:
        shown = viewer.mapFromScene(canvas.node_item(nid).sceneBoundingRect()).boundingRect()
        cards.append(shown.translated(port.mapTo(viewer, QtCore.QPoint(0, 0))))

    def covered(rect: QtCore.QRect) -> int:
        return sum(rect.intersected(c).width() * rect.intersected(c).height() for c in cards if rect.intersects(c))
    here = covered(QtCore.QRect(legend.pos(), legend.size()))
    before = covered(QtCore.QRect(QtCore.QPoint(10, 8), one_line))  # where it was: over the first card
    assert before > 0 and here < before
    assert here == 0 or legend.width() > port.width() / 2  # (no corner free of nodes: the least covered)
    assert legend.styleSheet()  # (on a panel of its own: nodes panned under it stay apart from its text)


def test_the_doctor_explains_a_negative_variance():
    from engine.training.doctor import diagnose, format_diagnosis

    d = diagnose(0.136, 0.122, 0.0)
    assert d.variance < 0 and d.problem == "bias"
    assert "(-1.4%)" not in d.message and "larger than the variance" not in d.message
    note = next(n for n in d.notes if "negative" in n)
    assert "below train error" in note and "easier" in note and "training only" in note
    assert "variance is not a problem" in note
    assert "negative" in format_diagnosis(d)  # (the CLI prints the notes)


def test_blank_class_names_are_shown_as_their_repr():
    """A next-character model's classes ' ' and '\\n' were blank rows of the per-class table."""
    from gui.training.results import shown_label

    assert shown_label(" ") == "' '" and shown_label("\n") == "'\\n'" and shown_label("NOUN") == "NOUN"


def test_a_data_file_that_is_not_there_is_said_at_once(window, qtbot, tmp_path):
    """Before Train is pressed: the note under the data set says the file or folder does not exist."""
    ui = open_graph(window, *digits_mlp({"data": {"dataset": str(tmp_path / "missing.npz")}}))
    note = ui.dock_widget.settings.dataset_note
    assert "no such file or folder" in note.text() and note.property("role") == "warning"
    (tmp_path / "there.csv").write_text("a,b\n1,0\n")
    ui = open_graph(window, *digits_mlp({"data": {"dataset": str(tmp_path / "there.csv")}}))
    note = ui.dock_widget.settings.dataset_note
    assert "no such file" not in note.text() and note.property("role") == "dim"
    ui = open_graph(window, *digits_mlp({"data": {"dataset": "digits"}}))
    assert ui.dock_widget.settings.dataset_note.property("role") == "dim"
    ui = open_graph(window, *digits_mlp({"data": {"dataset": "mnsit"}}))
    note = ui.dock_widget.settings.dataset_note
    assert note.text().startswith("'mnsit' is not a built-in data set (digits, ") and note.property("role") == "warning"


def test_a_decoders_target_is_shown_with_the_position_marked():
    from gui.training.results import marked

    assert marked(list("2001-03-10"), 9) == "2001-03-1[0]"
    assert marked(list("2001-03-10"), 0, limit=6) == "[2]001…"
    assert marked(["DET", "NOUN", "VERB"], 1) == "DET [NOUN] VERB"


def test_a_gpu_this_machine_does_not_have_is_said_at_once(window, qtbot):
    from engine.device import DeviceInfo

    ui = open_graph(window, *digits_mlp({"device": "cuda"}))
    settings = ui.dock_widget.settings
    window.set_device(DeviceInfo("cpu", "a CPU", 8 << 30))
    assert settings.message.isVisibleTo(window) and "no CUDA GPU" in settings.message.text()
    assert settings.widgets["device"].property("invalid")
    settings.set_value("device", "auto")
    assert not settings.message.isVisibleTo(window) and not settings.widgets["device"].property("invalid")
    window.set_device(DeviceInfo("cuda", "a GPU", 80 << 30))
    settings.set_value("device", "cuda")
    assert not settings.message.isVisibleTo(window)


def _inside(plots, name: str, key: tuple) -> bool:
    """Whether every point of a curve lies in its plot's view (in the plot's units: log10 on a log axis)."""
    x, y = plots.curves[key].getData()
    (x0, x1), (y0, y1) = plots.plots[name].getViewBox().viewRange()
    return bool(len(x)) and x.min() >= x0 and x.max() <= x1 and y.min() >= y0 and y.max() <= y1


def test_a_learning_rate_that_decays_a_thousandfold_is_drawn_on_a_log_scale(qtbot):
    """On a linear axis from 0, a step decay from 0.1 to 1e-4 read as a drop to zero; a rate that stays
    within a factor of the schedule's start keeps the linear axis (its decay reads in proportion)."""
    plots = shown_plots(qtbot)
    x = np.arange(0.0, 400)
    plots._set(x, 0.1 * 0.1 ** (x // 100), "lr", (1, "lr"), None)
    plots._x_end = 400  # (as the runs would set it)
    plots._fit_x()
    plots._fit_y()
    assert plots._log("lr") and not plots.lr.getViewBox().state["autoRange"][1]
    assert _inside(plots, "lr", (1, "lr"))
    _, (y0, y1) = plots.lr.getViewBox().viewRange()
    assert y0 < -3.9 and y1 > -1.1 and y1 - y0 < 4  # 1e-4 to 0.1: the four steps apart
    plots._drop((1, "lr"))  # (the run removed) and another with a constant rate
    plots._set(x, np.full(len(x), 0.01), "lr", (2, "lr"), None)
    plots._fit_y()
    assert not plots._log("lr") and _inside(plots, "lr", (2, "lr"))


def test_a_log_scale_chosen_in_a_plots_menu_keeps_the_curves_in_view(qtbot):
    """pyqtgraph's menu (Plot Options: Log X, Log Y) changes a plot's units; its ranges, set in the old
    ones, showed none of the curves, and its auto-range then rescanned every curve at every update."""
    plots = shown_plots(qtbot)
    x = np.arange(1.0, 201)
    plots._set(x, 0.5 + 0.45 * (1 - np.exp(-x / 40)), "acc", (1, "train_accuracy"), None)
    plots._set(x, np.full(len(x), 0.01), "lr", (1, "lr"), None)
    plots._set(x, 2.0 * np.exp(-x / 50), "loss", (1, "train"), None)
    plots._x_end = 200
    for name in plots.plots:  # (as the runs would have them fitted: no run in this controller)
        plots.fit_again(name)
    x_range = plots.acc.getViewBox().viewRange()[0]
    assert x_range[0] <= 1 and x_range[1] >= 200
    plots.acc.ctrl.logYCheck.setChecked(True)
    assert _inside(plots, "acc", (1, "train_accuracy"))
    assert plots.acc.getViewBox().viewRange()[0] == x_range  # (lined up with the other plots still)
    plots.lr.ctrl.logYCheck.setChecked(True)
    assert _inside(plots, "lr", (1, "lr"))
    plots.loss.ctrl.logXCheck.setChecked(True)
    assert _inside(plots, "loss", (1, "train"))
    plots.loss.ctrl.logYCheck.setChecked(True)
    assert plots.log_loss.isChecked() and _inside(plots, "loss", (1, "train"))  # (the box says so too)
    for plot in plots.plots.values():
        assert not any(plot.getViewBox().state["autoRange"])
    plots.acc.ctrl.logYCheck.setChecked(False)
    assert plots.acc.getViewBox().viewRange()[1][0] < 0.0 < 1.0 < plots.acc.getViewBox().viewRange()[1][1]
    plots.lr.ctrl.logYCheck.setChecked(False)  # the user's choice stays: a rate over decades stays linear
    plots._set(x, 0.1 * 0.1 ** (x // 50), "lr", (2, "lr"), None)
    plots._fit_y()
    assert not plots._log("lr") and _inside(plots, "lr", (2, "lr"))


def test_a_double_click_or_the_a_button_fits_a_zoomed_plot_again(qtbot):
    """After a zoom or pan the plots leave that plot's range alone; a double-click (or pyqtgraph's "A"
    button, which would turn auto-range on for good) gives it back to the plots' own fit."""
    plots = shown_plots(qtbot)
    x = np.arange(1.0, 201)
    plots._set(x, 2.0 * np.exp(-x / 50), "loss", (1, "train"), None)
    plots._x_end = 200
    plots.fit_again("loss")
    fitted = [list(r) for r in plots.loss.getViewBox().viewRange()]
    box = plots.loss.getViewBox()
    box.scaleBy((0.2, 0.2))  # a zoom with the wheel
    box.sigRangeChangedManually.emit(box.state["mouseEnabled"])
    assert "loss" in plots._manual
    plots._fit_x()
    assert np.diff(box.viewRange()[0])[0] < 50  # (the zoom is left alone)
    box.fit_requested.emit()  # (what a double-click on the plot sends)
    assert "loss" not in plots._manual and np.allclose(box.viewRange(), fitted)
    box.scaleBy((0.2, 0.2))
    plots._manual.add("loss")
    plots.loss.autoBtn.clicked.emit(False)
    assert "loss" not in plots._manual and np.allclose(box.viewRange(), fitted)
    assert not any(box.state["autoRange"])


def test_a_double_click_event_on_a_plot_asks_for_the_fit():
    from gui.training.plots import QuietViewBox

    box = QuietViewBox()
    asked = []
    box.fit_requested.connect(lambda: asked.append(1))

    class Click:
        def double(self):
            return True

        def button(self):
            return QtCore.Qt.MouseButton.LeftButton

        def accept(self):
            self.accepted = True

    click = Click()
    box.mouseClickEvent(click)
    assert asked and click.accepted


def test_run_numbers_and_folders_are_never_given_twice(tmp_path):
    from gui.training.controller import RunController
    from gui.training.runs import RUN_COLORS, Run

    controller = RunController(tmp_path)
    controller.runs = [Run(1, RUN_COLORS[0], {}, "", "net", ""), Run(2, RUN_COLORS[1], {}, "", "net", "")]
    controller._last_number = 2
    controller.remove(controller.runs[1])  # the newest run removed: its number and folder stay its own
    (tmp_path / "run3").mkdir()  # (a folder already there: another window's run, say)
    assert controller._next_number() == 4
    controller.runs.clear()
    assert controller._next_number() == 5


def test_kept_runs_never_share_a_colour():
    from gui.training.runs import RUN_COLORS, run_color

    used: list[str] = []
    for _ in range(14):
        used.append(run_color(used))
    assert used[:8] == list(RUN_COLORS) and len(set(used)) == 14  # (run 9 was drawn in run 1's blue)
    assert run_color([c for c in used if c != RUN_COLORS[1]]) == RUN_COLORS[1]  # a removed run's colour is free


def test_the_progress_counts_the_steps_of_the_epochs_reported():
    """Step events may lag behind epoch events (each kind within its share of the run's event budget):
    the progress read "epoch 13/30 · step 65/510"."""
    from engine.training.trainer import EpochEnd, EpochMetrics
    from gui.training.controller import RunController
    from gui.training.runs import Run

    controller = RunController()
    run = Run(1, "#4c9aff", {}, "", "net", "")
    run.step = 65
    epoch = EpochMetrics(13, 221, 0.5, 0.8, 0.6, 0.7, None, 0.01, 0.1, False)
    controller._apply(run, "epochs", EpochEnd([epoch]), set())
    assert run.epoch == 13 and run.step == 221


def test_the_confusion_matrix_counts_read_on_every_cell_colour_of_both_themes():
    """The counts were drawn in the theme's text colour: dark grey on the light theme's saturated red and
    green cells (a contrast of about 2.5:1)."""
    from gui import theme
    from gui.training.results import ink_on

    def luminance(c: QtGui.QColor) -> float:
        def lin(v):
            v /= 255
            return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * lin(c.red()) + 0.7152 * lin(c.green()) + 0.0722 * lin(c.blue())

    for t in theme.THEMES.values():
        base = QtGui.QColor(t.base)
        for tone in (QtGui.QColor(t.ok), QtGui.QColor(t.error)):
            for a in np.linspace(0.05, 1.0, 20):  # (the cells' shades, from nearly the background to the tone)
                fill = QtGui.QColor(*(int(b + (c - b) * a) for b, c in ((base.red(), tone.red()),
                                      (base.green(), tone.green()), (base.blue(), tone.blue()))))
                hi, lo = sorted((luminance(fill), luminance(ink_on(fill))), reverse=True)
                assert (hi + 0.05) / (lo + 0.05) >= 4.5, (t.name, fill.name(), ink_on(fill).name())


def test_the_training_dock_can_be_made_tall_enough_for_its_plots_in_a_small_window(window, qtbot):
    # At 1280x720 the right-hand column (Properties over Pre-flight, with the Preview tabbed away behind it
    # and its 240-pixel minimum) kept the dock at 239 pixels however far it was dragged: four plots of a
    # few pixels each, tick labels over each other.
    window.resize(1280, 720)
    qtbot.wait(50)
    ui = open_graph(window, *digits_mlp())
    vertical = QtCore.Qt.Orientation.Vertical
    window.resizeDocks([ui.dock], [720], vertical)
    qtbot.wait(100)
    assert ui.dock.height() >= 450
    plots = ui.dock_widget.plots
    qtbot.waitUntil(lambda: all(p.getViewBox().sceneBoundingRect().height() >= 100 for p in plots.plots.values()),
                    timeout=2000)
    assert not ui.dock_widget.plots_scroll.verticalScrollBar().isVisible()  # (all four in view)
    # A dock behind a tab sets no minimum of its own on the column: the Preview asks for no more than
    # the Pre-flight in front of it, and the middle's hidden Code page no more than the diagram.
    assert ui.preview_dock.minimumSizeHint().height() <= window.docks["preflight"].minimumSizeHint().height()
    assert window.views.minimumSizeHint().height() < 120
    # made as low as it goes, the plots keep a readable height and scroll instead of squeezing
    window.resizeDocks([ui.dock], [0], vertical)
    qtbot.wait(100)
    assert ui.dock.height() < 240
    assert plots.height() >= plots.minimumHeight() > 200
    assert ui.dock_widget.plots_scroll.verticalScrollBar().isVisible()
    assert min(p.getViewBox().sceneBoundingRect().height() for p in plots.plots.values()) >= 30


def test_the_results_panes_scroll_sideways_in_a_narrow_window_and_not_at_the_default_size(window, qtbot):
    """At 1024 pixels the four panes were squeezed: the matrix showed one column, the doctor a word a line,
    the per-class table's figures read "0....". They keep the width they read at and scroll together."""
    ui = open_graph(window, *digits_mlp())
    results = ui.dock_widget.results
    ui.dock_widget.tabs.setCurrentWidget(results)
    default_size(window)
    qtbot.wait(100)
    bar = results.split_scroll.horizontalScrollBar()
    assert bar.maximum() == 0  # (all four in view at the default size)
    window.resize(1024, 768)
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=2000)
    for pane in (results.panes[0], results.panes[2], results.panes[3]):  # (the table's: its own minimum)
        assert pane.width() >= pane.minimumWidth() > 150
    assert results.per_class.width() >= results.per_class.minimumWidth()
    default_size(window)


def _legend_in_a_small_window(window, qtbot, graph, frame: bool):
    """The canvas and its health legend (a run's text) placed, in a 1024x768 window showing ``graph``."""
    window.resize(1024, 768)
    qtbot.wait(50)
    open_graph(window, graph, {})
    canvas = window.canvas
    if frame:
        canvas.frame()
    legend = window.training.health.legend
    legend.setText("Training health (run 1, step 68): gradient norm ■ vanishing ■ healthy ■ exploding · "
                   "dead = ReLU units never active")
    legend.show()
    qtbot.wait(100)
    canvas._overlay_key = None
    canvas.place_overlays()
    return canvas, legend


def test_in_a_narrow_canvas_the_health_legend_wraps_beside_the_network_rather_than_over_it(window, qtbot):
    from pathlib import Path

    import engine

    template = engine.load_graph(Path(__file__).resolve().parent.parent / "templates" / "lenet5.dcnet")
    canvas, legend = _legend_in_a_small_window(window, qtbot, template, frame=True)
    viewer, port = canvas.viewer, canvas.viewer.viewport()
    cards = [viewer.mapFromScene(canvas.node_item(nid).sceneBoundingRect()).boundingRect()
             .translated(port.mapTo(viewer, QtCore.QPoint(0, 0))) for nid in window.doc.graph.nodes]

    def covered(rect: QtCore.QRect) -> int:
        return sum(rect.intersected(c).width() * rect.intersected(c).height() for c in cards if rect.intersects(c))
    one_line, wrapped = canvas._legend_sizes(legend, port.width())
    corners = [QtCore.QPoint(x, y) for x in (8, port.width() - one_line.width() - 8)
               for y in (8, port.height() - one_line.height() - 8)]
    assert min(covered(QtCore.QRect(c, one_line)) for c in corners) > 0  # (no corner free for one line)
    assert covered(QtCore.QRect(legend.pos(), legend.size())) == 0
    assert legend.size() == wrapped and legend.height() > one_line.height()
    assert legend.wordWrap() and legend.heightForWidth(legend.width()) <= legend.height()  # (all of its text)
    default_size(window)
    canvas.place_overlays()


def test_a_health_legend_wider_than_the_canvas_wraps_to_fit_it(window, qtbot):
    from tests import graphs

    canvas, legend = _legend_in_a_small_window(window, qtbot, graphs.lenet5(), frame=False)
    port = canvas.viewer.viewport()
    assert canvas._legend_sizes(legend, port.width())[0].width() > port.width()  # (one line: its end cut off)
    inside = QtCore.QRect(port.mapTo(canvas.viewer, QtCore.QPoint(0, 0)), port.size())
    assert inside.contains(QtCore.QRect(legend.pos(), legend.size()))
    default_size(window)
    canvas.place_overlays()


def test_a_runs_menu_holds_no_run_after_it_closes(qtbot, tmp_path):
    """Each right-click made a menu the list kept, whose actions held the run: a removed run stayed in
    memory with its weights and data."""
    import gc
    import weakref

    from gui.training.controller import RunController
    from gui.training.dock import RunsList
    from gui.training.runs import RUN_COLORS, Run

    controller = RunController(tmp_path)
    run = Run(1, RUN_COLORS[0], {}, "", "net", "")
    run.run_dir = str(tmp_path)
    controller.runs = [run]
    runs = RunsList(controller)
    qtbot.addWidget(runs)
    runs.fill()
    def close_menu():
        menu = QtWidgets.QApplication.activePopupWidget()
        if menu is not None:
            menu.close()
        else:
            QtCore.QTimer.singleShot(10, close_menu)
    for _ in range(3):
        QtCore.QTimer.singleShot(10, close_menu)  # (the user closes it at once)
        runs._menu(runs.visualItemRect(runs.item(0)).center())
    QtWidgets.QApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    ref = weakref.ref(run)
    controller.remove(run)
    del run
    gc.collect()
    assert ref() is None and not runs.findChildren(QtWidgets.QMenu)


def test_a_fit_asked_for_fits_the_gradient_plot_while_its_run_trains(qtbot):
    """While the focused run trains the gradient plot keeps a range the norms fit in; a double-click after
    a zoom out (or a change of scale) fitted its x axis only."""
    from gui.training.runs import Run

    plots = shown_plots(qtbot)
    run = Run(1, "#4c9aff", {}, "net-hash", "net", "")
    run.status = "running"
    plots.focus = run
    x = np.arange(1.0, 201)
    plots._set(x, 0.05 + 0.3 * np.exp(-x / 50), "grad", (1, "grad", "fc1"), None)
    plots._grad_end = 200
    plots.fit_again("grad")
    fitted = list(plots.grad.getViewBox().viewRange()[1])
    box = plots.grad.getViewBox()
    box.scaleBy((1, 5))
    plots._manual.add("grad")
    box.fit_requested.emit()
    assert np.allclose(box.viewRange()[1], fitted)


def test_the_rate_keeps_its_scale_through_a_partial_redraw_and_a_users_zoom(qtbot):
    plots = shown_plots(qtbot)
    x = np.arange(0.0, 400)
    plots._set(x, 0.1 * 0.1 ** (x // 100), "lr", (1, "lr"), None)
    plots._x_end = 400
    plots._fit_y()
    assert plots._log("lr")
    plots._drop((1, "lr"))
    plots._set(x, np.full(len(x), 0.01), "lr", (2, "lr"), None)  # (the first slice of a redraw: run 2 alone)
    plots._dirty = {1}
    plots._fit_y()
    assert plots._log("lr")  # (decided once every run is drawn again)
    plots._dirty = set()
    plots._manual.add("lr")  # a zoom of the user's
    plots._fit_y()
    assert plots._log("lr")
    plots._manual.discard("lr")
    plots._fit_y()
    assert not plots._log("lr")
