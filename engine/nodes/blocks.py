"""Composite blocks: nodes that stand for a whole sub-graph of primitive nodes.

``Composite`` instantiates a sub-graph the user made (stored in the graph file under "composites").
The built-in blocks generate their sub-graph from their params, exactly as the textbook draws them; the
user can expand one into its primitive nodes and edit it (engine.composites.expand). Shape inference,
costs and code all come from the sub-graph, so a block can never disagree with its expansion.
"""

from __future__ import annotations

from ..params import Bool, Int, Text
from ..spec import NodeSpec


def _user_definition(p, composites):
    return composites.get(p["definition"])


Composite = NodeSpec(
    type="Composite", category="Blocks",
    doc="An instance of a composite defined in this file: its Inputs and Outputs become the ports.",
    inputs=(), outputs=(),
    params=(Text("definition", "", doc="the name of the composite (a sub-graph saved in this file)"),),
    subgraph=_user_definition, label_prefix="block",
)


class _Builder:
    """A few lines to draw a sub-graph in code: chains of nodes, each wired from the previous one."""

    def __init__(self, name: str, description: str = ""):
        from ..graph import Graph  # the document module imports this registry: import it late
        self.g = Graph(name, description)
        self.y = 0

    def node(self, type_name, label, params=None, src=None, port="in", x=0):
        n = self.g.add_node(type_name, label, params, pos=(x, self.y))
        self.y += 80
        if src is not None:
            self.g.connect(src.id, "out", n.id, port)
        return n

    def chain(self, src, steps, x=0):
        for type_name, label, params in steps:
            src = self.node(type_name, label, params, src, x=x)
        return src


def _residual(p, composites):
    c, s = p["out_channels"], p["stride"]
    b = _Builder("ResidualBlock", "conv3x3-BN-ReLU-conv3x3-BN plus the shortcut, then ReLU (He et al., 2015)")
    x = b.node("Input", "x", {"shape": [c, 16, 16]})
    main = b.chain(x, [
        ("Conv2d", "conv1", {"out_channels": c, "kernel_size": 3, "stride": s, "padding": 1, "bias": False}),
        ("BatchNorm2d", "bn1", None), ("ReLU", "relu1", None),
        ("Conv2d", "conv2", {"out_channels": c, "kernel_size": 3, "padding": 1, "bias": False}),
        ("BatchNorm2d", "bn2", None)])
    shortcut = x
    if p["projection"]:
        b.y = 160
        shortcut = b.chain(x, [
            ("Conv2d", "downsample_conv", {"out_channels": c, "kernel_size": 1, "stride": s, "bias": False}),
            ("BatchNorm2d", "downsample_bn", None)], x=260)
    b.y = 480
    add = b.node("Add", "add", None, main, "in1")
    b.g.connect(shortcut.id, "out", add.id, "in2")
    b.chain(add, [("ReLU", "relu2", None), ("Output", "out", None)])
    return b.g


ResidualBlock = NodeSpec(
    type="ResidualBlock", category="Blocks",
    doc="Basic residual block: two 3x3 conv-BN layers plus an identity (or 1x1 projection) shortcut.",
    inputs=(), outputs=(),
    params=(
        Int("out_channels", 64, min=1, doc="channels produced"),
        Int("stride", 1, min=1, max=4, doc="2 halves H and W (the shortcut then needs a projection)"),
        Bool("projection", False, doc="1x1 conv + BN on the shortcut, for a change of channels or stride"),
    ),
    subgraph=_residual, label_prefix="res",
)

def _conv_bn_relu(b, src, prefix, cout, k, stride=1, pad=0, bn=True, x=0, eps=1e-5, relu=True):
    """conv (no bias when a BN follows) -> BN -> ReLU, the unit every modern CNN block repeats."""
    steps = [("Conv2d", f"{prefix}conv" if bn else prefix,
              {"out_channels": cout, "kernel_size": k, "stride": stride, "padding": pad, "bias": not bn})]
    if bn:
        steps.append(("BatchNorm2d", f"{prefix}bn", {"eps": eps} if eps != 1e-5 else None))
    if relu:
        steps.append(("ReLU", f"{prefix}relu", None))
    return b.chain(src, steps, x=x)


def _bottleneck(p, composites):
    w, c, s = p["width"], p["out_channels"], p["stride"]
    b = _Builder("BottleneckBlock", "1x1 reduce - 3x3 (stride here, as torchvision) - 1x1 expand, each with BN, "
                 "plus the shortcut, then ReLU (He et al., 2015)")
    x = b.node("Input", "x", {"shape": [c, 16, 16]})
    main = b.chain(x, [
        ("Conv2d", "conv1", {"out_channels": w, "kernel_size": 1, "bias": False}),
        ("BatchNorm2d", "bn1", None), ("ReLU", "relu1", None),
        ("Conv2d", "conv2", {"out_channels": w, "kernel_size": 3, "stride": s, "padding": 1, "bias": False}),
        ("BatchNorm2d", "bn2", None), ("ReLU", "relu2", None),
        ("Conv2d", "conv3", {"out_channels": c, "kernel_size": 1, "bias": False}),
        ("BatchNorm2d", "bn3", None)])
    shortcut = x
    if p["projection"]:
        b.y = 160
        shortcut = b.chain(x, [
            ("Conv2d", "downsample_conv", {"out_channels": c, "kernel_size": 1, "stride": s, "bias": False}),
            ("BatchNorm2d", "downsample_bn", None)], x=260)
    b.y = 720
    add = b.node("Add", "add", None, main, "in1")
    b.g.connect(shortcut.id, "out", add.id, "in2")
    b.chain(add, [("ReLU", "relu3", None), ("Output", "out", None)])
    return b.g


BottleneckBlock = NodeSpec(
    type="BottleneckBlock", category="Blocks",
    doc="Bottleneck residual block (ResNet-50): 1x1 reduce, 3x3, 1x1 expand, plus the shortcut.",
    inputs=(), outputs=(),
    params=(
        Int("width", 64, min=1, doc="channels of the inner 1x1 and 3x3 convolutions"),
        Int("out_channels", 256, min=1, doc="channels produced (ResNet uses 4 x width)"),
        Int("stride", 1, min=1, max=4, doc="stride of the 3x3 convolution"),
        Bool("projection", False, doc="1x1 conv + BN on the shortcut, for a change of channels or stride"),
    ),
    subgraph=_bottleneck, label_prefix="bottleneck",
)


def _inception(p, composites):
    bn = p["batch_norm"]
    eps = 1e-3  # torchvision's BasicConv2d
    b = _Builder("InceptionModule", "four branches - 1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max-pool then 1x1 - "
                 "concatenated along channels (Szegedy et al., 2014)")
    x = b.node("Input", "x", {"shape": [192, 28, 28]})
    top = b.y
    b1 = _conv_bn_relu(b, x, "branch1_", p["ch1x1"], 1, bn=bn, x=0, eps=eps)
    b.y = top
    b2 = _conv_bn_relu(b, x, "branch2_reduce_", p["ch3x3red"], 1, bn=bn, x=220, eps=eps)
    b2 = _conv_bn_relu(b, b2, "branch2_", p["ch3x3"], 3, pad=1, bn=bn, x=220, eps=eps)
    b.y = top
    b3 = _conv_bn_relu(b, x, "branch3_reduce_", p["ch5x5red"], 1, bn=bn, x=440, eps=eps)
    b3 = _conv_bn_relu(b, b3, "branch3_", p["ch5x5"], 5, pad=2, bn=bn, x=440, eps=eps)
    b.y = top
    b4 = b.node("MaxPool2d", "branch4_pool", {"kernel_size": 3, "stride": 1, "padding": 1}, x, x=660)
    b4 = _conv_bn_relu(b, b4, "branch4_", p["pool_proj"], 1, bn=bn, x=660, eps=eps)
    b.y = top + 560
    cat = b.node("Concat", "concat", {"inputs": 4, "dim": 1}, b1, "in1", x=330)
    for i, branch in enumerate((b2, b3, b4), start=2):
        b.g.connect(branch.id, "out", cat.id, f"in{i}")
    b.node("Output", "out", None, cat, x=330)
    return b.g


InceptionModule = NodeSpec(
    type="InceptionModule", category="Blocks",
    doc="Inception module (GoogLeNet): 1x1, 3x3 and 5x5 convolutions and a pooled 1x1 branch, concatenated.",
    inputs=(), outputs=(),
    params=(
        Int("ch1x1", 64, min=1, doc="channels of the 1x1 branch"),
        Int("ch3x3red", 96, min=1, doc="1x1 reduction before the 3x3"),
        Int("ch3x3", 128, min=1, doc="channels of the 3x3 branch"),
        Int("ch5x5red", 16, min=1, doc="1x1 reduction before the 5x5"),
        Int("ch5x5", 32, min=1, doc="channels of the 5x5 branch"),
        Int("pool_proj", 32, min=1, doc="1x1 projection after the 3x3 max-pool"),
        Bool("batch_norm", False, doc="conv without bias + BatchNorm before each ReLU (torchvision's form)"),
    ),
    subgraph=_inception, label_prefix="inception",
)

SPECS = [Composite, ResidualBlock, BottleneckBlock, InceptionModule]
