"""Import what the training, preview and export threads need, in the UI thread, before any of them starts.

PySide6 replaces ``builtins.__import__`` with its own hook (``__feature_import__``). A background thread
that imports a module while the UI thread calls into Qt can then deadlock (seen here: the preview
thread importing torch while the property panel built a QLabel; both threads stopped for good). The
first training run alone imports about 800 modules (torch, ``torch._dynamo`` from the optimizer,
scikit-learn for the digits), so they are imported here once, in the UI thread, with a busy cursor,
and the threads then find them in ``sys.modules``.
"""

from __future__ import annotations

import gc
import importlib
import sys

from PySide6 import QtCore, QtGui, QtWidgets

# What the live preview's thread needs (it compiles the graph and loads an example of the data set).
TRAINING = ("torch", "torch._dynamo", "torch.optim", "engine.compiler", "engine.training.trainer",
            "engine.training.modes", "engine.training.metrics", "engine.inspect", "sklearn.datasets")
# What a run needs in this process: its events arrive as pickles, read in a thread, and unpickling
# imports the modules of their classes (the run itself trains in the training process).
# (scipy.signal: the live plots' moving average of the loss; imported at a run's first points it stalled the
# window for about 0.1 s.)
RUN = ("torch", "torch.utils.serialization", "engine.training.trainer", "engine.training.metrics", "engine.inspect",
       "scipy.signal")
OPTIONAL = ("engine.training.images", "engine.training.files", "PIL.Image")
EXPORT = ("engine.export", "onnx", "onnxruntime", "onnxscript", "torch.onnx", "torch.export")


def ensure_imported(modules=TRAINING, optional=OPTIONAL, say=None) -> bool:
    """Import ``modules`` (and, when they exist, ``optional``) unless they are loaded already. Returns
    whether anything had to be imported. ``say(text)`` shows a message first (it is painted before the
    wait)."""
    missing = [m for m in modules if m not in sys.modules]
    extra = [m for m in optional if m not in sys.modules]
    if not missing and not extra:
        return False
    if say is not None and missing:
        say("Loading PyTorch and the training modules (only the first time)…")
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
    app = QtWidgets.QApplication.instance()
    if app is not None:
        QtWidgets.QApplication.setOverrideCursor(QtGui.QCursor(QtCore.Qt.CursorShape.WaitCursor))
    collecting = gc.isenabled()
    gc.disable()  # (see settle_heap)
    try:
        for name in missing:
            importlib.import_module(name)
        for name in extra:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    finally:
        settle_heap()
        if collecting:
            gc.enable()
        if app is not None:
            QtWidgets.QApplication.restoreOverrideCursor()
    return True


def settle_heap() -> None:
    """Move every object alive now (the hundreds of thousands the imports made: modules, functions,
    classes) out of the cyclic garbage collector's sight. A full collection walks all tracked objects
    while it holds the GIL; with torch and scikit-learn loaded that took 50-200 ms here, and it stalls
    the UI thread wherever it happens (a training run allocates enough to set one off every few
    seconds). Frozen objects are never collected, which costs nothing for modules that stay loaded.

    The collector is off while the imports run: the growing heap set off seven full collections in
    them, 0.9 s of the first run's 4.2 s wait here (3.3 s without). Nor is it run before the freeze
    (0.4 s more): the imports leave about 8,600 objects of garbage, a megabyte or two, frozen with the
    rest instead of freed (the process's memory is the same either way: 578 MB after the imports)."""
    gc.freeze()
