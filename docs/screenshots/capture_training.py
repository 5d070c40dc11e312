"""Take the README's training screenshots from the running app during real runs, on a virtual X display.

    Xvfb :99 -screen 0 1600x1000x24 &  DISPLAY=:99 .venv/bin/python docs/screenshots/capture_training.py [NAME ...]

Each screen is set up through the app's own widgets (the settings form, the Train button, a click on the
confusion matrix, the export dialog's button) and grabbed with ImageMagick's ``import -window root``, as
``capture.py`` does for the editor. Names: training, compare, results, tagger, preview, vae, gan,
nan, export.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from PySide6 import QtCore, QtWidgets  # noqa: E402

from capture import grab, settle  # noqa: E402


def wait_for(app, condition, timeout: float = 600.0) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the screen never got ready")
        settle(app, 100)


def main(names: list[str]) -> None:
    app = QtWidgets.QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    from gui.device import DeviceInfo
    from gui.document import Document
    from gui.mainwindow import MainWindow

    import engine

    settings = QtCore.QSettings(str(tmp / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings, tmp / "autosave")
    w.ask = lambda *a: "Discard"
    w.setGeometry(0, 0, 1600, 1000)
    w.show()
    w.start()
    import torch

    from gui.device import cpu_name, system_memory
    w.set_device(DeviceInfo("cpu", cpu_name(), system_memory(), f"torch {torch.__version__}"))  # this machine
    ui = w.training
    ui.controller._runs_dir = tmp / "runs"
    w.resizeDocks([ui.dock], [470], QtCore.Qt.Orientation.Vertical)
    settle(app, 800)
    dock = ui.dock_widget
    screens = {}

    def open_template(name: str, training: dict | None) -> None:
        """The template, with ``training`` in place of its own settings (None: the template's own)."""
        graph = engine.load_graph(ROOT / "templates" / f"{name}.dcnet")
        if training is not None:
            graph.training = training
        w.set_document(Document(graph))
        w.resizeDocks([ui.dock], [470], QtCore.Qt.Orientation.Vertical)
        settle(app, 300)
        w.canvas.frame()  # a readable zoom, from the top
        settle(app, 300)

    def run_to_end():
        run = ui.start()
        wait_for(app, lambda: run.done)
        settle(app, 600)
        return run

    def training_screen():
        open_template("lenet5", {"epochs": 100, "batch_size": 32, "optimizer": {"lr": 0.002}})
        ui.preview_dock.show()
        ui.preview_dock.raise_()
        w.canvas.select(["conv2"])
        run = ui.start()
        wait_for(app, lambda: run.epoch >= 55 and run.grad_norms)
        dock.tabs.setCurrentIndex(0)
        settle(app, 1200)
        grab("training")  # mid-run
        ui.controller.stop()
        wait_for(app, lambda: run.done)
        settle(app, 600)
    screens["training"] = training_screen

    def compare_screen():
        if not ui.controller.runs:
            training_screen()
        dock.settings.widgets["epochs"].setValue(30)
        for lr in ("0.0002", "0.02"):
            edit = dock.settings.widgets["optimizer.lr"]
            edit.setText(lr)
            edit.editingFinished.emit()
            run_to_end()
        dock.tabs.setCurrentIndex(0)
        dock.plots.x_axis.setCurrentText("epoch")
        settle(app, 800)
        grab("compare")
        dock.plots.x_axis.setCurrentText("step")
    screens["compare"] = compare_screen

    def results_screen():
        if not ui.controller.runs:
            open_template("lenet5", {"epochs": 8, "batch_size": 32})
            run_to_end()
        run = ui.controller.runs[0]
        dock.runs.setCurrentRow(dock.runs.count() - 1)
        dock.set_focus(run)
        dock.tabs.setCurrentWidget(dock.results)
        settle(app, 300)
        results = dock.results
        results.doctor.human.setValue(1.0)
        m = results.matrix.matrix.copy()
        import numpy as np
        np.fill_diagonal(m, -1)
        i, j = np.unravel_index(m.argmax(), m.shape)
        results.matrix.selected = (int(i), int(j))
        results.show_cell(int(i), int(j))
        settle(app, 800)
        grab("results")
    screens["results"] = results_screen

    def tagger_screen():  # a class per word: the gallery lists mistaken words in their sentences
        graph = engine.load_graph(ROOT / "templates" / "bigru_tagger.dcnet")
        training = dict(graph.training, epochs=2)
        training["data"] = {**training["data"], "options": {"samples": 3000}}
        open_template("bigru_tagger", training)
        run_to_end()
        dock.tabs.setCurrentWidget(dock.results)
        dock.results.doctor.human.setValue(2.0)
        settle(app, 800)
        grab("tagger")
    screens["tagger"] = tagger_screen

    def preview_screen():
        open_template("lenet5", {"epochs": 6, "batch_size": 32})
        ui.preview_dock.show()
        ui.preview_dock.raise_()
        w.canvas.select(["conv1"])
        run_to_end()
        w.canvas.select(["conv1"])
        wait_for(app, lambda: ui.preview.result is not None and ui.preview.result.node == "conv1"
                 and "after epoch" in ui.preview.where.text())
        settle(app, 800)
        grab("preview")
    screens["preview"] = preview_screen

    def vae_screen():
        open_template("vae", {"data": {"dataset": "digits", "options": {"size": 28}}, "epochs": 25,
                              "batch_size": 64, "optimizer": {"lr": 0.002}})
        run_to_end()
        dock.tabs.setCurrentWidget(dock.samples)
        settle(app, 800)
        grab("vae")
    screens["vae"] = vae_screen

    def gan_screen():
        open_template("dcgan", None)  # its own settings: 30 epochs of Adam (2e-4, beta1 0.5) on the digits
        run_to_end()
        dock.tabs.setCurrentWidget(dock.samples)
        settle(app, 800)
        grab("gan")
        dock.tabs.setCurrentIndex(0)
        settle(app, 800)
        grab("gan_losses")
    screens["gan"] = gan_screen

    def nan_screen():
        open_template("mlp", {"data": {"dataset": "spirals"}, "epochs": 3,
                              "optimizer": {"name": "sgd", "lr": 1e20}})
        run_to_end()
        dock.tabs.setCurrentIndex(0)
        settle(app, 800)
        grab("nan")
    screens["nan"] = nan_screen

    def export_screen():
        open_template("lenet5", {"epochs": 8, "batch_size": 32})
        run_to_end()
        dialog = ui.open_export()
        dialog.onnx_path.setText(str(tmp / "lenet5.onnx"))
        dialog.move(w.geometry().center() - dialog.rect().center())
        dialog.export_onnx()
        wait_for(app, lambda: dialog.report is not None or dialog.error)
        settle(app, 800)
        grab("export")
        dialog.close()
    screens["export"] = export_screen

    for name in names or list(screens):
        screens[name]()
    w.doc.undo_stack.setClean()
    ui.controller.shutdown()
    w.close()


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    main(sys.argv[1:])
