"""Dark and light themes: the Qt palette, a small style sheet, canvas and node colours, and icons.

One :class:`Theme` holds every colour the app draws with, so panels never hard-code colours. Node
colours come from the node's category (``CATEGORY_COLORS``); a category added later without a colour
here gets a stable one from ``EXTRA_COLORS``. Icons are the SVG files in ``resources/icons``, drawn in
``currentColor`` and tinted to the theme's text colour when loaded.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
ICONS = RESOURCES / "icons"


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    panel: str        # dock and input backgrounds
    base: str         # text fields, lists
    text: str
    dim: str          # secondary text
    border: str
    accent: str
    canvas: str
    grid: str
    node: str         # node card body
    node_border: str
    wire: str
    error: str
    warning: str
    ok: str

    @property
    def dark(self) -> bool:
        return QtGui.QColor(self.window).lightness() < 128


DARK = Theme("dark", window="#1e2127", panel="#252931", base="#1a1d22", text="#e3e6eb", dim="#8c93a0",
             border="#3a3f4a", accent="#4c9aff", canvas="#181b20", grid="#262a31", node="#2b3039",
             node_border="#414856", wire="#7d8594", error="#ff5c5c", warning="#f0b429", ok="#3ecf8e")
LIGHT = Theme("light", window="#f3f4f6", panel="#ffffff", base="#ffffff", text="#1f2328", dim="#646b76",
              border="#d0d4da", accent="#1f6feb", canvas="#fafbfc", grid="#e6e8eb", node="#ffffff",
              node_border="#c5cad2", wire="#8a929e", error="#d93025", warning="#b7791f", ok="#1a7f37")
THEMES = {"dark": DARK, "light": LIGHT}

CATEGORY_COLORS = {
    "Input/Output": "#2fb380", "Layers": "#4c8dff", "Convolution": "#8b5cf6", "Pooling": "#14a3c7",
    "Normalization": "#e0a030", "Regularization": "#8f96a3", "Activations": "#f06a4a", "Shape": "#9aa83a",
    "Merge": "#e0559c", "Recurrent": "#20b2a0", "Attention": "#b57cf0", "Blocks": "#5c7cfa",
    "Generative": "#f0508c", "Loss": "#d9822b",
}
EXTRA_COLORS = ("#38bdf8", "#a3e635", "#fb7185", "#c084fc", "#facc15", "#2dd4bf")


def category_color(category: str) -> str:
    if category in CATEGORY_COLORS:
        return CATEGORY_COLORS[category]
    return EXTRA_COLORS[zlib.crc32(category.encode()) % len(EXTRA_COLORS)]


def rgb(color: str, alpha: int = 255) -> tuple[int, int, int, int]:
    c = QtGui.QColor(color)
    return (c.red(), c.green(), c.blue(), alpha)


def palette(theme: Theme) -> QtGui.QPalette:
    p = QtGui.QPalette()
    c = QtGui.QColor
    roles = {
        QtGui.QPalette.ColorRole.Window: theme.window, QtGui.QPalette.ColorRole.WindowText: theme.text,
        QtGui.QPalette.ColorRole.Base: theme.base, QtGui.QPalette.ColorRole.AlternateBase: theme.panel,
        QtGui.QPalette.ColorRole.Text: theme.text, QtGui.QPalette.ColorRole.Button: theme.panel,
        QtGui.QPalette.ColorRole.ButtonText: theme.text, QtGui.QPalette.ColorRole.ToolTipBase: theme.panel,
        QtGui.QPalette.ColorRole.ToolTipText: theme.text, QtGui.QPalette.ColorRole.Highlight: theme.accent,
        QtGui.QPalette.ColorRole.HighlightedText: "#ffffff", QtGui.QPalette.ColorRole.Link: theme.accent,
        QtGui.QPalette.ColorRole.PlaceholderText: theme.dim, QtGui.QPalette.ColorRole.Mid: theme.border,
    }
    for role, color in roles.items():
        p.setColor(role, c(color))
    for role in (QtGui.QPalette.ColorRole.Text, QtGui.QPalette.ColorRole.WindowText,
                 QtGui.QPalette.ColorRole.ButtonText):
        p.setColor(QtGui.QPalette.ColorGroup.Disabled, role, c(theme.dim))
    return p


def style_sheet(t: Theme) -> str:
    return f"""
QMainWindow::separator {{ background: {t.border}; width: 1px; height: 1px; }}
QDockWidget {{ color: {t.text}; titlebar-close-icon: none; }}
QDockWidget::title {{ background: {t.panel}; padding: 6px 8px; border-bottom: 1px solid {t.border};
    font-weight: 600; }}
QToolBar {{ background: {t.window}; border: none; border-bottom: 1px solid {t.border}; spacing: 2px;
    padding: 3px; }}
QToolButton {{ border: 1px solid transparent; border-radius: 5px; padding: 4px; }}
QToolButton:hover {{ background: {t.panel}; border-color: {t.border}; }}
QToolButton:pressed, QToolButton:checked {{ background: {t.border}; }}
QStatusBar {{ background: {t.window}; border-top: 1px solid {t.border}; color: {t.dim}; }}
QStatusBar QLabel {{ padding: 0 8px; }}
QLineEdit, QComboBox, QPlainTextEdit, QTextEdit {{
    background: {t.base}; border: 1px solid {t.border}; border-radius: 4px; padding: 3px 5px;
    selection-background-color: {t.accent}; }}
QLineEdit:focus, QComboBox:focus, QPlainTextEdit:focus {{ border-color: {t.accent}; }}
QLineEdit[invalid="true"] {{ border-color: {t.error}; }}
QPushButton {{ background: {t.panel}; border: 1px solid {t.border}; border-radius: 5px; padding: 5px 12px; }}
QPushButton:hover {{ border-color: {t.accent}; }}
QPushButton:default {{ border-color: {t.accent}; }}
QPushButton[fix="true"] {{ color: {t.accent}; padding: 2px 8px; }}
QTreeWidget, QListWidget, QTableWidget, QTreeView, QTableView {{ background: {t.base};
    border: none; alternate-background-color: {t.panel}; }}
QHeaderView::section {{ background: {t.panel}; color: {t.dim}; border: none;
    border-bottom: 1px solid {t.border}; padding: 4px 6px; }}
QTabWidget::pane {{ border: none; }}
QTabBar::tab {{ background: transparent; color: {t.dim}; padding: 6px 12px; border: none;
    border-bottom: 2px solid transparent; }}
QTabBar::tab:selected {{ color: {t.text}; border-bottom-color: {t.accent}; }}
QMenu {{ background: {t.panel}; border: 1px solid {t.border}; padding: 4px; }}
QMenu::item {{ padding: 5px 24px 5px 24px; border-radius: 4px; }}
QMenu::item:selected {{ background: {t.accent}; color: #ffffff; }}
QMenu::separator {{ height: 1px; background: {t.border}; margin: 4px 8px; }}
QToolTip {{ background: {t.panel}; color: {t.text}; border: 1px solid {t.border}; padding: 4px; }}
QLabel[role="heading"] {{ font-size: 13pt; font-weight: 600; }}
QLabel[role="dim"] {{ color: {t.dim}; }}
QLabel[role="error"] {{ color: {t.error}; }}
QLabel[role="ok"] {{ color: {t.ok}; }}
QLabel[role="warning"] {{ color: {t.warning}; }}
QFrame[role="card"] {{ background: {t.panel}; border: 1px solid {t.border}; border-radius: 6px; }}
QScrollArea {{ border: none; }}
"""


def apply(app: QtWidgets.QApplication, theme: Theme) -> None:
    set_current(theme)
    app.setStyle("Fusion")
    app.setPalette(palette(theme))
    app.setStyleSheet(style_sheet(theme))
    icon.cache_clear()


@lru_cache(maxsize=256)
def _svg_icon(name: str, color: str) -> QtGui.QIcon:
    from PySide6 import QtSvg

    path = ICONS / f"{name}.svg"
    if not path.is_file():
        return QtGui.QIcon()
    data = path.read_text(encoding="utf-8").replace("currentColor", color).encode()
    renderer = QtSvg.QSvgRenderer(QtCore.QByteArray(data))
    out = QtGui.QIcon()
    for size in (16, 20, 24, 32, 48, 64):
        pix = QtGui.QPixmap(size, size)
        pix.fill(QtCore.Qt.GlobalColor.transparent)
        painter = QtGui.QPainter(pix)
        renderer.render(painter)
        painter.end()
        out.addPixmap(pix)
    return out


_current = DARK


def current() -> Theme:
    return _current


def set_current(theme: Theme) -> None:
    global _current
    _current = theme


@lru_cache(maxsize=256)
def icon(name: str, color: str | None = None) -> QtGui.QIcon:
    """The icon ``resources/icons/<name>.svg`` tinted with ``color`` (the theme's text colour)."""
    return _svg_icon(name, color or _current.text)


def dot_icon(color: str, size: int = 12) -> QtGui.QIcon:
    """A filled circle: the category marker in the palette."""
    pix = QtGui.QPixmap(size * 2, size * 2)
    pix.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pix)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setBrush(QtGui.QColor(color))
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.drawRoundedRect(QtCore.QRectF(4, 4, size * 2 - 8, size * 2 - 8), 5, 5)
    p.end()
    return QtGui.QIcon(pix)


def format_count(n: int | None) -> str:
    """61706 -> '61.7k', 11689512 -> '11.7M'."""
    if n is None:
        return "?"
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return str(n)


def format_bytes(n: float) -> str:
    for div, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.3g} {unit}" if n / div < 100 else f"{n / div:.0f} {unit}"
    return f"{int(n)} B"
