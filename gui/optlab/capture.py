"""Take the optimizer lab's screenshots (docs/screenshots/optlab*.png) from the running app on a virtual
X display, as docs/screenshots/capture.py does for the editor:

    Xvfb :99 -screen 0 1600x1000x24 &  DISPLAY=:99 .venv/bin/python -m gui.optlab.capture [NAME ...]

The lab is opened through the main window's Tools menu; the whole X screen is grabbed with ImageMagick's
``import -window root``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "docs" / "screenshots"


def grab(name: str) -> None:
    importer = shutil.which("import") or "/usr/bin/import"
    out = OUT / f"{name}.png"
    subprocess.run([importer, "-window", "root", str(out)], check=True)
    print("wrote", out)


def main(names: list[str]) -> None:
    sys.path.insert(0, str(ROOT))
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication(sys.argv[:1])
    tmp = tempfile.mkdtemp()
    import engine
    from engine.training import set_training_defaults
    from gui.document import Document
    from gui.mainwindow import MainWindow

    def settle(ms: int = 400) -> None:
        loop = QtCore.QEventLoop()
        QtCore.QTimer.singleShot(ms, loop.quit)
        loop.exec()
        app.processEvents()

    settings = QtCore.QSettings(str(Path(tmp) / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings, Path(tmp) / "autosave")
    w.setGeometry(0, 0, 1600, 1000)
    w.show()
    graph = engine.load_graph(ROOT / "templates" / "mlp.dcnet")
    set_training_defaults(graph, data__dataset="spirals", epochs=15, batch_size=32)
    w.set_document(Document(graph))
    settle(600)
    action = next(a for m in w.menuBar().actions() if m.menu() for a in m.menu().actions()
                  if a.objectName() == "action_optimizer_lab")
    action.trigger()
    lab = w.optimizer_lab
    lab.setGeometry(0, 0, 1600, 1000)
    settle(600)
    s = lab.surface
    screens = {}

    def surface_screen(key: str, steps: int | None = None, name: str = ""):
        def take():
            lab.tabs.setCurrentWidget(s)
            s.surface_box.setCurrentIndex(s.surface_box.findData(key))
            s.advance(steps or s.max_steps.value())
            settle()
            grab(name or f"optlab_{key}")
        return take

    screens["optlab"] = surface_screen("rosenbrock", name="optlab")
    screens["optlab_quadratic"] = surface_screen("quadratic", 60)
    screens["optlab_stochastic"] = surface_screen("stochastic", 120)
    screens["optlab_saddle"] = surface_screen("saddle", 60)

    def network_screen():
        import torch

        torch.set_num_threads(1)  # the capture machine is shared: one thread keeps the times of the runs fair
        n = lab.network
        lab.tabs.setCurrentWidget(n)
        n.refresh()
        n.rows[0].batching.setCurrentText("batch")
        n.rows[0].lr.setValue(0.5)
        n.add_run("sgd", "stochastic", lr=0.01)
        n.start()
        n.wait(600)
        settle(300)
        n.poll()
        settle(300)
        grab("optlab_network")
    screens["optlab_network"] = network_screen

    for name in names or list(screens):
        screens[name]()
    lab.close()
    w.doc.undo_stack.setClean()
    w.close()


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    main(sys.argv[1:])
