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
        if type_name == "Concat":
            port = "in1"
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
    _residual_join(b, x, main, p, c, "relu2")
    return b.g


def _residual_join(b, x, main, p, channels, relu_label):
    """The end of every residual block: the shortcut (identity, or a 1x1 conv + BN projection when the
    block changes width or stride), the sum with the main branch, then ReLU."""
    shortcut = x
    bottom = b.y
    if p["projection"]:
        b.y = 160
        shortcut = b.chain(x, [
            ("Conv2d", "downsample_conv",
             {"out_channels": channels, "kernel_size": 1, "stride": p["stride"], "bias": False}),
            ("BatchNorm2d", "downsample_bn", None)], x=260)
    b.y = bottom
    add = b.node("Add", "add", None, main, "in1")
    b.g.connect(shortcut.id, "out", add.id, "in2")
    b.chain(add, [("ReLU", relu_label, None), ("Output", "out", None)])


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
    _residual_join(b, x, main, p, c, "relu3")
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

def _gate(b, hx, label, hidden, activation, x):
    """One gate as the textbook writes it: activation(W [x, h] + b)."""
    lin = b.node("Linear", f"{label}_linear", {"out_features": hidden}, hx, x=x)
    return b.node(activation, label, None, lin, x=x)


def _join(b, type_name, label, a, c, x=0):
    n = b.node(type_name, label, None, a, "in1", x=x)
    b.g.connect(c.id, "out", n.id, "in2")
    return n


def _lstm_cell(p, composites):
    h = p["hidden_size"]
    b = _Builder("LSTMCell", "f = sigmoid(W_f [x, h] + b_f), i = sigmoid(W_i [x, h] + b_i), "
                 "g = tanh(W_g [x, h] + b_g), o = sigmoid(W_o [x, h] + b_o); c' = f * c + i * g; "
                 "h' = o * tanh(c') (Hochreiter and Schmidhuber, 1997)")
    x = b.node("Input", "x", {"shape": [h]}, x=0)
    b.y = 0
    hid = b.node("Input", "h", {"shape": [h]}, x=240)
    b.y = 0
    cell = b.node("Input", "c", {"shape": [h]}, x=480)
    hx = _join(b, "Concat", "x_h", x, hid, x=120)
    top = b.y
    gates = {}
    for col, (label, act) in enumerate([("forget_gate", "Sigmoid"), ("input_gate", "Sigmoid"),
                                        ("candidate", "Tanh"), ("output_gate", "Sigmoid")]):
        b.y = top
        gates[label] = _gate(b, hx, label, h, act, x=col * 200 - 100)
    b.y = top + 200
    keep = _join(b, "Multiply", "keep", gates["forget_gate"], cell, x=0)
    b.y = top + 200
    write = _join(b, "Multiply", "write", gates["input_gate"], gates["candidate"], x=240)
    c_next = _join(b, "Add", "cell_state", keep, write, x=120)
    squashed = b.node("Tanh", "cell_tanh", None, c_next, x=120)
    h_next = _join(b, "Multiply", "hidden_state", gates["output_gate"], squashed, x=300)
    b.node("Output", "h_next", None, h_next, x=300)
    b.y -= 80
    b.node("Output", "c_next", None, c_next, x=0)
    return b.g


def _gru_cell(p, composites):
    h = p["hidden_size"]
    b = _Builder("GRUCell", "r = sigmoid(W_r [x, h] + b_r), z = sigmoid(W_z [x, h] + b_z), "
                 "n = tanh(W_n x + b_n + r * (U_n h + c_n)); h' = (1 - z) * n + z * h, computed as "
                 "n + z * (h - n) (Cho et al., 2014; PyTorch's GRUCell)")
    x = b.node("Input", "x", {"shape": [h]}, x=0)
    b.y = 0
    hid = b.node("Input", "h", {"shape": [h]}, x=400)
    hx = _join(b, "Concat", "x_h", x, hid, x=200)
    top = b.y
    reset = _gate(b, hx, "reset_gate", h, "Sigmoid", x=100)
    b.y = top
    update = _gate(b, hx, "update_gate", h, "Sigmoid", x=300)
    b.y = top
    cand_x = b.node("Linear", "candidate_x", {"out_features": h}, x, x=-100)
    b.y = top
    cand_h = b.node("Linear", "candidate_h", {"out_features": h}, hid, x=500)
    b.y = top + 160
    gated = _join(b, "Multiply", "reset_h", reset, cand_h, x=300)
    pre = _join(b, "Add", "candidate_sum", cand_x, gated, x=0)
    cand = b.node("Tanh", "candidate", None, pre, x=0)
    diff = _join(b, "Subtract", "h_minus_n", hid, cand, x=400)
    step = _join(b, "Multiply", "update_step", update, diff, x=300)
    h_next = _join(b, "Add", "hidden_state", cand, step, x=100)
    b.node("Output", "h_next", None, h_next, x=100)
    return b.g


def _cell_spec(type_name, doc, builder):
    return NodeSpec(
        type=type_name, category="Recurrent", doc=doc, inputs=(), outputs=(),
        params=(Int("hidden_size", 32, min=1, doc="size of the hidden (and cell) state"),),
        subgraph=builder, label_prefix=type_name.lower().replace("cell", "_cell"),
    )


LSTMCell = _cell_spec("LSTMCell", "One LSTM time step drawn from its gates (forget, input, candidate, output) and "
                      "cell state: ports x, h, c -> h_next, c_next. Computes what torch.nn.LSTMCell does.", _lstm_cell)
GRUCell = _cell_spec("GRUCell", "One GRU time step drawn from its reset and update gates: ports x, h -> h_next. "
                     "Computes what torch.nn.GRUCell does.", _gru_cell)

SPECS = [Composite, ResidualBlock, BottleneckBlock, InceptionModule, LSTMCell, GRUCell]
