"""The training side of a run in the app: the engine's trainer in a background thread, with subscribers
that only append to a buffer (no Qt here). The GUI drains the buffer with a timer (pull, not push), so
the training thread never waits for the UI and the UI never waits for training.

    buffer = EventBuffer()
    job = TrainingJob(graph.copy(), config, buffer, run_dir="runs/3")
    job.start()                      # returns at once; compiling, loading data and training happen in the thread
    job.pause(); job.resume(); job.stop()
    for kind, payload in buffer.drain(): ...

Items put in the buffer, in order: ``network`` (hash), ``phase`` (text), ``start`` (RunStarted), then any
number of ``step`` (StepMetrics), ``epochs`` (EpochEnd), ``samples``, ``health`` (engine.inspect.Health),
``preview`` (the selected node's output with the current weights, at an epoch's end, at most every two
seconds, while ``want_preview()`` names a node), ``state`` (paused, running or stopping, and the step),
``checkpoint``, then ``result``
(RunResult), ``report`` (the evaluation, per-example results, final weights) and last ``done``. A run that
cannot be set up (bad settings, data that does not fit) puts ``error`` (the engine's message) and ``done``.
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
from typing import Any, Callable

PREVIEW_EVERY = 2.0  # seconds between live-preview refreshes during a run

# The live preview is computed in the training thread between epochs, not in a thread of its own:
# every thread that runs PyTorch's parallel CPU kernels gets its own OpenMP pool, and with more pool
# threads than cores libgomp stops the busy-waiting that small kernels rely on; training would slow
# down by a third on two cores while a preview ran beside it.


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


def cpu_state(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def buffer_callback(buffer: EventBuffer, want_preview: Callable[[], tuple | None] = lambda: None):
    """A trainer subscriber that forwards every event into ``buffer``; it runs in the training thread and
    only appends. (Built on first use: engine.training.trainer imports torch, which the window does not
    wait for.)"""
    from engine.training import Callback

    class BufferCallback(Callback):
        def __init__(self, buffer: EventBuffer, want_preview: Callable[[], tuple | None] = lambda: None):
            self.buffer = buffer
            self.want_preview = want_preview
            self._last_preview = 0.0
            self._served = None  # the (node, example) last previewed

        def on_run_start(self, trainer, event):
            self.buffer.put("start", event)

        def on_step(self, trainer, event):
            self.buffer.put("step", event)

        def on_epoch_end(self, trainer, event):
            self.buffer.put("epochs", event)
            now = time.perf_counter()
            wanted = self.want_preview()
            if wanted is not None and (wanted != self._served or now - self._last_preview >= PREVIEW_EVERY):
                self._last_preview, self._served = now, wanted
                node, index = wanted
                try:
                    from engine.inspect import trainer_preview
                    pv, sample = trainer_preview(trainer, node, index)
                except Exception as exc:  # a preview must never end a run
                    self.buffer.put("preview", (node, index, event.latest.epoch, None, None, str(exc)))
                else:
                    self.buffer.put("preview", (node, index, event.latest.epoch, pv, sample, ""))

        def on_samples(self, trainer, event):
            self.buffer.put("samples", event)

        def on_checkpoint(self, trainer, event):
            self.buffer.put("checkpoint", event)

        def on_state(self, trainer, event):
            self.buffer.put("state", (event.state, trainer.step))  # the step it stopped at, exactly

        def on_run_failed(self, trainer, event):
            self.buffer.put("failed", event)

        def on_run_end(self, trainer, result):
            self.buffer.put("result", result)

    return BufferCallback(buffer, want_preview)


class TrainingJob:
    """One training run in the shared compute thread (``gui.training.compute``). Controls may be called
    before the trainer exists (while the network compiles and the data loads); they apply as soon as it
    does."""

    def __init__(self, graph, config, buffer: EventBuffer, run_dir: str | None = None,
                 want_preview: Callable[[], tuple | None] = lambda: None, health: bool = True):
        self.graph = graph
        self.config = config
        self.buffer = buffer
        self.run_dir = run_dir
        self.want_preview = want_preview
        self.health = health
        self.trainer = None
        self._lock = threading.Lock()
        self._paused = False
        self._stopped = False
        self.finished = threading.Event()
        self._submitted = False

    # ------------------------------------------------------------------ controls (UI thread)
    def start(self) -> None:
        """Queue the run in the compute thread (once; a second call does nothing)."""
        with self._lock:
            if self._submitted:
                return
            self._submitted = True
        from .compute import submit
        submit(self._work)

    @property
    def alive(self) -> bool:
        return not self.finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            if self.trainer is not None:
                self.trainer.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self.trainer is not None:
                self.trainer.resume()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self.trainer is not None:
                self.trainer.stop()

    # ------------------------------------------------------------------ the thread
    def _work(self) -> None:
        put = self.buffer.put
        try:
            from engine.training.trainer import Trainer, network_hash

            put("network", network_hash(self.graph))
            put("phase", "compiling the network and loading the data")
            callbacks = [buffer_callback(self.buffer, self.want_preview)]
            if self.health:
                from engine.inspect import HealthMonitor
                callbacks.append(HealthMonitor(lambda h: put("health", h)))
            try:
                trainer = Trainer(self.graph, self.config, callbacks=callbacks, run_dir=self.run_dir)
            except Exception as exc:  # the engine's user-level errors name the node, field or file
                put("error", _message(exc))
                return
            with self._lock:
                self.trainer = trainer
                if self._stopped:
                    trainer.stop()
                elif self._paused:
                    trainer.pause()
            put("phase", "training")
            result = trainer.fit()
            self._finish(trainer, result)
        except Exception as exc:  # a bug: shown in the dock, never a silent death of the thread
            put("error", f"training stopped by an internal error ({type(exc).__name__}: {exc})\n"
                         + traceback.format_exc())
        finally:
            self.trainer = None  # its data and model go with it
            put("done")
            self.finished.set()

    def _finish(self, trainer, result) -> None:
        put = self.buffer.put
        report = examples = None
        if trainer.history or result.status != "failed":
            put("phase", "evaluating on the train, dev and test sets")
            try:
                report = trainer.report()
                from engine.inspect import example_results
                examples = example_results(trainer, "dev")
            except Exception as exc:
                put("phase", f"evaluation failed: {_message(exc)}")
        put("report", {"report": report, "examples": examples, "weights": cpu_state(trainer.model),
                       "epoch": trainer.epoch, "dataset": trainer.dataset, "notes": list(trainer.notes),
                       "input_norm": {k: v.clone() for k, v in trainer.input_norm.items()} or None,
                       "callback_errors": trainer.callback_errors})


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    known = ("GraphError", "ConfigError", "DataError", "SetupError", "CompileError", "ValueError")
    if type(exc).__name__ in known and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
