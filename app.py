"""DeepCanvas: the desktop app. ``python app.py [FILE]`` (or the ``deepcanvas-app`` command).

The window is shown first; the example network is loaded right after, and the training process
(``engine.training.remote``) starts in the background, loads PyTorch and reports the device, so
start-up does not wait for it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

T0 = time.perf_counter()


def _parse(argv):
    p = argparse.ArgumentParser(prog="deepcanvas-app", description="Draw, check and save neural networks.")
    p.add_argument("file", nargs="?", help="a .dcnet file to open")
    p.add_argument("--theme", choices=("dark", "light"), help="colour theme (remembered)")
    p.add_argument("--example", default="lenet5", help="template opened when no file is given ('' for none)")
    p.add_argument("--no-device", action="store_true", help="do not look for a GPU (no torch import)")
    return p.parse_args(argv)


def _install_error_hook(window) -> None:
    """An unexpected error in an event handler is reported in the window (and on stderr) instead of
    passing silently; the document is already restored by ``Document.edit`` and the app stays up."""
    import traceback

    from PySide6 import QtWidgets

    def hook(kind, value, tb):
        traceback.print_exception(kind, value, tb)
        QtWidgets.QMessageBox.critical(window, "DeepCanvas: internal error",
                                       f"Something went wrong inside DeepCanvas ({kind.__name__}: {value}). "
                                       "Your network is unchanged; please report this with the details printed "
                                       "in the terminal.")
    sys.excepthook = hook


def main(argv=None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") \
            and not os.environ.get("QT_QPA_PLATFORM"):
        print("deepcanvas-app: no display found (set DISPLAY, or QT_QPA_PLATFORM=offscreen for a headless run)",
              file=sys.stderr)
        return 2
    import gc

    # The collector is off while the window's modules load and it is built: the growing heap would set off
    # full collections in the imports (a fifth of the start-up here); what is alive then is frozen once
    # the example is open (gui.training.warmup.settle_heap) and the collector is on again.
    gc.disable()
    from gui import qtenv

    qtenv.prepare()
    from PySide6 import QtCore, QtWidgets

    QtCore.QCoreApplication.setOrganizationName("DeepCanvas")
    QtCore.QCoreApplication.setApplicationName("DeepCanvas")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    from gui import theme as themes
    from gui.mainwindow import MainWindow, default_settings

    settings = default_settings()
    if args.theme:
        settings.setValue("view/theme", args.theme)
    window = MainWindow(settings)
    _install_error_hook(window)
    window.show()
    if os.environ.get("DEEPCANVAS_STARTUP_TIMING"):
        print(f"window shown after {time.perf_counter() - T0:.2f} s", file=sys.stderr)

    def after_show():
        try:
            window.start(args.file, args.example or None)
        finally:
            from gui.training.warmup import settle_heap
            settle_heap()
            gc.enable()
        if not args.no_device:
            from gui.device import DeviceProbe
            probe = DeviceProbe(window)
            probe.found.connect(window.set_device)
            probe.start()  # (it starts the training process, which answers)
    QtCore.QTimer.singleShot(0, after_show)
    del themes
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
