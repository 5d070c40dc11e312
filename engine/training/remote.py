"""Training in a child process, for a front end that stays responsive while a run trains (the app).

    proc = TrainingProcess.shared()           # starts ``python -m engine.training.remote`` once, kept alive
    job = RemoteJob(graph, config, put, run_dir="runs/3", want_preview=("conv1", 0), process=proc)
    job.start()                               # returns at once
    job.pause(); job.resume(); job.stop(); job.set_preview(None); job.pace(0.5, 6.0)
    job.wait()                                # or poll job.alive; ``put`` got every event, ``done`` last

The events are those of :class:`engine.training.job.TrainingJob`, in the same order, delivered to ``put``
from a reader thread of this process (so ``put`` must be thread-safe and quick: the app appends to a
buffer its UI thread drains).

Why a process and not a thread. A run in a thread of the app shares the interpreter lock with the UI
thread: every repaint (pyqtgraph and the canvas paint in Python) waited for the training thread to let go
of it, and every step of training waited for the repaints, so the window stuttered and training slowed
by 5-15% on two cores. In a process of its own the run trains exactly as ``deepcanvas train`` does (in
the main thread, with its own OpenMP pool), the UI thread keeps its interpreter to itself, and a crash
in native code (a segfault in a kernel, the system's out-of-memory killer) ends the run, not the app:
the run is reported failed with the exit status and the end of the process's error output, and the
next run starts a new process.

The protocol: frames (a pickle, with large arrays and tensors beside it: see ``write_frame``), on the
child's stdin (requests:
``("run", id, spec)``, ``("pause"|"resume"|"stop", id)``, ``("preview", id, wanted)``,
``("pace", id, event_interval, preview_every)``, ``("quit",)``) and
on a private copy of its stdout (``("ready", info)``, then ``(id, kind, payload)`` per event); the
child's file descriptor 1 is pointed at stderr, so stray prints from libraries cannot corrupt the
stream. The child inherits nothing else; it exits when its stdin closes (this process ended), after
stopping its run cleanly (the checkpoint is written).
"""

from __future__ import annotations

import atexit
import collections
import io
import itertools
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, BinaryIO, Callable, NamedTuple

# What the child imports before it says it is ready: a run then starts without waiting for them.
WARM_MODULES = ("torch", "torch.optim", "engine.compiler", "engine.training.trainer", "engine.training.modes",
                "engine.training.metrics", "engine.inspect", "sklearn.datasets")
STDERR_TAIL = 40  # lines of the child's error output kept for the message when it dies
# The training process runs a little below the window's priority: when both want a core, the window's
# few milliseconds of drawing come first (on a machine whose every core trains, a repaint otherwise
# waits for a core and the window stutters), and training still gets every cycle the window leaves.
NICE = int(os.environ.get("DEEPCANVAS_TRAINING_NICE", "5"))


# =========================================================================== framing
# A frame: its header (the pickle's length and how many buffers travel beside it), the buffers' lengths,
# the pickle, then the buffers. Arrays and tensors of OOB_MIN bytes or more travel as buffers beside the
# pickle (pickle protocol 5, out of band): the reader thread reads them straight into their own memory,
# letting go of the interpreter lock at every read, and unpickling them copies nothing. In the pickle,
# a run's report (its weights, the examples shown in its galleries) held the UI thread up for as long
# as it took to copy: 165 ms for a 375 MB frame, where the window must not stall for 50.
HEADER = struct.Struct("<QI")
OOB_MIN = 1 << 16


class Frame(NamedTuple):
    """An object as :func:`dumps` writes it: its pickle, and the buffers that travel beside it (copies,
    taken when it was pickled: the object may change after)."""

    pickle: bytes
    buffers: list

    @property
    def nbytes(self) -> int:
        return len(self.pickle) + sum(len(b) for b in self.buffers)


def write_frame(stream: BinaryIO, data: "bytes | Frame") -> None:
    """Writes an object as :func:`dumps` made it (or a plain pickle's bytes) as one frame."""
    frame = data if isinstance(data, Frame) else Frame(bytes(data), [])
    lengths = [len(b) for b in frame.buffers]
    head = HEADER.pack(len(frame.pickle), len(lengths)) + struct.pack(f"<{len(lengths)}Q", *lengths)
    if len(frame.pickle) < 1 << 16:  # one write (a copy) for small pickles, two for large ones
        _write_all(stream, head + frame.pickle)
    else:
        _write_all(stream, head)
        _write_all(stream, frame.pickle)
    for buffer in frame.buffers:
        _write_all(stream, buffer)
    stream.flush()


def _write_all(stream: BinaryIO, data) -> None:
    """Writes all of ``data``: an unbuffered stream's write may take only part of it (a pipe write that
    waits for room returns what it wrote so far when the process is stopped and continued: Ctrl-Z and
    ``fg`` in a terminal, a debugger), and a frame cut short would leave the reader waiting forever."""
    view = memoryview(data).cast("B")
    while view:
        view = view[stream.write(view):]  # (these streams block: a write takes at least a byte)


def read_frame(stream: BinaryIO) -> Any:
    """The next object, or raises EOFError when the stream ended."""
    size, count = HEADER.unpack(_read_exact(stream, HEADER.size))
    lengths = struct.unpack(f"<{count}Q", _read_exact(stream, 8 * count)) if count else ()
    data = _read_exact(stream, size)
    return pickle.loads(data, buffers=[_read_into(stream, n) for n in lengths])


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError
        parts.append(chunk)
        left -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_into(stream: BinaryIO, n: int):
    """``n`` bytes read straight into a buffer of their own (each read lets go of the interpreter lock;
    NumPy's, as ``bytearray(n)`` would first fill it with zeros holding the lock: 100 ms for 300 MB)."""
    import numpy

    buffer = numpy.empty(n, dtype=numpy.uint8)
    view = memoryview(buffer)
    while view:
        got = stream.readinto(view)
        if not got:
            raise EOFError
        view = view[got:]
    return buffer


def _tensor(buffer, dtype: str, shape: tuple) -> Any:
    """A tensor that travelled out of band (see :class:`_CompactPickler`), on the buffer it came in."""
    import torch

    if memoryview(buffer).readonly:  # (a pickle made without out-of-band buffers: its bytes)
        buffer = bytearray(buffer)
    flat = torch.frombuffer(buffer, dtype=torch.uint8) if len(buffer) else torch.empty(0, dtype=torch.uint8)
    return flat.view(getattr(torch, dtype)).reshape(shape)


class _CompactPickler(pickle.Pickler):
    """Pickles a tensor that views part of a larger one (an example sliced from the data set, a row of a
    batch) as a copy of just that part: pickle writes a tensor's whole storage, so a live preview's input
    example went to the app with the whole dev set, 1.5 MB at each refresh for one 32x32 digit. A large
    tensor on the CPU travels out of band, as its bytes (see ``OOB_MIN``)."""

    def reducer_override(self, obj):
        numpy = sys.modules.get("numpy")
        if (numpy is not None and type(obj) is numpy.ndarray and obj.nbytes >= OOB_MIN and not obj.dtype.hasobject
                and not (obj.flags.c_contiguous or obj.flags.f_contiguous)):
            return numpy.ascontiguousarray(obj).__reduce_ex__(5)  # (numpy pickles a strided array in band)
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(obj, torch.Tensor) or obj.layout != torch.strided:
            return NotImplemented
        size = obj.numel() * obj.element_size()
        if (size >= OOB_MIN and type(obj) is torch.Tensor and obj.device.type == "cpu" and not obj.requires_grad
                and not obj.is_quantized):
            flat = obj.resolve_conj().resolve_neg().contiguous().reshape(-1).view(torch.uint8)
            return _tensor, (pickle.PickleBuffer(flat.numpy()), str(obj.dtype).removeprefix("torch."),
                             tuple(obj.shape))
        if obj.untyped_storage().nbytes() > size:
            return obj.clone().__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        return NotImplemented


def dumps(obj: Any) -> Frame:
    """An event or request as a :class:`Frame` (see :class:`_CompactPickler`)."""
    buffers: list = []

    def beside(buffer: pickle.PickleBuffer) -> bool:  # False: out of band (a copy: a snapshot of it now)
        raw = buffer.raw()
        if raw.nbytes < OOB_MIN:
            return True
        buffers.append(raw.tobytes())
        return False

    out = io.BytesIO()
    _CompactPickler(out, protocol=5, buffer_callback=beside).dump(obj)
    return Frame(out.getvalue(), buffers)


def loads(frame: Frame) -> Any:
    """The object of a :class:`Frame` (as :func:`read_frame` gives it at the other end)."""
    return pickle.loads(frame.pickle, buffers=[bytearray(b) for b in frame.buffers])


class _Sender:
    """Writes frames from a queue in a thread of its own: the training thread only pickles (a snapshot
    of the event) and never waits for the pipe."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="deepcanvas-sender", daemon=True)
        self.thread.start()

    def send(self, obj: Any) -> None:
        self.queue.put(dumps(obj))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def _loop(self) -> None:
        while (data := self.queue.get()) is not None:
            try:
                write_frame(self.stream, data)
            except (BrokenPipeError, OSError):  # the parent is gone: nobody to tell
                return


# =========================================================================== the child
def child_main() -> int:
    import signal

    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # print() and libraries writing to fd 1 now write to stderr
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the app's terminal is the app's to handle
    except (ValueError, OSError):
        pass
    if NICE and hasattr(os, "nice"):
        try:
            os.nice(NICE)
        except OSError:
            pass
    inp = sys.stdin.buffer
    sender = _Sender(out)

    import gc
    import importlib
    gc.disable()  # (the growing heap would set off full collections in the imports: a second of them)
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    import torch
    # The modules' objects (over 200,000) out of the collector's sight for good: a full collection in a
    # run walked them all, 140-190 ms each (two in a process's first LeNet-5 run; 20-60 ms once frozen).
    gc.freeze()
    gc.enable()

    from engine.device import detect
    sender.send(("ready", {"pid": os.getpid(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "device": detect(), "frozen_objects": gc.get_freeze_count()}))

    from .job import TrainingJob, message

    runs: queue.SimpleQueue = queue.SimpleQueue()
    jobs: dict[int, TrainingJob] = {}
    wanted: dict[int, Any] = {}

    def read_requests() -> None:
        try:
            while True:
                msg = read_frame(inp)
                what = msg[0]
                if what == "run":
                    _, rid, spec = msg
                    wanted[rid] = spec.get("want_preview")

                    def put(kind, payload, rid=rid):
                        try:
                            sender.send((rid, kind, payload))
                        except Exception as exc:  # an event that cannot be pickled is named, not lost silently
                            sender.send((rid, "phase", f"could not pass on the '{kind}' event: {exc}"))

                    jobs[rid] = TrainingJob(None, None, put, spec.get("run_dir"),
                                            want_preview=lambda rid=rid: wanted.get(rid),
                                            health=spec.get("health", True))
                    runs.put((rid, spec))
                elif what in ("pause", "resume", "stop"):
                    job = jobs.get(msg[1])
                    if job is not None:
                        getattr(job, what)()
                elif what == "preview":
                    wanted[msg[1]] = msg[2]
                elif what == "pace":
                    job = jobs.get(msg[1])
                    if job is not None:
                        job.pace(*msg[2:])
                elif what == "quit":
                    break
        except EOFError:
            pass
        finally:  # quit, or the app is gone: stop every run (each writes its checkpoint) and end
            for job in list(jobs.values()):
                job.stop()
                job.resume()
            runs.put(None)

    threading.Thread(target=read_requests, name="deepcanvas-requests", daemon=True).start()
    while (item := runs.get()) is not None:
        rid, spec = item
        job = jobs[rid]
        try:
            from engine.fileio import loads
            from engine.training.config import TrainingConfig
            job.graph = loads(spec["graph"], spec.get("path"))
            job.graph.path = spec.get("path")  # (a weights file the graph names is found beside it)
            job.config = TrainingConfig.from_dict(spec["config"])
        except Exception as exc:
            job.put("error", message(exc))
            job.put("done", None)
        else:
            job.run()
        jobs.pop(rid, None)
        wanted.pop(rid, None)
        job = None
        # A run leaves its trainer, model, optimizer and data in reference cycles (the trainer and its
        # subscribers refer to each other), which only a full collection frees: one came rarely, during
        # some later run, and walked them all. Freed here, between runs, they no longer slow the next
        # ones: an MLP run after 12 LeNet-5 runs trained at 0.97 of a fresh process's speed (beside the
        # window, as bench_gui_training.py pairs them), 0.99-1.0 with this.
        gc.collect()
    sender.close()
    return 0


# =========================================================================== the parent
class TrainingProcess:
    """The child process and the thread that reads its events. One is shared by the whole app
    (:meth:`shared`); it runs one run at a time (a second waits for the first)."""

    _shared: "TrainingProcess | None" = None
    _shared_lock = threading.Lock()

    def __init__(self, python: str | None = None):
        root = str(Path(__file__).resolve().parents[2])  # the folder that holds the engine package
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen([python or sys.executable, "-m", "engine.training.remote"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env)  # (the app's working folder: relative data paths mean the same)
        self.ready = threading.Event()
        self.info: dict = {}
        self.ended = threading.Event()
        self._sinks: dict[int, Callable[[str, Any], None]] = {}
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._killed = ""  # why this process killed it, if it did
        threading.Thread(target=self._read_events, name="deepcanvas-events", daemon=True).start()
        threading.Thread(target=self._read_stderr, name="deepcanvas-stderr", daemon=True).start()

    @classmethod
    def shared(cls) -> "TrainingProcess":
        """The app's training process, started on first use and again after it died."""
        with cls._shared_lock:
            if cls._shared is None or not cls._shared.alive:
                cls._shared = cls()
            return cls._shared

    @classmethod
    def close_shared(cls, wait_s: float = 5.0) -> None:
        with cls._shared_lock:
            proc, cls._shared = cls._shared, None
        if proc is not None:
            proc.close(wait_s)

    @property
    def alive(self) -> bool:
        return not self.ended.is_set() and self.proc.poll() is None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Whether the process said it is ready within ``timeout`` seconds (False at once if it ended)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.ended.is_set() or (deadline is not None and time.monotonic() > deadline):
                return False
        return True

    # ------------------------------------------------------------------ requests
    def send(self, msg: tuple) -> bool:
        """Sends a request; False when the process is gone (its runs were reported failed)."""
        data = dumps(msg)
        with self._write_lock:
            try:
                write_frame(self.proc.stdin, data)
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def submit(self, spec: dict, put: Callable[[str, Any], None]) -> int:
        rid = next(self._ids)
        with self._lock:
            self._sinks[rid] = put
        if not self.send(("run", rid, spec)):
            self._ended_runs()
        return rid

    def close(self, wait_s: float = 5.0) -> None:
        """Stops the runs (they write their checkpoints) and ends the process, killing it after
        ``wait_s``."""
        self.send(("quit",))
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    # ------------------------------------------------------------------ the reader threads
    def _read_events(self) -> None:
        stream = self.proc.stdout
        try:
            while True:
                msg = read_frame(stream)
                if msg[0] == "ready":
                    self.info = msg[1]
                    self.ready.set()
                    continue
                rid, kind, payload = msg
                with self._lock:
                    sink = self._sinks.get(rid)
                    if kind == "done":
                        self._sinks.pop(rid, None)
                if sink is not None:
                    try:
                        sink(kind, payload)
                    except Exception:  # this process's subscriber failed: a bug here, not in the run
                        print(f"deepcanvas: a subscriber failed on the training process's {kind!r} event:\n"
                              + traceback.format_exc(), file=sys.stderr)
        except EOFError:
            pass
        except Exception as exc:  # a frame that cannot be read: the stream is lost, so is the process
            self._killed = f"an event from it could not be read ({type(exc).__name__}: {exc})"
            self.proc.kill()
        self.proc.wait()
        self.ended.set()
        self._ended_runs()

    def _ended_runs(self) -> None:
        """The process is gone: every run it had is reported failed, with why."""
        with self._lock:
            sinks, self._sinks = list(self._sinks.values()), {}
        if not sinks:
            return
        code = self.proc.poll()
        if self._killed:
            why = f"the app stopped it: {self._killed}"
        elif code is not None and code < 0:
            why = f"it was killed by signal {-code}" + (" (the system may have run out of memory)" if code == -9 else "")
        else:
            why = f"exit status {code}"
        tail = "\n".join(self._stderr)
        text = f"The training process ended unexpectedly ({why}). Your network and settings are unchanged."
        if tail:
            text += f"\nIts last output:\n{tail}"
        for sink in sinks:
            sink("error", text)
            sink("done", None)

    def _read_stderr(self) -> None:
        """Passes the child's error output on to ours (warnings, tracebacks) and keeps its end."""
        out = getattr(sys.stderr, "buffer", None)
        for line in iter(self.proc.stderr.readline, b""):
            self._stderr.append(line.decode("utf-8", "replace").rstrip())
            try:
                if out is not None:
                    out.write(line)
                    out.flush()
                else:
                    sys.stderr.write(line.decode("utf-8", "replace"))
            except (OSError, ValueError):
                pass


atexit.register(TrainingProcess.close_shared, 3.0)


class RemoteJob:
    """One run in a :class:`TrainingProcess`, with the controls of :class:`~engine.training.job.TrainingJob`
    (they are messages to the child, so none waits). ``process`` None: the shared process."""

    def __init__(self, graph, config, put: Callable[[str, Any], None], run_dir: str | None = None,
                 want_preview: tuple | None = None, health: bool = True,
                 process: TrainingProcess | None = None):
        from engine.fileio import dumps

        self.spec = {"graph": dumps(graph), "path": graph.path, "config": config.to_dict(), "run_dir": run_dir,
                     "health": health, "want_preview": want_preview}
        self._put = put
        self.process = process
        self.id: int | None = None
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def _sink(self, kind: str, payload: Any) -> None:
        try:
            self._put(kind, payload)
        finally:  # (a failing subscriber must not leave wait() waiting)
            if kind == "done":
                self.finished.set()

    def start(self) -> None:
        """Send the run to the process (once; a second call does nothing)."""
        with self._lock:
            if self.id is not None:
                return
            try:
                self.process = self.process or TrainingProcess.shared()
            except OSError as exc:  # no Python to run it with, no room for another process
                self.id = -1
                self._sink("error", f"The training process could not start ({exc}). Your network and settings "
                                    "are unchanged.")
                self._sink("done", None)
                return
            self.id = self.process.submit(self.spec, self._sink)

    @property
    def alive(self) -> bool:
        return not self.finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def _control(self, what: str, *args) -> None:
        if self.id is not None and self.process is not None:
            self.process.send((what, self.id, *args))

    def pause(self) -> None:
        self._control("pause")

    def resume(self) -> None:
        self._control("resume")

    def stop(self) -> None:
        self.start()  # (a run stopped before it was sent ends at once, as a stopped run with no steps)
        self._control("stop")

    def set_preview(self, wanted: tuple | None) -> None:
        self.spec["want_preview"] = wanted
        self._control("preview", wanted)

    def pace(self, event_interval: float, preview_every: float) -> None:
        """See :meth:`engine.training.job.TrainingJob.pace`."""
        self._control("pace", event_interval, preview_every)


if __name__ == "__main__":
    # The child runs in the module under its own name, not in this copy named __main__: pickle names
    # a function by its module (``_tensor``, in the events), and the app has no __main__ of this file.
    from engine.training import remote

    sys.exit(remote.child_main())
