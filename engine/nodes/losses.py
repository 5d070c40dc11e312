"""Loss nodes. They read model outputs (from Output nodes) and targets (from Target nodes) and compile
to a separate loss module for the trainer, so an exported model never carries its loss. Several loss
nodes in one graph are summed, each times its weight."""

from __future__ import annotations

from ..params import Bool, Choice, Float, Int
from ..spec import LOSS, NodeSpec, PortSpec
from ._common import Cost, ShapeError, TensorInfo, expect_float, numel

LOSS_PORTS = (PortSpec("pred", "model output"), PortSpec("target", "what it should have been"))


def _weight():
    return Float("weight", 1.0, min=0.0, doc="this term's weight in the total loss")


def _reduction():
    return Choice("reduction", "mean", doc="how the per-element losses are combined", options=("mean", "sum"))


def _mse_infer(p, ins):
    pred, target = ins["pred"], ins["target"]
    expect_float(pred, "pred")
    expect_float(target, "target")
    if pred.shape != target.shape:
        raise ShapeError(f"pred {pred} and target {target} must have the same shape", "target")
    return {}


def _kw(p, **extra) -> str:
    parts = [f"{k}={v!r}" for k, v in extra.items()]
    if p["reduction"] != "mean":
        parts.append(f"reduction={p['reduction']!r}")
    return "".join(", " + s for s in parts)


MSELoss = NodeSpec(
    type="MSELoss", category="Loss", role=LOSS, doc="Mean squared error between prediction and target.",
    inputs=LOSS_PORTS, outputs=(), params=(_weight(), _reduction()), infer=_mse_infer,
    forward=lambda p, args, mod: f"F.mse_loss({args[0]}, {args[1]}{_kw(p)})",
    cost=lambda p, ins, outs: Cost(0, 3 * numel(ins["pred"].shape)),
)


def _ce_infer(p, ins):
    pred, target = ins["pred"], ins["target"]
    expect_float(pred, "pred")
    if pred.rank < 2:
        raise ShapeError(f"expects class scores (N, classes), got {pred}", "pred")
    if target.dtype == "int64":
        want = (pred.shape[0], *pred.shape[2:])
        if target.shape != want:
            raise ShapeError(f"class ids for scores {pred} must be shaped {TensorInfo(want)}, got {target}",
                             "target")
    elif target.shape != pred.shape:
        raise ShapeError(f"class probabilities must be shaped like the scores {pred}, got {target}", "target")
    return {}


def _ce_forward(p, args, mod):
    extra = {"label_smoothing": p["label_smoothing"]} if p["label_smoothing"] else {}
    if p["ignore_index"] != -100:
        extra["ignore_index"] = p["ignore_index"]
    return f"F.cross_entropy({args[0]}, {args[1]}{_kw(p, **extra)})"


CrossEntropyLoss = NodeSpec(
    type="CrossEntropyLoss", category="Loss", role=LOSS,
    doc="Softmax cross-entropy of raw class scores (logits) against class ids or probabilities.",
    inputs=(PortSpec("pred", "raw class scores (logits), no softmax"), PortSpec("target", "class ids")),
    outputs=(),
    params=(_weight(), _reduction(),
            Float("label_smoothing", 0.0, min=0.0, max=1.0, doc="mix this much of a uniform target in"),
            Int("ignore_index", -100, doc="a class id that does not count (padding in a tagger); -100 = none")),
    infer=_ce_infer, forward=_ce_forward,
    cost=lambda p, ins, outs: Cost(0, 4 * numel(ins["pred"].shape)), label_prefix="ce",
)



def _same_shape_loss(type_name: str, func: str, doc: str, pred_doc: str, prefix: str, flops: int) -> NodeSpec:
    """A loss of a prediction against a float target of the same shape."""
    return NodeSpec(
        type=type_name, category="Loss", role=LOSS, doc=doc,
        inputs=(PortSpec("pred", pred_doc), PortSpec("target", "what it should have been, same shape")),
        outputs=(), params=(_weight(), _reduction()), infer=_mse_infer,
        forward=lambda p, args, mod: f"{func}({args[0]}, {args[1]}{_kw(p)})",
        cost=lambda p, ins, outs: Cost(0, flops * numel(ins["pred"].shape)), label_prefix=prefix,
    )


L1Loss = _same_shape_loss("L1Loss", "F.l1_loss", "Mean absolute error between prediction and target.",
                          "model output", "l1", 3)
BCEWithLogitsLoss = _same_shape_loss(
    "BCEWithLogitsLoss", "F.binary_cross_entropy_with_logits",
    "Binary cross-entropy of raw scores (logits; the sigmoid is built in, which is stabler than Sigmoid + "
    "BCELoss) against targets in [0, 1]: yes/no and multi-label problems.",
    "raw scores (logits), no sigmoid", "bce", 6)
BCELoss = _same_shape_loss(
    "BCELoss", "F.binary_cross_entropy",
    "Binary cross-entropy of probabilities in (0, 1) (after a Sigmoid) against targets in [0, 1].",
    "probabilities, after a Sigmoid", "bce", 6)


def _nll_infer(p, ins):
    pred, target = ins["pred"], ins["target"]
    expect_float(pred, "pred")
    if pred.rank < 2:
        raise ShapeError(f"expects log-probabilities (N, classes), got {pred}", "pred")
    if target.dtype != "int64":
        raise ShapeError(f"expects int64 class ids as the target, got {target.dtype} {target}", "target")
    want = (pred.shape[0], *pred.shape[2:])
    if target.shape != want:
        raise ShapeError(f"class ids for log-probabilities {pred} must be shaped {TensorInfo(want)}, got {target}",
                         "target")
    return {}


NLLLoss = NodeSpec(
    type="NLLLoss", category="Loss", role=LOSS,
    doc="Negative log-likelihood of class ids under log-probabilities (after a LogSoftmax); LogSoftmax + "
        "NLLLoss equals CrossEntropyLoss on the raw scores.",
    inputs=(PortSpec("pred", "log-probabilities (N, classes), after a LogSoftmax"), PortSpec("target", "class ids")),
    outputs=(), params=(_weight(), _reduction()), infer=_nll_infer,
    forward=lambda p, args, mod: f"F.nll_loss({args[0]}, {args[1]}{_kw(p)})",
    cost=lambda p, ins, outs: Cost(0, numel(ins["target"].shape)), label_prefix="nll",
)


def _kl_forward(p, args, mod):
    log_target = ", log_target=True" if p["log_target"] else ""
    return f"F.kl_div({args[0]}, {args[1]}, reduction={p['reduction']!r}{log_target})"


KLDivLoss = NodeSpec(
    type="KLDivLoss", category="Loss", role=LOSS,
    doc="KL divergence from the target distribution to the predicted one: pred holds log-probabilities "
        "(after a LogSoftmax), target probabilities (or log-probabilities with log_target). 'batchmean' is "
        "the true KL divergence averaged over the batch (knowledge distillation).",
    inputs=(PortSpec("pred", "log-probabilities, after a LogSoftmax"), PortSpec("target", "probabilities")),
    outputs=(),
    params=(_weight(),
            Choice("reduction", "batchmean", options=("batchmean", "mean", "sum"),
                   doc="'batchmean': sum over each sample, mean over the batch; 'mean' also divides by the "
                       "number of classes"),
            Bool("log_target", False, doc="the target holds log-probabilities too")),
    infer=_mse_infer, forward=_kl_forward,
    cost=lambda p, ins, outs: Cost(0, 4 * numel(ins["pred"].shape)), label_prefix="kl",
)


def _triplet_infer(p, ins):
    a = ins["anchor"]
    expect_float(a, "anchor")
    if a.rank != 2:
        raise ShapeError(f"expects embeddings (N, features) as the anchor, got {a}", "anchor")
    for port in ("positive", "negative"):
        expect_float(ins[port], port)
        if ins[port].shape != a.shape:
            raise ShapeError(f"{port} {ins[port]} must be shaped like the anchor {a}", port)
    return {}


def _triplet_forward(p, args, mod):
    extra = "".join(f", {k}={p[k]!r}" for k, default in (("margin", 1.0), ("p", 2.0)) if p[k] != default)
    return f"F.triplet_margin_loss({', '.join(args)}{extra}{_kw(p)})"


TripletMarginLoss = NodeSpec(
    type="TripletMarginLoss", category="Loss", role=LOSS,
    doc="max(d(anchor, positive) - d(anchor, negative) + margin, 0) with the p-norm distance d: pulls "
        "matching embeddings together and pushes others apart (face recognition, Siamese networks).",
    inputs=(PortSpec("anchor", "embeddings (N, D)"), PortSpec("positive", "embeddings of the same kind"),
            PortSpec("negative", "embeddings of another kind")),
    outputs=(),
    params=(_weight(), _reduction(),
            Float("margin", 1.0, min=0.0, doc="how much farther the negative must be than the positive"),
            Float("p", 2.0, min=0.0, min_exclusive=True, doc="the norm of the distance (2 = Euclidean)")),
    infer=_triplet_infer, forward=_triplet_forward,
    cost=lambda p, ins, outs: Cost(0, 6 * numel(ins["anchor"].shape)), label_prefix="triplet",
)


def _term_infer(p, ins):
    expect_float(ins["term"], "term")
    return {}


TermLoss = NodeSpec(
    type="TermLoss", category="Loss", role=LOSS,
    doc="A loss term the model computes itself, e.g. Reparameterize's per-sample KL divergence, averaged "
        "(or summed) over the batch and added with its weight: a VAE's loss is a reconstruction loss plus "
        "a TermLoss on the KL.",
    inputs=(PortSpec("term", "per-sample values from an Output, e.g. (N,)"),), outputs=(),
    params=(_weight(), Choice("reduction", "mean", doc="how the values are combined", options=("mean", "sum"))),
    infer=_term_infer,
    forward=lambda p, args, mod: f"{args[0]}.{p['reduction']}()",
    cost=lambda p, ins, outs: Cost(0, numel(ins["term"].shape)), label_prefix="term",
)

def _gan_infer(p, ins):
    for port, t in ins.items():
        expect_float(t, port)
        if t.rank > 2 or (t.rank == 2 and t.shape[1] != 1):
            raise ShapeError(f"expects one score (logit) per sample, (N,) or (N, 1), got {t}", port)
    if p["side"] == "discriminator" and "real" not in ins:
        raise ShapeError("the discriminator side also needs the scores on real samples: wire 'real'")
    if "real" in ins and ins["real"].shape != ins["fake"].shape:
        raise ShapeError(f"real scores {ins['real']} and fake scores {ins['fake']} must have the same shape", "real")
    return {}


def _gan_forward(p, args, mod):
    fake, real = args[0], (args[1] if len(args) > 1 else None)
    if p["objective"] == "bce":
        def to(x, one):
            return f"F.binary_cross_entropy_with_logits({x}, torch.{'ones' if one else 'zeros'}_like({x}))"
    else:  # least squares (Mao et al., 2017)
        def to(x, one):
            return f"F.mse_loss({x}, torch.{'ones' if one else 'zeros'}_like({x}))"
    if p["side"] == "generator":
        return to(fake, True)
    return f"{to(real, True)} + {to(fake, False)}"


GANLoss = NodeSpec(
    type="GANLoss", category="Loss", role=LOSS,
    doc="Adversarial loss on a discriminator's scores (logits). The 'discriminator' side pushes real scores to 1 "
        "and fake ones to 0; the 'generator' side pushes fake scores to 1 (the non-saturating loss). The GAN "
        "training mode steps each network on the loss of its side.",
    inputs=(PortSpec("fake", "discriminator scores on generated samples"),
            PortSpec("real", "discriminator scores on real samples (discriminator side)", optional=True)),
    outputs=(),
    params=(_weight(),
            Choice("side", "discriminator", doc="whose loss this is", options=("discriminator", "generator")),
            Choice("objective", "bce", doc="'bce': the original log loss; 'lsgan': least squares",
                   options=("bce", "lsgan"))),
    infer=_gan_infer, forward=_gan_forward,
    cost=lambda p, ins, outs: Cost(0, 4 * sum(numel(t.shape) for t in ins.values())), label_prefix="gan",
)

SPECS = [MSELoss, CrossEntropyLoss, L1Loss, BCEWithLogitsLoss, BCELoss, NLLLoss, KLDivLoss, TripletMarginLoss,
         TermLoss, GANLoss]
