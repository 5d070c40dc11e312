"""The command line (engine/cli.py): exit codes 0 valid / 1 invalid / 2 bad file or command line.

Runs ``engine.cli.main(argv)`` in-process for speed; one subprocess proves the ``python -m engine`` entry
point."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import engine
from engine.cli import main
from graphs import LENET5_PARAMS, lenet5, mlp

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def files(tmp_path):
    """A valid LeNet-5, the same with 3 independent errors, a malformed file and a missing path."""
    good = tmp_path / "lenet5.dcnet"
    engine.save_graph(lenet5(), good)
    g = lenet5()
    g.node("conv1").params["out_channels"] = 0
    g.node("fc2").type = "Quantum"
    g.set_param("image", "shape", [1, 28, 28])
    g.node("tanh4").label = "tanh3"
    bad = tmp_path / "broken.dcnet"
    engine.save_graph(g, bad)
    garbage = tmp_path / "garbage.dcnet"
    garbage.write_text('{"version": 2,\n "nodes": [}')
    return {"good": str(good), "bad": str(bad), "garbage": str(garbage),
            "missing": str(tmp_path / "nope.dcnet"), "dir": str(tmp_path)}


def test_validate_a_valid_file(files, capsys):
    assert main(["validate", files["good"]]) == 0
    out = capsys.readouterr().out
    assert out == f"{files['good']}: valid (16 nodes, {LENET5_PARAMS:,} parameters)\n"


def test_validate_an_invalid_file_prints_one_line_per_problem(files, capsys):
    assert main(["validate", files["bad"]]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith(f"{files['bad']}: error: ") for line in lines)
    text = "\n".join(lines)
    assert "Conv2d 'conv1' param 'out_channels' must be at least 1, got 0 [node conv1, param out_channels]" in text
    assert "'fc2' has the unknown node type 'Quantum'" in text and "[node fc2]" in text
    assert "Tanh 'tanh3' has the same label" in text and "[node tanh4]" in text


def test_validate_prints_warnings_only_when_asked(tmp_path, capsys):
    g = mlp()
    g.add_node("Target", "spare")
    path = tmp_path / "warn.dcnet"
    engine.save_graph(g, path)
    assert main(["validate", str(path)]) == 0
    assert "warning" not in capsys.readouterr().out.split("valid")[0]
    assert main(["validate", "--warnings", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: warning: Target 'spare' is not read by any loss node [node spare]" in out
    assert "1 warning(s)" in out


@pytest.mark.parametrize("which, fragment", [
    ("missing", "the file does not exist"),
    ("garbage", "line 2, column 12: not valid JSON"),
    ("dir", "this is a folder, not a graph file"),
])
@pytest.mark.parametrize("command", ["validate", "summary", "codegen"])
def test_a_missing_or_malformed_file_exits_2_with_a_message(files, capsys, which, fragment, command):
    assert main([command, files[which]]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert fragment in captured.err and files[which] in captured.err
    assert "Traceback" not in captured.err


def test_a_wrong_command_line_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate", "x"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["summary", "x.dcnet", "--batch-size", "many"])
    assert exc.value.code == 2
    capsys.readouterr()


def test_summary_json(files, capsys):
    assert main(["summary", files["good"], "--json", "--batch-size", "64"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == LENET5_PARAMS
    assert data["valid"] is True and data["batch_size"] == 64 and data["problems"] == []
    inf = engine.infer_shapes(lenet5())
    assert data["total_flops"] == inf.total_flops
    assert data["activation_bytes"] == inf.activation_bytes(64) == 64 * inf.activation_bytes(1)
    rows = {r["id"]: r for r in data["nodes"]}
    assert rows["conv1"]["output"] == {"out": "(N, 6, 28, 28)"} and rows["conv1"]["params"] == 156


def test_summary_json_of_an_invalid_graph_exits_1_and_lists_problems(files, capsys):
    assert main(["summary", files["bad"], "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is False
    assert {p["node"] for p in data["problems"] if p["severity"] == "error"} == {"conv1", "fc2", "tanh4"}


def test_summary_table(files, capsys):
    assert main(["summary", files["good"], "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("LeNet-5 - LeCun et al. 1998\n")
    assert f"total parameters: {LENET5_PARAMS:,}" in out
    assert "activation memory at batch 2:" in out
    conv1 = next(line for line in out.splitlines() if line.startswith("conv1 "))
    assert "Conv2d" in conv1 and "(N, 6, 28, 28)" in conv1 and "156" in conv1


def test_codegen_to_stdout(files, capsys):
    assert main(["codegen", files["good"]]) == 0
    assert capsys.readouterr().out == engine.generate_code(lenet5())


def test_codegen_writes_a_file_that_imports_and_runs(files, tmp_path, capsys):
    target = tmp_path / "lenet_code.py"
    assert main(["codegen", files["good"], "-o", str(target), "--class-name", "MyLeNet"]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n"
    spec = importlib.util.spec_from_file_location("lenet_code", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.MyLeNet()
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    assert module.MyLeNetLoss()(model(torch.randn(2, 1, 32, 32)), torch.tensor([1, 2])).dim() == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left


def test_codegen_of_an_invalid_graph_exits_1_and_writes_nothing(files, tmp_path, capsys):
    target = tmp_path / "out.py"
    assert main(["codegen", files["bad"], "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert "has 3 error(s)" in err and "Quantum" in err
    assert not target.exists()


def test_codegen_to_an_unwritable_place_exits_2(files, tmp_path, capsys):
    assert main(["codegen", files["good"], "-o", str(tmp_path / "no" / "such" / "dir" / "x.py")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_codegen_refuses_or_cleans_a_class_name_that_is_not_an_identifier(files, tmp_path, capsys):
    target = tmp_path / "out.py"
    code = main(["codegen", files["good"], "-o", str(target), "--class-name", "my net"])
    capsys.readouterr()
    if code == 0:
        compile(target.read_text(), str(target), "exec")
    else:
        assert code == 2 and not target.exists()


def test_nodes_listing(capsys):
    assert main(["nodes"]) == 0
    out = capsys.readouterr().out
    assert "Layers:" in out and "Linear" in out and "Conv2d" in out
    assert main(["nodes", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["type"] for d in data} == {s.type for s in engine.REGISTRY}
    assert main(["nodes", "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Node reference") and "### Linear" in md


def test_the_python_m_engine_entry_point(files):
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    ok = subprocess.run([sys.executable, "-m", "engine", "validate", files["good"]], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"{files['good']}: valid")
    assert ok.stderr == ""


def test_validate_checks_the_training_settings_saved_with_the_graph(tmp_path, capsys):
    g = mlp()
    g.training = {"epochs": 0, "optimizer": {"name": "adamx", "lr": -1}}
    path = tmp_path / "bad_training.dcnet"
    engine.save_graph(g, path)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: error: ") and out.rstrip().endswith("[training]") and "valid (" not in out
    assert "'adamx'" in out and "training.optimizer.lr: must be above 0" in out and "training.epochs" in out
