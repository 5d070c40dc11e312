"""Engine-core benchmarks (issue #2): compiled graphs against hand-written PyTorch, measured side by side.

    .venv/bin/python benchmarks/bench_engine.py [--quick] [--device cpu|cuda]

Prints, for LeNet-5 and a CIFAR-size ResNet-18, the time of a training step (forward, backward, SGD step)
of the compiled graph divided by the same step of the equivalent hand-written nn.Module, at a small and a
large batch; interleaved rounds (the order alternates every round) and the median of per-round ratios, so
machine noise hits both sides alike. On CUDA it adds bf16 autocast + channels_last at batch 512 and checks
that torch.compile sees no graph breaks. Then the editor-facing figures: compiling a 1,000-node graph and
re-running shape inference on a 500-node graph after one edit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import engine  # noqa: E402
from engine.compiler import build  # noqa: E402


from reference_models import GoogLeNet, LeNet5, ResNet18, ResNet50  # noqa: E402  (hand-written references)


# --------------------------------------------------------------------------- graphs
def lenet_graph() -> engine.Graph:
    path = ROOT / "templates" / "lenet5.dcnet"
    if path.exists():
        return engine.load_graph(path)
    g = engine.Graph("LeNet-5")
    chain = [g.add_node("Input", "image", {"shape": [1, 32, 32]})]
    for t, p in [("Conv2d", {"out_channels": 6, "kernel_size": 5}), ("Tanh", None), ("AvgPool2d", None),
                 ("Conv2d", {"out_channels": 16, "kernel_size": 5}), ("Tanh", None), ("AvgPool2d", None),
                 ("Flatten", None), ("Linear", {"out_features": 120}), ("Tanh", None),
                 ("Linear", {"out_features": 84}), ("Tanh", None), ("Linear", {"out_features": 10}),
                 ("Output", None)]:
        chain.append(g.add_node(t, params=p))
    for a, b in zip(chain, chain[1:]):
        g.connect(a.id, "out", b.id, "in")
    return g


def template_at(name: str, shape: list[int], classes: int) -> engine.Graph | None:
    """A template with only its Input shape and number of classes changed (CIFAR-size figures)."""
    path = ROOT / "templates" / f"{name}.dcnet"
    if not path.exists():
        return None
    g = engine.load_graph(path)
    inp = next(n for n in g.nodes.values() if n.type == "Input")
    g.set_param(inp.id, "shape", shape)
    inf = engine.infer_shapes(g)
    out = next(n for n in g.nodes.values() if n.type == "Output")
    head = inf.nodes[out.id].sources["in"][0]
    g.set_param(head, "out_features", classes)
    return g


# --------------------------------------------------------------------------- measuring
def _step_fn(model, x, y, device, amp):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    ctx = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if amp else nullcontext()

    def step():
        with ctx:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _clock(device):
    """On a CPU with one torch thread, the thread's own CPU time: what the step costs, whatever else the
    machine is doing (wall time on a shared 2-core machine swings by 10-20%). Otherwise wall time."""
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time
    return time.perf_counter


def _time(step, n, device) -> float:
    clock = _clock(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = clock()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (clock() - t) / n


def ratio(name, graph, reference, shape, batch, device, rounds, steps, amp=False, channels_last=False):
    ours = build(graph).model.to(device)
    ref = reference.to(device)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    assert n_ours == n_ref, f"{name}: the graph has {n_ours} parameters, the reference {n_ref}"
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if channels_last:
        ours, ref, x = (t.to(memory_format=torch.channels_last) for t in (ours, ref, x))
    steps_o, steps_r = _step_fn(ours, x, y, device, amp), _step_fn(ref, x, y, device, amp)
    for _ in range(3):  # warm-up (allocator, cudnn autotune)
        steps_o(); steps_r()
    ratios, t_o, t_r = [], [], []
    for r in range(rounds):
        if r % 2:
            b, a = _time(steps_r, steps, device), _time(steps_o, steps, device)
        else:
            a, b = _time(steps_o, steps, device), _time(steps_r, steps, device)
        ratios.append(a / b)
        t_o.append(a)
        t_r.append(b)
    tag = f"{name} batch {batch}" + (" bf16+channels_last" if amp else "")
    print(f"{tag:<44} compiled {statistics.median(t_o) * 1e3:8.2f} ms  hand-written "
          f"{statistics.median(t_r) * 1e3:8.2f} ms  ratio {statistics.median(ratios):.3f}")
    return statistics.median(ratios)


def graph_breaks(graph, shape, device):
    model = build(graph).model.to(device)
    x = torch.randn(2, *shape, device=device)
    explanation = torch._dynamo.explain(model)(x)
    return explanation.graph_break_count


def chain_graph(n: int) -> engine.Graph:
    g = engine.Graph("chain")
    prev = g.add_node("Input", "x", {"shape": [64]})
    kinds = ["Linear", "ReLU", "BatchNorm1d", "Dropout"]
    for i in range(n - 2):
        t = kinds[i % len(kinds)]
        node = g.add_node(t, params={"out_features": 64} if t == "Linear" else None)
        g.connect(prev.id, "out", node.id, "in")
        prev = node
    out = g.add_node("Output", "y")
    g.connect(prev.id, "out", out.id, "in")
    return g


def editor_figures():
    g = chain_graph(1000)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        build(g, seed=len(times))
        times.append(time.perf_counter() - t)
    print(f"{'compile a 1,000-node graph':<44} {min(times) * 1e3:8.1f} ms (target < 1000 ms)")
    g = chain_graph(500)
    engine.infer_shapes(g)
    linear = [n.id for n in g.nodes.values() if n.type == "Linear"][60]
    times = []
    for k in range(10):
        g.set_param(linear, "out_features", 64 + (k % 2))
        t = time.perf_counter()
        engine.infer_shapes(g)
        times.append(time.perf_counter() - t)
    print(f"{'re-infer a 500-node graph after one edit':<44} {statistics.median(times) * 1e3:8.1f} ms "
          "(target < 50 ms)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--graph-breaks", action="store_true",
                        help="also count torch.compile graph breaks on the CPU (always on CUDA)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: steps are then timed in thread CPU time)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    rounds, steps = (3, 3) if args.quick else (10, 10)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else
             f", {torch.get_num_threads()} thread(s), timed in "
             f"{'thread CPU time' if _clock(device) is time.thread_time else 'wall time'}"))

    editor_figures()
    lenet = lenet_graph()
    ratio("LeNet-5", lenet, LeNet5(), (1, 32, 32), 16, device, rounds, steps * 3)
    ratio("LeNet-5", lenet, LeNet5(), (1, 32, 32), 256, device, rounds, steps)
    cnns = [("ResNet-18", "resnet18", ResNet18), ("ResNet-50", "resnet50", ResNet50),
            ("GoogLeNet", "googlenet", GoogLeNet)]
    big = 64 if device.type == "cpu" else 512
    graphs = {}
    for title, name, ref in cnns:
        g = template_at(name, [3, 32, 32], 10)
        if g is None:
            print(f"{title}: templates/{name}.dcnet not found; skipped")
            continue
        graphs[title] = g
        label = f"{title} (32x32, 10 classes)"
        ratio(label, g, ref(10), (3, 32, 32), 8, device, rounds, steps)
        ratio(label, g, ref(10), (3, 32, 32), big, device, rounds, max(2, steps // 3))
    if device.type == "cuda":
        ratio("LeNet-5", lenet, LeNet5(), (1, 32, 32), 512, device, rounds, steps, amp=True, channels_last=True)
        for title, name, ref in cnns:
            if title in graphs:
                ratio(title, graphs[title], ref(10), (3, 32, 32), 512, device, rounds, steps, amp=True,
                      channels_last=True)
    # torch.compile on every CNN template (the same trace on any device; printed on the GPU run and with
    # --graph-breaks): LeNet-5, the 32x32 variants above, and AlexNet and VGG-16 at their own 224x224.
    if device.type == "cuda" or args.graph_breaks:
        checks = [("LeNet-5", lenet, (1, 32, 32))] + [(t, g, (3, 32, 32)) for t, g in graphs.items()]
        for title, name in [("AlexNet", "alexnet"), ("VGG-16", "vgg16")]:
            path = ROOT / "templates" / f"{name}.dcnet"
            if path.exists():
                checks.append((title + " (224x224)", engine.load_graph(path), (3, 224, 224)))
        for title, g, shape in checks:
            print(f"torch.compile graph breaks, {title}: {graph_breaks(g, shape, device)}")


if __name__ == "__main__":
    main()
