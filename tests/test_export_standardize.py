"""Exports of weights trained on standardized inputs (``data.standardize``) take raw inputs: the ONNX file
and the generated PyTorch source compute ``(x - mean) / std`` with the training set's statistics before the
network, as the trained model saw its inputs. The trainer's checkpoint carries the statistics
(``input_norm``); weights without them export exactly as before. Real (one-epoch) training on the digits."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import engine
from engine import export as ex
from engine.cli import main
from engine.codegen import generate_code
from engine.onnx_weights import WeightsError, read_checkpoint_and_norm
from tests import graphs

PHRASE = "inputs standardized inside the model with the training set's mean and std"


def digits_mlp() -> engine.Graph:
    """Input (64) -> Linear -> ReLU -> Linear (10 classes): the 8x8 digits (values 0 to 16) flattened."""
    g = graphs.mlp(64, 16, 10)
    g.name = "digits MLP"
    return g


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch run with standardize on, its run folder (best.pt, final.pt) and the graph file."""
    from engine.training.config import TrainingConfig
    from engine.training.trainer import Trainer

    folder = tmp_path_factory.mktemp("std_run")
    g = digits_mlp()
    cfg = TrainingConfig.from_dict({"epochs": 1, "batch_size": 64, "device": "cpu",
                                    "data": {"standardize": True}})
    trainer = Trainer(g, cfg, run_dir=folder / "run")
    assert trainer.fit().status == "finished"
    trainer.model.eval()
    engine.save_graph(g, folder / "digits.dcnet")
    return trainer, folder


@pytest.fixture(scope="module")
def raw_digits(trained):
    """Inputs as a user has them: dev-set digits (pixels scaled to 0..1 by the data set), nothing subtracted
    or divided (the trainer holds its splits standardized: undone here)."""
    trainer, _ = trained
    x = trainer.splits["dev"].x[:64].cpu()
    return x * trainer.input_norm["std"] + trainer.input_norm["mean"]


def _trained_on(trainer, raw: torch.Tensor) -> np.ndarray:
    """What the trained model computes for raw inputs: it was trained on standardized ones."""
    norm = trainer.input_norm
    with torch.no_grad():
        return trainer.model((raw - norm["mean"]) / norm["std"]).numpy()


def _run(path, raw: torch.Tensor) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": raw.numpy()})[0]


def test_the_run_standardized_and_its_checkpoint_holds_the_trained_weights_and_statistics(trained, raw_digits):
    trainer, folder = trained
    state, norm = read_checkpoint_and_norm(folder / "run" / "best.pt")
    assert set(norm) == {"mean", "std"} and norm["mean"].shape == (64,)
    torch.testing.assert_close(norm["mean"], trainer.input_norm["mean"])
    for k, v in trainer.model.state_dict().items():  # one epoch: the best weights are the final ones
        torch.testing.assert_close(state[k], v)
    # standardizing matters for these weights: raw pixels give other answers (what the defect exported)
    with torch.no_grad():
        bare = trainer.model(raw_digits).numpy()
    want = _trained_on(trainer, raw_digits)
    assert np.abs(bare - want).max() > 0.5 and (bare.argmax(1) != want.argmax(1)).any()


@pytest.mark.parametrize("opset", [ex.DEFAULT_OPSET, 13])  # the dynamo and the legacy exporter
def test_onnx_export_standardizes_raw_inputs_inside_the_model(trained, raw_digits, tmp_path, opset):
    trainer, folder = trained
    ckpt = folder / "run" / "best.pt"
    report = ex.export_graph(digits_mlp(), tmp_path / "d.onnx", weights=ckpt, opset=opset)
    assert report.ok and report.max_diff <= 1e-4
    raw = raw_digits
    got = _run(tmp_path / "d.onnx", raw)
    assert np.abs(got - _trained_on(trainer, raw)).max() < 1e-4
    model = onnx.load(tmp_path / "d.onnx")
    assert [n.op_type for n in model.graph.node][:2] == ["Sub", "Div"]
    # the weights keep the names of a plain export (the checkpoint's keys), beside the two constants
    assert {i.name for i in model.graph.initializer} == {"hidden.weight", "hidden.bias", "head.weight",
                                                         "head.bias", "input_mean", "input_std"}
    meta = json.loads({p.key: p.value for p in model.metadata_props}["deepcanvas.input_standardization"])
    assert meta["input"] == "x" and meta["inside_model"] is True and str(ckpt) in meta["from"]
    np.testing.assert_allclose(meta["mean"], trainer.input_norm["mean"].numpy())
    np.testing.assert_allclose(meta["std"], trainer.input_norm["std"].numpy())
    line = f"{PHRASE} (from checkpoint {ckpt})"
    assert report.standardization == line and f"  {line}\n" in report.text()
    assert report.to_json()["standardization"] == line


def test_cli_export_says_so_and_writes_source_that_loads_the_checkpoint(trained, raw_digits, tmp_path, capsys):
    trainer, folder = trained
    ckpt = folder / "run" / "best.pt"
    rc = main(["export", str(folder / "digits.dcnet"), "--weights", str(ckpt), "--onnx", str(tmp_path / "d.onnx"),
               "--py", str(tmp_path / "d.py")])
    out = capsys.readouterr().out
    assert rc == 0 and f"{PHRASE} (from checkpoint {ckpt})" in out and "wrote the PyTorch source" in out
    raw = raw_digits
    assert np.abs(_run(tmp_path / "d.onnx", raw) - _trained_on(trainer, raw)).max() < 1e-4
    # the generated source, as a user runs it: load the trainer's checkpoint strictly, feed raw inputs
    namespace: dict = {}
    exec(compile((tmp_path / "d.py").read_text(), str(tmp_path / "d.py"), "exec"), namespace)
    net = namespace["DigitsMLP"]()
    net.load_state_dict(torch.load(ckpt, weights_only=True)["model"], strict=True)
    with torch.no_grad():
        assert np.abs(net.eval()(raw).numpy() - _trained_on(trainer, raw)).max() < 1e-5
    # --py alone needs no ONNX file, and says the same
    rc = main(["export", str(folder / "digits.dcnet"), "--weights", str(ckpt), "--py", str(tmp_path / "e.py")])
    assert rc == 0 and PHRASE in capsys.readouterr().out
    assert (tmp_path / "e.py").read_text() == (tmp_path / "d.py").read_text()
    assert main(["export", str(folder / "digits.dcnet")]) == 2 and "--onnx" in capsys.readouterr().err


def test_generated_source_takes_raw_inputs_and_keeps_the_statistics_exact(trained, raw_digits):
    trainer, _ = trained
    source = generate_code(digits_mlp(), input_norm=trainer.input_norm)
    assert "x = (x - self.input_mean) / self.input_std" in source
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    net = namespace["DigitsMLP"]()
    assert list(net.state_dict()) == list(trainer.model.state_dict())  # the buffers are not persistent
    assert torch.equal(net.input_mean, trainer.input_norm["mean"]) and torch.equal(net.input_std,
                                                                                   trainer.input_norm["std"])
    net.load_state_dict(trainer.model.state_dict(), strict=True)
    with torch.no_grad():
        assert np.abs(net.eval()(raw_digits).numpy() - _trained_on(trainer, raw_digits)).max() < 1e-5


def test_weights_without_input_norm_export_as_before(trained, raw_digits, tmp_path):
    trainer, folder = trained
    g = digits_mlp()
    full = torch.load(folder / "run" / "best.pt", weights_only=True)
    torch.save({**full, "input_norm": {}}, tmp_path / "plain.pt")  # what a run without standardize writes
    torch.save(full["model"], tmp_path / "bare.pt")  # a bare state dict
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in full["model"].items()}, str(tmp_path / "w.safetensors"))
    for ckpt in ("plain.pt", "bare.pt", "w.safetensors"):
        assert read_checkpoint_and_norm(tmp_path / ckpt)[1] is None
        report = ex.export_graph(g, tmp_path / "p.onnx", weights=tmp_path / ckpt)
        model = onnx.load(tmp_path / "p.onnx")
        assert "Sub" not in [n.op_type for n in model.graph.node] and report.standardization == ""
        assert "standardized" not in report.text()
        assert "deepcanvas.input_standardization" not in {p.key for p in model.metadata_props}
        raw = raw_digits
        with torch.no_grad():
            assert np.abs(_run(tmp_path / "p.onnx", raw) - trainer.model(raw).numpy()).max() < 1e-4
    # the source without statistics is the source the compiler runs, as before
    assert generate_code(g, input_norm={}) == generate_code(g, input_norm=None) == engine.generate_code(g)
    assert "input_mean" not in engine.generate_code(g)


def test_leaving_the_standardization_out_is_said_in_the_report_and_the_metadata(trained, raw_digits, tmp_path, capsys):
    trainer, folder = trained
    ckpt = folder / "run" / "best.pt"
    report = ex.export_graph(digits_mlp(), tmp_path / "n.onnx", weights=ckpt, standardize=False)
    model = onnx.load(tmp_path / "n.onnx")
    assert "Sub" not in [n.op_type for n in model.graph.node]
    assert "NOT standardized" in report.standardization and "NOT standardized" in report.text()
    meta = json.loads({p.key: p.value for p in model.metadata_props}["deepcanvas.input_standardization"])
    assert meta["inside_model"] is False and len(meta["mean"]) == 64
    raw = raw_digits
    standardized = ((raw - trainer.input_norm["mean"]) / trainer.input_norm["std"])
    assert np.abs(_run(tmp_path / "n.onnx", standardized) - _trained_on(trainer, raw)).max() < 1e-4
    rc = main(["export", str(folder / "digits.dcnet"), "--weights", str(ckpt), "--onnx", str(tmp_path / "m.onnx"),
               "--no-standardize", "--json"])
    assert rc == 0 and "NOT standardized" in json.loads(capsys.readouterr().out)["standardization"]


def test_per_channel_statistics_of_an_image_input(tmp_path):
    """4-D inputs are standardized per channel: the statistics are (C, 1, 1)."""
    g = graphs.residual_block(channels=4, size=8)
    model = engine.compile_graph(g, seed=2).eval()
    norm = {"mean": torch.tensor([0.5, -1.0, 2.0, 0.0]).reshape(4, 1, 1),
            "std": torch.tensor([0.25, 2.0, 1.0, 3.0]).reshape(4, 1, 1)}
    for opset in (ex.DEFAULT_OPSET, 13):
        report = ex.export_graph(g, tmp_path / "r.onnx", weights=model.state_dict(), weights_source="here",
                                 input_norm=norm, opset=opset)
        assert report.ok and report.standardization == f"{PHRASE} (from here)"
        raw = torch.randn(2, 4, 8, 8) * 3 + 1
        name = onnx.load(tmp_path / "r.onnx").graph.input[0].name
        got = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"]).run(
            None, {name: raw.numpy()})[0]
        with torch.no_grad():
            want = model((raw - norm["mean"]) / norm["std"]).numpy()
        assert np.abs(got - want).max() < 1e-4
    source = generate_code(g, input_norm=norm)
    assert ".reshape(4, 1, 1)" in source
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    net = [v for k, v in namespace.items() if isinstance(v, type) and k == engine.compile_graph(g).__class__.__name__]
    net = net[0]()
    net.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert np.abs(net.eval()(raw).numpy() - want).max() < 1e-5


def test_statistics_that_do_not_fit_the_graph_are_refused_and_nothing_is_written(tmp_path):
    g = digits_mlp()
    wrong = {"mean": torch.zeros(10), "std": torch.ones(10)}
    with pytest.raises(WeightsError, match=r"shape \(10,\).*Input 'x' of shape \(64,\)"):
        ex.export_graph(g, tmp_path / "w.onnx", input_norm=wrong)
    assert not (tmp_path / "w.onnx").exists()
    with pytest.raises(WeightsError, match="shape"):
        generate_code(g, input_norm=wrong)
    with pytest.raises(WeightsError, match="not above 0"):
        ex.export_graph(g, tmp_path / "w.onnx", input_norm={"mean": torch.zeros(64), "std": torch.zeros(64)})
    tokens = engine.Graph("ids")
    graphs.chain(tokens, [tokens.add_node("Input", "ids", {"shape": [5], "dtype": "int64"}),
                          tokens.add_node("Embedding", "embed", {"num_embeddings": 9, "embedding_dim": 4}),
                          tokens.add_node("Output", "y")])
    with pytest.raises(WeightsError, match="float input"):
        generate_code(tokens, input_norm={"mean": torch.zeros(5), "std": torch.ones(5)})


# ----------------------------------------------------------------------------- the app's export dialog
from tests import test_gui_training  # noqa: E402

window = test_gui_training.window  # (the fixture: the main window, as the app's tests make it)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_export_dialog_builds_the_runs_standardization_into_onnx_code_and_checkpoint(window, qtbot, tmp_path):
    from PySide6 import QtCore, QtWidgets

    from gui.document import Document

    left = QtCore.Qt.MouseButton.LeftButton
    g = digits_mlp()
    g.training = {"epochs": 1, "batch_size": 64, "data": {"standardize": True}}
    window.set_document(Document(g))
    QtWidgets.QApplication.processEvents()
    ui = window.training
    qtbot.mouseClick(ui.dock_widget.start_button, left)
    run = ui.controller.current
    qtbot.waitUntil(lambda: run.done and run.weights is not None, timeout=60_000)
    assert run.input_norm is not None and run.input_norm["mean"].shape == (64,)

    dialog = ui.open_export()
    qtbot.addWidget(dialog)
    assert dialog.run is run and "standardized inputs" in dialog.other.text()
    dialog.onnx_path.setText(str(tmp_path / "d.onnx"))
    qtbot.mouseClick(dialog.onnx_button, left)
    dialog.wait(180)
    qtbot.waitUntil(lambda: dialog.report is not None or dialog.error, timeout=10_000)
    assert dialog.error == "" and dialog.report.ok
    assert f"{PHRASE} (from run {run.number} (epoch 1))" in dialog.details.toPlainText()

    from engine.compiler import build

    model = build(window.doc.graph).model.eval()
    model.load_state_dict(run.weights)
    norm = run.input_norm
    raw = torch.rand(5, 64)  # digits pixels are 0..1
    with torch.no_grad():
        want = model((raw - norm["mean"]) / norm["std"]).numpy()
    assert np.abs(_run(tmp_path / "d.onnx", raw) - want).max() < 1e-4

    dialog.code_path.setText(str(tmp_path / "d.py"))
    qtbot.mouseClick(dialog.code_button, left)
    assert PHRASE in dialog.other.text()
    namespace: dict = {}
    exec(compile((tmp_path / "d.py").read_text(), "d.py", "exec"), namespace)
    net = namespace["DigitsMLP"]()
    net.load_state_dict(run.weights, strict=True)
    with torch.no_grad():
        assert np.abs(net.eval()(raw).numpy() - want).max() < 1e-5

    # a checkpoint saved from the run's final weights (no file of its own) keeps the statistics, so it
    # exports as the run does
    dialog._checkpoint_file = lambda r: ""
    dialog.ckpt_path.setText(str(tmp_path / "d.pt"))
    qtbot.mouseClick(dialog.ckpt_button, left)
    state, saved = read_checkpoint_and_norm(tmp_path / "d.pt")
    torch.testing.assert_close(saved["std"], norm["std"])
    report = ex.export_graph(window.doc.graph, tmp_path / "e.onnx", weights=tmp_path / "d.pt")
    assert PHRASE in report.text() and np.abs(_run(tmp_path / "e.onnx", raw) - want).max() < 1e-4
    dialog.close()
