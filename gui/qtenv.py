"""Process-wide Qt settings the window needs before it first paints, in one place.

:func:`prepare` runs in ``app.main`` before the QApplication is made, and again (it is idempotent) as a
:class:`~gui.mainwindow.MainWindow` is made, so the benchmarks, the screenshot scripts and the tests get
the window the app shows.
"""

from __future__ import annotations

import os

# Qt's raster engine splits every large fill, image conversion and smooth scale into strips, hands them
# to its GUI thread pool (a thread per core) and waits for them. Each repaint of a big widget woke the
# pool's threads dozens of times: 20 repaints of a 1600x1000 progress bar took 1,500 context switches of
# the UI thread and 1,000 of each pool thread (Qt 6.11), for the same CPU time of the UI thread as
# painting there alone. While a CPU run trains on every core, each wake-up preempts one of its threads:
# in a 6-second LeNet-5 run the UI thread woke 140-240 times with the pool and 17-19 without, and the two
# pool threads 60-130 times each. (What that costs a run is within the noise of
# benchmarks/bench_gui_training.py, whose window shares one core with its run: see benchmarks/README.md.)
# Qt reads the variable once, the first time something would use the pool; a value the user set is kept.
NO_PAINT_THREADS = ("QT_NO_GUI_THREADPOOL", "1")


def prepare() -> None:
    """Set the process environment the window expects (see ``NO_PAINT_THREADS``)."""
    name, value = NO_PAINT_THREADS
    os.environ.setdefault(name, value)
