"""Take the README's screenshots from the running app on a virtual X display.

    Xvfb :99 -screen 0 1600x1000x24 &  DISPLAY=:99 .venv/bin/python docs/screenshots/capture.py [NAME ...]

Each screen is set up through the app's own actions, then the whole X screen is grabbed with
ImageMagick's ``import -window root`` (the same pixels a person would see) and saved here as PNG.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from PySide6 import QtCore, QtWidgets  # noqa: E402


def grab(name: str) -> None:
    importer = shutil.which("import") or "/usr/bin/import"
    out = HERE / f"{name}.png"
    subprocess.run([importer, "-window", "root", str(out)], check=True)
    print("wrote", out)


def settle(app, ms: int = 400) -> None:
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(ms, loop.quit)
    loop.exec()
    app.processEvents()


def main(names: list[str]) -> None:
    app = QtWidgets.QApplication(sys.argv[:1])
    tmp = tempfile.mkdtemp()
    from gui.device import DeviceInfo
    from gui.mainwindow import MainWindow

    settings = QtCore.QSettings(str(Path(tmp) / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings, Path(tmp) / "autosave")
    w.setGeometry(0, 0, 1600, 1000)
    w.show()
    w.start()
    w.set_device(DeviceInfo("cpu", "Intel(R) Xeon(R) CPU", 16 << 30, "torch 2.13.0"))
    settle(app, 800)
    screens = {}

    def main_screen():
        w.canvas.select(["conv2"])
        settle(app)
        grab("main")
    screens["main"] = main_screen

    def error_screen():
        g = w.doc.graph
        w.canvas.select(["flatten"])
        w.canvas.delete_selected()
        w.canvas.request_wires([], [])
        from engine import Edge
        w.doc.edit("wire", lambda gr: gr.connect("pool2", "out", "fc1", "in"))
        w.canvas.select(["ce_loss"], center=True)
        w.docks["problems"].raise_()
        settle(app)
        grab("errors")
        w.doc.undo_stack.undo()
        w.doc.undo_stack.undo()
        del g, Edge
    screens["errors"] = error_screen

    def code_screen():
        w.views.setCurrentWidget(w.code)
        settle(app)
        grab("code")
        w.views.setCurrentIndex(0)
    screens["code"] = code_screen

    def summary_screen():
        w.views.setCurrentWidget(w.summary)
        settle(app)
        grab("summary")
        w.views.setCurrentIndex(0)
    screens["summary"] = summary_screen

    def light_screen():
        from gui import theme
        w.apply_theme(theme.LIGHT)
        w.canvas.select(["fc1"])
        settle(app)
        grab("light")
        w.apply_theme(theme.DARK)
    screens["light"] = light_screen

    def templates_screen():
        from gui.templates import TemplateBrowser
        dialog = TemplateBrowser(w)
        dialog.select("resnet18")
        dialog.show()
        dialog.move(w.geometry().center() - dialog.rect().center())
        settle(app, 600)
        grab("templates")
        dialog.close()
    screens["templates"] = templates_screen

    def search_screen():
        w.canvas.open_search(w.canvas.viewer.rect().center())
        w.canvas.search.edit.setText("conv")
        settle(app)
        grab("search")
        w.canvas.search.hide()
    screens["search"] = search_screen

    def open_dcgan():
        from gui.templates import load_template
        w.files.open_graph(load_template("dcgan"), "Opened the DCGAN template")
        # the canvas and Properties in their usual room: Problems below, Pre-flight beside Properties
        for dock in w.findChildren(QtWidgets.QDockWidget):
            if dock.objectName() in ("dock_training", "dock_preview"):
                dock.hide()
        w.docks["problems"].show()
        w.docks["preflight"].show()
        settle(app, 200)
        vertical = QtCore.Qt.Orientation.Vertical
        w.resizeDocks([w.docks["problems"]], [150], vertical)
        w.resizeDocks([w.docks["properties"], w.docks["preflight"]], [520, 330], vertical)
        settle(app, 600)

    def restore_docks():
        for dock in w.findChildren(QtWidgets.QDockWidget):
            if dock.objectName() in ("dock_training", "dock_preview"):
                dock.show()

    def shared_screen():
        open_dcgan()
        w.canvas.fit()
        w.canvas.select(["discriminator_real"])
        settle(app)
        grab("shared")
        restore_docks()
    screens["shared"] = shared_screen

    def composite_screen():
        open_dcgan()
        w.canvas.open_composite("discriminator_real")
        w.canvas.select(["conv2"])
        settle(app)
        grab("composite")
        w.canvas.close_scope(0)
        restore_docks()
    screens["composite"] = composite_screen

    for name in names or list(screens):
        screens[name]()
    w.doc.undo_stack.setClean()
    w.close()


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    main(sys.argv[1:])
