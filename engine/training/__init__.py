"""Training: any compiled graph trained on real data, from Python, the CLI or the GUI. Pure Python +
torch; never imports Qt.

    from engine.training import Trainer, TrainingConfig
    config = TrainingConfig.from_graph(graph).with_overrides({"epochs": 20, "data.dataset": "digits"})
    trainer = Trainer(graph, config, callbacks=[...], run_dir="runs/lenet")
    result = trainer.fit()                 # pause(), resume(), stop() from another thread
    report = trainer.report(human_error=0.005)

Modules: ``config`` (the settings saved in the graph file), ``data`` / ``datasets`` / ``files`` (built-in
data sets and the user's files, splits, fitting data to the Input node), ``optimizers`` (update rules and
schedules), ``trainer`` (the loop, events, checkpoints), ``modes`` (supervised; a strategy per training
mode), ``metrics`` (evaluation, error analysis), ``doctor`` (bias/variance), ``finders`` (learning-rate
range test, largest batch), ``cli`` (``deepcanvas train``).
"""

from __future__ import annotations

import importlib

# Names are imported on first use, so `deepcanvas validate` (which registers `train` through
# engine.training.cli) never pays for torch.
_EXPORTS = {
    "config": ["ConfigError", "TrainingConfig", "describe", "set_training_defaults"],
    "data": ["DataError", "Dataset", "default_ratios", "split_dataset"],
    "datasets": ["BUILTINS", "builtin_names", "load_dataset"],
    "doctor": ["Diagnosis", "diagnose", "format_diagnosis"],
    "modes": ["MODES", "SetupError", "SupervisedMode", "TrainingMode", "select_mode"],
    "trainer": ["Callback", "CheckpointWritten", "EpochEnd", "EpochMetrics", "RunFailed", "RunResult", "RunStarted",
                "Samples", "StateChanged", "StepMetrics", "Trainer", "load_checkpoint_file", "resolve_device",
                "train"],
    "finders": ["find_lr", "find_max_batch"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
