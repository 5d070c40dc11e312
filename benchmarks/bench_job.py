"""What the app's way of running a training job costs the run, without the window (issue #7).

    .venv/bin/python benchmarks/bench_job.py [--device cpu|cuda] [--only lenet|mlp] [--rounds N]
                                             [--seconds S] [--modes app,bare,no-health,no-preview,no-events]

The app trains through ``engine.training.job.TrainingJob``: its subscribers send a progress event ten
times a second (each reads the layers' gradient norms, on a GPU a wait for the device), pickle every
event for the pipe to the window, run the live preview of a layer at epoch ends and the health monitor
(gradient levels, dead-unit inspections, weight snapshots for locating a NaN). ``deepcanvas train`` runs
the bare ``Trainer``. This benchmark trains the workloads of bench_gui_training.py (LeNet-5 on the 32x32
digits at batch 64; an MLP on the digits, one example per step) both ways in one process, interleaved
(the order alternates each round), each run stopped ``--seconds`` after it starts training, as the Stop
button does, and prints the median of the per-round ratios (job / bare) with the share of the job's
training time its subscribers took (``RunResult.event_seconds``).

``--modes`` adds runs of the job without a part of it (``no-health``, ``no-preview``; ``no-events``: no
progress events, so no gradient norms either) to show what each part costs: the first mode is the
baseline, ``bare`` by default. Where bench_gui_training.py finds the window's run slower than the
headless one on a GPU (where the window itself draws on a core of its own), this says whether the
training process's own work is the cause.

Runs one after the other in one process share the machine's changes of speed less well than the GUI
benchmark's pairings: on the 2-core virtual machine its rounds scatter by 10-20%; read the median of
many rounds, and the event share, which the noise does not touch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MODES = ("bare", "app", "no-health", "no-preview", "no-events")


def _first_layer(graph) -> str:
    return next(nid for nid, node in graph.nodes.items() if node.type in ("Conv2d", "Linear"))


def run_bare(graph, config, seconds: float, run_dir: Path) -> tuple[float, float]:
    """(examples per second of training, share of it in subscribers) of the bare trainer, stopped
    ``seconds`` after its training starts."""
    from engine.training import Callback, Trainer

    class StopLater(Callback):  # (only the start: the trainer then sends no progress events)
        def on_run_start(self, trainer, event):
            threading.Timer(seconds, trainer.stop).start()

    trainer = Trainer(graph, config, callbacks=[StopLater()], run_dir=run_dir)
    result = trainer.fit()
    assert result.status in ("finished", "stopped"), result.reason
    return result.steps * trainer.batch_size / result.seconds, result.event_seconds / result.seconds


def run_job(graph, config, seconds: float, run_dir: Path, mode: str = "app") -> tuple[float, float]:
    """The same for the app's job: its events pickled as the training process pickles them (and written
    to the null device by the same sender thread), the live preview following the first layer, the
    health monitor on, progress events at the app's pace; ``mode`` leaves a part out."""
    import os

    from engine.training.job import EVENT_INTERVAL, PREVIEW_EVERY, TrainingJob
    from engine.training.remote import _Sender

    sink = open(os.devnull, "wb")
    sender = _Sender(sink)
    got: dict = {}
    layer = _first_layer(graph)

    def put(kind, payload):
        if kind == "start":
            got["batch"] = payload.batch_size
            threading.Timer(seconds, job.stop).start()
        elif kind == "result":
            got["result"] = payload
        elif kind == "error":
            got["error"] = payload
        sender.send((1, kind, payload))

    job = TrainingJob(graph, config, put, str(run_dir),
                      want_preview=(lambda: None) if mode == "no-preview" else (lambda: (layer, 0)),
                      health=mode != "no-health",
                      event_interval=1e9 if mode == "no-events" else EVENT_INTERVAL, preview_every=PREVIEW_EVERY)
    try:
        job.run()
    finally:
        sender.close()
        sink.close()
    if "result" not in got:
        raise RuntimeError(got.get("error", "the job ended without a result"))
    result = got["result"]
    return result.steps * got["batch"] / result.seconds, result.event_seconds / result.seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--only", choices=("lenet", "mlp"), default=None)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0, help="seconds of training per run (default %(default)s)")
    p.add_argument("--modes", default="bare,app",
                   help=f"comma-separated, the first the baseline (of {', '.join(MODES)}; default %(default)s)")
    args = p.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if len(modes) < 2 or any(m not in MODES for m in modes):
        p.error(f"--modes: two or more of {', '.join(MODES)}")

    import tempfile

    import torch

    from bench_gui_training import chosen, workloads
    from engine.training import TrainingConfig

    tmp = Path(tempfile.mkdtemp(prefix="bench-job-"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); training on {args.device}; "
          f"{args.rounds} round(s) of {args.seconds:g} s per mode, one after the other, the order alternating")
    for name, graph in chosen(workloads(100_000, args.device), args.only):
        config = TrainingConfig.from_graph(graph)

        def once(mode: str, tag: str) -> tuple[float, float]:
            where = tmp / f"{name[:5]}-{mode}-{tag}"
            if mode == "bare":
                return run_bare(graph, config, args.seconds, where)
            return run_job(graph, config, args.seconds, where, mode)

        for mode in modes:  # first-run costs (allocations, kernels, imports) out of the measurement
            once(mode, "warm")
        rates = {m: [] for m in modes}
        shares = {m: [] for m in modes}
        for r in range(args.rounds):
            for mode in (modes if r % 2 == 0 else modes[::-1]):
                rate, share = once(mode, str(r))
                rates[mode].append(rate)
                shares[mode].append(share)
        base = modes[0]
        print(f"{name}: {base} {statistics.median(rates[base]):,.0f} ex/s")
        for mode in modes[1:]:
            ratios = [a / b for a, b in zip(rates[mode], rates[base])]
            print(f"  {mode:10s} {statistics.median(rates[mode]):9,.0f} ex/s  ratio {statistics.median(ratios):.3f} "
                  f"(rounds {' '.join(f'{x:.3f}' for x in ratios)}); subscribers "
                  f"{statistics.median(shares[mode]):.2%} of its training time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
