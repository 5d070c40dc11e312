"""Where a run's events wait for the UI thread: the engine's training process
(``engine.training.remote``) delivers them from a reader thread into an :class:`EventBuffer`, and the
GUI drains it with a timer (pull, not push), so training never waits for the UI and the UI never waits
for training. The events and their order: ``engine.training.job``.

    buffer = EventBuffer()
    job = RemoteJob(graph, config, buffer.put, run_dir="runs/3")
    job.start()                      # returns at once; the run trains in the training process
    for kind, payload in buffer.drain(): ...
"""

from __future__ import annotations

import collections
from typing import Any


class EventBuffer:
    """A thread-safe FIFO: ``deque.append`` and ``popleft`` are atomic in CPython."""

    def __init__(self):
        self._items: collections.deque = collections.deque()

    def put(self, kind: str, payload: Any = None) -> None:
        self._items.append((kind, payload))

    def drain(self, limit: int | None = None) -> list[tuple[str, Any]]:
        out = []
        pop = self._items.popleft
        while limit is None or len(out) < limit:
            try:
                out.append(pop())
            except IndexError:
                break
        return out

    def __len__(self) -> int:
        return len(self._items)
