"""Optimizers and learning-rate schedules, built from the configuration with ``torch.optim``.

The update rules, for a parameter w with gradient g (the tests check a step of each by hand):

- sgd (gradient descent):  w <- w - lr * g. Which examples g averages over is the batching setting:
  ``batch`` (the whole training set per step), ``stochastic`` (one example) or ``mini-batch``.
- momentum (Polyak; Sutskever et al. 2013; Goodfellow et al. 8.3.2):  v <- beta * v + g;  w <- w - lr * v.
  (Ng's form v <- beta * v + (1 - beta) * g is the same with lr scaled by 1 / (1 - beta).)
- nesterov (in the same form):  v <- beta * v + g;  w <- w - lr * (g + beta * v).
- adagrad (Duchi et al. 2011):  G <- G + g^2;  w <- w - lr * g / (sqrt(G) + eps).
- rmsprop (Hinton 2012):  S <- beta * S + (1 - beta) * g^2;  w <- w - lr * g / (sqrt(S) + eps).
- adam (Kingma and Ba 2015):  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
  m^ = m / (1 - b1^t);  v^ = v / (1 - b2^t);  w <- w - lr * m^ / (sqrt(v^) + eps).
- adamw (Loshchilov and Hutter 2019): adam with decoupled weight decay, w <- w - lr * lambda * w first.

L2 regularization (weight_decay = lambda) adds lambda * w to the gradient of each weight, which is the
gradient of (lambda / 2) * ||w||^2; biases and normalization scales are exempt (the usual textbook
choice). For adamw the decay is decoupled, as its paper defines it.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ScheduleConfig, TrainingConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weights (matrices and kernels) decay; biases and 1-D norm parameters do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    if weight_decay == 0:  # one group: the fused/foreach update handles all parameters in one go
        return [{"params": params, "weight_decay": 0.0}] if params else []
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    o = config.optimizer
    wd = config.regularization.weight_decay
    groups = param_groups(model, wd)
    if not groups:
        raise ValueError("the network has no trainable parameters; add a layer with weights (e.g. Linear)")
    name = o.name
    if name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=0.0)
    if name == "momentum":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, dampening=0.0, nesterov=False)
    if name == "nesterov":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, dampening=0.0, nesterov=True)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=o.lr, eps=o.eps, lr_decay=0.0, initial_accumulator_value=0.0)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=o.lr, alpha=o.beta, eps=o.eps, momentum=0.0, centered=False)
    if name == "adam":
        return torch.optim.Adam(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps)
    raise ValueError(f"training.optimizer.name: unknown optimizer {name!r}")  # config validation stops this


class Schedule:
    """A learning-rate schedule stepped once per epoch; ``plateau`` reads the dev loss."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: ScheduleConfig, epochs: int):
        self.name = config.name
        lr_sched = torch.optim.lr_scheduler
        if self.name == "step":
            self.scheduler = lr_sched.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
        elif self.name == "cosine":
            self.scheduler = lr_sched.CosineAnnealingLR(optimizer, T_max=max(epochs, 1), eta_min=config.min_lr)
        elif self.name == "plateau":
            self.scheduler = lr_sched.ReduceLROnPlateau(optimizer, mode="min", factor=config.factor,
                                                        patience=config.patience, min_lr=config.min_lr)
        else:
            self.scheduler = None

    def step(self, dev_loss: float | None) -> None:
        if self.scheduler is None:
            return
        if self.name == "plateau":
            if dev_loss is not None:
                self.scheduler.step(dev_loss)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)
