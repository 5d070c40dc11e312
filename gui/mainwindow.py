"""The main window: the canvas in the middle and one dock per panel around it. It only assembles and
wires the parts; each panel lives in its own module and the document is the single source of truth."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from . import actions as action_table
from . import qtenv
from . import theme as themes
from .canvas import Canvas
from .codeview import CodeView, SummaryView
from .document import Document
from .files import Autosave, RecentFiles
from .filecommands import FileCommands
from .palette import Palette
from .preflight import PreflightPanel
from .problems import ProblemsPanel
from .properties import PropertyEditor
from .statusbar import StatusBar
from .training.ui import TrainingUI

APP = "DeepCanvas"
STATE_VERSION = 3  # bump when the docks change, so an old saved layout is ignored
# The least height of a panel that scrolls (Properties, Pre-flight, Preview): about two lines under its dock's
# title. A panel's own minimum (its scroll bar's, or its form's) stacked up in the right-hand column, and a
# dock tabbed away still counts there: the bottom dock (Training) could not be made taller than about 240
# pixels in a 1280x720 window. Below its content's height the panel scrolls.
PANEL_MIN_HEIGHT = 32


class ViewTabs(QtWidgets.QTabWidget):
    """The middle's tabs (Diagram, Code, Summary). Only the page shown sets the least height: a
    QTabWidget's minimum is its largest page's, the Code page's (its buttons over its text) even while
    the diagram is shown, which kept the docks below from growing."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.current_only = False  # (from the window's first layout on: MainWindow._let_panels_shrink)
        self.currentChanged.connect(lambda _: self.updateGeometry())

    def minimumSizeHint(self) -> QtCore.QSize:
        hint = super().minimumSizeHint()
        page = self.currentWidget()
        if page is not None and self.current_only:
            hint.setHeight(self.tabBar().sizeHint().height() + page.minimumSizeHint().height())
        return hint


def default_settings() -> QtCore.QSettings:
    return QtCore.QSettings(APP, APP)


def default_autosave_dir() -> Path:
    base = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".deepcanvas") / "autosave"


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, settings: QtCore.QSettings | None = None, autosave_dir: str | Path | None = None,
                 autosave_ms: int = 30_000):
        qtenv.prepare()  # (before the window first paints)
        super().__init__()
        self.settings = settings or default_settings()
        self.setWindowIcon(QtGui.QIcon(str(themes.ICONS / "deepcanvas.svg")))
        self.doc = Document()
        self.canvas = Canvas(self.doc, self)
        self.recent = RecentFiles(self.settings)
        self.autosave = Autosave(autosave_dir or default_autosave_dir(), autosave_ms, self)
        self.files = FileCommands(self)
        self.device = None

        self.palette = Palette(self.doc.graph.registry)
        self.properties = PropertyEditor(apply_fix=self.canvas.apply_fix)
        self.problems = ProblemsPanel(apply_fix=self.canvas.apply_fix)
        self.preflight = PreflightPanel()
        self.code = CodeView()
        self.summary = SummaryView()
        # The network's three views share the middle: the diagram, its PyTorch code, its layer table.
        self.views = ViewTabs()
        self.views.setObjectName("views")
        self.views.setDocumentMode(True)
        self.views.addTab(self.canvas.widget, themes.icon("node"), "Diagram")
        self.views.addTab(self.code, themes.icon("code"), "Code")
        self.views.addTab(self.summary, themes.icon("summary"), "Summary")
        self.setCentralWidget(self.views)
        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        L, R, B = (QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, QtCore.Qt.DockWidgetArea.RightDockWidgetArea,
                   QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("palette", "Layers", "palette", self.palette, L)
        self._dock("properties", "Properties", "properties", self.properties, R)
        self._dock("preflight", "Pre-flight", "preflight", self.preflight, R)
        self._dock("problems", "Problems", "problems", self.problems, B)
        # The bottom area is where the training dock (a later issue) goes, tabbed with Problems.
        self.resizeDocks([self.docks["palette"], self.docks["properties"]], [220, 320],
                         QtCore.Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["problems"]], [150], QtCore.Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["properties"], self.docks["preflight"]], [520, 330],
                         QtCore.Qt.Orientation.Vertical)
        self.setStatusBar(StatusBar(self))
        self.actions_ = action_table.build(self)
        for dock in self.docks.values():
            self.panels_menu.addAction(dock.toggleViewAction())
        for i, name in enumerate(("Diagram", "Code", "Summary")):
            action = QtGui.QAction(f"Show {name}", self)
            action.setShortcut(QtGui.QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _=False, i=i: self.views.setCurrentIndex(i))
            self.addAction(action)
            self.view_menu.insertAction(self.actions_["fit"], action)
        self.view_menu.insertSeparator(self.actions_["fit"])
        tools = QtWidgets.QMenu("&Tools", self)  # before Help; the optimizer lab lives in gui/optlab
        tools.addAction("&Optimizer Lab…", self.open_optimizer_lab).setObjectName("action_optimizer_lab")
        self.menuBar().insertMenu(self.menuBar().actions()[-1], tools)
        self.training = TrainingUI(self)  # the Training and Preview docks, the Train menu (gui/training)
        self._default_state = self.saveState(STATE_VERSION)
        self._connect()
        self.set_document(self.doc)
        self.apply_theme(themes.THEMES.get(str(self.settings.value("view/theme", "dark")), themes.DARK))
        self.refresh_recent()
        self.resize(1400, 860)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state, STATE_VERSION)

    # ------------------------------------------------------------------ assembly
    def _dock(self, name: str, title: str, icon: str, widget, area) -> None:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        dock.toggleViewAction().setIcon(themes.icon(icon))
        self.addDockWidget(area, dock)
        self.docks[name] = dock

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        if not getattr(self, "_panels_shrink", False):
            self._panels_shrink = True
            QtCore.QTimer.singleShot(0, self._let_panels_shrink)

    def _let_panels_shrink(self) -> None:
        """The panels that scroll may be dragged down to ``PANEL_MIN_HEIGHT``. Set once the window is first
        laid out: their own minimums (a scroll bar's, the Preview's whole content) made its default layout
        (the docks' first sizes), which stays what it was; they only let the docks be dragged further."""
        for panel in (self.properties, self.preflight):
            panel.setMinimumHeight(PANEL_MIN_HEIGHT)
        self.views.current_only = True
        self.views.updateGeometry()
        self.training.let_panels_shrink(PANEL_MIN_HEIGHT)

    def _connect(self) -> None:
        a, c, f = self.actions_, self.canvas, self.files
        a["new"].triggered.connect(f.new)
        a["open"].triggered.connect(lambda: f.open())
        a["templates"].triggered.connect(self.open_template_browser)
        a["save"].triggered.connect(f.save)
        a["save_as"].triggered.connect(f.save_as)
        a["quit"].triggered.connect(self.close)
        a["undo"].triggered.connect(lambda: self.doc.undo_stack.undo())
        a["redo"].triggered.connect(lambda: self.doc.undo_stack.redo())
        a["cut"].triggered.connect(c.cut_selected)
        a["copy"].triggered.connect(c.copy_selected)
        a["paste"].triggered.connect(lambda: c.paste())
        a["duplicate"].triggered.connect(c.duplicate_selected)
        a["delete"].triggered.connect(c.delete_selected)
        a["select_all"].triggered.connect(c.select_all)
        a["group"].triggered.connect(self.group_selection)
        a["expand"].triggered.connect(c.expand_selected)
        a["open_composite"].triggered.connect(lambda: c.open_composite())
        a["close_composite"].triggered.connect(lambda: c.close_scope())
        a["share"].triggered.connect(c.share_selected)
        a["unshare"].triggered.connect(c.stop_sharing_selected)
        c.scope_changed.connect(self.properties.set_document)
        self.properties.node_requested.connect(lambda nid: c.select([nid], center=True))
        c.group_requested.connect(self.group_selection)
        c.file_dropped.connect(lambda path: f.open(path))
        a["add_node"].triggered.connect(lambda: c.open_search(c.viewer.rect().center()))
        a["fit"].triggered.connect(c.fit)
        a["zoom_in"].triggered.connect(lambda: c.zoom(200))
        a["zoom_out"].triggered.connect(lambda: c.zoom(-200))
        a["layout"].triggered.connect(c.auto_layout)
        a["theme"].toggled.connect(lambda dark: self.apply_theme(themes.DARK if dark else themes.LIGHT))
        a["reset_layout"].triggered.connect(lambda: self.restoreState(self._default_state, STATE_VERSION))
        a["shortcuts"].triggered.connect(self.show_shortcuts)
        a["about"].triggered.connect(self.show_about)
        c.shown_selection_changed.connect(self.properties.show_selection)  # inside an open composite too
        c.node_activated.connect(self._show_properties)
        c.message.connect(self.flash)
        self.palette.add_requested.connect(lambda name: c.add_node(name))
        self.problems.node_clicked.connect(self._problem_clicked)
        self.statusBar().problems_clicked.connect(self._show_problems)
        self.autosave.saved.connect(lambda text: self.statusBar().showMessage(text, 3000))

    def set_document(self, doc: Document) -> None:
        old = self.doc
        self.doc = doc
        self.canvas.set_document(doc)
        for panel in (self.properties, self.problems, self.preflight, self.code, self.summary,
                      self.statusBar(), self.training):
            panel.set_document(doc)
        self.actions_["undo"].setEnabled(doc.undo_stack.canUndo())
        self.actions_["redo"].setEnabled(doc.undo_stack.canRedo())
        doc.undo_stack.canUndoChanged.connect(self.actions_["undo"].setEnabled)
        doc.undo_stack.canRedoChanged.connect(self.actions_["redo"].setEnabled)
        if old is not doc:
            old.deleteLater()
        doc.file_changed.connect(self._update_title)
        self.autosave.watch(doc)
        self._update_title()
        QtCore.QTimer.singleShot(30, self.canvas.frame)

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.doc.title}[*] — {APP}")
        self.setWindowModified(self.doc.modified)

    def _problem_clicked(self, nid: str) -> None:
        self.views.setCurrentIndex(0)
        self.canvas.select([nid], center=True)

    def _show_problems(self) -> None:
        self.docks["problems"].show()
        self.docks["problems"].raise_()

    def _show_properties(self, nid: str) -> None:
        if nid:
            self.canvas.select([nid])
        self.docks["properties"].show()
        self.docks["properties"].raise_()

    # ------------------------------------------------------------------ start-up and devices
    def start(self, path: str | None = None, example: str | None = "lenet5") -> None:
        """What to show first: a crashed session's work, a file given on the command line, or the
        ready example (the LeNet-5 template)."""
        if self.files.offer_recovery():
            return
        if path:
            if self.files.open(path):
                return
        if example:
            from .templates import load_template
            try:
                self.set_document(Document(load_template(example)))
                self.flash(f"Opened the {self.doc.graph.name} example: press Ctrl+T for more templates")
            except Exception as exc:  # a missing template must not keep the app from starting
                self.flash(f"The example template '{example}' could not be opened ({exc}); "
                           "starting with an empty network")

    def set_device(self, info) -> None:
        self.device = info
        self.preflight.set_device(info)
        self.statusBar().set_device(info)
        self.training.dock_widget.settings.set_device(info)

    # ------------------------------------------------------------------ dialogs (replaceable in tests)
    def ask(self, title: str, text: str, buttons: list[str]) -> str:
        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle(f"{title} — {APP}")
        box.setText(text)
        made = {}
        roles = {"Save": QtWidgets.QMessageBox.ButtonRole.AcceptRole,
                 "Recover": QtWidgets.QMessageBox.ButtonRole.AcceptRole,
                 "Discard": QtWidgets.QMessageBox.ButtonRole.DestructiveRole,
                 "Cancel": QtWidgets.QMessageBox.ButtonRole.RejectRole}
        for label in buttons:
            made[box.addButton(label, roles.get(label, QtWidgets.QMessageBox.ButtonRole.ActionRole))] = label
        box.exec()
        return made.get(box.clickedButton(), "Cancel")

    def ask_text(self, title: str, label: str, default: str) -> str:
        text, ok = QtWidgets.QInputDialog.getText(self, f"{title} — {APP}", label, text=default)
        return text.strip() if ok else ""

    def group_selection(self) -> None:
        if not self.canvas.selected_ids():
            self.canvas.refuse("Select the layers to group into a composite first")
            return
        name = self.ask_text("Group into composite", "Name of the new composite block:",
                             self.canvas.free_composite_name())
        if name:
            self.canvas.group_selected(name)

    def report(self, title: str, text: str) -> None:
        self.flash(text.splitlines()[0])
        QtWidgets.QMessageBox.warning(self, f"{title} — {APP}", text)

    def pick_open_path(self, filter_: str) -> str:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, f"Open — {APP}", self._last_dir(), filter_)
        return path

    def pick_save_path(self, filter_: str, suggested: str) -> str:
        start = suggested if Path(suggested).is_absolute() else str(Path(self._last_dir()) / suggested)
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, f"Save — {APP}", start, filter_)
        return path

    def _last_dir(self) -> str:
        recent = self.recent.paths()
        return str(Path(recent[0]).parent) if recent else str(Path.cwd())

    def flash(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    # ------------------------------------------------------------------ menus
    def refresh_recent(self) -> None:
        menu = self.recent_menu
        menu.clear()
        paths = self.recent.paths()
        for path in paths:
            action = menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.files.open(p))
        if paths:
            menu.addSeparator()
            menu.addAction("Clear list", lambda: (self.recent.clear(), self.refresh_recent()))
        menu.setEnabled(bool(paths))

    def open_optimizer_lab(self) -> None:
        """Gradient descent, momentum, RMSprop, Adam... on 2-D surfaces and on the network being edited."""
        from .optlab import OptimizerLab
        if getattr(self, "optimizer_lab", None) is None:
            self.optimizer_lab = OptimizerLab(lambda: self.doc.graph, self)
        self.optimizer_lab.refresh()
        self.optimizer_lab.show()
        self.optimizer_lab.raise_()
        self.optimizer_lab.activateWindow()

    def open_template_browser(self) -> None:
        from .templates import TemplateBrowser
        dialog = TemplateBrowser(self)
        if dialog.exec() and dialog.chosen_graph is not None:
            self.files.open_graph(dialog.chosen_graph, f"Opened the {dialog.chosen_graph.name} template")

    def apply_theme(self, theme: themes.Theme) -> None:
        app = QtWidgets.QApplication.instance()
        themes.apply(app, theme)
        self.settings.setValue("view/theme", theme.name)
        action = self.actions_["theme"]
        blocker = QtCore.QSignalBlocker(action)
        action.setChecked(theme.dark)
        del blocker
        action_table.retint(self.actions_)
        for name, dock in self.docks.items():
            dock.toggleViewAction().setIcon(themes.icon(name))
        for i, name in enumerate(("node", "code", "summary")):
            self.views.setTabIcon(i, themes.icon(name))
        self.canvas.apply_theme(theme)
        self.code.highlighter.set_theme(theme)
        for panel in (self.problems, self.statusBar(), self.preflight):
            if panel.doc is not None:
                if hasattr(panel, "_key"):
                    panel._key = None
                panel.refresh()
        self.palette.rebuild()

    def show_shortcuts(self) -> None:
        rows = action_table.shortcut_table(self.actions_)
        text = "<table cellpadding='3'>" + "".join(f"<tr><td>{a}</td><td><b>{k}</b></td></tr>" for a, k in rows) \
               + "</table>"
        QtWidgets.QMessageBox.information(self, f"Keyboard shortcuts — {APP}", text)

    def show_about(self) -> None:
        import engine
        QtWidgets.QMessageBox.about(self, f"About {APP}", f"<b>{APP}</b> {engine.__version__}<br>Draw a neural "
                                    "network, watch the shapes flow, train it, export it to PyTorch and ONNX.")

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if not self.training.confirm_close() or not self.files.confirm_discard():
            event.ignore()
            return
        self.training.shutdown()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))
        self.settings.sync()
        self.autosave.timer.stop()
        self.autosave.discard()
        event.accept()
