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

from .config import ConfigError, TrainingConfig, describe, set_training_defaults
from .data import DataError, Dataset, default_ratios, split_dataset
from .datasets import BUILTINS, builtin_names, load_dataset
from .doctor import Diagnosis, diagnose, format_diagnosis
from .modes import MODES, SetupError, SupervisedMode, TrainingMode, select_mode
from .trainer import (Callback, CheckpointWritten, EpochEnd, EpochMetrics, RunFailed, RunResult, RunStarted,
                      Samples, StateChanged, StepMetrics, Trainer, load_checkpoint_file, resolve_device, train)

__all__ = [
    "TrainingConfig", "ConfigError", "describe", "set_training_defaults", "Dataset", "DataError",
    "default_ratios", "split_dataset", "BUILTINS", "builtin_names", "load_dataset", "Diagnosis", "diagnose",
    "format_diagnosis", "MODES", "SetupError", "SupervisedMode", "TrainingMode", "select_mode", "Callback",
    "CheckpointWritten", "EpochEnd", "EpochMetrics", "RunFailed", "RunResult", "RunStarted", "Samples",
    "StateChanged", "StepMetrics", "Trainer", "load_checkpoint_file", "resolve_device", "train",
]
