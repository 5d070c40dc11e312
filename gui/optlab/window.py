"""The optimizer lab's window: the loss-surface playground and the comparison on the user's network,
as two tabs. Opened from the main window's Tools menu; it reads the network on the canvas through a
callable, so it always trains what is drawn now."""

from __future__ import annotations

from typing import Callable

from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as themes
from .network import NetworkComparison
from .surface import SurfacePlayground


class OptimizerLab(QtWidgets.QMainWindow):
    def __init__(self, graph_source: Callable[[], object] | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("optimizer_lab")
        self.setWindowTitle("Optimizer Lab — DeepCanvas")
        self.setWindowIcon(QtGui.QIcon(str(themes.ICONS / "deepcanvas.svg")))
        if parent is not None:  # its own window, above the editor but not modal
            self.setWindowFlag(QtCore.Qt.WindowType.Window, True)
        # Closing the editor ends the app even while the lab is open.
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_QuitOnClose, False)
        self.surface = SurfacePlayground()
        self.network = NetworkComparison(graph_source)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.surface, "On a loss surface")
        self.tabs.addTab(self.network, "On your network")
        self.setCentralWidget(self.tabs)
        self.surface.status.connect(self._flash)
        self.network.status.connect(self._flash)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.resize(1400, 900)

    def _flash(self, text: str) -> None:
        self.statusBar().showMessage(text.splitlines()[0] if text else "", 6000)

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is not self.surface:
            self.surface.pause()  # the surface walks only while it is seen

    def show_network(self) -> None:
        self.tabs.setCurrentWidget(self.network)

    def refresh(self) -> None:
        """Read the network's name and training settings again (the lab is re-opened for another graph)."""
        self.network.refresh()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802
        self.surface.stop()
        if self.network.running:
            self.network.stop()
            self.network.wait(10.0)
        event.accept()
