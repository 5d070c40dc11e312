"""New, Open, Save, Save As, recent files, templates, recovery and the unsaved-changes prompt.

The window supplies the dialogs through three small methods (``ask``, ``pick_open_path``,
``pick_save_path``) and ``report``, so tests can answer them without a real dialog. An unreadable
file is reported with the engine's message naming each problem, and the open document is untouched.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import engine

from .document import Document

if TYPE_CHECKING:  # pragma: no cover
    from .mainwindow import MainWindow

FILTER = (f"DeepCanvas networks (*{engine.EXTENSION});;ONNX models, imported as a new network (*.onnx);;"
          "All files (*)")
SAVE, DISCARD, CANCEL = "Save", "Discard", "Cancel"


class FileCommands:
    def __init__(self, window: "MainWindow"):
        self.w = window

    # ------------------------------------------------------------------ guarding unsaved work
    def confirm_discard(self) -> bool:
        """True when the current document may be replaced or closed (saved first if asked to)."""
        doc = self.w.doc
        if not doc.modified:
            return True
        answer = self.w.ask("Unsaved changes", f"Save the changes to “{doc.title}” before closing it?",
                            [SAVE, DISCARD, CANCEL])
        if answer == SAVE:
            return self.save()
        return answer == DISCARD

    # ------------------------------------------------------------------ commands
    def new(self) -> bool:
        if not self.confirm_discard():
            return False
        self.w.set_document(Document(engine.Graph("Untitled")))
        return True

    def open(self, path: str | Path | None = None) -> bool:
        if path is None:
            path = self.w.pick_open_path(FILTER)
            if not path:
                return False
        if not self.confirm_discard():
            return False
        note = ""
        if str(path).lower().endswith(".onnx"):
            imported = self._import_onnx(Path(path))
            if imported is None:
                return False
            path, note = imported
        try:
            graph = engine.load_graph(path)
        except engine.GraphFileError as exc:
            self.w.report("Cannot open the file", f"{Path(path).name} could not be opened:\n\n"
                          + "\n".join(f"• {p}" for p in exc.problems))
            if not Path(path).exists():
                self.w.recent.remove(path)
                self.w.refresh_recent()
            return False
        self.w.set_document(Document(graph, path))
        self.w.recent.add(path)
        self.w.refresh_recent()
        self.w.flash(note or f"Opened {Path(path).name}")
        return True

    def _import_onnx(self, onnx_path: Path) -> tuple[Path, str] | None:
        """Import an ONNX model as a graph (engine.onnx_import: op by op onto the registry's node types,
        checked against onnxruntime) saved beside it with its weights; the new graph file and a note.
        Nothing is overwritten: an existing name gets a number."""
        from PySide6 import QtCore, QtWidgets

        from engine.onnx_import import OnnxImportError, import_onnx, save_imported

        out = onnx_path.with_suffix(engine.EXTENSION)
        k = 2
        while out.exists() or out.with_suffix(".safetensors").exists():
            out = onnx_path.with_name(f"{onnx_path.stem}_{k}{engine.EXTENSION}")
            k += 1
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            result = import_onnx(onnx_path)
            save_imported(result, out)
        except (OnnxImportError, ValueError, OSError) as exc:
            self.w.report("Cannot import the ONNX model", f"{onnx_path.name} could not be imported:\n\n{exc}")
            return None
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        return out, (f"Imported {onnx_path.name} as {out.name} (weights in {out.with_suffix('.safetensors').name}; "
                     f"largest difference to onnxruntime {result.report.max_diff:.1e})")

    def open_graph(self, graph: engine.Graph, note: str = "") -> bool:
        """A template (or any graph made in memory) as a new, untitled document."""
        if not self.confirm_discard():
            return False
        self.w.set_document(Document(graph))
        if note:
            self.w.flash(note)
        return True

    def save(self) -> bool:
        doc = self.w.doc
        if doc.path is None:
            return self.save_as()
        return self._write(doc.path)

    def save_as(self) -> bool:
        doc = self.w.doc
        suggested = str(doc.path) if doc.path else f"{engine.graph.identifier(doc.graph.name, 'network')}" \
                                                  f"{engine.EXTENSION}"
        path = self.w.pick_save_path(FILTER, suggested)
        if not path:
            return False
        if not str(path).endswith(engine.EXTENSION):
            path = f"{path}{engine.EXTENSION}"
        return self._write(Path(path))

    def _write(self, path: Path) -> bool:
        doc = self.w.doc
        try:
            engine.save_graph(doc.graph, path)
        except OSError as exc:
            self.w.report("Cannot save", f"{path} could not be written: {exc.strerror or exc}")
            return False
        doc.mark_saved(path)
        self.w.autosave.discard()
        self.w.recent.add(path)
        self.w.refresh_recent()
        self.w.flash(f"Saved {path.name}")
        return True

    # ------------------------------------------------------------------ recovery
    def offer_recovery(self) -> bool:
        """Offer the newest autosave left by a crashed session; True when one was recovered."""
        orphans = self.w.autosave.orphans()
        if not orphans:
            return False
        newest = orphans[0]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(newest.saved_at))
        answer = self.w.ask("Recover unsaved work?",
                            f"DeepCanvas closed without saving “{newest.title}” (autosaved {when}). "
                            "Recover it?", ["Recover", DISCARD])
        if answer != "Recover":
            for r in orphans:
                r.discard()
            return False
        try:
            graph = newest.load()
        except engine.GraphFileError as exc:
            self.w.report("Cannot recover", "The autosave could not be read:\n\n"
                          + "\n".join(f"• {p}" for p in exc.problems))
            newest.discard()
            return False
        doc = Document(graph, newest.original)
        doc.mark_recovered()
        self.w.set_document(doc)
        self.w.autosave.save_now()  # this session's autosave now holds it
        newest.discard()
        self.w.flash(f"Recovered “{newest.title}”; save it to keep it")
        return True
