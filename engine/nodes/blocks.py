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

SPECS = [Composite, ResidualBlock]
