"""The GPU options on a real CUDA device (issues #2, #4, #7). Skipped where torch sees no GPU (CI runs on
machines without one); on a GPU machine:

    python -m pytest -v tests/test_cuda.py

What the CPU tests cannot show: the data on the device whole, no host round trip per step, bf16/fp16
autocast (fp16 with loss scaling) and channels_last learning as fp32 does, torch.compile (inductor on
CUDA), the batch finder measuring with real steps and out-of-memory errors, every template trained by the
CLI on the GPU, checkpoints written on the GPU read back on a CPU, and the app's training process using the
GPU while the window's process never starts CUDA.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.templates import load_template, template_names
from engine.training import Callback, Trainer, TrainingConfig
from engine.training.finders import find_max_batch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
ROOT = Path(__file__).resolve().parent.parent


NO_AUGMENTATION = {"augmentation.rotation": 0.0, "augmentation.crop_padding": 0}  # (the template rotates and crops)


def lenet(**over) -> tuple[Trainer, object]:
    g = load_template("lenet5")
    cfg = TrainingConfig.from_graph(g).with_overrides({"device": "cuda", **over})
    return Trainer(g, cfg), cfg


def test_auto_picks_cuda_and_the_data_sits_on_it_whole():
    from engine.device import detect

    info = detect()
    assert info.kind == "cuda" and info.memory and info.memory > 1 << 30, info
    g = load_template("lenet5")
    tr = Trainer(g, TrainingConfig.from_graph(g).with_overrides({"device": "auto", "epochs": 1}))
    assert tr.device.type == "cuda"
    assert all(tr.splits[s].x.is_cuda and tr.splits[s].y.is_cuda for s in ("train", "dev", "test"))
    assert next(tr.model.parameters()).is_cuda


@pytest.mark.parametrize("precision, channels_last", [("fp32", False), ("bf16", True), ("fp16", True)])
def test_lenet_reaches_97_percent_on_cuda_in_every_precision(precision, channels_last, tmp_path):
    """The template's own settings (30 epochs, augmentation), on the GPU: the acceptance bar of #4."""
    g = load_template("lenet5")
    cfg = TrainingConfig.from_graph(g).with_overrides({"device": "cuda", "precision": precision,
                                                       "channels_last": channels_last})
    tr = Trainer(g, cfg, run_dir=tmp_path)
    result = tr.fit()
    assert result.status == "finished", result.reason
    report = tr.report()
    print(f"{precision} channels_last={channels_last}: test accuracy {report['test_accuracy']:.4f}, "
          f"{result.seconds:.1f} s")
    assert report["test_accuracy"] >= 0.97
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())  # master weights stay fp32
    assert (tr.scaler is not None) == (precision == "fp16")
    if channels_last:
        assert tr.model.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    state = torch.load(tmp_path / "final.pt", map_location="cpu", weights_only=True)  # read on a CPU
    assert all(not t.is_cuda for t in state["model"].values())


def test_no_host_round_trip_per_step():
    """Losses and right answers stay on the device and are read every log_every steps (and when an event
    is due): far fewer synchronizing calls than steps, with a subscriber taking every step like the app."""
    tr, _ = lenet(epochs=2, batch_size=8, **NO_AUGMENTATION)

    class Steps(Callback):
        def on_step(self, trainer, event):
            pass

    tr.add_callback(Steps())
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = tr.fit()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    where: dict[str, int] = {}
    for w in syncs:
        key = f"{Path(w.filename).name}:{w.lineno}"
        where[key] = where.get(key, 0) + 1
    print(f"{result.steps} steps, {len(syncs)} synchronizing calls: {sorted(where.items(), key=lambda kv: -kv[1])}")
    assert result.status == "finished", result.reason
    assert len(syncs) <= result.steps / 4, where


def test_augmentation_runs_on_the_gpu():
    tr, _ = lenet(epochs=1, **{"augmentation.rotation": 10.0, "augmentation.noise": 0.05})
    assert tr.augment is not None
    x = tr.splits["train"].x[:16]
    out = tr.augment(x)
    assert out.is_cuda and out.shape == x.shape and not torch.equal(out, x)
    assert tr.fit().status == "finished"


def test_torch_compile_on_cuda_trains_as_eager_does(tmp_path):
    eager, _ = lenet(epochs=3, **NO_AUGMENTATION)
    compiled, _ = lenet(epochs=3, compile=True, **NO_AUGMENTATION)
    compiled.run_dir = tmp_path
    r_e, r_c = eager.fit(), compiled.fit()
    assert r_c.status == "finished", r_c.reason
    assert compiled._compiled_active, compiled.notes  # no fallback to eager
    assert not any("torch.compile" in n for n in compiled.notes), compiled.notes
    a, b = r_e.history[-1], r_c.history[-1]
    assert b["dev_accuracy"] == pytest.approx(a["dev_accuracy"], abs=0.03)
    keys = torch.load(tmp_path / "final.pt", map_location="cpu", weights_only=True)["model"].keys()
    assert not any("_orig_mod" in k for k in keys)


def test_the_batch_finder_measures_on_cuda_and_running_out_of_memory_is_named(tmp_path):
    """Within a memory cap of 3 GiB above what the run already holds: the finder measures real steps and
    stops where they no longer fit; a run with twice that batch fails naming training.batch_size, frees
    its memory, and the next run in the same process trains at the found batch."""
    g = load_template("resnet18")
    cfg = TrainingConfig.from_graph(g).with_overrides({"device": "cuda", "data.dataset": "digits", "epochs": 1})
    tr = Trainer(g, cfg)
    total = torch.cuda.get_device_properties(0).total_memory
    cap = torch.cuda.memory_reserved() + (3 << 30)
    torch.cuda.set_per_process_memory_fraction(cap / total)
    try:
        res = find_max_batch(tr, limit=4096)
        print(f"batch finder: {res.batch_size} ({res.method}; {res.limit}); tried {res.tried}")
        assert res.method == "measured" and 1 < res.batch_size < 4096
        assert any(not ok for _, ok in res.tried)
        big = Trainer(g, cfg.with_overrides({"batch_size": min(1079, res.batch_size * 2)}))
        result = big.fit()
        print(result.reason)
        assert result.status == "failed" and "ran out of memory in a training step (epoch 1)" in result.reason
        assert "training.batch_size" in result.reason and not result.traceback
        del big, tr, result
        gc.collect()  # (a trainer and its callbacks refer to each other)
        torch.cuda.empty_cache()
        ok = Trainer(g, cfg.with_overrides({"batch_size": max(1, res.batch_size // 2)}))
        assert ok.fit().status == "finished"
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


IMAGE_TEMPLATES = {"lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "dcgan", "vae",
                   "siamese_triplet"}


@pytest.mark.parametrize("name", template_names())
def test_every_template_trains_on_cuda_from_the_cli(name, tmp_path):
    """`deepcanvas train` on each template, one epoch on the GPU, with the GPU options an image network
    takes (bf16 autocast and channels_last)."""
    args = ["train", str(ROOT / "templates" / f"{name}.dcnet"), "--out", str(tmp_path / "run"), "--epochs", "1",
            "--device", "cuda", "--quiet"]
    if name in IMAGE_TEMPLATES:
        args += ["--set", "precision=bf16", "--set", "channels_last=true"]
    assert main(args) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    print(name, report["status"], {k: report.get(k) for k in ("test_accuracy", "test_mse")},
          record.get("device"), round(record.get("wall_seconds", 0), 1))
    assert report["status"] == "finished"
    assert "cuda" in json.dumps(record.get("device", ""))
    state = torch.load(tmp_path / "run" / "final.pt", map_location="cpu", weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_a_gpu_trained_checkpoint_exports_to_onnx_on_the_cpu(tmp_path):
    g = load_template("lenet5")
    tr = Trainer(g, TrainingConfig.from_graph(g).with_overrides({"device": "cuda", "epochs": 2}), run_dir=tmp_path)
    assert tr.fit().status == "finished"
    out = tmp_path / "lenet.onnx"
    assert main(["export", str(ROOT / "templates" / "lenet5.dcnet"), "--onnx", str(out),
                 "--weights", str(tmp_path / "final.pt")]) == 0
    assert out.is_file() and out.stat().st_size > 100_000


REMOTE_SCRIPT = r"""
import json, sys, time, threading
import torch
from engine.templates import load_template
from engine.training import TrainingConfig
from engine.training.remote import RemoteJob, TrainingProcess

proc = TrainingProcess()
assert proc.wait_ready(180), "the training process did not start"
out = {"device": proc.info["device"].kind, "name": proc.info["device"].name}

def cuda_tensors(obj, depth=0):
    # every tensor an event carries to the window must be on the CPU
    if depth > 6:
        return 0
    if isinstance(obj, torch.Tensor):
        return int(obj.device.type != "cpu")
    if isinstance(obj, dict):
        return sum(cuda_tensors(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(cuda_tensors(v, depth + 1) for v in obj)
    if hasattr(obj, "__dict__"):
        return sum(cuda_tensors(v, depth + 1) for v in vars(obj).values())
    return 0

def run(name, epochs, preview, run_dir):
    events = []
    lock = threading.Lock()
    def put(kind, payload):
        with lock:
            events.append((kind, payload))
    g = load_template(name)
    cfg = TrainingConfig.from_graph(g).with_overrides({"epochs": epochs})
    job = RemoteJob(g, cfg, put, run_dir=run_dir, want_preview=preview, process=proc)
    job.start()
    time.sleep(1.0)
    job.pace(0.25, 0.5)  # (as the window does when its interval changes)
    assert job.wait(300), name + " did not end"
    kinds = [k for k, _ in events]
    result = [p for k, p in events if k == "result"][0]
    start = [p for k, p in events if k == "start"][0]
    return {"status": result.status, "reason": result.reason,
            "run_device": str(getattr(start, "device", start)),
            "kinds": {k: kinds.count(k) for k in set(kinds)},
            "cuda_tensors_sent": sum(cuda_tensors(p) for _, p in events)}

out["lenet5"] = run("lenet5", 3, ("conv1", 0), sys.argv[1] + "/lenet5")
out["dcgan"] = run("dcgan", 2, None, sys.argv[1] + "/dcgan")
out["window_process_started_cuda"] = torch.cuda.is_initialized()
print(json.dumps(out))
proc.close()
"""


def test_the_apps_training_process_uses_the_gpu_and_the_window_process_never_starts_cuda(tmp_path):
    """The window's side of a GPU run: LeNet-5 with the live preview following conv1 and the run paced as
    the window paces it, then a DCGAN with its samples; every event reaches the window with CPU tensors
    only, and the window's process never initialises CUDA."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", REMOTE_SCRIPT, str(tmp_path / "run")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    print(out)
    assert out["device"] == "cuda", out
    expected = {"lenet5": ("step", "epochs", "preview", "health", "report"), "dcgan": ("step", "epochs", "samples")}
    for name, kinds in expected.items():
        run = out[name]
        assert run["status"] == "finished" and "cuda" in run["run_device"], (name, run)
        assert all(run["kinds"].get(k, 0) > 0 for k in kinds), (name, run["kinds"])
        assert run["cuda_tensors_sent"] == 0, (name, run)
    assert out["window_process_started_cuda"] is False
