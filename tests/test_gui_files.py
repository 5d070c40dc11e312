"""Files in the app: save/open round trip, an unreadable file, recent files, autosave and recovery after
a crash, and the prompt before losing unsaved changes. Dialogs are answered through the window's
``ask`` / ``pick_*_path`` hooks, everything else is the real app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

import engine
from gui.document import snapshot
from gui.mainwindow import MainWindow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def make_window(qtbot, tmp_path, autosave="autosave"):
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings, tmp_path / autosave, autosave_ms=60_000)
    w.answers, w.asked, w.reports = [], [], []

    def ask(title, text, buttons):
        w.asked.append(text)
        assert w.answers, f"unexpected question: {text}"
        answer = w.answers.pop(0)
        assert answer in buttons
        return answer
    w.ask = ask
    w.report = lambda title, text: w.reports.append(text)
    w.show()
    return w


@pytest.fixture
def make(qtbot, tmp_path):
    made = []

    def factory(autosave="autosave"):
        made.append(make_window(qtbot, tmp_path, autosave))
        return made[-1]
    yield factory
    for w in made:  # closed here, with nothing left to ask about (pytest-qt would close them first)
        w.doc.undo_stack.setClean()
        w.doc._recovered = False
        w.close()
        w.deleteLater()


@pytest.fixture
def window(make):
    w = make()
    w.start(example="lenet5")
    return w


def test_save_open_round_trip(window, tmp_path):
    w = window
    w.doc.set_param("fc1", "out_features", 100)
    w.doc.move({"label": (300.0, 1170.0)})
    path = tmp_path / "net.dcnet"
    w.pick_save_path = lambda _filter, suggested: (str(tmp_path / "net"), suggested)[0]
    w.actions_["save"].trigger()  # untitled: Save asks for a name (".dcnet" is added)
    assert path.is_file() and not w.doc.modified and w.doc.path == path
    assert "net.dcnet" in w.windowTitle()
    saved = snapshot(w.doc.graph)
    assert snapshot(engine.load_graph(path)) == saved
    w.doc.set_param("fc1", "out_features", 7)
    w.answers = ["Discard"]
    assert w.files.new()
    assert w.asked and "net.dcnet" in w.asked[0]
    assert len(w.doc.graph.nodes) == 0 and w.canvas.view_edges() == set()
    assert w.files.open(path)
    assert snapshot(w.doc.graph) == saved and w.doc.path == path and not w.doc.modified
    assert set(w.canvas._nodes) == set(w.doc.graph.nodes)
    assert w.recent.paths()[0] == str(path.resolve())
    assert [a.text() for a in w.recent_menu.actions()][0] == "net.dcnet"
    # Save again writes in place without asking
    w.doc.set_param("fc2", "out_features", 80)
    w.pick_save_path = lambda *a: pytest.fail("Save of a named file asked for a name")
    w.actions_["save"].trigger()
    assert engine.load_graph(path).nodes["fc2"].params["out_features"] == 80


def test_an_unreadable_file_is_reported_and_the_app_stays_up(window, tmp_path):
    w = window
    before = snapshot(w.doc.graph)
    bad = tmp_path / "broken.dcnet"
    bad.write_text('{"format": "deepcanvas.graph", "version": 2, "nodes": [{"type": "Conv2d"}]}')
    assert not w.files.open(bad)
    assert "broken.dcnet" in w.reports[0] and "field 'id' must be non-empty text" in w.reports[0]
    assert snapshot(w.doc.graph) == before and w.isVisible()
    notjson = tmp_path / "notjson.dcnet"
    notjson.write_text("this is not a network")
    assert not w.files.open(notjson)
    assert "not valid JSON" in w.reports[1]
    assert not w.files.open(tmp_path / "missing.dcnet")
    assert "does not exist" in w.reports[2]
    # a file with an unknown node type opens, with the node kept and flagged
    g = engine.load_graph(engine.templates.template_path("mlp"))
    text = engine.dumps(g).replace('"type": "ReLU"', '"type": "Swishy"', 1)
    odd = tmp_path / "odd.dcnet"
    odd.write_text(text)
    assert w.files.open(odd)
    odd_ids = [n for n, node in w.doc.graph.nodes.items() if node.type == "Swishy"]
    assert odd_ids and w.canvas.node_item(odd_ids[0]).severity == "error"
    assert "unknown node type 'Swishy'" in w.canvas.node_item(odd_ids[0]).toolTip()


def test_closing_with_unsaved_changes_asks_first(window):
    w = window
    w.doc.set_param("fc1", "out_features", 99)
    w.answers = ["Cancel"]
    assert not w.close()
    assert w.isVisible() and w.doc.modified
    w.answers = ["Discard"]
    assert w.close()


def test_autosave_and_recovery_after_a_crash(window, make, tmp_path):
    w = window
    w.doc.set_param("conv1", "out_channels", 9)
    w.canvas.add_node("Dropout")
    assert w.autosave.save_now()
    data, meta = w.autosave.data, w.autosave.meta
    assert data.is_file() and json.loads(meta.read_text())["title"] == "LeNet-5"
    work = snapshot(w.doc.graph)
    # pretend the process died: its autosave now carries the id of a process that has ended
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    os.replace(data, data.with_name(f"autosave-{dead}.dcnet"))
    os.replace(meta, meta.with_name(f"autosave-{dead}.json"))
    w2 = make()
    w2.answers = ["Recover"]
    w2.start(example="lenet5")
    assert w2.asked and "LeNet-5" in w2.asked[0]
    assert snapshot(w2.doc.graph) == work
    assert w2.doc.modified and "*" in w2.windowTitle() or w2.isWindowModified()
    assert set(w2.canvas._nodes) == set(w2.doc.graph.nodes)
    assert not list(tmp_path.glob(f"autosave/autosave-{dead}.*"))  # the crashed session's files are gone
    assert w2.autosave.data.is_file()  # and this session's autosave holds the work
    # a second start finds nothing more to recover
    w3 = make()
    assert w3.autosave.orphans() == []
    w2.answers = ["Discard"]
    w2.close()
    assert not w2.autosave.data.exists()


def test_saving_removes_the_autosave(window, tmp_path):
    w = window
    w.doc.set_param("conv1", "out_channels", 9)
    assert w.autosave.save_now() and w.autosave.data.exists()
    w.pick_save_path = lambda *a: str(tmp_path / "x.dcnet")
    assert w.files.save()
    assert not w.autosave.data.exists()
    assert not w.autosave.save_now()  # nothing unsaved: nothing written


def test_window_appears_before_torch_is_imported(qtbot, tmp_path):
    """The GUI modules never import torch at start-up (the device probe does it in the background)."""
    code = ("import sys, os; os.environ['QT_QPA_PLATFORM']='offscreen'; sys.path.insert(0, %r);"
            "from PySide6 import QtWidgets; app = QtWidgets.QApplication([]);"
            "from gui.mainwindow import MainWindow; w = MainWindow(); w.show(); w.start();"
            "w.doc.undo_stack.setClean(); print('torch' in sys.modules)") % str(os.getcwd())
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_device_probe_reports_in_the_gui_thread(qtbot):
    from gui.device import DeviceInfo, DeviceProbe, detect
    probe = DeviceProbe()
    with qtbot.waitSignal(probe.found, timeout=30_000) as blocker:
        probe.start()
    info = blocker.args[0]
    assert isinstance(info, DeviceInfo) and info == detect()  # the training process's answer, as torch's here
    assert info.short
    from engine.training.remote import TrainingProcess
    assert TrainingProcess.shared().info["device"] == info  # (it started it: the first run need not wait)
    QTest.qWait(1)


def test_open_an_onnx_model_imports_it_beside_the_file(window, tmp_path):
    from engine.export import export_graph

    w = window
    w.doc.undo_stack.setClean()
    source = engine.load_graph(os.path.join(os.path.dirname(__file__), "..", "templates", "mlp.dcnet"))
    export_graph(source, tmp_path / "mlp.onnx")
    (tmp_path / "mlp.dcnet").write_text("taken")  # an existing name is never overwritten
    assert w.files.open(tmp_path / "mlp.onnx")
    assert w.doc.path == tmp_path / "mlp_2.dcnet" and (tmp_path / "mlp_2.safetensors").is_file()
    assert w.doc.graph.weights == "mlp_2.safetensors"
    assert engine.infer_shapes(w.doc.graph).total_params == 4547
    assert "Imported mlp.onnx" in w.statusBar().currentMessage()
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    assert not w.files.open(tmp_path / "broken.onnx")
    assert "broken.onnx could not be imported" in w.reports[-1]
    assert w.doc.path == tmp_path / "mlp_2.dcnet"  # the open document is untouched


PAINT_THREADS = r"""
import os, sys
from pathlib import Path
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, %(root)r)
from PySide6 import QtWidgets
app = QtWidgets.QApplication([])
if %(window)r:
    from gui.mainwindow import MainWindow
    w = MainWindow()
else:
    w = QtWidgets.QMainWindow()
    bar = QtWidgets.QProgressBar()
    w.setCentralWidget(bar)
w.resize(1600, 1000)
w.show()
for i in range(10):  # repaints, as while a run trains
    w.grab()
    app.processEvents()
names = [(t / "comm").read_text().strip() for t in Path("/proc/self/task").iterdir()]
print(sum("pooled" in n for n in names))
if %(window)r:
    w.doc.undo_stack.setClean()
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="thread names from Linux's /proc")
def test_the_window_paints_without_qts_paint_threads(tmp_path):
    """gui.qtenv: Qt's raster engine hands large fills to a thread pool and waits for it, waking its
    threads dozens of times per repaint; the window paints in the UI thread alone (those wake-ups
    preempted a CPU run). Without the window (a plain Qt window), the same repaints do start the pool,
    so this test sees the difference."""
    env = {k: v for k, v in os.environ.items() if k != "QT_NO_GUI_THREADPOOL"}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))

    def pool_threads(window: bool) -> int:
        code = PAINT_THREADS % {"root": str(Path(__file__).resolve().parent.parent), "window": window}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return int(out.stdout.strip().splitlines()[-1])

    if pool_threads(window=False) == 0:
        pytest.skip("this Qt paints a plain window without its thread pool: nothing to compare")
    assert pool_threads(window=True) == 0
