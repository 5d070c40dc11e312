"""The Qt side of training: starts runs in the engine's training process
(:class:`~engine.training.remote.RemoteJob`), drains their event buffer with a timer in the UI thread,
keeps every :class:`~gui.training.runs.Run`, and tells the panels what changed. Pause, resume and stop
are messages to that process, so no button ever waits for training; the run trains there as
``deepcanvas train`` does, without sharing this process's interpreter with the UI thread (see
``engine.training.remote`` for why).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PySide6 import QtCore

from engine.training.job import PREVIEW_EVERY

from .runs import Run, describe_change, run_color
from .worker import EventBuffer

DRAIN_HZ = 10  # the buffer drains 10 times a second: the UI thread takes a few per cent of a core during a run
# While a CPU run trains on every core (see RunController.shares_cores), whatever the window draws comes
# out of the run's time: the buffer drains once a second (the progress and the run's loss move as often,
# and the run sends its progress as often; a click on Pause, Resume or Stop is answered at a drain a tenth
# of a second later), the plots take under a third of their usual share of the time (gui.training.plots),
# the canvas's health marks (gui.training.ui) are redrawn three times less often and the run computes the
# live preview three times less often.
SHARED_DRAIN_HZ = 1
SHARED_SLOWDOWN = 3
CONTROL_DRAIN_MS = 100  # after a control is sent, the next drain comes this soon (its answer shows at once)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system keeps one (``taskset``, a
    container's cpuset, a batch scheduler's allotment), else every core of the machine."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1

KEEP_WEIGHTS = 3  # runs whose final weights stay in memory (the latest ones)


class RunController(QtCore.QObject):
    """Owns the runs. Signals carry the run and, for ``updated``, the set of what changed: steps,
    epochs, samples, health, state, result, report, weights, phase."""

    started = QtCore.Signal(object)           # Run
    updated = QtCore.Signal(object, object)   # Run, set[str]
    finished = QtCore.Signal(object)          # Run (its status is final)
    runs_changed = QtCore.Signal()            # a run was added or removed, or its visibility changed

    def __init__(self, runs_dir: str | Path | None = None, parent=None):
        super().__init__(parent)
        self._runs_dir = Path(runs_dir) if runs_dir else None
        self.runs: list[Run] = []
        self._last_number = 0  # the highest run number given (runs removed since included)
        self.current: Run | None = None
        self.job = None  # the RemoteJob of the current run
        self.buffer = EventBuffer()
        self._want_preview: tuple | None = None
        self.health_enabled = True
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(1000 // DRAIN_HZ)
        self.timer.timeout.connect(self.drain)
        self._drain_ms = 1000 // DRAIN_HZ  # the current run's drain interval (the timer's, but after a control)
        self.say = None  # shows a message while the training modules load the first time

    # ------------------------------------------------------------------ state
    @property
    def want_preview(self) -> tuple | None:
        """(node id, dev example index) the live preview shows, if any: a run computes it between epochs."""
        return self._want_preview

    @want_preview.setter
    def want_preview(self, wanted: tuple | None) -> None:
        if wanted != self._want_preview:
            self._want_preview = wanted
            if self.running and self.job is not None:
                self.job.set_preview(wanted)

    @property
    def shares_cores(self) -> bool:
        """Whether the current run trains on the CPU with as many threads as the window has cores (see
        :func:`usable_cores`), so that the window's drawing takes time from it (the plots then draw less
        often)."""
        run = self.current
        if not self.running or run.info is None or not str(run.info.device).startswith("cpu"):
            return False
        threads = self.job.process.info.get("threads", 1)  # (the run has started: its process is ready)
        return int(threads) >= usable_cores()

    @property
    def running(self) -> bool:
        return self.current is not None and not self.current.done

    @property
    def runs_dir(self) -> Path:
        if self._runs_dir is None:
            self._runs_dir = Path(tempfile.mkdtemp(prefix="deepcanvas-runs-"))
        return self._runs_dir

    def _next_number(self) -> int:
        """A number no run of this window has had, whose folder is free: after the newest run was removed,
        the next took its number and wrote over its folder (its checkpoint), and the messages of the two
        runs read alike."""
        number = max([self._last_number] + [r.number for r in self.runs]) + 1
        while (self.runs_dir / f"run{number}").exists():
            number += 1
        self._last_number = number
        return number

    def latest_finished(self) -> Run | None:
        for run in reversed(self.runs):
            if run.done:
                return run
        return None

    # ------------------------------------------------------------------ controls
    def start(self, graph, config) -> Run | None:
        """Start a run of ``graph`` (a copy is trained, so editing goes on) with ``config`` (a
        TrainingConfig). Returns None when a run is already going."""
        if self.running:
            return None
        from .warmup import RUN, ensure_imported
        ensure_imported(RUN, optional=(), say=self.say)
        number = self._next_number()
        previous = next((r for r in reversed(self.runs) if r.graph_name == graph.name), None)
        cfg = config.to_dict()
        change = describe_change(previous.config if previous else None, cfg)
        if previous is None and self.runs:  # beside runs of other networks: say which network this one trains
            change = f"first run of {graph.name}"
        run = Run(number, run_color([r.color for r in self.runs]), cfg, "", graph.name, change)
        run.run_dir = str(self.runs_dir / f"run{number}")
        for other in self.runs:  # runs of another network (another file or template) step aside
            if other.graph_name != run.graph_name:
                other.visible = False
        self.runs.append(run)
        self.current = run
        self.buffer = EventBuffer()
        from engine.training.remote import RemoteJob, TrainingProcess
        process = TrainingProcess.shared()
        if not process.ready.is_set():
            self.buffer.put("phase", "starting the training process (it loads PyTorch)")
        self.job = RemoteJob(graph, config, self.buffer.put, run.run_dir, want_preview=self.want_preview,
                             health=self.health_enabled, process=process)
        self.job.start()
        self._drain_ms = 1000 // DRAIN_HZ
        self.timer.start(self._drain_ms)
        self.started.emit(run)
        self.runs_changed.emit()
        return run

    def pause(self) -> None:
        if self.running and self.job is not None:
            self.job.pause()
            self._drain_soon()

    def resume(self) -> None:
        if self.running and self.job is not None:
            self.job.resume()
            self._drain_soon()

    def toggle_pause(self) -> None:
        if self.current is not None and self.current.status == "paused":
            self.resume()
        else:
            self.pause()

    def stop(self) -> None:
        if self.running and self.job is not None:
            self.job.stop()
            self._drain_soon()

    def _drain_soon(self) -> None:
        """A control was sent: the run's answer (its new state) is drained in CONTROL_DRAIN_MS, not at the
        end of a slow drain interval."""
        if self.timer.isActive() and self.timer.remainingTime() > CONTROL_DRAIN_MS:
            self.timer.start(CONTROL_DRAIN_MS)

    def shutdown(self, wait_s: float = 3.0) -> None:
        """Stop a run when the window closes; waits at most ``wait_s`` for the trainer to finish its step
        and write its checkpoint (the training process stops it anyway when the app exits)."""
        if self.job is not None and self.job.alive:
            self.job.stop()
            self.job.resume()
            self.job.wait(wait_s)
        self.timer.stop()

    def set_visible(self, run: Run, visible: bool) -> None:
        run.visible = visible
        self.runs_changed.emit()

    def remove(self, run: Run) -> None:
        if run is self.current and self.running:
            return
        self.runs.remove(run)
        if run is self.current:
            self.current = self.runs[-1] if self.runs else None
        self.runs_changed.emit()

    # ------------------------------------------------------------------ the timer
    def drain(self) -> None:
        run = self.current
        if run is None:
            self.timer.stop()
            return
        items = self.buffer.drain()
        if not items:
            return
        changes: set[str] = set()
        done = False
        for kind, payload in items:
            done |= self._apply(run, kind, payload, changes)
        if changes:
            self.updated.emit(run, changes)
        shares = self.shares_cores
        interval = 1000 // (SHARED_DRAIN_HZ if shares else DRAIN_HZ)
        if not done and interval != self._drain_ms:
            self._drain_ms = interval
            # The run reports as often as this drains, and computes the live preview as often as it is
            # drawn: each event costs it its gradient norms, each preview a forward pass.
            self.job.pace(interval / 1000, PREVIEW_EVERY * (SHARED_SLOWDOWN if shares else 1))
        if not done and self.timer.interval() != self._drain_ms:  # (also back from a control's quick drain)
            self.timer.setInterval(self._drain_ms)
        if done:
            self.timer.stop()
            self._forget_old_weights()
            self.finished.emit(run)

    def _apply(self, run: Run, kind: str, p, changes: set[str]) -> bool:
        if kind == "step":
            run.step_loss.extend(p.steps, p.losses)
            run.lr.append(p.step, p.lr)
            for nid, value in p.grad_norms.items():
                series = run.grad.get(nid)
                if series is None:
                    series = run.grad[nid] = _series()
                series.append(p.step, value)
            run.step, run.epoch, run.elapsed = p.step, p.epoch, p.elapsed
            run.examples_per_second = p.examples_per_second
            run.train_loss, run.train_accuracy = p.train_loss, p.train_accuracy
            if run.status == "starting":
                run.status = "running"
            changes.add("steps")
        elif kind == "epochs":
            run.epochs.extend(p.epochs)
            run.epoch = max(run.epoch, p.latest.epoch)
            # (the step too: step events may lag behind within the run's event budget, and the progress
            # read "epoch 13/30 · step 65/510")
            run.step = max(run.step, p.latest.step)
            changes.add("epochs")
        elif kind == "samples":
            run.samples = p
            run.samples_history = (run.samples_history + [p])[-6:]
            changes.add("samples")
        elif kind == "health":
            if p.grad_norms:
                run.grad_norms, run.grad_levels = p.grad_norms, p.grad_levels
            if p.stats or p.nonfinite is not None:
                run.health = p
            if p.nonfinite is not None:
                run.nonfinite = p.nonfinite
            changes.add("health")
        elif kind == "preview":
            run.preview = p
            changes.add("preview")
        elif kind == "state":
            run.status, step = p
            run.step = max(run.step, step)
            changes.add("state")
        elif kind == "start":
            run.info = p
            run.status = "running"
            run.notes = list(p.notes)
            run.phase = "training"
            changes.add("state")
        elif kind == "network":
            run.network = p
            previous = self._previous(run)
            if previous is not None:
                run.change = describe_change(previous.config, run.config, previous.network != p)
            changes.add("state")
        elif kind == "phase":
            run.phase = p
            changes.add("phase")
        elif kind == "failed":
            run.error = p.reason
            changes.add("state")
        elif kind == "result":
            run.result = p
            run.status = "evaluating"
            run.notes = list(p.notes)
            if p.status == "failed" and not run.error:
                run.error = p.reason
            changes.add("result")
        elif kind == "report":
            run.report = p["report"]
            run.examples = p["examples"]
            run.weights = p["weights"]
            run.weights_epoch = p["epoch"]
            run.dataset = self._shared(p["dataset"])
            run.input_norm = p["input_norm"]
            run.notes = p["notes"] + [f"a subscriber failed: {e}" for e in p["callback_errors"]]
            changes.add("report")  # (with the final weights)
        elif kind == "error":
            run.error = p
            run.status = "failed"
            changes.add("state")
        elif kind == "checkpoint":
            pass  # the files are in run.run_dir; the result lists them
        elif kind == "done":
            if run.result is not None:
                run.status = run.result.status
            elif run.status not in ("failed",):
                run.status = "failed"
            run.phase = ""
            changes.add("state")
            return True
        return False

    def _previous(self, run: Run) -> Run | None:
        """The run before ``run`` of the same graph (runs of another file or template are not compared)."""
        i = self.runs.index(run)
        return next((r for r in reversed(self.runs[:i]) if r.graph_name == run.graph_name), None)

    def _shared(self, dataset):
        """An earlier run's copy of the same examples where there is one (each run's report brings its
        own: runs of the same data and split would each keep one)."""
        if dataset is None:
            return None
        for run in reversed(self.runs):
            if run.dataset is not None and run.dataset.same_as(dataset):
                return run.dataset
        return dataset

    def _forget_old_weights(self) -> None:
        finished = [r for r in self.runs if r.weights is not None]
        for r in finished[:-KEEP_WEIGHTS]:
            r.weights = None


def _series():
    from .runs import Series
    return Series(256)
