"""Graphs built in code, shared by the engine tests. Each function returns a fresh ``engine.Graph``.

Only the public graph API is used (``Graph.add_node`` and ``Graph.connect``), so these double as
examples of building networks without the GUI.
"""

from __future__ import annotations

import engine

LENET5_PARAMS = 61_706  # LeCun et al. 1998 as usually reproduced: 156 + 2,416 + 48,120 + 10,164 + 850


def chain(graph: engine.Graph, nodes) -> None:
    """Wire ``nodes`` one after another through their single 'out' -> 'in' ports."""
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a.id, "out", b.id, "in")


def mlp(in_features: int = 4, hidden: int = 8, classes: int = 3, with_loss: bool = True) -> engine.Graph:
    """Input (N, in_features) -> Linear -> ReLU -> Linear -> Output 'logits' (+ CrossEntropyLoss)."""
    g = engine.Graph("tiny MLP", "a two-layer perceptron")
    x = g.add_node("Input", "x", {"shape": [in_features]})
    h = g.add_node("Linear", "hidden", {"out_features": hidden})
    r = g.add_node("ReLU", "relu")
    y = g.add_node("Linear", "head", {"out_features": classes})
    out = g.add_node("Output", "logits")
    chain(g, [x, h, r, y, out])
    if with_loss:
        t = g.add_node("Target", "label")
        ce = g.add_node("CrossEntropyLoss", "ce")
        g.connect(out.id, "out", ce.id, "pred")
        g.connect(t.id, "out", ce.id, "target")
    return g


def lenet5(with_loss: bool = True) -> engine.Graph:
    """LeNet-5 as published: 1x32x32 input, tanh, average-pool subsampling, 61,706 parameters."""
    g = engine.Graph("LeNet-5", "LeCun et al. 1998")
    nodes = [
        g.add_node("Input", "image", {"shape": [1, 32, 32]}),
        g.add_node("Conv2d", "conv1", {"out_channels": 6, "kernel_size": 5}),
        g.add_node("Tanh", "tanh1"),
        g.add_node("AvgPool2d", "pool1", {"kernel_size": 2}),
        g.add_node("Conv2d", "conv2", {"out_channels": 16, "kernel_size": 5}),
        g.add_node("Tanh", "tanh2"),
        g.add_node("AvgPool2d", "pool2", {"kernel_size": 2}),
        g.add_node("Flatten", "flatten"),
        g.add_node("Linear", "fc1", {"out_features": 120}),
        g.add_node("Tanh", "tanh3"),
        g.add_node("Linear", "fc2", {"out_features": 84}),
        g.add_node("Tanh", "tanh4"),
        g.add_node("Linear", "fc3", {"out_features": 10}),
        g.add_node("Output", "logits"),
    ]
    chain(g, nodes)
    if with_loss:
        t = g.add_node("Target", "label")
        ce = g.add_node("CrossEntropyLoss", "ce")
        g.connect(nodes[-1].id, "out", ce.id, "pred")
        g.connect(t.id, "out", ce.id, "target")
    return g


def residual_block(channels: int = 4, size: int = 8) -> engine.Graph:
    """x -> conv-BN-ReLU-conv-BN, added to x, ReLU, global average pool, Linear -> Output."""
    g = engine.Graph("residual block")
    x = g.add_node("Input", "x", {"shape": [channels, size, size]})
    c1 = g.add_node("Conv2d", "conv1", {"out_channels": channels, "kernel_size": 3, "padding": 1, "bias": False})
    b1 = g.add_node("BatchNorm2d", "bn1")
    r1 = g.add_node("ReLU", "relu1")
    c2 = g.add_node("Conv2d", "conv2", {"out_channels": channels, "kernel_size": 3, "padding": 1, "bias": False})
    b2 = g.add_node("BatchNorm2d", "bn2")
    add = g.add_node("Add", "add")
    r2 = g.add_node("ReLU", "relu2")
    gap = g.add_node("GlobalAvgPool2d", "gap")
    fc = g.add_node("Linear", "fc", {"out_features": 3})
    out = g.add_node("Output", "logits")
    chain(g, [x, c1, b1, r1, c2, b2])
    g.connect(b2.id, "out", add.id, "in1")
    g.connect(x.id, "out", add.id, "in2")
    chain(g, [add, r2, gap, fc, out])
    return g


def inception_block(channels: int = 3, size: int = 8) -> engine.Graph:
    """Three parallel branches (1x1 conv, 3x3 conv, max-pool + 1x1 conv) concatenated on channels."""
    g = engine.Graph("inception block")
    x = g.add_node("Input", "x", {"shape": [channels, size, size]})
    b1 = g.add_node("Conv2d", "branch1x1", {"out_channels": 4, "kernel_size": 1})
    b3 = g.add_node("Conv2d", "branch3x3", {"out_channels": 5, "kernel_size": 3, "padding": 1})
    pool = g.add_node("MaxPool2d", "branch_pool", {"kernel_size": 3, "stride": 1, "padding": 1})
    bp = g.add_node("Conv2d", "pool_proj", {"out_channels": 2, "kernel_size": 1})
    cat = g.add_node("Concat", "concat", {"inputs": 3})
    relu = g.add_node("ReLU", "relu")
    out = g.add_node("Output", "features")
    g.connect(x.id, "out", b1.id, "in")
    g.connect(x.id, "out", b3.id, "in")
    chain(g, [x, pool, bp])
    g.connect(b1.id, "out", cat.id, "in1")
    g.connect(b3.id, "out", cat.id, "in2")
    g.connect(bp.id, "out", cat.id, "in3")
    chain(g, [cat, relu, out])
    return g


ALL = {"mlp": mlp, "lenet5": lenet5, "residual": residual_block, "inception": inception_block}
