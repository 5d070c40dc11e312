"""Editor benchmarks (issue #6): a 500-node graph opens in under 2 s; shape re-inference after an edit
stays under 50 ms.

    .venv/bin/python benchmarks/bench_editor.py [--nodes 500] [--repeat 5]

Runs the real app headless (offscreen Qt). The graph is a deep residual MLP-and-conv network built
with the engine (Input, conv stem, then blocks of Linear/ReLU/Add with shortcuts), saved as a .dcnet.

- open: File > Open of that file in the main window, from the click to a drawn canvas (read, infer,
  build the NodeGraphQt scene, fill every panel, paint once). Median of ``--repeat`` opens.
- re-inference: ``engine.infer_shapes`` on the 500-node graph after one param edit (the number the
  target is about), and the whole edit as the user sees it (document edit + undo record + inference +
  canvas and panels updated). Medians over 30 edits.

Exits 1 when a target is missed. Absolute times, not ratios: these are interactive latencies with no
hand-written PyTorch counterpart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402

OPEN_TARGET_S = 2.0
INFER_TARGET_MS = 50.0


def big_graph(n_nodes: int) -> engine.Graph:
    """About ``n_nodes`` nodes: a residual network of Linear-ReLU-Linear-Add-ReLU blocks."""
    g = engine.Graph(f"{n_nodes}-node benchmark", "residual MLP built by benchmarks/bench_editor.py")
    y = 0.0

    def add(type_name, params=None, x=0.0):
        nonlocal y
        node = g.add_node(type_name, params=params, pos=(x, y))
        y += 90.0
        return node
    prev = add("Input", {"shape": [64]})
    while len(g.nodes) < n_nodes - 6:
        block_in = prev
        a = add("Linear", {"out_features": 64})
        g.connect(prev.id, "out", a.id, "in")
        r = add("ReLU")
        g.connect(a.id, "out", r.id, "in")
        b = add("Linear", {"out_features": 64})
        g.connect(r.id, "out", b.id, "in")
        s = add("Add")
        g.connect(b.id, "out", s.id, "in1")
        g.connect(block_in.id, "out", s.id, "in2")
        prev = add("ReLU")
        g.connect(s.id, "out", prev.id, "in")
    head = add("Linear", {"out_features": 10})
    g.connect(prev.id, "out", head.id, "in")
    out = add("Output")
    g.connect(head.id, "out", out.id, "in")
    t = g.add_node("Target", pos=(260.0, y - 90))
    loss = add("CrossEntropyLoss")
    g.connect(out.id, "out", loss.id, "pred")
    g.connect(t.id, "out", loss.id, "target")
    return g


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from PySide6 import QtCore, QtWidgets
    app = QtWidgets.QApplication(sys.argv[:1])
    from gui.mainwindow import MainWindow

    tmp = Path(tempfile.mkdtemp())
    graph = big_graph(args.nodes)
    assert engine.infer_shapes(graph).ok
    path = tmp / "big.dcnet"
    engine.save_graph(graph, path)
    settings = QtCore.QSettings(str(tmp / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings, tmp / "autosave")
    w.resize(1400, 900)
    w.show()
    app.processEvents()

    opens = []
    for _ in range(args.repeat):
        w.files.new()
        app.processEvents()
        t0 = time.perf_counter()
        assert w.files.open(path)
        app.processEvents()
        w.canvas.viewer.viewport().grab()  # one full paint of the canvas
        opens.append(time.perf_counter() - t0)
    assert len(w.canvas._nodes) == len(graph.nodes)

    doc = w.doc
    linears = [n for n, node in doc.graph.nodes.items() if node.type == "Linear"]
    infer_ms, edit_ms = [], []
    for i in range(30):
        nid = linears[i % len(linears)]
        doc.graph.nodes[nid].params["bias"] = not doc.graph.nodes[nid].params.get("bias", True)
        t0 = time.perf_counter()
        engine.infer_shapes(doc.graph)
        infer_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        doc.set_param(nid, "bias", not doc.graph.nodes[nid].params["bias"])
        app.processEvents()
        edit_ms.append((time.perf_counter() - t0) * 1000)
    w.doc.undo_stack.setClean()
    w.close()

    open_s, infer, edit = statistics.median(opens), statistics.median(infer_ms), statistics.median(edit_ms)
    print(f"graph: {len(graph.nodes)} nodes, {len(graph.edges)} wires")
    print(f"open (File > Open to drawn canvas): median {open_s:.2f} s  (target < {OPEN_TARGET_S} s)  "
          f"[{', '.join(f'{t:.2f}' for t in opens)}]")
    print(f"shape re-inference after an edit:   median {infer:.1f} ms  (target < {INFER_TARGET_MS:.0f} ms)")
    print(f"whole edit, document to screen:     median {edit:.1f} ms")
    ok = open_s < OPEN_TARGET_S and infer < INFER_TARGET_MS
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
