"""Training with the app open (issue #7): the event loop stays responsive and training keeps its speed.

    .venv/bin/python benchmarks/bench_gui_training.py [--quick] [--rounds N] [--lag-rounds N] [--epochs N]
                                                      [--seconds S] [--leave-core] [--swap SECONDS] [--turns]
                                                      [--slice SECONDS] [--self-check] [--side-by-side]
                                                      [--sequential] [--device cpu|cuda] [--only lenet|mlp]
                                                      [--each-round]

The real main window runs headless (offscreen Qt) with the Training dock and its live plots on screen,
the Preview dock showing a node (so weight snapshots and preview refreshes happen too) and training
health drawn on the canvas. Two workloads: LeNet-5 on the 32x32 digits in mini-batches of 64 (the
device does most of the work) and an MLP on the digits with one example per step (Python overhead per
step: the most events and the most work per example outside the kernels). The app trains in its
training process (``engine.training.remote``), as a user's click does. Every run is stopped after
``--seconds`` of training (6; twice that in wall time with ``--turns``), as the Stop button
stops it, before it could end by itself (60 and 15 epochs).

1. Event-loop lag: a 10 ms ``QTimer`` probe runs in the UI thread for the whole run (from the Train
   click to the filled Results tab); its worst delay beyond the 10 ms over ``--lag-rounds`` runs (5) is
   reported. Target: under 50 ms. A witness process beside it (``WITNESS``) shows when the machine
   itself stalled: the report says when the worst delay came with one of its late wake-ups.
   The probe is instrumentation, not part of the app (a timer that wakes the UI thread 100 times a
   second costs a Python-bound training loop a few percent), so the throughput is measured in runs of
   their own, without it.
2. Throughput: examples per second of training with the GUI against the same run headless:
   ``Trainer.fit`` with no subscribers in the main thread of a fresh process, as ``deepcanvas train``
   runs it, after a 2-epoch warm-up run (the app's training process has trained before too); same
   graph, settings, seed, a run folder each. The two train *side by side*, at the same time, each side
   on a core of its own (CPU affinity: PyTorch trains with one thread on each side): the app's side is
   this process (the window) and its training process, so each millisecond the window works is taken
   from its run, as on a machine whose every core trains. Every ``--swap`` seconds (0.05) a swapper
   process moves each side to the other core (every thread of each process; both sides stopped for the
   moment of the move, so they never share a core: see :func:`swapper_child`), so both sides get each
   core half the time: this virtual machine's two cores differ in speed from moment to moment, and its
   speed changes by a third from one run to the next (two headless runs one after the other gave 7,000
   and 11,700 ex/s), far more than the 2% to be measured. The headless run starts when the app's run
   does (its 'start' event) and both are stopped at the same moment, so both train through the same
   seconds of the machine; each side's throughput is its examples over its seconds of training (the
   trainer's clock). The figure is the median of the rounds' ratios (``--rounds``, 9: a round's ratio
   varies by about 1% either way, the median of 9 by about a third of that). Target: at least 0.98.
   ``--self-check`` pairs two headless runs the same way, to show the method's own noise on the
   machine: rounds 0.980-1.007, median 0.990, on 2026-11-27 with the stopping swapper (0.987-1.006,
   median 0.995, with the earlier one, which moved running threads; with ``--swap 0``, the cores
   swapped only between rounds, 0.81-1.21).

   Side by side, the window's clock-paced work (its timers and drawing budget, the run's progress
   events every second, its health inspections) keeps its pace per step, as for a user. The method is
   conservative where PyTorch would not use both cores anyway (the MLP's one-example steps run their
   kernels in one thread, so on a 2-core machine the window would draw on the other core for free).

   ``--turns`` is the earlier method: the sides train in turns of ``--slice`` seconds (0.05; SIGSTOP
   and SIGCONT, never both at once), each with every core. It weighs against the app: in turns the
   app's run takes more than twice the wall time for the same steps, so it does about twice the
   window's clock-paced work per step (each workload prints the UI thread's CPU time and the run's
   progress events per run alone, without the probe, and in the pairing, to show by how much). Its
   self-check's medians were 0.986-0.999. Both sides train a warm-up run of ``WARM_S`` in turns just
   before (of two headless runs in turns, the one that had trained last came out about 1% faster), and
   the side with the first turn alternates between rounds.

   Why the headless run is another process: each thread that runs PyTorch's parallel CPU kernels gets
   its own OpenMP thread pool, and libgomp stops its workers' busy-waiting between kernels (which small
   kernels rely on) once there are more pool threads than cores; a headless run in this process would
   leave a pool behind that says nothing about the GUI.

   The window's own work (drawing the plots, the progress, the canvas's health marks) takes a few per
   cent of one core while a run trains. Where training leaves a core free (a GPU does the work, or the
   machine has more cores than PyTorch uses) that costs the run nothing; where every core trains, as
   on a 2-core machine running a CPU run, it comes out of the run's share. ``--leave-core --turns``
   measures the first case: both sides train with one thread fewer than the cores (OMP_NUM_THREADS),
   the way PyTorch would run on a machine with a core more (side by side, each side has one core and
   one thread already, so there is no core to leave on a 2-core machine).

   ``--sequential`` (and ``--device cuda`` without ``--turns``) measures that first case another
   way: the two sides train one after the other, each alone with the whole machine (see
   :func:`sequential`). On this 2-core virtual machine its rounds scatter by 10-30% (its speed moves
   between runs), so it says little here; on a GPU machine with cores to spare it is the question that
   matters: what the app's way of training (its training process, the progress events, each reading
   the gradient norms from the GPU, the live preview) and a window drawing at the full rate cost a GPU
   run. There too its runs one after the other scattered by 10%; ``--turns --device cuda`` pairs the
   sides in turns as on the CPU (each side then has the GPU to itself in its turns, and the window a
   core of its own), and ``--turns --self-check --device cuda`` shows that method's noise there.
   The turns weigh against the app there as here (its clock-paced work doubled per step): on an H200
   the MLP came out at 0.95 in turns, as on this machine's CPU (0.946-0.955 in turns where side by side
   gives 0.98-0.99), while bench_job.py found the app's training job itself costing nothing measurable.
   ``--side-by-side --device cuda`` pairs the sides as on the CPU (both train on the GPU at once, each
   process on a core of its own, swapped; the window shares the core of its run, which is conservative
   on a machine with cores to spare), with ``--self-check`` for its noise there.

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAG_TARGET_MS = 50.0
RATIO_TARGET = 0.98
PROBE_MS = 10
SLICE_S = 0.05  # seconds the GUI's side and the headless side train in turn (--turns: see paired())
SETTLE_S = 0.5  # seconds the window has after a graph is opened before its Train button is clicked
SWAP_S = 0.05  # seconds between swaps of the two sides' cores (side by side, the default: see side_by_side())
# Rounds per workload. The throughput ratio is the noisiest figure (a round's ratio varies by about 1%
# either way: the self-check's rounds span 0.979-1.004), so it gets the most rounds: the median of 9 is
# about a third of a per cent from the method's centre, against a half with 5 (and each round's headless
# process is a new one, with its own memory layout). The lag probe's worst delay is the worst of its runs;
# the UI thread's share of a core alone (without the probe: its 100 wake-ups a second would count) is
# reported from a few runs.
THROUGHPUT_ROUNDS = 9
LAG_ROUNDS = 5
ALONE_RUNS = 3
WARM_S = 2.0  # seconds of wall time both sides train a warm-up run, in turns, before each measured pair


# A witness: another process that sleeps WITNESS_MS at a time and reports each wake-up late by more than
# WITNESS_LATE_MS (when, how late). This virtual machine stalls now and then while its cores are busy:
# both of two such processes, one of them at the training process's priority, woke 31-39 ms late at the
# same moment, twice in a minute of training, and once when the window's probe was late by as much.
# The report says when the window's worst delay came with one of those, so that the machine's stall is
# told from the window's own work; the target counts the delay as it is.
WITNESS_MS = 2
WITNESS_LATE_MS = 15
WITNESS = f"""
import os, time
parent = os.getppid()
last = time.perf_counter()
while os.getppid() == parent:  # (it ends with the benchmark, however that ends)
    time.sleep({WITNESS_MS / 1000})
    now = time.perf_counter()
    if (now - last) * 1000 - {WITNESS_MS} > {WITNESS_LATE_MS}:
        print(now, (now - last) * 1000 - {WITNESS_MS}, flush=True)
    last = now
"""


class LagProbe:
    """A repeating timer in the UI thread; records how late each tick comes (and, with ``witness``,
    when another process woke late at the same time: see ``WITNESS``)."""

    def __init__(self, witness: bool = True):
        from PySide6 import QtCore

        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self.lags: list[float] = []
        self._last = None
        self.worst = 0.0
        self.stalls: list[tuple[float, float]] = []  # (when, ms late) of the witness's late wake-ups
        self._witness = None
        if witness:  # (started here, before the window settles: a Python starting up at the click was 20-30 ms
            import subprocess  # of CPU taken from the click's own turn)

            self._witness = subprocess.Popen([sys.executable, "-c", WITNESS], stdout=subprocess.PIPE, text=True)

    def start(self) -> None:
        self.lags.clear()
        self.stalls = []
        self._last = self.started = time.perf_counter()
        self.worst, self.worst_at = 0.0, 0.0  # the longest delay (ms) and when it came (s after start())
        self._worst_span = (0.0, 0.0)
        self.trained = (0.0, 0.0)  # seconds after start() of the run's start and end (set by with_gui)
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        if self._witness is not None:
            self._witness.kill()
            out, _ = self._witness.communicate()
            self.stalls = [(float(a), float(b)) for a, b in (line.split() for line in out.splitlines())
                           if float(a) >= self.started]
            self._witness = None

    def _tick(self) -> None:
        now = time.perf_counter()
        lag = max(0.0, (now - self._last) * 1000 - PROBE_MS)
        if lag > self.worst:
            self.worst, self.worst_at = lag, now - self.started
            self._worst_span = (self._last, now)
        self.lags.append(lag)
        self._last = now

    def machine_stall(self) -> float:
        """The longest late wake-up of the witness during the worst delay's span (ms; 0: none)."""
        a, b = self._worst_span
        return max((late for at, late in self.stalls if a <= at and at - late / 1000 <= b), default=0.0)

    def where(self) -> str:
        """When the worst delay came, against the run's span, for the report."""
        stall = self.machine_stall()
        return (f"{self.worst_at:.2f} s after the click; the run trained from {self.trained[0]:.2f} to "
                f"{self.trained[1]:.2f} s" + (f"; another process woke {stall:.0f} ms late then too" if stall else ""))

    def percentile(self, q: float) -> float:
        if not self.lags:
            return 0.0
        s = sorted(self.lags)
        return s[min(len(s) - 1, int(q * len(s)))]


def workloads(epochs: int, device: str = "cpu"):
    import engine
    from tests import graphs

    lenet = engine.load_graph(ROOT / "templates" / "lenet5.dcnet")
    lenet.training = {"epochs": epochs, "batch_size": 64, "device": device}
    mlp = graphs.mlp(64, 64, 10)
    mlp.name = "digits MLP"
    mlp.training = {"epochs": max(1, epochs // 4), "batching": "stochastic", "device": device}
    return [("LeNet-5, digits 32x32, batch 64", lenet), ("MLP, digits, one example per step", mlp)]


def chosen(pairs: list, only: str | None) -> list:
    """The (name, graph) workloads ``--only`` names ("lenet" or "mlp"), or all of them."""
    return pairs if only is None else [pairs[("lenet", "mlp").index(only)]]


class Headless:
    """The same run headless: ``Trainer.fit`` with no subscribers in the main thread of a fresh process,
    as ``deepcanvas train`` runs it, after a short warm-up run (see :func:`headless_child`). The process
    compiles the network and loads the data, says ``ready`` and waits: :meth:`warm` trains another
    warm-up run and :meth:`go` the measured one, each until :meth:`stop` (or its end). At the end it
    prints its steps, batch size, seconds of training (the trainer's clock) and the time it ended
    (``time.perf_counter``: on Linux the system's monotonic clock, the same in every process)."""

    def __init__(self, graph, run_dir: Path, cpu: int | None = None):
        import subprocess

        import engine

        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "graph.dcnet"
        engine.save_graph(graph, path)
        pinned = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))  # (PyTorch then takes 1 thread)
        self.proc = subprocess.Popen([sys.executable, __file__, "--headless-child", str(path), str(run_dir / "run")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=pinned)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"headless run failed:\n{self.proc.stderr.read()[-2000:]}")
        self.line = None
        self.done = threading.Event()
        self.warmed = threading.Event()

    def _send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):  # (it has ended: its result says why)
            pass

    def warm(self) -> None:
        """Start a warm-up run (until :meth:`stop`); ``warmed`` is set when it has ended."""
        self.warmed.clear()
        self._send("warm")

        def read():
            self.proc.stdout.readline()
            self.warmed.set()
        threading.Thread(target=read, daemon=True).start()

    def go(self) -> None:
        """Start the measured run; ``done`` is set when it has ended."""
        threading.Thread(target=self._read, daemon=True).start()
        self._send("go")

    def stop(self) -> None:
        """Stop the run it is training after its current step (see :func:`headless_child`)."""
        self._send("stop")

    def _read(self) -> None:
        self.line = self.proc.stdout.readline()
        self.done.set()

    def result(self) -> tuple[int, float, float]:
        """(examples trained, seconds of training, when it ended)."""
        self.proc.wait(60)
        if self.proc.returncode != 0 or not self.line:
            raise RuntimeError(f"headless run failed:\n{self.proc.stderr.read()[-2000:]}")
        steps, batch, seconds, ended = self.line.split()
        return int(steps) * int(batch), float(seconds), float(ended)


def headless_child(graph_file: str, run_dir: str) -> int:
    """The headless side (see :class:`Headless`). Lines on stdin: ``warm`` trains a warm-up run until a
    ``stop`` line and answers ``warmed``; ``go`` trains the measured run, until it ends or a ``stop``
    line comes, and prints its figures."""
    import engine
    from engine.training import Trainer, TrainingConfig

    graph = engine.load_graph(graph_file)
    config = TrainingConfig.from_graph(graph)
    import gc
    gc.freeze()  # (as ``deepcanvas train`` and the app's training process do after their imports)
    # A short run first, as the app's training process has trained before the measured runs: a fresh
    # process's first steps (allocations, kernel set-up) are slower, and paired against a warm one they
    # made the app's side look 1-2% faster than it is.
    Trainer(graph, config.with_overrides({"epochs": min(2, config.epochs)}), run_dir=run_dir + "-warm-up").fit()
    gc.collect()  # (what a run leaves, freed between runs as the app's training process does)
    trainer = Trainer(graph, config, run_dir=run_dir)
    print("ready", flush=True)

    def stop_on_line(t) -> None:  # the next line stops ``t`` after its current step, as the app's Stop button
        threading.Thread(target=lambda: (sys.stdin.readline(), t.stop()), daemon=True).start()

    while (line := sys.stdin.readline().strip()) != "go":
        if line == "warm":
            warm = Trainer(graph, config.with_overrides({"epochs": 10_000}), run_dir=run_dir + "-warm-up-2")
            stop_on_line(warm)
            warm.fit()
            del warm
            gc.collect()
            print("warmed", flush=True)
        elif not line:
            return 1
    stop_on_line(trainer)
    result = trainer.fit()
    ended = time.perf_counter()
    if result.status not in ("finished", "stopped"):
        print(result.reason, file=sys.stderr)
        return 1
    print(result.steps, trainer.batch_size, result.seconds, ended, flush=True)
    return 0


def _signal(pids: list[int], sig) -> None:
    """Sends ``sig`` to each process of ``pids`` that is still there."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def slicer_child(slice_s: float, first: str, second: str) -> int:
    """Runs two groups of processes in turn, ``slice_s`` seconds each (SIGSTOP and SIGCONT; never both at
    once), from ``first`` (comma-separated pids), until a line comes on stdin; then lets both run and
    prints, as JSON, when each group was stopped: {"first": [[from, to], ...], "second": [...]}."""
    import json
    import signal

    groups = {"first": [int(x) for x in first.split(",")], "second": [int(x) for x in second.split(",")]}
    stopped = {"first": [], "second": []}

    def signal_all(name, sig):
        _signal(groups[name], sig)

    signal_all("second", signal.SIGSTOP)
    stopped["second"].append([time.perf_counter(), None])
    print("started", flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), done.set()), daemon=True).start()
    running = "first"
    while not done.wait(slice_s):
        other = "second" if running == "first" else "first"
        signal_all(running, signal.SIGSTOP)
        stopped[running].append([time.perf_counter(), None])
        signal_all(other, signal.SIGCONT)
        stopped[other][-1][1] = time.perf_counter()
        running = other
    other = "second" if running == "first" else "first"
    signal_all(other, signal.SIGCONT)
    stopped[other][-1][1] = time.perf_counter()
    print(json.dumps(stopped), flush=True)
    return 0


def self_check(graph, run_dir: Path, slice_s: float, seconds: float, a_first: bool = True) -> float:
    """The method's own noise: two headless runs of the same graph in turns, as :func:`paired` runs the
    GUI's side and the headless one, both stopped after ``seconds`` of wall time (about half of it
    each); their throughput ratio would be 1 on a steady machine. ``a_first``: whether the first of the
    two has the first turn (the rounds alternate it, as paired's do: a bias of the first turn shows as
    alternating ratios)."""
    import json
    import subprocess

    a, b = Headless(graph, run_dir / "a"), Headless(graph, run_dir / "b")
    order = [str(a.proc.pid), str(b.proc.pid)][::1 if a_first else -1]
    slicer = subprocess.Popen([sys.executable, __file__, "--slicer", str(slice_s), *order],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert slicer.stdout.readline().strip() == "started"
    for phase, wall in (("warm", WARM_S), ("go", seconds)):  # (the warm-up as paired() has both sides train)
        for side in (a, b):
            side.warm() if phase == "warm" else side.go()
        time.sleep(wall)
        a.stop()
        b.stop()
        if phase == "warm":
            a.warmed.wait()
            b.warmed.wait()
    a.done.wait()
    b.done.wait()
    slicer.stdin.write("stop\n")
    slicer.stdin.flush()
    stops = json.loads(slicer.stdout.readline())
    slicer.wait(30)
    a_stops, b_stops = (stops["first"], stops["second"]) if a_first else (stops["second"], stops["first"])
    (ea, sa, ta), (eb, sb, tb) = a.result(), b.result()
    return (ea / active_seconds(sa, ta, a_stops)) / (eb / active_seconds(sb, tb, b_stops))


def pin(pid: int, cpu: int) -> None:
    """Pins every thread of process ``pid`` to core ``cpu`` (on Linux each thread has its own affinity;
    threads started later take their starter's)."""
    for task in _tasks(pid):
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except OSError:  # (a thread that has just ended)
            pass


def swapper_child(slice_s: float, cpus: str, first: str, second: str) -> int:
    """Keeps two groups of processes on a core each (``cpus``: two core numbers) and swaps their cores
    every ``slice_s`` seconds (every thread of each process), until a line comes on stdin: both sides
    train at once, and each gets each core for half the time.

    Each swap stops both sides (SIGSTOP), re-pins their threads and lets them go on (SIGCONT), so the
    two never share a core and the swapper's own work never lands in either side's time: both lose the
    same fraction of a millisecond, which leaves their ratio as it was. Moving a *running* thread to
    another core takes this virtual machine about 0.8 ms, during which the side moved first shared the
    other side's core with it (the app's training process, at nice 5, then got a quarter of that core
    against the headless run's three quarters: 0.3-0.8% of the app's side's time, every swap); a
    stopped thread's affinity changes in microseconds. The thread lists are read again every second
    (a new thread takes its creator's core until then)."""
    import signal

    a_cpu, b_cpu = (int(x) for x in cpus.split(","))
    groups = ([int(x) for x in first.split(",")], [int(x) for x in second.split(",")])
    pids = groups[0] + groups[1]
    done = threading.Event()
    swaps = 0
    threads: list[list[int]] = [[], []]
    listed = -1.0
    while True:
        now = time.perf_counter()
        if now - listed >= 1.0:
            threads = [[int(t.name) for pid in group for t in _tasks(pid)] for group in groups]
            listed = now
        _signal(pids, signal.SIGSTOP)
        try:
            for tids, cpu in zip(threads, (a_cpu, b_cpu) if swaps % 2 == 0 else (b_cpu, a_cpu)):
                for tid in tids:
                    try:
                        os.sched_setaffinity(tid, {cpu})
                    except OSError:  # (a thread that has just ended)
                        pass
        finally:
            _signal(pids, signal.SIGCONT)
        if not swaps:  # (each side on its first core before the caller goes on)
            print("started", flush=True)
            threading.Thread(target=lambda: (sys.stdin.readline(), done.set()), daemon=True).start()
        swaps += 1
        if done.wait(slice_s):
            break
    print(swaps, flush=True)
    return 0


def _tasks(pid: int) -> list[Path]:
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # (a process that has ended)
        return []


@contextlib.contextmanager
def swapping(first: str, second: str, cpus: tuple[int, int], slice_s: float):
    """While in this block, the processes of ``first`` and ``second`` (comma-separated pids) swap
    their cores every ``slice_s`` seconds (see :func:`swapper_child`); ``slice_s`` 0: no swapping."""
    import subprocess

    if not slice_s:
        yield
        return
    swapper = subprocess.Popen([sys.executable, __file__, "--swapper", str(slice_s), f"{cpus[0]},{cpus[1]}", first,
                                second], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert swapper.stdout.readline().strip() == "started"
    try:
        yield
    finally:
        swapper.stdin.write("stop\n")
        swapper.stdin.flush()
        swapper.wait(30)


def self_check_side_by_side(graph, run_dir: Path, cpus: tuple[int, int], seconds: float, swap_s: float = 0.0) -> float:
    """The side-by-side method's own noise: two headless runs at once, each on a core of its own (swapped
    every ``swap_s`` seconds, if not 0), both stopped after ``seconds``."""
    a, b = Headless(graph, run_dir / "a", cpus[0]), Headless(graph, run_dir / "b", cpus[1])
    with swapping(str(a.proc.pid), str(b.proc.pid), cpus, swap_s):
        a.go()
        b.go()
        time.sleep(seconds)
        a.stop()
        b.stop()
        a.done.wait()
        b.done.wait()
    (ea, sa, _), (eb, sb, _) = a.result(), b.result()
    return (ea / sa) / (eb / sb)


def side_by_side(window, graph, run_dir: Path, cpus: tuple[int, int], seconds: float,
                 swap_s: float = 0.0) -> tuple[float, float, "WindowWork"]:
    """The run with the GUI and the same run headless at the same time, each side on a core of its own:
    this process (the window) and the app's training process on ``cpus[0]``, the headless process on
    ``cpus[1]``; PyTorch trains with one thread on each side. The headless run starts when the app's run
    does (its 'start' event) and both are stopped ``seconds`` later (the app's run as its Stop button
    does), so both train through the same seconds of the machine and its changes of speed, and neither
    trains alone at the end (the two cores share caches and memory: a run alone is faster); nothing is
    paused, so the window's clock-paced work runs at its own pace per step, as for a user (unlike
    :func:`paired`'s turns). The app's window has one core, which its run trains on, so each
    millisecond it draws is taken from the run, as on a machine whose every core trains. Returns
    (examples per second with the GUI, headless, :class:`WindowWork`)."""
    from PySide6 import QtWidgets

    from engine.training.remote import TrainingProcess

    training = TrainingProcess.shared().info["pid"]
    pin(os.getpid(), cpus[0])
    pin(training, cpus[0])
    head = Headless(graph, run_dir, cpus[1])
    with swapping(f"{os.getpid()},{training}", str(head.proc.pid), cpus, swap_s):
        with both_from_start(head, seconds):
            gui_examples, gui_seconds, _, work = with_gui(window, graph, None, timed=True)
        while not head.done.wait(0.01):
            QtWidgets.QApplication.processEvents()
    head_examples, head_seconds, _ = head.result()
    return gui_examples / gui_seconds, head_examples / head_seconds, work


def sequential(window, graph, run_dir: Path, seconds: float, app_first: bool = True) -> tuple[float, float, "WindowWork"]:
    """The run with the GUI and the same run headless one after the other, each alone with the whole
    machine (``app_first``: which goes first; the rounds alternate it), each stopped after ``seconds``
    of training. The method for a machine whose training leaves cores free, as a GPU run does: there
    the question is what the window's process and the app's way of running costs the run (its
    training process, the events, the gradient norms each progress event reads, the live preview and
    health), not a core's share. The headless process compiles and warms up before either run trains,
    and waits idle while the app's run trains."""
    from PySide6 import QtWidgets

    head = Headless(graph, run_dir)

    def headless_rate() -> float:
        head.go()
        timer = threading.Timer(seconds, head.stop)
        timer.start()
        while not head.done.wait(0.01):
            QtWidgets.QApplication.processEvents()
        timer.cancel()
        examples, trained, _ = head.result()
        return examples / trained

    if not app_first:
        head_rate = headless_rate()
    gui_examples, gui_seconds, _, work = with_gui(window, graph, None, timed=True)
    if app_first:
        head_rate = headless_rate()
    return gui_examples / gui_seconds, head_rate, work


def active_seconds(seconds: float, ended: float, stops: list) -> float:
    """A run's seconds of training (its clock: from ``ended - seconds`` to ``ended``) less the time it
    was stopped meanwhile."""
    began = ended - seconds
    return seconds - sum(max(0.0, min(b, ended) - max(a, began)) for a, b in stops)


def paired(window, graph, run_dir: Path, slice_s: float, seconds: float,
           app_first: bool = True) -> tuple[float, float, "WindowWork"]:
    """The run with the GUI and the same run headless, trained in turns of ``slice_s`` seconds: this
    process and the app's training process run while the headless one is stopped, and the other way
    round (no two at once). Whatever the machine's speed does meanwhile (a shared virtual machine's
    varies by a third from one run to the next), both sides get the same share of it, and the window's
    work lands in its own side's turns. The headless run starts when the app's run does (its 'start'
    event) and both are stopped ``seconds`` later (the app's run as its Stop button does), so both train
    through the same stretch of the machine's time; ``app_first``: which side has the first turn (the
    rounds alternate it). Returns (examples per second with the GUI, headless, what the window and the
    run did for the window meanwhile: see :class:`WindowWork`)."""
    import json
    import subprocess

    from PySide6 import QtWidgets

    from engine.training.remote import TrainingProcess

    head = Headless(graph, run_dir)
    app = f"{os.getpid()},{TrainingProcess.shared().info['pid']}"
    order = [app, str(head.proc.pid)] if app_first else [str(head.proc.pid), app]
    slicer = subprocess.Popen([sys.executable, __file__, "--slicer", str(slice_s), *order],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert slicer.stdout.readline().strip() == "started"
        # Both sides train a warm-up run of WARM_S, in turns, just before the measured runs: in two
        # headless runs in turns, the process that had trained last before them came out about 1% faster
        # (medians of 0.986 and 0.987 with the other created last, 0.999 the other way round).
        with both_from_start(head, WARM_S, warm=True):
            with_gui(window, graph, None)
        while not head.warmed.wait(0.01):
            QtWidgets.QApplication.processEvents()
        window.training.controller.remove(window.training.controller.current)  # (not kept among the runs)
        with both_from_start(head, seconds):
            gui_examples, gui_seconds, gui_ended, work = with_gui(window, graph, None, timed=True)
        while not head.done.wait(0.01):
            QtWidgets.QApplication.processEvents()
    finally:
        slicer.stdin.write("stop\n")
        slicer.stdin.flush()
        stops = json.loads(slicer.stdout.readline())
        slicer.wait(30)
    app_stops, head_stops = (stops["first"], stops["second"]) if app_first else (stops["second"], stops["first"])
    head_examples, head_seconds, head_ended = head.result()
    gui_rate = gui_examples / active_seconds(gui_seconds, gui_ended, app_stops)
    head_rate = head_examples / active_seconds(head_seconds, head_ended, head_stops)
    return gui_rate, head_rate, work


@contextlib.contextmanager
def both_from_start(head: Headless, seconds: float, warm: bool = False):
    """While in this block, the app's next run starts ``head``'s measured run (or with ``warm``, its
    warm-up run) as it starts (its 'start' event) and both are stopped ``seconds`` later."""
    global _on_start

    def both(job):
        head.warm() if warm else head.go()
        threading.Timer(seconds, lambda: (head.stop(), job.stop())).start()

    before, _on_start = _on_start, both
    try:
        yield
    finally:
        _on_start = before


def thread_cpu(native_id: int) -> float:
    """CPU seconds one thread of this process has used (Linux /proc: to the nanosecond from schedstat
    where the kernel keeps it, else in clock ticks; 0 elsewhere)."""
    try:
        return int(Path(f"/proc/self/task/{native_id}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WindowWork(NamedTuple):
    """What a run with the window cost beside training, from the run's start to its end: the UI thread's
    CPU seconds and share of one core, the progress events the run sent (each costs the run its
    gradient norms), and the share of the run's training time it spent delivering its events (to the
    training process's subscribers: the progress, the health inspections, the live preview; on a GPU
    each progress event waits for the device). The first two are paced by the wall clock (the window's
    timers, the run's event interval), so a run that takes longer in wall time, as in turns, does more
    of them per step."""

    ui_seconds: float
    ui_share: float
    step_events: int
    event_share: float


def main_window(prefix: str):
    """The app's main window as a user has it (settings and autosave in a new temporary folder, where
    its runs go too), shown, with the training modules imported; (window, that folder)."""
    from PySide6 import QtCore, QtWidgets

    from gui.mainwindow import MainWindow
    from gui.training.warmup import ensure_imported

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # the window closes at the end; the figures print first
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    settings = QtCore.QSettings(str(tmp / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    window = MainWindow(settings, tmp / "autosave")
    window.training.controller._runs_dir = tmp / "gui-runs"
    window.ask = lambda *a: "Discard"
    window.resize(1600, 1000)
    window.show()
    ensure_imported()
    return window, tmp


def settle(seconds: float) -> None:
    """Let the window work for ``seconds`` (a user's click comes a while after opening a file)."""
    from PySide6 import QtWidgets

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QtWidgets.QApplication.processEvents()
        time.sleep(0.005)


def with_gui(window, graph, probe: LagProbe | None, timed: bool = False):
    """One run from the Train button; returns its throughput, the probe, and its :class:`WindowWork`.
    ``timed``: returns (examples trained, seconds of training by the trainer's clock, when its result
    came, the WindowWork) instead. Needs :func:`_note_result_times` first (it marks the run's span)."""
    from PySide6 import QtCore

    from gui.document import Document

    ui = window.training
    window.set_document(Document(graph.copy()))
    window.canvas.select([_first_layer(graph)])  # the preview shows it, refreshed with the weights
    ui.dock_widget.tabs.setCurrentIndex(0)  # the live curves on screen
    # The window settles first (the canvas and the preview draw the graph just opened, the preview in
    # pieces of up to 20 ms): a user's click comes seconds after opening a file, and five turns of the
    # event loop left that work to land in the run's first tenth of a second, where the probe counted it.
    settle(SETTLE_S)
    loop = QtCore.QEventLoop()
    done = []

    def finished(run):
        done.append(run)
        QtCore.QTimer.singleShot(300, loop.quit)  # the Results tab fills in the meantime

    ui.controller.finished.connect(finished)
    if probe is not None:
        probe.start()
    run = ui.start()
    loop.exec()
    if probe is not None:
        probe.stop()
    ui.controller.finished.disconnect(finished)  # (only ours: the app's own handlers stay)
    assert run.status in ("finished", "stopped"), run.error
    job = ui.controller.job
    (t0, c0), (t1, c1) = job.start_mark, job.result_mark
    if probe is not None:
        probe.trained = (t0 - probe.started, t1 - probe.started)
    work = WindowWork(c1 - c0, (c1 - c0) / max(t1 - t0, 1e-9), getattr(job, "step_events", 0),
                      run.result.event_seconds / max(run.result.seconds, 1e-9))
    examples = run.step * run.info.batch_size
    if timed:
        return examples, run.result.seconds, ui.controller.job.result_at, work
    return examples / run.result.seconds, probe, work


# called with the job (in the event reader's thread) when a run's 'start' event comes: see side_by_side()
_on_start = None


def _note_result_times() -> None:
    """Instrumentation, on each job: the time a run's result reaches this process (``result_at``; the
    training process sends it as the trainer's clock stops, so it marks the end of the training), the
    time and the UI thread's CPU time when its start and its result came (``start_mark``,
    ``result_mark``: the window's work while it trained, not before or after), and its progress events
    (``step_events``)."""
    import threading

    from engine.training.remote import RemoteJob

    sink = RemoteJob._sink
    ui_thread = threading.main_thread().native_id

    def noted(job, kind, payload):
        if kind == "start":
            job.start_mark = (time.perf_counter(), thread_cpu(ui_thread))
            if _on_start is not None:
                _on_start(job)
        elif kind == "result":
            job.result_at = time.perf_counter()
            job.result_mark = (job.result_at, thread_cpu(ui_thread))
        elif kind == "step":
            job.step_events = getattr(job, "step_events", 0) + 1
        sink(job, kind, payload)

    RemoteJob._sink = noted


def _shown(ratio: float) -> str:
    """A ratio to three places, cut rather than rounded: 0.9798 is UNDER 0.98 and reads 0.979."""
    return f"{math.floor(ratio * 1000) / 1000:.3f}"


def _first_layer(graph) -> str:
    for nid, node in graph.nodes.items():
        if node.type in ("Conv2d", "Linear"):
            return nid
    return next(iter(graph.nodes))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short runs (a smoke test of the benchmark)")
    p.add_argument("--rounds", type=int, default=None,
                   help=f"throughput rounds per workload (default {THROUGHPUT_ROUNDS}; --self-check: 8)")
    p.add_argument("--lag-rounds", type=int, default=None,
                   help=f"runs with the event-loop probe per workload (default {LAG_ROUNDS})")
    p.add_argument("--epochs", type=int, default=None, help="LeNet-5 epochs per run (the MLP gets a quarter)")
    p.add_argument("--only", choices=("lenet", "mlp"), default=None,
                   help="one of the two workloads (default both; the summary then covers that one)")
    p.add_argument("--leave-core", action="store_true",
                   help="with --turns: train with one thread fewer than the cores, headless and in the app (see above)")
    p.add_argument("--self-check", action="store_true",
                   help="no GUI: two headless runs paired as the measurement pairs the app's (side by side, "
                        "or in turns with --turns), to show the method's own noise on this machine")
    p.add_argument("--turns", action="store_true",
                   help="the sides train in turns (SIGSTOP/SIGCONT) instead of side by side (see paired())")
    p.add_argument("--sequential", action="store_true",
                   help="each side alone with the whole machine, one after the other (see sequential()); "
                        "the method with --device cuda")
    p.add_argument("--side-by-side", action="store_true",
                   help="side by side, a core each, swapped (the default on the CPU): with --device cuda too")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where both sides train (default %(default)s); cuda trains on the GPU, sequentially "
                        "unless --turns or --side-by-side")
    p.add_argument("--seconds", type=float, default=None,
                   help="seconds of training per run before it is stopped (twice that in wall time in turns; "
                        "default 6, 1.5 with --quick)")
    p.add_argument("--slice", type=float, default=SLICE_S, help="seconds each side trains in turn (default %(default)s)")
    p.add_argument("--each-round", action="store_true",
                   help="print each round's ratio as it ends (on a machine lent for minutes, a run cut short "
                        "still says what it measured)")
    p.add_argument("--headless-child", nargs=2, metavar=("GRAPH", "RUN_DIR"), help=argparse.SUPPRESS)
    p.add_argument("--slicer", nargs=3, metavar=("SECONDS", "FIRST", "SECOND"), help=argparse.SUPPRESS)
    p.add_argument("--swapper", nargs=4, metavar=("SECONDS", "CPUS", "FIRST", "SECOND"), help=argparse.SUPPRESS)
    p.add_argument("--swap", type=float, default=SWAP_S,
                   help="side by side, the sides swap cores this often (default %(default)s s; 0: they swap each round)")
    args = p.parse_args(argv)
    if args.swapper:
        return swapper_child(float(args.swapper[0]), *args.swapper[1:])
    if args.headless_child:
        return headless_child(*args.headless_child)
    if args.slicer:
        return slicer_child(float(args.slicer[0]), *args.slicer[1:])
    if not hasattr(os, "kill") or not hasattr(__import__("signal"), "SIGSTOP"):
        print("this benchmark takes turns with SIGSTOP and SIGCONT: Linux or macOS only", file=sys.stderr)
        return 2
    if args.sequential + args.turns + args.side_by_side > 1:
        print("--sequential, --turns and --side-by-side are ways of pairing the sides: choose one", file=sys.stderr)
        return 2
    one_by_one = args.sequential or (args.device == "cuda" and not args.turns and not args.side_by_side)
    if one_by_one and (args.self_check or args.leave_core):
        print("--sequential (and --device cuda without --turns or --side-by-side) go without --self-check and "
              "--leave-core",
              file=sys.stderr)
        return 2
    side = not args.turns and not one_by_one
    if side and len(os.sched_getaffinity(0)) < 2:
        print("side by side needs two cores: use --turns on a machine with one", file=sys.stderr)
        return 2
    cores = sorted(os.sched_getaffinity(0))[:2] if side else []
    seconds = args.seconds or (1.5 if args.quick else 6.0)
    epochs = args.epochs or (4 if args.quick else 60)
    if args.self_check:
        name, graph = chosen(workloads(epochs, args.device), args.only)[0]
        tmp = Path(tempfile.mkdtemp(prefix="bench-gui-training-"))
        ratios = []
        for r in range(args.rounds or 8):
            if side:  # (the cores swap each round: a difference between them would show as alternating ratios)
                ratios.append(self_check_side_by_side(graph, tmp / f"r{r}", (cores[r % 2], cores[1 - r % 2]),
                                                      seconds, args.swap))
            else:
                ratios.append(self_check(graph, tmp / f"r{r}", args.slice, 2 * seconds, r % 2 == 0))
            if args.each_round:
                print(f"  {name}, headless against headless, round {r + 1}: ratio {ratios[-1]:.3f}", flush=True)
        how = (f"in turns of {args.slice} s" if not side else "side by side, a core each, "
               + (f"swapped every {args.swap} s" if args.swap else "swapped each round"))
        print(f"{name}, headless against headless {how}: median ratio "
              f"{statistics.median(ratios):.3f} (rounds {' '.join(f'{x:.3f}' for x in ratios)})")
        return 0
    if side:  # before the app's training process starts: it takes this affinity, and PyTorch one thread
        os.sched_setaffinity(0, {cores[0]})
    global _on_start  # every run of the app trains for ``seconds`` (see paired() for those in turns)
    _on_start = lambda job: threading.Timer(seconds, job.stop).start()
    if args.leave_core and side:
        print("--leave-core needs --turns: side by side, each side already trains with one thread on one core",
              file=sys.stderr)
        return 2
    if args.leave_core:  # before torch is imported here, in the app's training process and in the headless runs
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) - 1))
    rounds = args.rounds or (1 if args.quick else THROUGHPUT_ROUNDS)
    lag_rounds = args.lag_rounds or (1 if args.quick else LAG_ROUNDS)
    alone_runs = min(lag_rounds, ALONE_RUNS)

    window, tmp = main_window("bench-gui-training-")
    window.training.preview_dock.show()
    window.training.preview_dock.raise_()
    import torch  # imported, but no kernel runs in this (the UI) thread: see the module docstring

    print(f"torch {torch.__version__}, {torch.get_num_threads()} of {os.cpu_count()} cores training"
          f"{' (a core left for the window)' if args.leave_core else ''}; {rounds} round(s) of throughput, "
          f"{lag_rounds} of event-loop lag; probe every {PROBE_MS} ms; training on {args.device}; "
          + (f"side by side, a core each, swapped every {args.swap} s" if side and args.swap
             else "side by side, a core each, swapped each round" if side
             else "one side after the other, each alone" if one_by_one else f"in turns of {args.slice} s"))
    _note_result_times()
    worst_lag, worst_ratio = 0.0, float("inf")
    for name, graph in chosen(workloads(epochs, args.device), args.only):
        with_gui(window, graph, None)  # first-run costs (allocations, kernels) out of the measurement
        gui_rates, head_rates, ratios, lags, p99s, alone, turns, stalls = [], [], [], [], [], [], [], []
        for r in range(max(rounds, lag_rounds)):  # (the three kinds of run interleaved, not one after another)
            if r < lag_rounds:
                _, probe, _ = with_gui(window, graph, LagProbe())
                lags.append((probe.worst, probe.where()))
                p99s.append(probe.percentile(0.99))
                stalls.extend(late for _, late in probe.stalls)
            if r < alone_runs:
                _, _, work = with_gui(window, graph, None)  # (the probe's own wake-ups would count as the window's)
                alone.append(work)
            if r >= rounds:
                continue
            if one_by_one:
                gui, head, work = sequential(window, graph, tmp / f"head{r}", seconds, r % 2 == 0)
            elif side:
                gui, head, work = side_by_side(window, graph, tmp / f"head{r}", (cores[r % 2], cores[1 - r % 2]),
                                               seconds, args.swap)
            else:  # (which side has the first turn alternates: the first side came out about 1% slower)
                gui, head, work = paired(window, graph, tmp / f"head{r}", args.slice, 2 * seconds, r % 2 == 0)
            turns.append(work)
            gui_rates.append(gui)
            head_rates.append(head)
            ratios.append(gui / head)
            if args.each_round:
                print(f"  {name}, round {r + 1}: with GUI {gui:,.0f} ex/s, headless {head:,.0f} ex/s, "
                      f"ratio {gui / head:.3f}", flush=True)
        ratio = statistics.median(ratios)
        lag, where = max(lags)
        worst_lag, worst_ratio = max(worst_lag, lag), min(worst_ratio, ratio)
        print(f"{name:36s} headless {statistics.median(head_rates):9,.0f} ex/s  with GUI "
              f"{statistics.median(gui_rates):9,.0f} ex/s  ratio {_shown(ratio)} "
              f"{'OK' if ratio >= RATIO_TARGET else 'UNDER 0.98'} (rounds {' '.join(f'{x:.3f}' for x in ratios)})")
        print(f"{'':36s} event loop: worst delay {lag:.1f} ms "
              f"{'OK' if lag < LAG_TARGET_MS else 'OVER 50 ms'} ({where}; rounds "
              f"{' '.join(f'{x:.0f}' for x, _ in lags)} ms), 99th percentile {max(p99s):.1f} ms; the UI "
              f"thread used {statistics.median(w.ui_share for w in alone):.1%} of a core while it trained")
        print(f"{'':36s} the machine, while the probe ran: another process woke more than {WITNESS_LATE_MS} ms late "
              f"{len(stalls)} time(s)" + (f", at worst by {max(stalls):.0f} ms" if stalls else ""))
        paired_how = "side by side" if side else "one by one" if one_by_one else "in turns"
        print(f"{'':36s} per run, alone / {paired_how}: the UI thread's CPU "
              f"{statistics.median(w.ui_seconds for w in alone) * 1000:.0f} / "
              f"{statistics.median(w.ui_seconds for w in turns) * 1000:.0f} ms, the run's progress events "
              f"{statistics.median(w.step_events for w in alone):.0f} / {statistics.median(w.step_events for w in turns):.0f}, "
              f"the run's time delivering its events {statistics.median(w.event_share for w in alone):.2%} / "
              f"{statistics.median(w.event_share for w in turns):.2%}")
    plots = window.training.dock_widget.plots
    print(f"summary: worst event-loop delay {worst_lag:.1f} ms (target < {LAG_TARGET_MS:.0f}), worst throughput "
          f"ratio {_shown(worst_ratio)} (target >= {RATIO_TARGET}); plots drew for {plots.draw_seconds:.2f} s in all")
    window.doc.undo_stack.setClean()
    window.close()
    return 0 if worst_lag < LAG_TARGET_MS and worst_ratio >= RATIO_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
