"""Helpers of generative models: the VAE's reparameterization sampler (with its KL term) and the Gram
matrix of style transfer."""

from __future__ import annotations

from ..spec import NodeSpec, PortSpec
from ._common import BATCH, Cost, ShapeError, TensorInfo, concrete, expect_float, numel


# ---------------------------------------------------------------- Reparameterize

def _sampler_infer(p, ins):
    mu, logvar = ins["mu"], ins["logvar"]
    expect_float(mu, "mu")
    expect_float(logvar, "logvar")
    if mu.rank < 2:
        raise ShapeError(f"expects mu with a latent axis (N, latent), got {mu}", "mu")
    if logvar.shape != mu.shape:
        raise ShapeError(f"logvar {logvar} must be shaped like mu {mu}", "logvar")
    return {"z": mu, "kl": TensorInfo((BATCH,), mu.dtype)}


def _sampler_forward(p, args, mod):
    mu, logvar = args
    z = f"({mu} + torch.randn_like({mu}) * torch.exp(0.5 * {logvar}) if self.training else {mu})"
    # KL(N(mu, sigma^2) || N(0, I)) summed over the latent axes: one value per sample
    kl = f"(-0.5 * (1 + {logvar} - {mu} ** 2 - {logvar}.exp())).flatten(1).sum(1)"
    return f"{z}, {kl}"


Reparameterize = NodeSpec(
    type="Reparameterize", category="Generative",
    doc="A VAE's sampler. While training z = mu + eps * exp(logvar / 2) with eps ~ N(0, I), so gradients "
        "reach mu and logvar; in eval mode (and so in an export) z = mu. Output 'kl' is each sample's KL "
        "divergence from N(mu, exp(logvar)) to N(0, I), shaped (N,): route it through an Output to a "
        "TermLoss for the VAE's loss.",
    inputs=(PortSpec("mu", "means (N, latent)"), PortSpec("logvar", "log-variances, shaped like mu")),
    outputs=(PortSpec("z", "the sample, shaped like mu"), PortSpec("kl", "KL divergence per sample (N,)")),
    infer=_sampler_infer, forward=_sampler_forward,
    cost=lambda p, ins, outs: Cost(0, 10 * numel(ins["mu"].shape)),
    aliases=("Sampler",), label_prefix="sample",
)


# ---------------------------------------------------------------- GramMatrix

def _gram_infer(p, ins):
    t = ins["in"]
    expect_float(t)
    if t.rank < 3:
        raise ShapeError(f"expects feature maps (N, C, H, W) (or (N, C, L)), got {t}", "in")
    c = concrete(t.shape[1], "channels")
    return {"out": TensorInfo((BATCH, c, c), t.dtype)}


def _gram_forward(p, args, mod):
    x = args[0]
    # (N, C, H*W) @ (N, H*W, C), divided by C*H*W
    return f"torch.bmm({x}.flatten(2), {x}.flatten(2).transpose(1, 2)) / {x}.shape[1:].numel()"


GramMatrix = NodeSpec(
    type="GramMatrix", category="Generative",
    doc="Style features: the channel-by-channel inner products of feature maps, (N, C, H, W) -> (N, C, C), "
        "divided by C*H*W (Gatys et al.'s style loss compares these).",
    infer=_gram_infer, forward=_gram_forward,
    cost=lambda p, ins, outs: Cost(0, 2 * ins["in"].shape[1] * numel(ins["in"].shape)),
    label_prefix="gram",
)

SPECS = [Reparameterize, GramMatrix]
