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
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.compiler import build  # noqa: E402


# --------------------------------------------------------------------------- hand-written references
class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool1(torch.tanh(self.conv1(x)))
        x = self.pool2(torch.tanh(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's resnet18, written out."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layers(x)
        return self.fc(torch.flatten(x.mean(dim=(2, 3)), 1))


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


def resnet18_graph() -> engine.Graph | None:
    path = ROOT / "templates" / "resnet18.dcnet"
    if not path.exists():
        return None
    g = engine.load_graph(path)
    inp = next(n for n in g.nodes.values() if n.type == "Input")
    g.set_param(inp.id, "shape", [3, 32, 32])
    inf = engine.infer_shapes(g)
    out = next(n for n in g.nodes.values() if n.type == "Output")
    head = inf.nodes[out.id].sources["in"][0]
    g.set_param(head, "out_features", 10)
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


def _time(step, n, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / n


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
    args = parser.parse_args()
    device = torch.device(args.device)
    rounds, steps = (3, 3) if args.quick else (10, 10)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else f", {torch.get_num_threads()} threads"))

    editor_figures()
    lenet = lenet_graph()
    ratio("LeNet-5", lenet, LeNet5(), (1, 32, 32), 16, device, rounds, steps * 3)
    ratio("LeNet-5", lenet, LeNet5(), (1, 32, 32), 256, device, rounds, steps)
    resnet = resnet18_graph()
    if resnet is None:
        print("ResNet-18: templates/resnet18.dcnet not found; skipped")
    else:
        ratio("ResNet-18 (32x32, 10 classes)", resnet, ResNet18(), (3, 32, 32), 8, device, rounds, steps)
        ratio("ResNet-18 (32x32, 10 classes)", resnet, ResNet18(), (3, 32, 32), 128 if device.type == "cpu" else 512,
              device, rounds, max(2, steps // 3))
    if device.type == "cuda":
        ratio("LeNet-5", lenet, LeNet5(), (1, 32, 32), 512, device, rounds, steps, amp=True, channels_last=True)
        if resnet is not None:
            ratio("ResNet-18", resnet, ResNet18(), (3, 32, 32), 512, device, rounds, steps, amp=True,
                  channels_last=True)
        for name, g, shape in [("LeNet-5", lenet, (1, 32, 32)), ("ResNet-18", resnet, (3, 32, 32))]:
            if g is not None:
                print(f"torch.compile graph breaks, {name}: {graph_breaks(g, shape, device)}")


if __name__ == "__main__":
    main()
