"""Which device training would use (GPU name and memory, or the CPU and system memory), found in a
background thread so that nothing here delays the window: the training process detects it (it is where
training will use the device) and reports it when it is ready (``engine.device``)."""

from __future__ import annotations

import threading

from PySide6 import QtCore

from engine.device import DeviceInfo, cpu_name, detect, system_memory

__all__ = ["DeviceInfo", "DeviceProbe", "cpu_name", "detect", "system_memory"]
READY_TIMEOUT = 120.0  # seconds to wait for the training process before asking torch here


def _probe() -> DeviceInfo:
    """The training process's answer (it starts it if needed), or this process's own when it has none.
    torch is imported here as well, in this background thread: the window's first run then finds it
    loaded (a run's events carry tensors)."""
    try:
        from engine.training.remote import TrainingProcess
        proc = TrainingProcess.shared()
        import importlib
        importlib.import_module("torch")  # (only imported: no CUDA context in the window's process)
        if proc.wait_ready(READY_TIMEOUT) and isinstance(proc.info.get("device"), DeviceInfo):
            return proc.info["device"]
    except Exception:  # no training process: ask torch here
        pass
    return detect()


class DeviceProbe(QtCore.QObject):
    """Finds the device in a thread (starting the training process, which loads PyTorch while the user
    draws, not at the first run) and emits ``found`` in the GUI thread."""

    found = QtCore.Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.info: DeviceInfo | None = None
        self.found.connect(self._store)

    def start(self) -> None:
        threading.Thread(target=lambda: self.found.emit(_probe()), name="device-probe", daemon=True).start()

    def _store(self, info: DeviceInfo) -> None:
        self.info = info
