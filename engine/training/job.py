"""One training run as a stream of events, for a front end that must never wait on training (the app's
Training dock, through ``engine.training.remote``). Pure Python + torch; never imports Qt.

    job = TrainingJob(graph, config, put, run_dir="runs/3", want_preview=lambda: ("conv1", 0))
    job.run()                        # blocks: compiles, loads the data, trains, evaluates
    job.pause(); job.resume(); job.stop()      # from any other thread, at any time (even before run())
    job.pace(0.5, 6.0)                         # progress events every 0.5 s, a live preview every 6 s

``put(kind, payload)`` receives, in order: ``network`` (hash), ``phase`` (text), ``start`` (RunStarted),
then any number of ``step`` (StepMetrics), ``epochs`` (EpochEnd), ``samples``, ``health``
(engine.inspect.Health), ``preview`` (the node named by ``want_preview()`` run on a dev example with the
current weights, at an epoch's end, at most every two seconds or as paced), ``state`` (paused, running or stopping,
and the step), ``checkpoint``, ``failed``, then ``result`` (RunResult), ``report`` (the evaluation,
per-example results, final weights) and last ``done``. A run that cannot be set up (bad settings, data that
does not fit) puts ``error`` (the engine's message naming the node, field or file) and ``done``. ``put``
is called in the training thread: it must be quick (append to a buffer, write to a pipe).
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

PREVIEW_EVERY = 2.0  # seconds between live-preview refreshes during a run
# Seconds at least between progress events: a window redraws its plots a few times a second, so events
# at the trainer's default 50 Hz would only cost the run their gradient norms and the two processes their
# wake-ups.
EVENT_INTERVAL = 0.1

Put = Callable[[str, Any], None]

# The live preview is computed by the run between epochs, not in a thread of its own: every thread that
# runs PyTorch's parallel CPU kernels gets its own OpenMP pool, and with more pool threads than cores
# libgomp stops the busy-waiting that small kernels rely on; training would slow down by a third on two
# cores while a preview ran beside it.


def cpu_state(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def event_forwarder(put: Put, want_preview: Callable[[], tuple | None] = lambda: None,
                    preview_every: Callable[[], float] = lambda: PREVIEW_EVERY):
    """A trainer subscriber that forwards every event to ``put``, and computes the live preview that
    ``want_preview()`` asks for ((node id, dev example index) or None) at an epoch's end, at most every
    ``preview_every()`` seconds. (Built on first use: engine.training.trainer imports torch.)"""
    from .trainer import Callback

    class EventForwarder(Callback):
        def __init__(self):
            self._last_preview = 0.0
            self._served = None  # the (node, example) last previewed

        def on_run_start(self, trainer, event):
            put("start", event)

        def on_step(self, trainer, event):
            put("step", event)

        def on_epoch_end(self, trainer, event):
            put("epochs", event)
            now = time.perf_counter()
            wanted = want_preview()
            if wanted is not None and (wanted != self._served or now - self._last_preview >= preview_every()):
                self._last_preview, self._served = now, wanted
                node, index = wanted
                try:
                    from engine.inspect import trainer_preview
                    pv, sample = trainer_preview(trainer, node, index)
                except Exception as exc:  # a preview must never end a run
                    put("preview", (node, index, event.latest.epoch, None, None, str(exc)))
                else:
                    put("preview", (node, index, event.latest.epoch, pv, sample, ""))

        def on_samples(self, trainer, event):
            put("samples", event)

        def on_checkpoint(self, trainer, event):
            put("checkpoint", event)

        def on_state(self, trainer, event):
            put("state", (event.state, trainer.step))  # the step it stopped at, exactly

        def on_run_failed(self, trainer, event):
            put("failed", event)

        def on_run_end(self, trainer, result):
            put("result", result)

    return EventForwarder()


class TrainingJob:
    """One run of ``graph`` with ``config`` reported to ``put``. Controls may be called before the
    trainer exists (while the network compiles and the data loads); they apply as soon as it does."""

    def __init__(self, graph, config, put: Put, run_dir: str | None = None,
                 want_preview: Callable[[], tuple | None] = lambda: None, health: bool = True,
                 event_interval: float = EVENT_INTERVAL, preview_every: float = PREVIEW_EVERY):
        self.graph = graph
        self.event_interval = event_interval
        self.preview_every = preview_every
        self.config = config
        self.put = put
        self.run_dir = run_dir
        self.want_preview = want_preview
        self.health = health
        self.trainer = None
        self._lock = threading.Lock()
        self._paused = False
        self._stopped = False
        self.finished = threading.Event()

    # ------------------------------------------------------------------ controls (any thread)
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

    def pace(self, event_interval: float, preview_every: float) -> None:
        """How often the run reports progress and computes the live preview, from now on (a front end
        that draws less often asks for less: each event costs the run its gradient norms)."""
        with self._lock:
            self.event_interval, self.preview_every = event_interval, preview_every
            if self.trainer is not None:
                self.trainer.event_interval = event_interval

    # ------------------------------------------------------------------ the run
    def run(self) -> None:
        put = self.put
        try:
            from .trainer import Trainer, network_hash

            put("network", network_hash(self.graph))
            put("phase", "compiling the network and loading the data")
            callbacks = [event_forwarder(put, self.want_preview, lambda: self.preview_every)]
            if self.health:
                from engine.inspect import HealthMonitor
                callbacks.append(HealthMonitor(lambda h: put("health", h)))
            try:
                trainer = Trainer(self.graph, self.config, callbacks=callbacks, run_dir=self.run_dir,
                                  event_interval=self.event_interval)
            except Exception as exc:  # the engine's user-level errors name the node, field or file
                put("error", message(exc))
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
        except Exception as exc:  # a bug: shown to the user, never a silent end of the run
            put("error", f"training stopped by an internal error ({type(exc).__name__}: {exc})\n"
                         + traceback.format_exc())
        finally:
            self.trainer = None  # its data and model go with it
            put("done", None)
            self.finished.set()

    def _finish(self, trainer, result) -> None:
        put = self.put
        report = examples = None
        if trainer.history or result.status != "failed":
            put("phase", "evaluating on the train, dev and test sets")
            try:
                report = trainer.report()
                from engine.inspect import example_results
                examples = example_results(trainer, "dev")
            except Exception as exc:
                put("phase", f"evaluation failed: {message(exc)}")
        # The examples' inputs go with them (the galleries show them), not the whole data set: a user's
        # CIFAR-10 is 737 MB, and a window keeps each run's report.
        rows = examples.indices if examples is not None else []
        put("report", {"report": report, "examples": examples, "weights": cpu_state(trainer.model),
                       "epoch": trainer.epoch, "dataset": trainer.dataset.rows(rows), "notes": list(trainer.notes),
                       "input_norm": {k: v.clone() for k, v in trainer.input_norm.items()} or None,
                       "callback_errors": trainer.callback_errors})


def message(exc: BaseException) -> str:
    text = str(exc).strip()
    known = ("GraphError", "ConfigError", "DataError", "SetupError", "CompileError", "ValueError")
    if type(exc).__name__ in known and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
