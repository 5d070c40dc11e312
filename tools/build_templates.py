"""Build the template graphs in templates/ with the engine's Graph API.

The committed ``templates/*.dcnet`` files are this script's output; a test checks that running it
reproduces them byte for byte, so change a template here and rerun the script::

    .venv/bin/python tools/build_templates.py             # rewrite templates/*.dcnet
    .venv/bin/python tools/build_templates.py --check     # exit 1 when a committed file is stale
    .venv/bin/python tools/build_templates.py --out DIR   # write somewhere else

Every network follows its published form and the reference PyTorch implementation (torchvision for
AlexNet, VGG, ResNet and GoogLeNet; the PyTorch examples for the VAE and the DCGAN tutorial's layers);
labels mirror torchvision's module names where there is one ('layer1.0.conv1' becomes the attribute
``layer1_0_conv1``), so weights map across by name.

Models of several networks (seq2seq's encoder and decoder, a GAN's generator and discriminator, a VAE's
encoder and decoder, a Siamese embedding) draw each network as a composite stored in the file
(``Canvas.define``), so the compiler exposes it by name (``Compiled.networks``) and it exports alone.
A network applied twice (the discriminator on real and generated images) is one node whose twin
shares its weights. Each template also stores its training defaults (``Canvas.training``).

Layout: nodes sit on a grid of columns and rows; data flows top to bottom, parallel branches sit side
by side. ``Canvas.pos`` is the one place that turns a grid cell into canvas coordinates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

import engine  # noqa: E402

TEMPLATES_DIR = ROOT / "templates"
COL, ROW = 260, 90  # canvas units between grid columns and rows


class Canvas:
    """A graph being built, with each node placed on a (column, row) grid cell."""

    def __init__(self, name: str, description: str):
        self.graph = engine.Graph(name, description)

    @staticmethod
    def pos(col: float, row: float) -> tuple[float, float]:
        return (col * COL, row * ROW)

    def add(self, type_name: str, label: str, params: dict | None = None, *, at: tuple[float, float],
            src: str | None = None, port: str = "in", src_port: str = "out") -> str:
        """Add a node at grid cell ``at``, wired from ``src`` (a node id) when given. Returns its id."""
        node = self.graph.add_node(type_name, label, params, pos=self.pos(*at))
        if src is not None:
            self.graph.connect(src, src_port, node.id, port)
        return node.id

    def wire(self, src: str, dst: str, port: str = "in", src_port: str = "out") -> None:
        self.graph.connect(src, src_port, dst, port)

    def define(self, name: str, description: str) -> "Canvas":
        """A composite (a network of its own, e.g. a GAN's generator) stored in this graph's file: draw
        its inside on the returned canvas; Composite nodes with ``{"definition": name}`` instantiate it."""
        sub = Canvas(name, description)
        sub.graph.composites = self.graph.composites
        self.graph.composites[name] = sub.graph
        return sub

    def training(self, **settings) -> None:
        """Training defaults saved in the file (``graph.training``), as nested sections, e.g.
        ``training(data={"dataset": "digits"}, epochs=20)``. Only what is given is stored (the trainer
        fills in its defaults for the rest); it is validated by the trainer's own configuration."""
        from engine.training.config import TrainingConfig

        TrainingConfig.from_dict(settings)  # raises ConfigError naming a bad setting
        self.graph.training = settings

    def chain(self, src: str | None, layers: list[tuple], col: float, row: float) -> tuple[str, float]:
        """Add ``(type, label[, params])`` layers one under another from ``row``, each wired to the one
        before. Returns the last node's id and the next free row."""
        for layer in layers:
            type_name, label, params = (*layer, None)[:3]
            src = self.add(type_name, label, params, at=(col, row), src=src)
            row += 1
        return src, row

    def classifier_loss(self, src: str, col: float, row: float) -> None:
        """Output 'logits', Target 'label' (one class id per sample) and their cross-entropy loss."""
        out = self.add("Output", "logits", at=(col, row), src=src)
        target = self.add("Target", "label", {"shape": [], "dtype": "int64"}, at=(col + 1, row))
        loss = self.add("CrossEntropyLoss", "ce_loss", at=(col + 0.5, row + 1))
        self.wire(out, loss, "pred")
        self.wire(target, loss, "target")


# --------------------------------------------------------------------------- small networks

def lenet5() -> engine.Graph:
    c = Canvas("LeNet-5", "LeCun et al. 1998: two convolution stages (tanh, 2x2 average-pool subsampling) and "
               "fully connected layers 120-84-10, for 32x32 grayscale digits. 61,706 parameters.")
    x = c.add("Input", "image", {"shape": [1, 32, 32]}, at=(0, 0))
    last, row = c.chain(x, [
        ("Conv2d", "conv1", {"out_channels": 6, "kernel_size": 5}),
        ("Tanh", "tanh1"),
        ("AvgPool2d", "pool1", {"kernel_size": 2}),
        ("Conv2d", "conv2", {"out_channels": 16, "kernel_size": 5}),
        ("Tanh", "tanh2"),
        ("AvgPool2d", "pool2", {"kernel_size": 2}),
        ("Flatten", "flatten"),
        ("Linear", "fc1", {"out_features": 120}),
        ("Tanh", "tanh3"),
        ("Linear", "fc2", {"out_features": 84}),
        ("Tanh", "tanh4"),
        ("Linear", "fc3", {"out_features": 10}),
    ], col=0, row=1)
    c.classifier_loss(last, 0, row)
    # The built-in digits (8x8, resized to 32x32); small rotations and shifts keep every seed above 97%.
    c.training(data={"dataset": "digits"}, epochs=30, batch_size=64, optimizer={"name": "adam", "lr": 0.002},
               schedule={"name": "cosine"}, augmentation={"rotation": 10.0, "crop_padding": 2})
    return c.graph


def mlp() -> engine.Graph:
    c = Canvas("MLP classifier", "A multilayer perceptron for 2-D toy data such as two or three interleaved "
               "spirals: two hidden layers of 64 ReLU units and 3 class scores (set fc3's out_features to 2 "
               "for two classes).")
    x = c.add("Input", "point", {"shape": [2]}, at=(0, 0))
    last, row = c.chain(x, [
        ("Linear", "fc1", {"out_features": 64}),
        ("ReLU", "relu1"),
        ("Linear", "fc2", {"out_features": 64}),
        ("ReLU", "relu2"),
        ("Linear", "fc3", {"out_features": 3}),
    ], col=0, row=1)
    c.classifier_loss(last, 0, row)
    c.training(data={"dataset": "spirals"}, epochs=100, batch_size=64, optimizer={"name": "adam", "lr": 0.01})
    return c.graph


# --------------------------------------------------------------------------- AlexNet, VGG-16

def alexnet() -> engine.Graph:
    c = Canvas("AlexNet", "Krizhevsky et al. 2012, as torchvision's alexnet (single-GPU channel counts 64-192-"
               "384-256-256) plus the paper's local response normalisation after the first two convolution "
               "blocks (PyTorch divides alpha by size, so the paper's alpha 1e-4 is 5e-4 here). Adaptive "
               "average pooling to 6x6 lets it run on other image sizes. 61,100,840 parameters.")
    lrn = {"size": 5, "alpha": 5e-4, "beta": 0.75, "k": 2.0}
    pool = {"kernel_size": 3, "stride": 2}
    x = c.add("Input", "image", {"shape": [3, 224, 224]}, at=(0, 0))
    last, row = c.chain(x, [
        ("Conv2d", "conv1", {"out_channels": 64, "kernel_size": 11, "stride": 4, "padding": 2}),
        ("ReLU", "relu1"),
        ("LocalResponseNorm", "lrn1", lrn),
        ("MaxPool2d", "pool1", pool),
        ("Conv2d", "conv2", {"out_channels": 192, "kernel_size": 5, "padding": 2}),
        ("ReLU", "relu2"),
        ("LocalResponseNorm", "lrn2", lrn),
        ("MaxPool2d", "pool2", pool),
        ("Conv2d", "conv3", {"out_channels": 384, "kernel_size": 3, "padding": 1}),
        ("ReLU", "relu3"),
        ("Conv2d", "conv4", {"out_channels": 256, "kernel_size": 3, "padding": 1}),
        ("ReLU", "relu4"),
        ("Conv2d", "conv5", {"out_channels": 256, "kernel_size": 3, "padding": 1}),
        ("ReLU", "relu5"),
        ("MaxPool2d", "pool5", pool),
        ("AdaptiveAvgPool2d", "avgpool", {"output_size": [6, 6]}),
        ("Flatten", "flatten"),
        ("Dropout", "drop6", {"p": 0.5}),
        ("Linear", "fc6", {"out_features": 4096}),
        ("ReLU", "relu6"),
        ("Dropout", "drop7", {"p": 0.5}),
        ("Linear", "fc7", {"out_features": 4096}),
        ("ReLU", "relu7"),
        ("Linear", "fc8", {"out_features": 1000}),
    ], col=0, row=1)
    c.classifier_loss(last, 0, row)
    return c.graph


def vgg16() -> engine.Graph:
    c = Canvas("VGG-16", "Simonyan and Zisserman 2014, configuration D without batch normalisation, as "
               "torchvision's vgg16: thirteen 3x3 convolutions in five blocks, each closed by 2x2 max "
               "pooling, adaptive average pooling to 7x7, and three fully connected layers. "
               "138,357,544 parameters.")
    x = c.add("Input", "image", {"shape": [3, 224, 224]}, at=(0, 0))
    layers: list[tuple] = []
    for block, (channels, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, convs + 1):
            layers += [("Conv2d", f"conv{block}_{i}", {"out_channels": channels, "kernel_size": 3, "padding": 1}),
                       ("ReLU", f"relu{block}_{i}")]
        layers.append(("MaxPool2d", f"pool{block}", {"kernel_size": 2, "stride": 2}))
    layers += [
        ("AdaptiveAvgPool2d", "avgpool", {"output_size": [7, 7]}),
        ("Flatten", "flatten"),
        ("Linear", "fc6", {"out_features": 4096}),
        ("ReLU", "relu6"),
        ("Dropout", "drop6", {"p": 0.5}),
        ("Linear", "fc7", {"out_features": 4096}),
        ("ReLU", "relu7"),
        ("Dropout", "drop7", {"p": 0.5}),
        ("Linear", "fc8", {"out_features": 1000}),
    ]
    last, row = c.chain(x, layers, col=0, row=1)
    c.classifier_loss(last, 0, row)
    return c.graph


# --------------------------------------------------------------------------- ResNets

def _conv(out_channels: int, kernel: int, stride: int = 1, padding: int = 0, **extra) -> dict:
    return {"out_channels": out_channels, "kernel_size": kernel, "stride": stride, "padding": padding,
            "bias": False, **extra}


def _resnet_stem(c: Canvas) -> tuple[str, float]:
    x = c.add("Input", "image", {"shape": [3, 224, 224]}, at=(0, 0))
    return c.chain(x, [
        ("Conv2d", "conv1", _conv(64, 7, stride=2, padding=3)),
        ("BatchNorm2d", "bn1"),
        ("ReLU", "relu"),
        ("MaxPool2d", "maxpool", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ], col=0, row=1)


def _resnet_block(c: Canvas, src: str, row: float, name: str, main: list[tuple], project: dict | None,
                  relu: str) -> tuple[str, float]:
    """A residual block. The shortcut runs down column 0 (the trunk): a bare wire from the block's input
    to the sum, or a 1x1 projection + BN just above the sum when ``project`` gives the conv's params; the
    ``main`` layers hang beside it in column 1, so the skip connection stays visible. The sum is followed
    by a ReLU."""
    last, next_row = c.chain(src, main, col=1, row=row)
    shortcut = src
    if project is not None:
        shortcut, _ = c.chain(src, [("Conv2d", f"{name}.downsample.0", project),
                                    ("BatchNorm2d", f"{name}.downsample.1")], col=0, row=next_row - 2)
    add = c.add("Add", f"{name}.add", at=(0, next_row), src=last, port="in1")
    c.wire(shortcut, add, "in2")
    out = c.add("ReLU", f"{name}.{relu}", at=(0, next_row + 1), src=add)
    return out, next_row + 2


def _resnet(title: str, description: str, block: str, depths: list[int]) -> engine.Graph:
    c = Canvas(title, description)
    last, row = _resnet_stem(c)
    in_ch = 64
    for stage, (width, blocks) in enumerate(zip([64, 128, 256, 512], depths), start=1):
        for b in range(blocks):
            name = f"layer{stage}.{b}"
            stride = 2 if stage > 1 and b == 0 else 1
            if block == "basic":
                out_ch = width
                main = [("Conv2d", f"{name}.conv1", _conv(width, 3, stride=stride, padding=1)),
                        ("BatchNorm2d", f"{name}.bn1"),
                        ("ReLU", f"{name}.relu1"),
                        ("Conv2d", f"{name}.conv2", _conv(width, 3, padding=1)),
                        ("BatchNorm2d", f"{name}.bn2")]
                relu = "relu2"
            else:  # bottleneck, stride on the 3x3 (torchvision's "ResNet v1.5")
                out_ch = width * 4
                main = [("Conv2d", f"{name}.conv1", _conv(width, 1)),
                        ("BatchNorm2d", f"{name}.bn1"),
                        ("ReLU", f"{name}.relu1"),
                        ("Conv2d", f"{name}.conv2", _conv(width, 3, stride=stride, padding=1)),
                        ("BatchNorm2d", f"{name}.bn2"),
                        ("ReLU", f"{name}.relu2"),
                        ("Conv2d", f"{name}.conv3", _conv(out_ch, 1)),
                        ("BatchNorm2d", f"{name}.bn3")]
                relu = "relu3"
            project = _conv(out_ch, 1, stride=stride) if stride != 1 or in_ch != out_ch else None
            last, row = _resnet_block(c, last, row, name, main, project, relu)
            in_ch = out_ch
    last, row = c.chain(last, [
        ("AdaptiveAvgPool2d", "avgpool", {"output_size": [1, 1]}),
        ("Flatten", "flatten"),
        ("Linear", "fc", {"out_features": 1000}),
    ], col=0, row=row)
    c.classifier_loss(last, 0, row)
    return c.graph


def resnet18() -> engine.Graph:
    return _resnet("ResNet-18", "He et al. 2015, as torchvision's resnet18: a 7x7 stem, four stages of two "
                   "basic blocks (two 3x3 convolutions with batch norm and an identity shortcut; a strided "
                   "1x1 projection where the size changes), global average pooling and a linear classifier. "
                   "11,689,512 parameters.", "basic", [2, 2, 2, 2])


def resnet50() -> engine.Graph:
    return _resnet("ResNet-50", "He et al. 2015, as torchvision's resnet50: a 7x7 stem and four stages of 3, "
                   "4, 6 and 3 bottleneck blocks (1x1 reduce, 3x3, 1x1 expand; the stride on the 3x3 as in "
                   "torchvision's 'v1.5'), global average pooling and a linear classifier. 25,557,032 "
                   "parameters.", "bottleneck", [3, 4, 6, 3])


# --------------------------------------------------------------------------- GoogLeNet

def _basic_conv(name: str, out_channels: int, kernel: int, stride: int = 1, padding: int = 0) -> list[tuple]:
    """torchvision's BasicConv2d: convolution without bias, batch norm (eps 0.001), ReLU."""
    return [("Conv2d", f"{name}.conv", _conv(out_channels, kernel, stride=stride, padding=padding)),
            ("BatchNorm2d", f"{name}.bn", {"eps": 0.001}),
            ("ReLU", f"{name}.relu")]


def _inception(c: Canvas, src: str, row: float, name: str, ch1x1: int, ch3x3red: int, ch3x3: int,
               ch5x5red: int, ch5x5: int, pool_proj: int) -> tuple[str, float]:
    """Four branches side by side, concatenated on channels in torchvision's order."""
    branches = [
        _basic_conv(f"{name}.branch1", ch1x1, 1),
        _basic_conv(f"{name}.branch2.0", ch3x3red, 1) + _basic_conv(f"{name}.branch2.1", ch3x3, 3, padding=1),
        # torchvision uses a 3x3 kernel in the "5x5" branch (a known difference from the paper)
        _basic_conv(f"{name}.branch3.0", ch5x5red, 1) + _basic_conv(f"{name}.branch3.1", ch5x5, 3, padding=1),
        [("MaxPool2d", f"{name}.branch4.0", {"kernel_size": 3, "stride": 1, "padding": 1, "ceil_mode": True})]
        + _basic_conv(f"{name}.branch4.1", pool_proj, 1),
    ]
    ends = []
    for i, layers in enumerate(branches):
        end, _ = c.chain(src, layers, col=i - 1, row=row)
        ends.append(end)
    depth = max(len(layers) for layers in branches)
    cat = c.add("Concat", f"{name}.cat", {"inputs": 4, "dim": 1}, at=(0.5, row + depth))
    for i, end in enumerate(ends, start=1):
        c.wire(end, cat, f"in{i}")
    return cat, row + depth + 1


def googlenet() -> engine.Graph:
    c = Canvas("GoogLeNet", "Szegedy et al. 2014 (Inception v1), as torchvision's googlenet without the "
               "auxiliary classifiers: convolutions with batch norm, nine inception modules of four parallel "
               "branches (torchvision's 3x3 kernel in the '5x5' branch), global average pooling, dropout 0.2 "
               "and a linear classifier. 6,624,904 parameters.")
    ceil_pool = {"kernel_size": 3, "stride": 2, "ceil_mode": True}
    x = c.add("Input", "image", {"shape": [3, 224, 224]}, at=(0.5, 0))
    last, row = c.chain(x, [
        *_basic_conv("conv1", 64, 7, stride=2, padding=3),
        ("MaxPool2d", "maxpool1", ceil_pool),
        *_basic_conv("conv2", 64, 1),
        *_basic_conv("conv3", 192, 3, padding=1),
        ("MaxPool2d", "maxpool2", ceil_pool),
    ], col=0.5, row=1)
    modules = [
        ("inception3a", (64, 96, 128, 16, 32, 32)),
        ("inception3b", (128, 128, 192, 32, 96, 64)),
        ("maxpool3", ceil_pool),
        ("inception4a", (192, 96, 208, 16, 48, 64)),
        ("inception4b", (160, 112, 224, 24, 64, 64)),
        ("inception4c", (128, 128, 256, 24, 64, 64)),
        ("inception4d", (112, 144, 288, 32, 64, 64)),
        ("inception4e", (256, 160, 320, 32, 128, 128)),
        ("maxpool4", {"kernel_size": 2, "stride": 2, "ceil_mode": True}),
        ("inception5a", (256, 160, 320, 32, 128, 128)),
        ("inception5b", (384, 192, 384, 48, 128, 128)),
    ]
    for name, spec in modules:
        if isinstance(spec, dict):
            last, row = c.chain(last, [("MaxPool2d", name, spec)], col=0.5, row=row)
        else:
            last, row = _inception(c, last, row, name, *spec)
    last, row = c.chain(last, [
        ("AdaptiveAvgPool2d", "avgpool", {"output_size": [1, 1]}),
        ("Flatten", "flatten"),
        ("Dropout", "dropout", {"p": 0.2}),
        ("Linear", "fc", {"out_features": 1000}),
    ], col=0.5, row=row)
    c.classifier_loss(last, 0.5, row)
    return c.graph


# --------------------------------------------------------------------------- sequence models

SHAKESPEARE_VOCAB = 58  # distinct characters of the built-in corpus (engine.training.datasets.shakespeare)
DATE_IN_VOCAB = 58  # characters of the built-in 'dates' inputs, id 0 = padding
DATE_OUT_VOCAB = 11  # '0'-'9' and '-' of an ISO date
DATE_START = DATE_OUT_VOCAB  # the decoder's start token: one id past the output characters


def lstm_classifier() -> engine.Graph:
    c = Canvas("LSTM text classifier", "A many-to-one recurrent classifier: an embedding per character, an LSTM "
               "whose last hidden state summarises the sequence, and a linear layer of class scores. Made for "
               "the built-in 'shakespeare' data: read 32 characters of Coriolanus and classify which of the 58 "
               "characters comes next (char-RNN as a classifier). For your own text classes, set the Input's "
               "length, num_embeddings to the vocabulary size and fc's out_features to the number of classes. "
               "92,282 parameters.")
    x = c.add("Input", "text", {"shape": [32], "dtype": "int64"}, at=(0, 0))
    last, row = c.chain(x, [
        ("Embedding", "embed", {"num_embeddings": SHAKESPEARE_VOCAB, "embedding_dim": 32}),
        ("LSTM", "lstm", {"hidden_size": 128, "output": "last"}),
        ("Linear", "fc", {"out_features": SHAKESPEARE_VOCAB}),
    ], col=0, row=1)
    c.classifier_loss(last, 0, row)
    # Adam at 2e-3 and gradients clipped at norm 5, as Karpathy's char-rnn trains.
    c.training(data={"dataset": "shakespeare", "options": {"window": 32}}, epochs=10, batch_size=64,
               optimizer={"name": "adam", "lr": 0.002}, regularization={"grad_clip": 5.0})
    return c.graph


def bigru_tagger() -> engine.Graph:
    c = Canvas("Bidirectional GRU tagger", "A sequence tagger, e.g. part-of-speech tagging: one class per token, read "
               "from a bidirectional GRU so that each tag sees the words before and after it. Scores come out as (N, "
               "T, tags) and are permuted to (N, tags, T), the layout cross-entropy takes. Set for sentences of 40 "
               "token ids (0 = padding) from a 5,000-word vocabulary and 18 tags (the 17 Universal POS tags plus 0 "
               "for padding; the loss's ignore_index 0 leaves padded positions out of the loss and of every figure: "
               "accuracy, confusion matrix, mistakes). It trains on the built-in 'tagging' set: sentences of an "
               "English-like grammar in which many words have two tags, told apart by their neighbours (in 10 epochs "
               "about 98% of the test set's words are tagged right and 80% of its sentences entirely, where giving "
               "each word its most frequent tag in the training sentences gets 92% of the words). For your own "
               "corpus, give an .npz file holding x (n, 40) token ids and y (n, 40) tag ids, both int64, as "
               "training.data.dataset. 372,242 parameters.")
    x = c.add("Input", "tokens", {"shape": [40], "dtype": "int64"}, at=(0, 0))
    last, row = c.chain(x, [
        ("Embedding", "embed", {"num_embeddings": 5000, "embedding_dim": 64, "padding_idx": 0}),
        ("GRU", "bigru", {"hidden_size": 64, "bidirectional": True}),
        ("Linear", "tag", {"out_features": 18}),
        ("Permute", "classes_first", {"dims": [2, 1]}),
    ], col=0, row=1)
    out = c.add("Output", "tag_scores", at=(0, row), src=last)
    target = c.add("Target", "tags", {"shape": [40], "dtype": "int64"}, at=(1, row))
    loss = c.add("CrossEntropyLoss", "ce_loss", {"ignore_index": 0}, at=(0.5, row + 1))  # padding
    c.wire(out, loss, "pred")
    c.wire(target, loss, "target")
    c.training(data={"dataset": "tagging"}, epochs=10, batch_size=32, optimizer={"name": "adam", "lr": 0.001},
               regularization={"grad_clip": 5.0})
    return c.graph


def seq2seq_attention() -> engine.Graph:
    c = Canvas("Seq2seq with attention", "An encoder-decoder with attention for the built-in 'dates' task: "
               "translate a human-written date ('Tuesday, May 3, 1987', 30 character ids, 0 = padding) into ISO "
               "form ('1987-05-03', 10 characters of '0123456789-'). The encoder GRU reads the source; its final "
               "state starts the decoder GRU (h0). Training uses teacher forcing: the decoder reads the target "
               "shifted right, the start token 11 then the first 9 target characters, and at every step attends "
               "over the encoder states (Luong et al. 2015: dot-product attention after the recurrent layer, "
               "scaled; context and decoder state combined by a tanh layer) before scoring the next character. "
               "Encoder and decoder are separate networks, exported and trained by name. 48,843 parameters.")
    enc = c.define("encoder", "Source characters -> embedding -> GRU: every step's state (the attention's memory) "
                   "and the final state (the decoder's start).")
    src = enc.add("Input", "source", {"shape": [30], "dtype": "int64"}, at=(0, 0))
    gru, _ = enc.chain(src, [
        ("Embedding", "embed", {"num_embeddings": DATE_IN_VOCAB, "embedding_dim": 32, "padding_idx": 0}),
        ("GRU", "gru", {"hidden_size": 64, "return_state": True}),
    ], col=0, row=1)
    enc.add("Output", "states", at=(0, 3), src=gru)
    enc.add("Output", "state", at=(1, 3), src=gru, src_port="h_n")

    dec = c.define("decoder", "Shifted target characters -> embedding -> GRU started from the encoder's state; "
                   "scaled dot-product attention of each decoder state over the encoder states; [state, "
                   "context] -> tanh layer -> character scores (N, 10, 11).")
    tokens = dec.add("Input", "tokens", {"shape": [10], "dtype": "int64"}, at=(0, 0))
    state = dec.add("Input", "state", {"shape": [1, 64]}, at=(1, 1))
    memory = dec.add("Input", "memory", {"shape": [30, 64]}, at=(2, 2))
    emb = dec.add("Embedding", "embed", {"num_embeddings": DATE_OUT_VOCAB + 1, "embedding_dim": 32},
                  at=(0, 1), src=tokens)
    gru = dec.add("GRU", "gru", {"hidden_size": 64}, at=(0, 2), src=emb)
    dec.wire(state, gru, "h0")
    attn = dec.add("ScaledDotProductAttention", "attention", at=(1, 3), src=gru, port="query")
    dec.wire(memory, attn, "key")
    dec.wire(memory, attn, "value")
    cat = dec.add("Concat", "concat", {"inputs": 2, "dim": 2}, at=(0, 4), src=gru, port="in1")
    dec.wire(attn, cat, "in2")
    last, _ = dec.chain(cat, [
        ("Linear", "combine", {"out_features": 64}),
        ("Tanh", "tanh"),
        ("Linear", "classify", {"out_features": DATE_OUT_VOCAB}),
        ("Output", "scores"),
    ], col=0, row=5)

    source = c.add("Input", "source", {"shape": [30], "dtype": "int64"}, at=(0, 0))
    shifted = c.add("Input", "decoder_input", {"shape": [10], "dtype": "int64"}, at=(1, 0))
    encoder = c.add("Composite", "encoder", {"definition": "encoder"}, at=(0, 1), src=source, port="source")
    decoder = c.add("Composite", "decoder", {"definition": "decoder"}, at=(1, 2), src=shifted, port="tokens")
    c.wire(encoder, decoder, "state", src_port="state")
    c.wire(encoder, decoder, "memory", src_port="states")
    last = c.add("Permute", "classes_first", {"dims": [2, 1]}, at=(1, 3), src=decoder, src_port="scores")
    out = c.add("Output", "logits", at=(1, 4), src=last)
    target = c.add("Target", "target", {"shape": [10], "dtype": "int64"}, at=(2, 4))
    loss = c.add("CrossEntropyLoss", "ce_loss", at=(1.5, 5))
    c.wire(out, loss, "pred")
    c.wire(target, loss, "target")
    c.training(data={"dataset": "dates"}, epochs=10, batch_size=64, optimizer={"name": "adam", "lr": 0.001},
               regularization={"grad_clip": 5.0})
    return c.graph


# --------------------------------------------------------------------------- generative and metric learning

def dcgan() -> engine.Graph:
    c = Canvas("DCGAN", "Radford et al. 2015 at 32x32 grey levels (the built-in digits, resized): the generator "
               "projects a 100-d noise vector to 128x4x4 and doubles the size three times with 4x4 stride-2 "
               "transposed convolutions (batch norm and ReLU between, tanh at the end, no biases, as the "
               "PyTorch DCGAN tutorial); the discriminator mirrors it with stride-2 convolutions, LeakyReLU "
               "0.2 and batch norm (none on its first layer) down to one logit. The discriminator scores "
               "generated and real images with the same weights. Real images are scaled to [-1, 1] to match "
               "the tanh. Adam at 2e-4 with beta1 0.5, as the paper. 536,384 parameters.")
    gen = c.define("generator", "z (N, 100) -> projection to 128x4x4 -> transposed convolutions 4 -> 8 -> 16 -> "
                   "32 -> tanh image (N, 1, 32, 32).")
    z = gen.add("Input", "z", {"shape": [100]}, at=(0, 0))
    gen.chain(z, [
        ("Linear", "project", {"out_features": 128 * 4 * 4, "bias": False}),
        ("Reshape", "reshape", {"shape": [128, 4, 4]}),
        ("BatchNorm2d", "bn0"),
        ("ReLU", "relu0"),
        ("ConvTranspose2d", "deconv1", {"out_channels": 64, "kernel_size": 4, "stride": 2, "padding": 1,
                                        "bias": False}),
        ("BatchNorm2d", "bn1"),
        ("ReLU", "relu1"),
        ("ConvTranspose2d", "deconv2", {"out_channels": 32, "kernel_size": 4, "stride": 2, "padding": 1,
                                        "bias": False}),
        ("BatchNorm2d", "bn2"),
        ("ReLU", "relu2"),
        ("ConvTranspose2d", "deconv3", {"out_channels": 1, "kernel_size": 4, "stride": 2, "padding": 1,
                                        "bias": False}),
        ("Tanh", "tanh"),
        ("Output", "image"),
    ], col=0, row=1)
    disc = c.define("discriminator", "image (N, 1, 32, 32) -> strided convolutions 32 -> 16 -> 8 -> 4 -> 1 with "
                    "LeakyReLU 0.2 -> one logit (N, 1): real or generated.")
    image = disc.add("Input", "image", {"shape": [1, 32, 32]}, at=(0, 0))
    down = {"kernel_size": 4, "stride": 2, "padding": 1, "bias": False}
    disc.chain(image, [
        ("Conv2d", "conv1", {"out_channels": 32, **down}),
        ("LeakyReLU", "lrelu1", {"negative_slope": 0.2}),
        ("Conv2d", "conv2", {"out_channels": 64, **down}),
        ("BatchNorm2d", "bn2"),
        ("LeakyReLU", "lrelu2", {"negative_slope": 0.2}),
        ("Conv2d", "conv3", {"out_channels": 128, **down}),
        ("BatchNorm2d", "bn3"),
        ("LeakyReLU", "lrelu3", {"negative_slope": 0.2}),
        ("Conv2d", "conv4", {"out_channels": 1, "kernel_size": 4, "stride": 1, "padding": 0, "bias": False}),
        ("Flatten", "flatten"),
        ("Output", "score"),
    ], col=0, row=1)

    z = c.add("Input", "z", {"shape": [100]}, at=(0, 0))
    real = c.add("Input", "real", {"shape": [1, 32, 32]}, at=(1, 0))
    g = c.add("Composite", "generator", {"definition": "generator"}, at=(0, 1), src=z, port="z")
    fake = c.add("Output", "fake", at=(-1, 2), src=g, src_port="image")
    d_fake = c.add("Composite", "discriminator", {"definition": "discriminator"}, at=(0, 2), src=g,
                   port="image", src_port="image")
    d_real = c.add("Composite", "discriminator_real", {"definition": "discriminator"}, at=(1, 2), src=real,
                   port="image")
    c.graph.set_shares(d_real, d_fake)
    s_fake = c.add("Output", "score_fake", at=(0, 3), src=d_fake, src_port="score")
    s_real = c.add("Output", "score_real", at=(1, 3), src=d_real, src_port="score")
    d_loss = c.add("GANLoss", "d_loss", {"side": "discriminator"}, at=(0.5, 4), src=s_fake, port="fake")
    c.wire(s_real, d_loss, "real")
    c.add("GANLoss", "g_loss", {"side": "generator"}, at=(-0.5, 4), src=s_fake, port="fake")
    # The GAN mode trains it (engine.training.modes.GANMode). On the 1,797 digits: 90% to train on, 10%
    # to watch whether the discriminator tells unseen real digits from generated ones, no test set.
    # Batches of 32 give about 1,500 alternating steps in 30 epochs (1 to 3 minutes on two CPU cores),
    # after which the samples are digit-like. The discriminator soon wins on so few images; at a
    # constant rate the generator then collapses (after about 800 steps here), so the rate decays to 0
    # on a cosine, which settles the pair while the samples are good. A grid of 64 every 100 steps.
    c.training(data={"dataset": "digits", "options": {"size": 32}, "split": [0.9, 0.1, 0.0]}, epochs=30,
               batch_size=32, optimizer={"name": "adam", "lr": 0.0002, "beta1": 0.5},
               schedule={"name": "cosine"}, sample_every=100)
    return c.graph


def vae() -> engine.Graph:
    c = Canvas("Variational autoencoder", "Kingma and Welling 2013, as the PyTorch examples' MNIST VAE: a "
               "784-400 encoder giving the mean and log-variance of a 20-d latent code, the reparameterization "
               "z = mu + eps * sigma (z = mu in eval mode), and a 20-400-784 decoder giving pixel logits. The "
               "loss is the negative ELBO summed over the batch: binary cross-entropy of the reconstruction "
               "against the input image (the Target is the input itself) plus the KL divergence of the code "
               "from N(0, I). For the built-in digits resized to 28x28 (or MNIST files). Encoder and decoder "
               "are separate networks, exported by name. 652,824 parameters.")
    enc = c.define("encoder", "image (N, 1, 28, 28) -> 400 ReLU units -> mu and logvar (N, 20).")
    image = enc.add("Input", "image", {"shape": [1, 28, 28]}, at=(0.5, 0))
    hidden, _ = enc.chain(image, [
        ("Flatten", "flatten"),
        ("Linear", "fc1", {"out_features": 400}),
        ("ReLU", "relu1"),
    ], col=0.5, row=1)
    enc.chain(hidden, [("Linear", "fc21", {"out_features": 20}), ("Output", "mu")], col=0, row=4)
    enc.chain(hidden, [("Linear", "fc22", {"out_features": 20}), ("Output", "logvar")], col=1, row=4)
    dec = c.define("decoder", "z (N, 20) -> 400 ReLU units -> 784 pixel logits, shaped (N, 1, 28, 28).")
    z = dec.add("Input", "z", {"shape": [20]}, at=(0, 0))
    dec.chain(z, [
        ("Linear", "fc3", {"out_features": 400}),
        ("ReLU", "relu3"),
        ("Linear", "fc4", {"out_features": 784}),
        ("Reshape", "reshape", {"shape": [1, 28, 28]}),
        ("Output", "logits"),
    ], col=0, row=1)

    x = c.add("Input", "image", {"shape": [1, 28, 28]}, at=(0.5, 0))
    encoder = c.add("Composite", "encoder", {"definition": "encoder"}, at=(0.5, 1), src=x, port="image")
    sample = c.add("Reparameterize", "sample", at=(0.5, 2), src=encoder, port="mu", src_port="mu")
    c.wire(encoder, sample, "logvar", src_port="logvar")
    decoder = c.add("Composite", "decoder", {"definition": "decoder"}, at=(0, 3), src=sample, port="z",
                    src_port="z")
    recon = c.add("Output", "reconstruction", at=(0, 4), src=decoder, src_port="logits")
    kl = c.add("Output", "kl", at=(1, 4), src=sample, src_port="kl")
    target = c.add("Target", "target_image", {"shape": [1, 28, 28], "dtype": "float32"}, at=(-1, 4))
    loss = c.add("BCEWithLogitsLoss", "reconstruction_loss", {"reduction": "sum"}, at=(-0.5, 5), src=recon,
                 port="pred")
    c.wire(target, loss, "target")
    c.add("TermLoss", "kl_loss", {"reduction": "sum"}, at=(1, 5), src=kl, port="term")
    # The VAE mode trains it: reconstructions of dev digits and samples from the prior every 10 epochs.
    c.training(data={"dataset": "digits", "options": {"size": 28}}, epochs=50, batch_size=128,
               optimizer={"name": "adam", "lr": 0.001}, sample_every=90)
    return c.graph


def siamese_triplet() -> engine.Graph:
    c = Canvas("Siamese network with triplet loss", "Metric learning as in FaceNet (Schroff et al. 2015): one "
               "embedding network applied, with the same weights, to an anchor, a positive (same class) and a "
               "negative (another class); the triplet margin loss pulls the anchor towards the positive and at "
               "least the margin further from the negative. The embedding network is LeNet-like: two 5x5 "
               "convolutions with max pooling, then 256 ReLU units and a 64-d embedding. For 28x28 digits "
               "(the built-in digits resized, or MNIST files), triplets drawn from the class labels. "
               "330,944 parameters.")
    emb = c.define("embedding", "image (N, 1, 28, 28) -> conv 5x5 -> pool -> conv 5x5 -> pool -> 256 -> "
                   "embedding (N, 64).")
    image = emb.add("Input", "image", {"shape": [1, 28, 28]}, at=(0, 0))
    emb.chain(image, [
        ("Conv2d", "conv1", {"out_channels": 32, "kernel_size": 5}),
        ("ReLU", "relu1"),
        ("MaxPool2d", "pool1", {"kernel_size": 2}),
        ("Conv2d", "conv2", {"out_channels": 64, "kernel_size": 5}),
        ("ReLU", "relu2"),
        ("MaxPool2d", "pool2", {"kernel_size": 2}),
        ("Flatten", "flatten"),
        ("Linear", "fc1", {"out_features": 256}),
        ("ReLU", "relu3"),
        ("Linear", "fc2", {"out_features": 64}),
        ("Output", "embedding"),
    ], col=0, row=1)

    loss = None
    owner = None
    for col, role in enumerate(("anchor", "positive", "negative")):
        x = c.add("Input", role, {"shape": [1, 28, 28]}, at=(col, 0))
        label = "embedding" if owner is None else f"embedding_{role}"
        net = c.add("Composite", label, {"definition": "embedding"}, at=(col, 1), src=x, port="image")
        if owner is None:
            owner = net
        else:
            c.graph.set_shares(net, owner)
        out = c.add("Output", f"{role}_embedding", at=(col, 2), src=net, src_port="embedding")
        if loss is None:
            loss = c.add("TripletMarginLoss", "triplet_loss", {"margin": 1.0}, at=(1, 3))
        c.wire(out, loss, role)
    c.training(data={"dataset": "digits", "options": {"size": 28}}, epochs=10, batch_size=64,
               optimizer={"name": "adam", "lr": 0.001})
    return c.graph


# --------------------------------------------------------------------------- the set, and writing it

TEMPLATES: dict[str, Callable[[], engine.Graph]] = {
    "mlp": mlp, "lenet5": lenet5, "alexnet": alexnet, "vgg16": vgg16, "resnet18": resnet18,
    "resnet50": resnet50, "googlenet": googlenet, "lstm_classifier": lstm_classifier,
    "bigru_tagger": bigru_tagger, "seq2seq_attention": seq2seq_attention, "dcgan": dcgan, "vae": vae,
    "siamese_triplet": siamese_triplet,
}


def build_all() -> dict[str, engine.Graph]:
    return {name: build() for name, build in TEMPLATES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build templates/*.dcnet from the definitions in this file.")
    parser.add_argument("--out", type=Path, default=TEMPLATES_DIR, help="folder to write (default: templates/)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a file in the folder differs from what would be written")
    args = parser.parse_args(argv)
    stale = []
    for name, graph in build_all().items():
        problems = engine.infer_shapes(graph).problems
        if problems:  # a template must be clean before it is written
            for p in problems:
                print(f"{name}: {p}", file=sys.stderr)
            return 1
        path = args.out / f"{name}{engine.EXTENSION}"
        text = engine.dumps(graph)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        engine.save_graph(graph, path)
        print(f"wrote {path}")
    for path in stale:
        print(f"stale: {path} (run tools/build_templates.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
