"""Files: the recent-files list, autosave, and recovery after a crash.

Autosave writes the open document (when it has unsaved changes) every ``interval`` to
``<folder>/autosave-<pid>.dcnet`` with a small ``.json`` beside it naming the file it belongs to, both
atomically. A clean exit, a save or a discard removes them. At start-up, autosaves left by a process
that is no longer running are offered for recovery (the newest first); a recovered document opens as
modified, under its original path, so Save puts it back where it was.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore

import engine
from engine.fileio import write_atomic

MAX_RECENT = 8


class RecentFiles:
    """The most recently opened or saved files, newest first, kept in ``QSettings``."""

    KEY = "files/recent"

    def __init__(self, settings: QtCore.QSettings):
        self.settings = settings

    def paths(self) -> list[str]:
        value = self.settings.value(self.KEY, [])
        if isinstance(value, str):
            value = [value]
        return [p for p in (value or []) if isinstance(p, str)]

    def add(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        paths = [p] + [q for q in self.paths() if q != p]
        self.settings.setValue(self.KEY, paths[:MAX_RECENT])

    def remove(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        self.settings.setValue(self.KEY, [q for q in self.paths() if q != p])

    def clear(self) -> None:
        self.settings.setValue(self.KEY, [])


@dataclass(frozen=True)
class Recovery:
    """An autosave left behind by a process that ended without saving."""

    data: Path
    meta: Path
    original: str | None  # the file the work belongs to, if it had been saved before
    title: str
    saved_at: float

    def load(self) -> engine.Graph:
        return engine.load_graph(self.data)

    def discard(self) -> None:
        for p in (self.data, self.meta):
            try:
                p.unlink()
            except OSError:
                pass


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class Autosave(QtCore.QObject):
    """Periodic autosave of one document at a time."""

    saved = QtCore.Signal(str)

    def __init__(self, folder: str | Path, interval_ms: int = 30_000, parent=None):
        super().__init__(parent)
        self.folder = Path(folder)
        self.data = self.folder / f"autosave-{os.getpid()}{engine.EXTENSION}"
        self.meta = self.data.with_suffix(".json")
        self.doc = None
        self.timer = QtCore.QTimer(self, interval=interval_ms)
        self.timer.timeout.connect(self.save_now)

    def watch(self, doc) -> None:
        self.doc = doc
        if not self.timer.isActive():
            self.timer.start()

    def save_now(self) -> bool:
        """Write the document if it has unsaved changes (and remove a stale autosave if it has none)."""
        doc = self.doc
        if doc is None:
            return False
        if not doc.modified:
            self.discard()
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.data, engine.dumps(doc.graph))
            write_atomic(self.meta, json.dumps({
                "original": str(doc.path) if doc.path else None, "title": doc.title, "saved_at": time.time(),
                "pid": os.getpid()}))
        except OSError as exc:
            self.saved.emit(f"Autosave failed: {exc.strerror or exc}")
            return False
        self.saved.emit(f"Autosaved at {time.strftime('%H:%M:%S')}")
        return True

    def discard(self) -> None:
        for p in (self.data, self.meta):
            try:
                p.unlink()
            except OSError:
                pass

    def orphans(self) -> list[Recovery]:
        """Autosaves whose process is gone, newest first."""
        out = []
        if not self.folder.is_dir():
            return out
        for meta in self.folder.glob("autosave-*.json"):
            data = meta.with_suffix(engine.EXTENSION)
            try:
                pid = int(meta.stem.split("-", 1)[1])
            except (IndexError, ValueError):
                continue
            if _pid_alive(pid) or not data.is_file():
                continue
            try:
                info = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                info = {}
            out.append(Recovery(data, meta, info.get("original"), str(info.get("title") or data.name),
                                float(info.get("saved_at") or data.stat().st_mtime)))
        return sorted(out, key=lambda r: -r.saved_at)
