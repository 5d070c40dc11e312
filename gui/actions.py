"""The window's actions (menus, tool bar, keyboard shortcuts), in one table.

Canvas edits (delete, copy, paste, select all, ...) are bound to the canvas with a widget shortcut
context, so the same keys keep working as usual in text fields of the panels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui

from . import theme as themes

if TYPE_CHECKING:  # pragma: no cover
    from .mainwindow import MainWindow

K = QtGui.QKeySequence
SK = QtGui.QKeySequence.StandardKey

# name: (text, icon, shortcuts, canvas-only, tip)
ACTIONS = {
    "new": ("&New", "new", [SK.New], False, "Start an empty network"),
    "open": ("&Open…", "open", [SK.Open], False, "Open a .dcnet file"),
    "templates": ("Open &Template…", "templates", [K("Ctrl+T")], False, "Start from a template network"),
    "save": ("&Save", "save", [SK.Save], False, "Save the network"),
    "save_as": ("Save &As…", "save-as", [K("Ctrl+Shift+S")], False, "Save under a new name"),
    "quit": ("&Quit", None, [SK.Quit], False, "Close DeepCanvas"),
    "undo": ("&Undo", "undo", [SK.Undo], False, "Undo the last edit"),
    "redo": ("&Redo", "redo", [SK.Redo, K("Ctrl+Y")], False, "Redo"),
    "cut": ("Cu&t", None, [SK.Cut], True, "Cut the selected nodes"),
    "copy": ("&Copy", "copy", [SK.Copy], True, "Copy the selected nodes"),
    "paste": ("&Paste", "paste", [SK.Paste], True, "Paste nodes"),
    "duplicate": ("D&uplicate", "duplicate", [K("Ctrl+D")], True, "Duplicate the selected nodes"),
    "delete": ("&Delete", "delete", [K(QtCore.Qt.Key.Key_Delete), K(QtCore.Qt.Key.Key_Backspace)], True,
               "Delete the selected nodes and wires"),
    "select_all": ("Select &All", "select-all", [SK.SelectAll], True, "Select every node"),
    "group": ("&Group into Composite…", "group", [K("Ctrl+G")], True,
              "Move the selected layers into a new reusable composite block"),
    "expand": ("E&xpand Composite", "expand", [K("Ctrl+Shift+G")], True,
               "Replace the selected composite or block by the layers it stands for"),
    "open_composite": ("&Open Composite", "open-composite", [], True,
                       "Edit the inside of the selected composite (Enter on the canvas, or double-click it)"),
    "close_composite": ("&Back to Parent Graph", "back", [K("Alt+Up")], True,
                        "Leave the open composite for the graph that holds it"),
    "share": ("S&hare Weights With…", "link", [], True,
              "Make the selected node use the weights of another node of its type (of two selected nodes, "
              "the second uses the first's)"),
    "unshare": ("Stop Sharing &Weights", "unlink", [], True, "Give the selected node its own weights again"),
    "add_node": ("&Add Node…", "add", [K("Ctrl+K")], False, "Add a node by name (Tab on the canvas)"),
    "fit": ("Zoom to &Fit", "fit", [K("F"), K("Ctrl+0")], True, "Show the whole network"),
    "zoom_in": ("Zoom &In", "zoom-in", [SK.ZoomIn, K("Ctrl+=")], False, "Zoom in"),
    "zoom_out": ("Zoom &Out", "zoom-out", [SK.ZoomOut], False, "Zoom out"),
    "layout": ("Automatic &Layout", "layout", [K("Ctrl+L")], False,
               "Arrange the network top to bottom (only the selection when several nodes are selected)"),
    "theme": ("&Dark Theme", "theme", [K("Ctrl+Shift+L")], False, "Switch between the dark and light theme"),
    "reset_layout": ("&Reset Panels", None, [], False, "Put the panels back where they started"),
    "shortcuts": ("&Keyboard Shortcuts", None, [K("F1")], False, "List the keyboard shortcuts"),
    "about": ("&About DeepCanvas", None, [], False, ""),
}

TOOLBAR = ["new", "open", "save", None, "undo", "redo", None, "templates", "add_node", "delete", None, "fit",
           "layout", None, "theme"]


def build(window: "MainWindow") -> dict[str, QtGui.QAction]:
    acts: dict[str, QtGui.QAction] = {}
    canvas_widget = window.canvas.widget
    for name, (text, icon, keys, canvas_only, tip) in ACTIONS.items():
        action = QtGui.QAction(text, window)
        action.setObjectName(f"action_{name}")
        if icon:
            action.setIcon(themes.icon(icon))
            action.setProperty("icon_name", icon)
        if keys:
            action.setShortcuts([k if isinstance(k, QtGui.QKeySequence) else QtGui.QKeySequence(k) for k in keys])
        shortcut = action.shortcut().toString(QtGui.QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{tip} ({shortcut})" if shortcut and tip else tip or text.replace("&", ""))
        action.setStatusTip(tip)
        if canvas_only:
            action.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
            canvas_widget.addAction(action)
        else:
            window.addAction(action)
        acts[name] = action
    acts["theme"].setCheckable(True)

    menubar = window.menuBar()
    file_menu = menubar.addMenu("&File")
    for name in ("new", "open", "templates"):
        file_menu.addAction(acts[name])
    window.recent_menu = file_menu.addMenu(themes.icon("recent"), "Open &Recent")
    file_menu.addSeparator()
    for name in ("save", "save_as"):
        file_menu.addAction(acts[name])
    file_menu.addSeparator()
    file_menu.addAction(acts["quit"])
    edit = menubar.addMenu("&Edit")
    for name in ("undo", "redo", None, "cut", "copy", "paste", "duplicate", "delete", None, "select_all",
                 "add_node", None, "group", "expand", "open_composite", "close_composite", None, "share",
                 "unshare"):
        edit.addAction(acts[name]) if name else edit.addSeparator()
    view = window.view_menu = menubar.addMenu("&View")
    for name in ("fit", "zoom_in", "zoom_out", "layout", None, "theme"):
        view.addAction(acts[name]) if name else view.addSeparator()
    window.panels_menu = view.addMenu("&Panels")
    view.addAction(acts["reset_layout"])
    help_menu = menubar.addMenu("&Help")
    help_menu.addAction(acts["shortcuts"])
    help_menu.addAction(acts["about"])

    bar = window.addToolBar("Main")
    bar.setObjectName("toolbar_main")
    bar.setMovable(False)
    bar.setIconSize(QtCore.QSize(20, 20))
    bar.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonIconOnly)
    for name in TOOLBAR:
        bar.addAction(acts[name]) if name else bar.addSeparator()
    return acts


def retint(actions: dict[str, QtGui.QAction]) -> None:
    """Re-colour the icons after a theme change."""
    for action in actions.values():
        name = action.property("icon_name")
        if name:
            action.setIcon(themes.icon(name))


def shortcut_table(actions: dict[str, QtGui.QAction]) -> list[tuple[str, str]]:
    rows = [("Add a node by name (on the canvas)", "Tab"), ("Node menu, or quick-add on empty canvas",
                                                            "Right-click"),
            ("Open the selected composite (on the canvas)", "Enter, double-click")]
    for action in actions.values():
        keys = ", ".join(k.toString(QtGui.QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
        if keys:
            rows.append((action.text().replace("&", "").rstrip("…"), keys))
    return rows
