"""The training configuration: saved in the graph file, validated with messages naming the field."""

import pytest

import engine
from engine.training import ConfigError, TrainingConfig, describe, set_training_defaults
import graphs


def test_defaults_round_trip_through_the_graph_file(tmp_path):
    g = graphs.mlp(in_features=2, classes=3)
    config = TrainingConfig().with_overrides({"epochs": 7, "optimizer.name": "rmsprop", "optimizer.beta": 0.95,
                                              "data.dataset": "spirals", "data.split": [0.7, 0.15, 0.15],
                                              "schedule.name": "cosine", "human_error": 0.02})
    config.to_graph(g)
    path = tmp_path / "net.dcnet"
    engine.save_graph(g, path)
    loaded = TrainingConfig.from_graph(engine.load_graph(path))
    assert loaded == config
    assert loaded.to_dict() == config.to_dict()
    assert TrainingConfig.from_dict({}) == TrainingConfig()  # an empty section means the defaults


def test_problems_name_the_field_and_all_are_reported():
    raw = {"epochs": 0, "optimizer": {"lr": -1, "name": "adamax"}, "batch_size": "64", "colour": 3,
           "data": {"split": [0.5, 0.5, 0.5]}, "early_stopping": {"enabled": "yes"}}
    with pytest.raises(ConfigError) as err:
        TrainingConfig.from_dict(raw)
    text = str(err.value)
    for needle in ("training.epochs: must be at least 1", "training.optimizer.lr: must be above 0",
                   "training.optimizer.name: expected one of sgd, momentum", "training.batch_size: expected a whole",
                   "training.colour: unknown setting", "training.early_stopping.enabled: expected true or false",
                   "training.data.split: the fractions must add up to 1, they add up to 1.5"):
        assert needle in text, text
    assert len(err.value.problems) == 7
    with pytest.raises(ConfigError, match=r"training.data.split: the fractions must add up to 1"):
        TrainingConfig.from_dict({"data": {"split": [0.5, 0.3, 0.3]}})
    with pytest.raises(ConfigError, match=r"training.optimizer: expected an object"):
        TrainingConfig.from_dict({"optimizer": "adam"})


def test_overrides_and_template_defaults():
    g = graphs.lenet5()
    cfg = set_training_defaults(g, data__dataset="digits", epochs=30, optimizer__lr=0.002)
    assert g.training["epochs"] == 30 and g.training["optimizer"]["lr"] == 0.002
    assert g.training["data"]["dataset"] == "digits"
    again = set_training_defaults(g, batch_size=32)  # earlier settings are kept
    assert again.epochs == 30 and again.batch_size == 32 and cfg.batch_size == 64
    with pytest.raises(ConfigError, match=r"training.optimizer.lrr: no such setting"):
        TrainingConfig().with_overrides({"optimizer.lrr": 1})
    with pytest.raises(ConfigError, match=r"training.optimizer: is a section"):
        TrainingConfig().with_overrides({"optimizer": 1})


def test_describe_lists_every_setting_for_a_form():
    items = {d["path"]: d for d in describe()}
    assert items["optimizer.name"]["options"][0] == "sgd"
    assert items["epochs"]["min"] == 1 and items["epochs"]["default"] == 10
    assert "early_stopping.patience" in items and items["human_error"]["default"] is None
    assert all(d["doc"] for d in items.values())


def test_registering_the_train_command_stays_light():
    """`deepcanvas validate` registers `train` too: that must import neither torch nor Qt."""
    import subprocess
    import sys

    code = ("import sys, engine.cli; engine.cli.build_parser(); import engine.training; "
            "print('torch' in sys.modules, any(m.startswith('PySide6') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr
