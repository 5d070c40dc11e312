"""ONNX benchmarks (issue #5): export time of every template, and onnxruntime CPU inference latency
against PyTorch eager on the same inputs.

    .venv/bin/python benchmarks/bench_onnx.py [--quick] [--templates lenet5,resnet18] [--threads 2]

1. Every template in templates/ is exported at full size with the default exporter, verified as every
   export is (onnx.checker, onnxruntime against PyTorch at two batch sizes), then imported back
   (verified too). Printed per template: the exporter's time, the verification's, the import's, the
   file size, the exporter used and the largest difference found.
2. LeNet-5 and ResNet-18 (the templates, 1x32x32 and 3x224x224): one forward pass of the hand-written
   PyTorch model (benchmarks/reference_models.py), of the compiled graph, and of onnxruntime on the
   exported file, on the same inputs, at a small and a larger batch. Rounds are interleaved (the order
   rotates every round) and the medians of the per-round ratios to hand-written PyTorch are printed, so
   machine noise hits all three alike. PyTorch and onnxruntime get the same number of threads.

Ratios, not targets: the numbers show where ONNX serving stands against eager PyTorch on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import engine  # noqa: E402
from engine.export import export_graph  # noqa: E402
from engine.onnx_import import import_onnx  # noqa: E402


def export_times(names: list[str], folder: Path, threads: int) -> None:
    print(f"{'template':<20} {'params':>12} {'export s':>9} {'verify s':>9} {'import s':>9} {'file MiB':>9} "
          f"{'exporter':<9} {'max |diff|':>10}")
    for name in names:
        graph = engine.load_graph(ROOT / "templates" / f"{name}.dcnet")
        params = engine.infer_shapes(graph).total_params
        out = folder / f"{name}.onnx"
        try:
            r = export_graph(graph, out, threads=threads)
            t0 = time.perf_counter()
            imported = import_onnx(out, threads=threads)
            seconds_import = time.perf_counter() - t0
            diff = max(r.max_diff, imported.report.max_diff)
            print(f"{name:<20} {params:>12,} {r.seconds_export:>9.2f} {r.seconds_verify:>9.2f} "
                  f"{seconds_import:>9.2f} {r.file_bytes / 2**20:>9.1f} {r.exporter:<9} {diff:>10.2e}", flush=True)
        except Exception as exc:  # report and go on: one template must not hide the others' numbers
            print(f"{name:<20} {params:>12,} FAILED: {str(exc).splitlines()[0]}", flush=True)
        out.unlink(missing_ok=True)


def latency(name: str, reference: torch.nn.Module, shape: tuple, batches: list[int], rounds: int, folder: Path,
            threads: int) -> None:
    import onnxruntime as ort

    from engine.compiler import build

    graph = engine.load_graph(ROOT / "templates" / f"{name}.dcnet")
    compiled = build(graph, seed=0).model.eval()
    own = compiled.state_dict()  # reference_models: template key = the module path with '.' -> '_'
    reference.load_state_dict({k: own[f"{k.rsplit('.', 1)[0].replace('.', '_')}.{k.rsplit('.', 1)[1]}"]
                               for k in reference.state_dict()})
    reference.eval()
    path = folder / f"{name}.onnx"
    export_graph(graph, path, threads=threads)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    in_name = session.get_inputs()[0].name
    for batch in batches:
        x = torch.randn(batch, *shape)
        feed = {in_name: x.numpy()}
        with torch.inference_mode():
            want = reference(x)
            assert torch.allclose(compiled(x), want, atol=1e-4), "compiled graph differs from the reference"
            assert np.abs(session.run(None, feed)[0] - want.numpy()).max() <= 1e-4, "onnxruntime differs"
            runners = {"hand-written": lambda: reference(x), "compiled": lambda: compiled(x),
                       "onnxruntime": lambda: session.run(None, feed)}
            for run in runners.values():  # warm-up
                run()
            times: dict[str, list[float]] = {k: [] for k in runners}
            order = list(runners)
            for r in range(rounds):
                order = order[1:] + order[:1]
                for key in order:
                    t0 = time.perf_counter()
                    runners[key]()
                    times[key].append(time.perf_counter() - t0)
        ref = times["hand-written"]
        ratio = {k: statistics.median(t / h for t, h in zip(v, ref)) for k, v in times.items()}
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        print(f"{name:<10} batch {batch:>3}: hand-written {med['hand-written']:8.2f} ms | compiled "
              f"{med['compiled']:8.2f} ms ({ratio['compiled']:.2f}x) | onnxruntime {med['onnxruntime']:8.2f} ms "
              f"({ratio['onnxruntime']:.2f}x)", flush=True)
    path.unlink(missing_ok=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small templates only, fewer rounds")
    parser.add_argument("--templates", help="comma-separated template names (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="threads for PyTorch and onnxruntime")
    parser.add_argument("--skip-export", action="store_true", help="only the latency comparison")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = sorted(p.stem for p in (ROOT / "templates").glob("*.dcnet"))
    if args.templates:
        names = [n for n in args.templates.split(",") if n]
    elif args.quick:
        names = [n for n in names if engine.infer_shapes(engine.load_graph(ROOT / "templates" / f"{n}.dcnet"))
                 .total_params < 20_000_000]
    print(f"torch {torch.__version__}, threads {args.threads}")
    from reference_models import LeNet5, ResNet18

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.skip_export:
            export_times(names, folder, args.threads)
            print()
        rounds = 5 if args.quick else 20
        latency("lenet5", LeNet5(), (1, 32, 32), [1, 64], rounds * 4, folder, args.threads)
        latency("resnet18", ResNet18(), (3, 224, 224), [1] if args.quick else [1, 8], rounds, folder, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
