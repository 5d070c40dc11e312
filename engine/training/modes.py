"""Training modes: how one step turns a batch into a loss and an update. The trainer's loop, events,
checkpoints and controls are the same for every mode; a mode is a small strategy object chosen from
the graph's loss nodes.

Only supervised learning is here today. A GAN mode (two networks, two optimizers, alternating steps), a
VAE mode (reconstruction + KL, samples from the prior) or a triplet/Siamese mode (anchor, positive,
negative) subclasses ``TrainingMode``, says in ``accepts`` which graphs it trains, and is added to
``MODES``; nothing else in the trainer changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .data import CLASSIFICATION, REGRESSION, DataError

if TYPE_CHECKING:  # pragma: no cover
    from ..compiler import Compiled
    from .trainer import Trainer


class SetupError(ValueError):
    """The graph cannot be trained as it is; the message says which node and what to change."""


class TrainingMode:
    """One way to train. Subclasses implement the four methods below."""

    name = "base"

    @classmethod
    def accepts(cls, compiled: "Compiled") -> str | None:
        """None when this mode can train the graph, else the reason it cannot (shown to the user)."""
        raise NotImplementedError

    def __init__(self, compiled: "Compiled"):
        self.compiled = compiled

    def describe_data(self) -> dict:
        """What the data must look like: Input and Target node ids, shapes and dtypes."""
        raise NotImplementedError

    def train_step(self, trainer: "Trainer", xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, backward and optimizer step on one batch; returns (loss, prediction), not synced."""
        raise NotImplementedError

    def eval_step(self, trainer: "Trainer", xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, prediction) for a batch without touching the weights (the caller sets eval mode)."""
        raise NotImplementedError


class SupervisedMode(TrainingMode):
    """Inputs -> model -> outputs; loss(outputs, targets). Classification when the loss that reads the
    Target is a cross-entropy with class ids, regression otherwise."""

    name = "supervised"

    @classmethod
    def accepts(cls, compiled):
        plan = compiled.plan
        if not plan.losses:
            return ("the graph has no loss node: add one (e.g. CrossEntropyLoss for classes, MSELoss for values) "
                    "reading an Output and a Target")
        if len(plan.inputs) != 1:
            return (f"supervised training feeds one Input node; this graph has {len(plan.inputs)} "
                    f"({', '.join(compiled.inference.graph.nodes[i].label for i, _ in plan.inputs)})")
        if len(plan.targets) != 1:
            return (f"supervised training needs exactly one Target node for the labels; this graph has "
                    f"{len(plan.targets)}")
        return None

    def __init__(self, compiled):
        super().__init__(compiled)
        inf, plan, graph = compiled.inference, compiled.plan, compiled.inference.graph
        self.input_id = plan.inputs[0][0]
        self.target_id = plan.targets[0][0]
        out_index = {nid: k for k, (nid, _) in enumerate(plan.outputs)}
        # The loss node that reads the Target tells which output is scored against it, and how.
        self.output_index, self.loss_type = 0, None
        for lid in plan.losses:
            sources = inf.nodes[lid].sources
            if sources.get("target", (None,))[0] == self.target_id and sources.get("pred", (None,))[0] in out_index:
                self.output_index = out_index[sources["pred"][0]]
                self.loss_type = graph.nodes[lid].type
                break
        self.output_id = plan.outputs[self.output_index][0]
        target_info = inf.shape(self.target_id)
        self.task = CLASSIFICATION if target_info.dtype == "int64" else REGRESSION
        self.single_output = len(plan.outputs) == 1
        scores = inf.nodes[self.output_id].inputs["in"]
        self.num_classes_out = scores.shape[1] if self.task == CLASSIFICATION and len(scores.shape) > 1 else None

    def describe_data(self):
        inf, graph = self.compiled.inference, self.compiled.inference.graph
        x, t = inf.shape(self.input_id), inf.shape(self.target_id)
        return {"input": {"id": self.input_id, "label": graph.nodes[self.input_id].label,
                          "shape": tuple(x.shape[1:]), "dtype": x.dtype},
                "target": {"id": self.target_id, "label": graph.nodes[self.target_id].label,
                           "shape": tuple(t.shape[1:]), "dtype": t.dtype},
                "task": self.task, "classes_out": self.num_classes_out}

    def _forward(self, model, loss_fn, xb, yb):
        out = model(xb)
        outputs = (out,) if self.single_output else out
        loss = loss_fn(*outputs, yb)
        return loss, outputs[self.output_index]

    def train_step(self, trainer, xb, yb):
        opt = trainer.optimizer
        with trainer.autocast():
            loss, pred = self._forward(trainer.forward_model, trainer.loss_fn, xb, yb)
        opt.zero_grad(set_to_none=True)
        scaler = trainer.scaler
        if scaler is not None:
            scaler.scale(loss).backward()
            if trainer.grad_clip:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.grad_clip)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            if trainer.grad_clip:
                torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.grad_clip)
            opt.step()
        return loss, pred

    def eval_step(self, trainer, xb, yb):
        with trainer.autocast():
            return self._forward(trainer.forward_model, trainer.loss_fn, xb, yb)


MODES: dict[str, type[TrainingMode]] = {"supervised": SupervisedMode}


def select_mode(compiled, name: str = "auto") -> TrainingMode:
    """The mode named, or (auto) the first that accepts the graph; SetupError says why none does."""
    if name != "auto":
        cls = MODES[name]
        reason = cls.accepts(compiled)
        if reason:
            raise SetupError(f"cannot train this graph in {name} mode: {reason}")
        return cls(compiled)
    reasons = []
    for cls in MODES.values():
        reason = cls.accepts(compiled)
        if reason is None:
            return cls(compiled)
        reasons.append(f"{cls.name}: {reason}")
    raise SetupError("cannot train this graph: " + "; ".join(reasons))


__all__ = ["TrainingMode", "SupervisedMode", "MODES", "select_mode", "SetupError", "DataError"]
