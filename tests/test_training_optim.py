"""Optimizers against the textbook update rules computed by hand; batching; learning-rate schedules."""

import numpy as np
import pytest
import torch

import graphs
from engine.training import Dataset, Trainer, TrainingConfig
from engine.training.optimizers import Schedule, make_optimizer

LR, BETA, B1, B2, EPS, LAMBDA = 0.1, 0.8, 0.9, 0.99, 1e-8, 0.05
rng = np.random.default_rng(3)
W0, B0 = rng.normal(size=(2, 3)), rng.normal(size=2)
GRADS = [(rng.normal(size=(2, 3)), rng.normal(size=2)) for _ in range(3)]


def hand(name: str, weight_decay: float):
    """Three steps of the rule on (weight, bias), in float64; weight decay on the weight only."""
    params = [W0.copy(), B0.copy()]
    state = [dict(v=0.0, G=0.0, S=0.0, m=0.0, s=0.0) for _ in params]
    for t, grads in enumerate(GRADS, start=1):
        for k, (p, g) in enumerate(zip(params, grads)):
            st, lam = state[k], (weight_decay if k == 0 else 0.0)
            if name != "adamw":
                g = g + lam * p  # L2: the gradient of (lambda / 2) * ||w||^2
            if name == "sgd":
                p -= LR * g
            elif name == "momentum":
                st["v"] = BETA * st["v"] + g
                p -= LR * st["v"]
            elif name == "nesterov":
                st["v"] = BETA * st["v"] + g
                p -= LR * (g + BETA * st["v"])
            elif name == "adagrad":
                st["G"] = st["G"] + g * g
                p -= LR * g / (np.sqrt(st["G"]) + EPS)
            elif name == "rmsprop":
                st["S"] = BETA * st["S"] + (1 - BETA) * g * g
                p -= LR * g / (np.sqrt(st["S"]) + EPS)
            elif name in ("adam", "adamw"):
                if name == "adamw":
                    p -= LR * lam * p  # decoupled decay, before the Adam step
                st["m"] = B1 * st["m"] + (1 - B1) * g
                st["s"] = B2 * st["s"] + (1 - B2) * g * g
                m_hat = st["m"] / (1 - B1 ** t)
                s_hat = st["s"] / (1 - B2 ** t)
                p -= LR * m_hat / (np.sqrt(s_hat) + EPS)
    return params


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
@pytest.mark.parametrize("weight_decay", [0.0, LAMBDA])
def test_update_rules_match_the_textbook(name, weight_decay):
    model = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(W0))
        model.bias.copy_(torch.from_numpy(B0))
    config = TrainingConfig().with_overrides({
        "optimizer.name": name, "optimizer.lr": LR, "optimizer.momentum": BETA, "optimizer.beta": BETA,
        "optimizer.beta1": B1, "optimizer.beta2": B2, "optimizer.eps": EPS,
        "regularization.weight_decay": weight_decay})
    opt = make_optimizer(model, config)
    for gw, gb in GRADS:
        model.weight.grad = torch.from_numpy(gw.copy())
        model.bias.grad = torch.from_numpy(gb.copy())
        opt.step()
    want_w, want_b = hand(name, weight_decay)
    np.testing.assert_allclose(model.weight.detach().numpy(), want_w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.bias.detach().numpy(), want_b, rtol=1e-10, atol=1e-12)


def _points(n=50):
    r = np.random.default_rng(0)
    x = r.normal(size=(n, 4)).astype(np.float32)
    return Dataset("toy", x, (x[:, 0] > 0).astype(np.int64), "classification", ["neg", "pos"], kind="points")


@pytest.mark.parametrize("batching,steps", [("batch", 1), ("stochastic", 30), ("mini-batch", 4)])
def test_batching_gives_the_textbook_step_counts(batching, steps):
    config = TrainingConfig().with_overrides({"batching": batching, "batch_size": 8, "epochs": 2,
                                              "data.split": [0.6, 0.2, 0.2]})
    tr = Trainer(graphs.mlp(4, 8, 2), config, dataset=_points())
    assert len(tr.splits["train"]) == 30
    assert tr.steps_per_epoch == steps
    result = tr.fit()
    assert result.status == "finished" and result.steps == 2 * steps


def test_schedules():
    def lrs(schedule, epochs, dev_losses=None):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        cfg = TrainingConfig().with_overrides({f"schedule.{k}": v for k, v in schedule.items()})
        sched = Schedule(opt, cfg.schedule, epochs)
        out = []
        for e in range(epochs):
            opt.step()  # an epoch of training, then the schedule
            sched.step(dev_losses[e] if dev_losses else None)
            out.append(opt.param_groups[0]["lr"])
        return out

    assert lrs({"name": "step", "step_size": 2, "gamma": 0.5}, 5) == [1.0, 0.5, 0.5, 0.25, 0.25]
    cosine = lrs({"name": "cosine", "min_lr": 0.1}, 4)
    assert cosine[-1] == pytest.approx(0.1) and cosine[1] == pytest.approx(0.1 + 0.9 * (1 + np.cos(np.pi / 2)) / 2)
    plateau = lrs({"name": "plateau", "patience": 1, "factor": 0.5}, 5, [1.0, 1.0, 1.0, 1.0, 1.0])
    assert plateau == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert lrs({"name": "constant"}, 3) == [1.0, 1.0, 1.0]
