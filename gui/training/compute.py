"""One long-lived thread for the PyTorch work the app itself does off the UI thread: live previews and
ONNX exports, one after another (training runs in the training process, ``engine.training.remote``).

Why one: each thread that runs PyTorch's parallel CPU kernels gets its own OpenMP thread pool, and
once the pools hold more threads than there are cores, libgomp stops the busy-waiting between kernels
that small kernels rely on (measured on two cores: a third slower). A single compute thread keeps a
single pool in this process; the UI thread runs no kernels. During a run the live preview is computed
by the run itself, between epochs.
"""

from __future__ import annotations

import queue
import threading
import traceback
from typing import Callable


class ComputeThread:
    _shared: "ComputeThread | None" = None
    _lock = threading.Lock()

    def __init__(self):
        self.queue: queue.Queue[Callable[[], None]] = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="deepcanvas-compute", daemon=True)
        self.thread.start()

    @classmethod
    def shared(cls) -> "ComputeThread":
        with cls._lock:
            if cls._shared is None or not cls._shared.thread.is_alive():
                cls._shared = cls()
            return cls._shared

    def submit(self, fn: Callable[[], None]) -> None:
        self.queue.put(fn)

    def _loop(self) -> None:
        while True:
            fn = self.queue.get()
            try:
                fn()
            except BaseException:  # a job reports its own errors; a bug here must not end the thread
                traceback.print_exc()


def submit(fn: Callable[[], None]) -> None:
    """Run ``fn`` in the shared compute thread, after the work already queued."""
    ComputeThread.shared().submit(fn)
