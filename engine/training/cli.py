"""``deepcanvas train`` and ``deepcanvas datasets``.

    deepcanvas train FILE --out RUN_DIR [--dataset NAME|PATH] [--epochs N] [--batch-size N]
                     [--optimizer NAME] [--lr LR] [--device auto|cpu|cuda|mps] [--seed N]
                     [--option KEY=VALUE ...] [--set PATH=VALUE ...] [--human-error E] [--resume CKPT]
                     [--overwrite] [--find-lr] [--find-batch [LIMIT]]

The training settings come from the graph file's ``training`` section; flags override them. RUN_DIR
receives: ``metrics.jsonl`` (one JSON object per line: step losses and epoch metrics), ``best.pt`` and
``final.pt`` (checkpoints; load with ``torch.load(..., weights_only=True)``; ``--resume final.pt``
continues a run), ``report.json`` (train/dev/test metrics with ``test_accuracy`` at the top, the
bias/variance doctor, the dev set's most confident mistakes), ``run.json`` (graph file hash, seed,
data split, library versions, device: what reproduces the run) and ``graph.dcnet`` (the graph with the
exact settings used). Exit codes: 0 the run ended (finished, early-stopped or stopped), 1 the graph is
invalid or the run failed, 2 a file, setting or the command line is wrong.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a graph on a data set; writes metrics, checkpoints and a report",
                              description="Train a graph. Settings come from the graph file's training section; "
                                          "flags override them.")
    p.add_argument("file", help="the .dcnet graph")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="folder for metrics, checkpoints and reports")
    p.add_argument("--dataset", help="a built-in data set (see `deepcanvas datasets`) or a file/folder path")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a data set option, e.g. noise=0.3 or target=price (repeatable)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--batching", choices=("mini-batch", "batch", "stochastic"))
    p.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam or adamw")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--device", help="auto, cpu, cuda or mps")
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="settings",
                   help="any training setting by its path, e.g. schedule.name=cosine (repeatable)")
    p.add_argument("--human-error", type=float, help="human-level error for the bias/variance doctor, e.g. 0.01")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue a run from its final.pt or last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in RUN_DIR (without it, a folder holding a run is refused)")
    p.add_argument("--find-lr", action="store_true", help="run the learning-rate range test, print it and exit")
    p.add_argument("--find-batch", nargs="?", type=int, const=0, metavar="LIMIT",
                   help="find the largest batch whose training step fits in memory (measured on a GPU, "
                        "estimated elsewhere), up to LIMIT (default: the training set's size); print it and exit")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("datasets", help="list the built-in data sets and their options")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pairs(items: list[str], flag: str) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = _parse_value(value)
    return out


def _overrides(args) -> dict:
    over = _pairs(args.settings, "--set")
    for flag, path in (("dataset", "data.dataset"), ("epochs", "epochs"), ("batch_size", "batch_size"),
                       ("batching", "batching"), ("optimizer", "optimizer.name"), ("lr", "optimizer.lr"),
                       ("device", "device"), ("seed", "seed"), ("human_error", "human_error")):
        value = getattr(args, flag)
        if value is not None:
            over[path] = value
    options = _pairs(args.option, "--option")
    if options:
        over["data.options"] = options
    elif args.dataset is not None:
        over["data.options"] = {}  # options in the file belong to the file's data set
    return over


class _Progress:
    """A progress line on a terminal (one line per epoch otherwise)."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.width = 24

    def line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self.stream.flush()


# What a run writes in its folder; a folder holding any of them holds a run.
RUN_FILES = ("metrics.jsonl", "best.pt", "final.pt", "last.pt", "report.json", "run.json", "graph.dcnet")


def _make_callbacks(run_dir: Path, quiet: bool, resuming: bool):
    from engine.inspect import HealthMonitor

    from .trainer import Callback

    class MetricsLog(Callback):
        """metrics.jsonl: every step's loss and every epoch's metrics (a resumed run goes on with its
        run's file)."""

        def __init__(self, path: Path):
            self.file = open(path, "a" if resuming else "w", encoding="utf-8")

        def on_step(self, trainer, ev):
            lines = [json.dumps({"type": "step", "epoch": trainer.epoch_of(s), "step": s, "loss": loss})
                     for s, loss in zip(ev.steps, ev.losses)]
            self.file.write("\n".join(lines) + "\n")

        def on_epoch_end(self, trainer, ev):
            for m in ev.epochs:
                self.file.write(json.dumps({"type": "epoch", **m.to_json()}) + "\n")
            self.file.flush()

        def on_run_end(self, trainer, result):
            self.file.write(json.dumps({"type": "end", "status": result.status, "reason": result.reason,
                                        "epochs": result.epochs, "steps": result.steps,
                                        "seconds": result.seconds}) + "\n")
            self.file.close()

    class ProgressBar(Callback):
        def __init__(self):
            self.out = _Progress()
            self.total = 1
            self.steps_per_epoch = 1

        def on_run_start(self, trainer, ev):
            self.total, self.steps_per_epoch = ev.epochs, ev.steps_per_epoch
            self.out.line(f"training on {ev.device}: {ev.dataset}; split {ev.split_sizes}; "
                          f"{ev.parameters:,} parameters; batch {ev.batch_size}, {ev.steps_per_epoch} steps per epoch")
            for note in ev.notes:
                self.out.line(f"note: {note}")

        def on_step(self, trainer, ev):
            if not self.out.tty:
                return
            done = (ev.step - (ev.epoch - 1) * self.steps_per_epoch) / self.steps_per_epoch
            done = min(max(done, 0.0), 1.0)
            bar = "#" * int(done * self.out.width)
            acc = f" acc {ev.train_accuracy:.1%}" if ev.train_accuracy is not None else ""
            self.out.stream.write(f"\r\x1b[2Kepoch {ev.epoch}/{self.total} [{bar:<{self.out.width}}] "
                                  f"loss {ev.train_loss:.4f}{acc} {ev.examples_per_second:,.0f} ex/s")
            self.out.stream.flush()

        def on_epoch_end(self, trainer, ev):
            for m in ev.epochs:
                parts = [f"epoch {m.epoch}/{self.total}", f"loss {m.train_loss:.4f}"]
                if m.train_accuracy is not None:
                    parts.append(f"acc {m.train_accuracy:.1%}")
                if m.dev_loss is not None:
                    parts.append(f"dev loss {m.dev_loss:.4f}")
                if m.dev_accuracy is not None:
                    parts.append(f"dev acc {m.dev_accuracy:.1%}")
                if m.dev_mse is not None:
                    parts.append(f"dev mse {m.dev_mse:.4g}")
                parts.append(f"lr {m.lr:.3g}")
                parts.append(f"{m.seconds:.2f}s" + (" *" if m.best else ""))
                self.out.line("  ".join(parts))

        def on_checkpoint(self, trainer, ev):
            pass

        def on_state(self, trainer, ev):
            self.out.line(f"run {ev.state}")

        def on_run_failed(self, trainer, ev):
            if self.out.tty:  # (the command says why once the run has ended)
                self.out.stream.write("\r\x1b[2K")

    class NonFiniteLocator(HealthMonitor):
        """Where a NaN or infinity first appeared when a run fails with one, as the app marks it on the
        canvas: the health monitor's snapshots of the last weights with a finite loss (at most every
        second) replayed on a probe batch. Its other reports (gradient levels, dead units) are not
        needed here."""

        def __init__(self):
            super().__init__(self._keep)
            self.found = None

        def _keep(self, health):
            if health.nonfinite is not None:
                self.found = health.nonfinite

        def on_epoch_end(self, trainer, event):
            pass

        def on_run_end(self, trainer, result):
            pass

    callbacks = [MetricsLog(run_dir / "metrics.jsonl"), NonFiniteLocator()]
    if not quiet:
        callbacks.append(ProgressBar())
    return callbacks


def cmd_train(args) -> int:
    started = time.perf_counter()
    from .. import save_graph
    from ..fileio import GraphFileError, load_graph, write_atomic
    from ..inference import GraphError
    from .config import ConfigError, TrainingConfig
    from .data import DataError
    from .doctor import format_diagnosis
    from .modes import SetupError

    def fail(message: str, code: int = EXIT_USAGE) -> int:
        print(f"deepcanvas train: {message}", file=sys.stderr)
        return code

    try:
        graph = load_graph(args.file)
    except GraphFileError as exc:
        return fail(str(exc))
    try:
        config = TrainingConfig.from_graph(graph).with_overrides(_overrides(args))
    except (ConfigError, ValueError) as exc:
        return fail(f"{args.file}: {exc}")
    if args.resume is not None and not Path(args.resume).is_file():
        return fail(f"{args.resume}: no such checkpoint (give the final.pt or last.pt of an earlier run)")
    run_dir = Path(args.out)
    finding = args.find_lr or args.find_batch is not None
    held = [name for name in RUN_FILES if (run_dir / name).exists()] if run_dir.is_dir() else []
    if args.resume is not None and args.overwrite:
        return fail("--resume continues a run and --overwrite starts a new one in its place: give one of them")
    if held and not finding and args.resume is None and not args.overwrite:
        return fail(f"{run_dir} already holds a run ({', '.join(held)}): give another --out, --resume its "
                    "final.pt to continue it, or --overwrite to replace it")
    if held and not finding and args.resume is not None and Path(args.resume).resolve().parent != run_dir.resolve():
        return fail(f"{run_dir} holds another run ({', '.join(held)}) than the one {args.resume} continues: give "
                    f"--out {Path(args.resume).parent} (its own folder) or a new folder")

    from .trainer import Trainer

    # What is loaded now (the modules: over 200,000 objects) lives as long as the process: out of the
    # garbage collector's sight, a full collection during the run does not walk it (140-190 ms each;
    # the app's training process does the same: see engine.training.remote). Only where the command is
    # the whole process: called in another program's (a test's), it would freeze that one's heap.
    if getattr(args, "whole_process", False):
        import gc
        gc.freeze()
    try:
        trainer = Trainer(graph, config, run_dir=None if finding else run_dir)
        if args.resume is not None:  # checked before anything in the run folder is touched
            resumed = trainer.check_resumable(args.resume)
            if resumed["epoch"] >= config.epochs:
                return fail(f"{args.resume}: the run has trained {resumed['epoch']} epochs already; give --epochs "
                            f"above {resumed['epoch']} to continue it")
    except GraphError as exc:
        return fail(f"{args.file}: {exc}", EXIT_FAILED)
    except DataError as exc:  # (it names the data set or file; the graph's path first would blame the graph)
        return fail(str(exc))
    except (ConfigError, SetupError) as exc:
        return fail(f"{args.file}: {exc}")
    if not finding:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return fail(f"{run_dir}: cannot create the run folder ({exc.strerror})")
        callbacks = _make_callbacks(run_dir, args.quiet, resuming=args.resume is not None)
        for callback in callbacks:
            trainer.add_callback(callback)
        if args.overwrite:  # what the old run left and this one will not write again
            for name in ("best.pt", "final.pt", "last.pt"):
                (run_dir / name).unlink(missing_ok=True)
            if (run_dir / "samples").is_dir():
                import shutil
                shutil.rmtree(run_dir / "samples")

    if args.find_lr:
        from .finders import find_lr

        res = find_lr(trainer)
        print(f"learning-rate range test ({len(res.lrs)} steps): suggested learning rate {res.suggestion:.3g}")
        for lr, loss in zip(res.lrs[::max(1, len(res.lrs) // 20)], res.losses[::max(1, len(res.lrs) // 20)]):
            print(f"  lr {lr:10.3g}  loss {loss:.4f}")
        return EXIT_OK

    if args.find_batch is not None:
        from .finders import find_max_batch
        from .trainer import device_description

        if args.find_batch < 0:
            return fail(f"--find-batch {args.find_batch}: the limit must be a number of examples "
                        "(0 or none: no limit)")
        res = find_max_batch(trainer, limit=args.find_batch or None)
        how = "measured with real training steps" if res.method == "measured" else \
            "estimated from the activation sizes against half the free memory"
        print(f"largest batch that fits on {device_description(trainer.device)}: {res.batch_size} "
              f"({how}; {res.limit})")
        print("  tried: " + ", ".join(f"{b} {'fits' if ok else 'does not fit'}" for b, ok in res.tried))
        return EXIT_OK

    # The graph exactly as trained, so the run can be repeated from its folder alone.
    trained = graph.copy()
    config.to_graph(trained)
    save_graph(trained, run_dir / "graph.dcnet")
    try:
        result = trainer.fit(resume_from=args.resume)
    except SetupError as exc:  # pragma: no cover - fit reports failures in its result
        return fail(str(exc))
    report = {"status": result.status, "reason": result.reason}
    if result.status == "failed" and callbacks[1].found is not None:
        report["nonfinite"] = callbacks[1].found.to_json()
    if result.status != "failed":  # a failed run's weights may be NaN: best.pt holds the last good ones
        report.update(trainer.report(human_error=args.human_error))
    report["run"] = result.to_json()
    write_atomic(run_dir / "report.json", json.dumps(report, indent=2, default=float) + "\n")
    record = trainer.run_record(graph_file=args.file)
    record["command"] = ["deepcanvas", "train", *sys.argv[2:]] if sys.argv[1:2] == ["train"] else None
    record["wall_seconds"] = time.perf_counter() - started
    write_atomic(run_dir / "run.json", json.dumps(record, indent=2, default=str) + "\n")

    if result.status == "failed":
        found = callbacks[1].found
        where = f"\n  the first non-finite value: {found.message}" if found is not None else ""
        print(f"deepcanvas train: the run failed: {result.reason}{where}", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        why = f" ({result.reason})" if result.reason else ""
        print(f"{result.status}: {result.epochs} epochs, {result.steps} steps in {result.seconds:.1f}s{why}")
        if report.get("test_accuracy") is not None:
            print(f"test accuracy: {report['test_accuracy']:.2%}")
        if report.get("test_mse") is not None:
            print(f"test MSE: {report['test_mse']:.4g}")
        if report.get("doctor"):
            from .doctor import Diagnosis
            print(format_diagnosis(Diagnosis(**report["doctor"])))
        for callback_error in trainer.callback_errors[:3]:
            print(f"warning: {callback_error}", file=sys.stderr)
        print(f"wrote {run_dir}/: metrics.jsonl, best.pt, final.pt, report.json, run.json, graph.dcnet")
    return EXIT_OK


def cmd_datasets(args) -> int:
    from .datasets import BUILTINS

    if args.json:
        print(json.dumps([{"name": b.name, "doc": b.doc, "options": b.options, "option_docs": b.option_docs}
                          for b in BUILTINS.values()], indent=2))
        return EXIT_OK
    for b in BUILTINS.values():
        print(f"{b.name:<12} {b.doc}")
        for key, default in b.options.items():
            print(f"{'':<14}{key}={default!r}: {b.option_docs[key]}")
    print("files: a CSV (option target=COLUMN), .npy/.npz, a folder of class folders of images, MNIST IDX files, "
          "a CIFAR-10 python batches folder")
    return EXIT_OK
