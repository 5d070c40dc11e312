"""`deepcanvas train` and `deepcanvas datasets`, including the LeNet-5 acceptance run."""

import json
from pathlib import Path

import pytest
import torch

import engine
from engine.training.config import TrainingConfig
import graphs
from engine.cli import main
from engine.training import set_training_defaults

ROOT = Path(__file__).resolve().parent.parent

# The training defaults the templates carry (templates/lenet5.dcnet and templates/mlp.dcnet).
LENET5_DEFAULTS = dict(data__dataset="digits", epochs=30, batch_size=64, optimizer__name="adam", optimizer__lr=0.002,
                       schedule__name="cosine", augmentation__rotation=10.0, augmentation__crop_padding=2)
MLP_DEFAULTS = dict(data__dataset="spirals", epochs=100, batch_size=64, optimizer__name="adam", optimizer__lr=0.01)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def template(name: str, defaults: dict, fallback, tmp_path: Path) -> Path:
    """A copy of the template, which carries these training defaults (checked)."""
    path = ROOT / "templates" / f"{name}.dcnet"
    graph = engine.load_graph(path) if path.exists() else fallback()
    expected = engine.Graph()
    set_training_defaults(expected, **defaults)
    assert TrainingConfig.from_dict(graph.training) == TrainingConfig.from_dict(expected.training), (
        f"templates/{name}.dcnet: its training defaults changed")
    out = tmp_path / f"{name}.dcnet"
    engine.save_graph(graph, out)
    return out


def mlp_graph():
    g = graphs.mlp(in_features=2, hidden=64, classes=3)
    return g


def test_lenet5_template_reaches_97_percent_on_the_digits(tmp_path, capsys, monkeypatch):
    """The acceptance command, on the template file exactly as shipped:
    `deepcanvas train templates/lenet5.dcnet --dataset digits --out DIR`. (Called in this process, it
    leaves the process's heap as it was: the program freezes its imports' objects, a caller's not.)"""
    import gc
    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    graph_file = ROOT / "templates" / "lenet5.dcnet"
    assert engine.load_graph(graph_file).training, "the LeNet-5 template lost its saved training defaults"
    run = tmp_path / "run"
    assert main(["train", str(graph_file), "--dataset", "digits", "--out", str(run), "--quiet"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "finished"
    assert report["test_accuracy"] >= 0.97, report["test_accuracy"]
    assert report["test"]["examples"] == 359
    assert not frozen


def test_train_writes_the_run_folder(tmp_path, capsys):
    graph_file = template("mlp", MLP_DEFAULTS, mlp_graph, tmp_path)
    run = tmp_path / "run"
    code = main(["train", str(graph_file), "--out", str(run), "--epochs", "3", "--option", "noise=0.3",
                 "--set", "schedule.name=step", "--set", "schedule.step_size=2", "--human-error", "0.02"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "test accuracy:" in out.out and "avoidable bias" in out.out and "epoch 3/3" in out.err
    for name in ("metrics.jsonl", "best.pt", "final.pt", "report.json", "run.json", "graph.dcnet"):
        assert (run / name).is_file(), name
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [line for line in lines if line["type"] == "epoch"]
    steps = [line for line in lines if line["type"] == "step"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and epochs[-1]["lr"] == pytest.approx(0.001)
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1)) and lines[-1]["type"] == "end"
    report = json.loads((run / "report.json").read_text())
    assert 0 <= report["test_accuracy"] <= 1 and report["doctor"]["human_error"] == 0.02
    record = json.loads((run / "run.json").read_text())
    assert len(record["graph_file_sha256"]) == 64 and record["seed"] == 0
    assert record["split"]["sizes"]["train"] == 900 and record["dataset"]["options"] == {"noise": 0.3}
    assert {"python", "torch", "numpy", "deepcanvas"} <= set(record["versions"]) and record["device"].split()[0] in ("cpu", "cuda", "mps")
    used = engine.load_graph(run / "graph.dcnet")
    assert used.training["epochs"] == 3 and used.training["data"]["options"] == {"noise": 0.3}
    # The weights only need weights_only loading; a later command continues the run.
    assert "fc1.weight" in torch.load(run / "best.pt", weights_only=True)["model"]
    assert main(["train", str(run / "graph.dcnet"), "--out", str(run), "--epochs", "5",
                 "--resume", str(run / "final.pt"), "--quiet"]) == 0
    again = json.loads((run / "report.json").read_text())
    assert again["run"]["epochs"] == 5 and len(again["run"]["history"]) == 5


def test_bad_input_is_named_with_exit_code_2(tmp_path, capsys):
    graph_file = template("mlp", MLP_DEFAULTS, mlp_graph, tmp_path)
    cases = [
        (["--dataset", "mnist"], "unknown data set 'mnist'"),
        (["--set", "optimizer.lr=-1"], "training.optimizer.lr: must be above 0"),
        (["--set", "optimiser.lr=1"], "training.optimiser.lr: no such setting"),
        (["--option", "noise"], "--option 'noise': expected KEY=VALUE"),
        (["--dataset", "digits"], "gives samples shaped (1, 8, 8) but Input 'point' expects (2,)"),
        (["--device", "tpu"], "training.device: expected one of auto, cpu, cuda, mps"),
        (["--resume", str(tmp_path / "nope.pt")], "nope.pt: no such checkpoint"),
    ]
    for extra, message in cases:
        assert main(["train", str(graph_file), "--out", str(tmp_path / "r"), *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert main(["train", str(tmp_path / "missing.dcnet"), "--out", str(tmp_path / "r")]) == 2
    assert "the file does not exist" in capsys.readouterr().err


def test_find_lr_and_dataset_list(tmp_path, capsys):
    graph_file = template("mlp", MLP_DEFAULTS, mlp_graph, tmp_path)
    assert main(["train", str(graph_file), "--out", str(tmp_path / "r"), "--find-lr"]) == 0
    assert "suggested learning rate" in capsys.readouterr().out
    # the batch finder (estimated on a CPU; measured with real steps on a GPU: tests/test_cuda.py)
    assert main(["train", str(graph_file), "--out", str(tmp_path / "r"), "--find-batch", "64", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "largest batch that fits on cpu" in out and ": 64 (estimated" in out and "the limit (64) fits" in out
    assert "tried: 1 fits, 2 fits" in out and not (tmp_path / "r" / "final.pt").exists()
    assert main(["train", str(graph_file), "--out", str(tmp_path / "r"), "--find-batch", "-3"]) == 2
    assert "--find-batch -3" in capsys.readouterr().err
    assert main(["datasets"]) == 0
    listing = capsys.readouterr().out
    assert "digits" in listing and "shakespeare" in listing and "noise=0.2" in listing
    assert main(["datasets", "--json"]) == 0
    assert {d["name"] for d in json.loads(capsys.readouterr().out)} >= {"digits", "spirals", "dates"}


def test_step_records_carry_the_epoch_of_their_step(tmp_path, capsys):
    """Short epochs end faster than progress events are sent: one event holds steps of several epochs,
    each step's record names its own epoch (never one that did not run)."""
    graph_file = template("mlp", MLP_DEFAULTS, mlp_graph, tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(graph_file), "--out", str(run), "--epochs", "6", "--quiet"]) == 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    per_epoch = 900 // 64 + 1  # 15 steps
    steps = [line for line in lines if line["type"] == "step"]
    assert len(steps) == 6 * per_epoch
    assert [s["epoch"] for s in steps] == [(s["step"] - 1) // per_epoch + 1 for s in steps]
    ends = {e["epoch"]: e["step"] for e in lines if e["type"] == "epoch"}
    assert ends == {k: k * per_epoch for k in range(1, 7)}


def test_a_run_folder_is_never_overwritten_by_mistake(tmp_path, capsys):
    graph_file = template("mlp", MLP_DEFAULTS, mlp_graph, tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(graph_file), "--out", str(run), "--epochs", "2", "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    # a new run into it is refused, and so are mistaken resumes, before anything in it changes
    assert main(["train", str(graph_file), "--out", str(run), "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err
    assert main(["train", str(graph_file), "--out", str(run), "--epochs", "3", "--resume", str(run / "best.pt")]) == 2
    assert "holds weights only" in capsys.readouterr().err
    assert main(["train", str(graph_file), "--out", str(run), "--epochs", "2", "--resume", str(run / "final.pt")]) == 2
    assert "has trained 2 epochs already; give --epochs above 2" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # the learning-rate finder writes nothing there either, nor in a folder that did not exist
    assert main(["train", str(graph_file), "--out", str(tmp_path / "new"), "--find-lr"]) == 0
    assert not (tmp_path / "new").exists()
    # --overwrite replaces the run: its log starts afresh
    assert main(["train", str(graph_file), "--out", str(run), "--epochs", "1", "--quiet", "--overwrite"]) == 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines if e["type"] == "epoch"] == [1] and len([e for e in lines if e["type"] == "end"]) == 1
    # --resume with --overwrite is refused (it deleted the checkpoint it was to continue); so is resuming
    # into a folder of another run
    assert main(["train", str(graph_file), "--out", str(run), "--epochs", "2", "--resume", str(run / "final.pt"),
                 "--overwrite"]) == 2
    assert "give one of them" in capsys.readouterr().err and (run / "final.pt").is_file()
    other = tmp_path / "other"
    assert main(["train", str(graph_file), "--out", str(other), "--epochs", "1", "--quiet"]) == 0
    assert main(["train", str(graph_file), "--out", str(other), "--epochs", "2", "--resume", str(run / "final.pt")]) == 2
    assert f"give --out {run} (its own folder) or a new folder" in capsys.readouterr().err
    # resuming goes on with the run's log
    assert main(["train", str(graph_file), "--out", str(run), "--epochs", "2", "--quiet",
                 "--resume", str(run / "final.pt")]) == 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines if e["type"] == "epoch"] == [1, 2]


def test_a_nan_run_names_the_node_where_it_began(tmp_path, capsys):
    graph_file = template("mlp", MLP_DEFAULTS, mlp_graph, tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(graph_file), "--out", str(run), "--epochs", "2", "--lr", "1e6",
                 "--optimizer", "sgd"]) == 1
    err = capsys.readouterr().err
    assert err.count("the loss became NaN") == 1, err  # said once
    assert "the first non-finite value:" in err
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "failed" and report["nonfinite"]["node"] in engine.load_graph(graph_file).nodes
    assert report["nonfinite"]["message"] in err


def test_a_resume_from_a_file_that_is_no_checkpoint_says_so(tmp_path, capsys):
    graph_file = template("mlp", MLP_DEFAULTS, mlp_graph, tmp_path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(200)))
    assert main(["train", str(graph_file), "--out", str(tmp_path / "r"), "--resume", str(junk)]) == 2
    err = capsys.readouterr().err
    assert f"{junk}: not a readable checkpoint: the file does not begin as one does" in err
    assert not (tmp_path / "r").exists()  # nothing was made for it
