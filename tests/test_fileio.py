"""The .dcnet file format (engine/fileio.py): canonical bytes, migration, atomic saves, clear errors,
nothing lost, nothing executed."""

from __future__ import annotations

import json
import os
import stat

import pytest

import engine
from engine import GraphFileError, dumps, load_graph, loads, save_graph
from engine.fileio import write_atomic
from graphs import ALL, lenet5, mlp


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- canonical bytes
@pytest.mark.parametrize("name", sorted(ALL))
def test_load_then_save_gives_identical_bytes(tmp_path, name):
    g = ALL[name]()
    for i, nid in enumerate(g.nodes):
        g.layout[nid] = (i * 120.0, -40.5 * i)
    g.training = {"optimizer": {"name": "Adam", "lr": 0.001}, "epochs": 3, "notes": "ünïcode ✓"}
    first = tmp_path / "a.dcnet"
    save_graph(g, first)
    again = tmp_path / "b.dcnet"
    save_graph(load_graph(first), again)
    assert first.read_bytes() == again.read_bytes()
    # and the loaded document is the same document
    h = load_graph(again)
    assert [(n.id, n.type, n.label, n.params) for n in h.nodes.values()] == \
           [(n.id, n.type, n.label, n.params) for n in g.nodes.values()]
    assert h.edges == g.edges and h.layout == g.layout and h.training == g.training
    assert (h.name, h.description) == (g.name, g.description)


def test_the_file_is_diff_friendly_json():
    text = dumps(lenet5())
    doc = json.loads(text)
    assert doc["format"] == "deepcanvas.graph" and doc["version"] == 2
    assert {"from": "conv1:out", "to": "tanh1:in"} in doc["edges"]
    lines = text.splitlines()
    assert '    {"from": "conv1:out", "to": "tanh1:in"},' in lines  # one line per wire
    assert text.endswith("}\n") and "\t" not in text
    # one param change touches one line
    g = lenet5()
    g.set_param("fc1", "out_features", 100)
    changed = [a for a, b in zip(lines, dumps(g).splitlines()) if a != b]
    assert len(changed) == 1 and '"out_features": 100' in dumps(g)


def test_empty_graph_round_trips():
    g = engine.Graph("empty")
    assert dumps(loads(dumps(g))) == dumps(g)


def test_extension():
    assert engine.EXTENSION == ".dcnet"


# ----------------------------------------------------------------------------- migration
V1 = {
    "format_version": 1,
    "name": "old mlp",
    "nodes": [
        {"id": "x", "type": "Input", "label": "x", "params": {"shape": [4]}, "pos": [0, 0]},
        {"id": "fc", "type": "Dense", "label": "fc", "params": {"out_features": 3}, "pos": [150.5, 10]},
        {"id": "y", "type": "Output", "label": "y", "params": {}, "pos": [300, 0]},
    ],
    "edges": [["x", "out", "fc", "in"], ["fc", "out", "y", "in"]],
}


def test_a_version_1_file_migrates_on_load(tmp_path):
    path = tmp_path / "old.dcnet"
    path.write_text(json.dumps(V1))
    g = load_graph(path)
    assert [str(e) for e in g.edges] == ["x:out -> fc:in", "fc:out -> y:in"]
    assert g.layout == {"x": (0.0, 0.0), "fc": (150.5, 10.0), "y": (300.0, 0.0)}
    assert g.node("fc").type == "Linear"  # the legacy alias is renamed
    assert all("pos" not in n.params for n in g.nodes.values())
    inf = engine.infer_shapes(g)
    assert inf.ok and str(inf.shape("fc")) == "(N, 3)"
    save_graph(g, path)
    doc = json.loads(path.read_text())
    assert doc["version"] == 2 and "format_version" not in doc
    assert doc["edges"][0] == {"from": "x:out", "to": "fc:in"}
    assert doc["layout"]["fc"] == [150.5, 10]
    assert dumps(load_graph(path)) == path.read_text()


def test_a_broken_wire_in_a_version_1_file_is_reported_not_dropped():
    doc = json.loads(json.dumps(V1))
    doc["edges"].append(["x", "out", "fc"])
    with pytest.raises(GraphFileError) as exc:
        loads(json.dumps(doc))
    assert any(p.startswith("edges[2]:") for p in exc.value.problems)


# ----------------------------------------------------------------------------- atomic saves
def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "net.dcnet"
    save_graph(mlp(), path)
    old = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        save_graph(lenet5(), path)
    assert path.read_bytes() == old
    assert _files(tmp_path) == ["net.dcnet"]


def test_a_save_interrupted_while_writing_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "net.dcnet"
    path.write_text("precious")

    def broken_fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new text")
    assert path.read_text() == "precious" and _files(tmp_path) == ["net.dcnet"]


def test_a_save_keeps_the_file_mode_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "net.dcnet"
    save_graph(mlp(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o600)
    save_graph(lenet5(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _files(tmp_path) == ["net.dcnet"]
    assert load_graph(path).name == "LeNet-5"


# ----------------------------------------------------------------------------- malformed files
def _problems(text: str) -> list[str]:
    with pytest.raises(GraphFileError) as exc:
        loads(text, "bad.dcnet")
    assert "bad.dcnet" in str(exc.value)
    for p in exc.value.problems:
        assert p in str(exc.value)
    return exc.value.problems


def test_not_json_names_line_and_column():
    text = '{\n  "version": 2,\n  "nodes": [,]\n}'
    assert _problems(text) == ["line 3, column 13: not valid JSON (Expecting value)"]


def _doc(nodes, edges=(), **extra):
    return json.dumps({"format": "deepcanvas.graph", "version": 2, "nodes": list(nodes), "edges": list(edges),
                       **extra})


@pytest.mark.parametrize("text, expected", [
    ("[1, 2]", "the file must hold a JSON object with 'nodes' and 'edges'"),
    ('"just text"', "the file must hold a JSON object"),
    (json.dumps({"version": 3, "nodes": []}), "field 'version': the file was written by a newer DeepCanvas"),
    (json.dumps({"nodes": []}), "field 'version': expected a format version number, got None"),
    (json.dumps({"version": True, "nodes": []}), "field 'version': expected a format version number"),
    (json.dumps({"format": "other", "version": 2}), "field 'format': expected 'deepcanvas.graph', got 'other'"),
    (_doc([{"type": "ReLU"}]), "nodes[0]: field 'id' must be non-empty text, got None"),
    (_doc([{"id": "a", "type": "ReLU"}, {"id": "a", "type": "Tanh"}]),
     "node 'a': the id is used by an earlier node too"),
    (_doc([{"id": "a"}]), "node 'a': field 'type' must be a node type name, got None"),
    (_doc([{"id": "a", "type": "ReLU", "label": ""}]), "node 'a': field 'label' must be non-empty text"),
    (_doc([{"id": "a", "type": "ReLU", "params": [1]}]), "node 'a': field 'params' must be an object"),
    (_doc([{"id": "a", "type": "ReLU", "colour": "red"}]), "node 'a': unknown field 'colour'"),
    (_doc(["a"]), "nodes[0]: expected an object with id, type, label and params"),
    (_doc([], [{"from": "a"}]), "edges[0]: expected"),
    (_doc([], ["a:out -> b:in"]), "edges[0]: expected"),
    (_doc([], [{"from": "a:out", "to": "b"}]), "edges[0]: expected"),
    (_doc([], layout={"a": [1]}), "layout of node 'a': expected [x, y], got [1]"),
    (_doc([], training=[1]), "field 'training': expected an object"),
    (_doc([], extra=1), "unknown top-level field 'extra'"),
    (json.dumps({"version": 2, "nodes": {}}), "field 'nodes': expected a list of nodes"),
    (json.dumps({"version": 2, "name": 5}), "field 'name': expected text, got 5"),
])
def test_malformed_documents_name_the_location(text, expected):
    problems = _problems(text)
    assert any(expected in p for p in problems), problems


def test_every_problem_of_a_file_is_listed_at_once():
    text = _doc([{"type": "ReLU"}, {"id": "b", "type": "ReLU", "params": 3}, {"id": "c", "type": "Tanh"}],
                [{"from": "c:out"}])
    problems = _problems(text)
    assert len(problems) == 3
    assert [p.split(":")[0] for p in problems] == ["nodes[0]", "node 'b'", "edges[0]"]


def test_missing_file_folder_and_binary_file(tmp_path):
    with pytest.raises(GraphFileError) as exc:
        load_graph(tmp_path / "nope.dcnet")
    assert exc.value.problems == ["the file does not exist"] and "nope.dcnet" in str(exc.value)
    with pytest.raises(GraphFileError) as exc:
        load_graph(tmp_path)
    assert exc.value.problems == ["this is a folder, not a graph file"]
    blob = tmp_path / "blob.dcnet"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(GraphFileError, match="not UTF-8"):
        load_graph(blob)
    assert issubclass(GraphFileError, ValueError)


# ----------------------------------------------------------------------------- nothing lost
def test_unknown_types_bad_params_and_broken_wires_are_kept_and_reported(tmp_path):
    g = mlp()
    text = dumps(g)
    doc = json.loads(text)
    for node in doc["nodes"]:
        if node["id"] == "relu":
            node["type"] = "QuantumReLU"
            node["params"] = {"spin": "up"}
        if node["id"] == "head":
            node["params"]["out_features"] = "ten"
            node["params"]["colour"] = "red"
    doc["edges"].append({"from": "ghost:out", "to": "logits:in"})
    path = tmp_path / "kept.dcnet"
    path.write_text(json.dumps(doc))
    loaded = load_graph(path)
    assert loaded.node("relu").type == "QuantumReLU" and loaded.node("relu").params == {"spin": "up"}
    assert loaded.node("head").params["out_features"] == "ten"
    assert loaded.node("head").params["colour"] == "red"
    assert "ghost:out -> logits:in" in [str(e) for e in loaded.edges]

    inf = engine.infer_shapes(loaded)
    codes = {(p.code, p.node, p.param) for p in inf.problems}
    assert ("unknown_type", "relu", None) in codes
    assert ("param", "head", "out_features") in codes
    assert ("unknown_param", "head", "colour") in codes
    assert ("bad_edge", "logits", None) in codes
    [msg] = [p.message for p in inf.problems_for("relu")]
    assert "'relu' has the unknown node type 'QuantumReLU'" in msg

    # saving keeps all of it, byte for byte the next time round
    save_graph(loaded, path)
    assert dumps(load_graph(path)) == path.read_text()
    again = json.loads(path.read_text())
    by_id = {n["id"]: n for n in again["nodes"]}
    assert by_id["relu"]["type"] == "QuantumReLU" and by_id["head"]["params"]["out_features"] == "ten"


def test_loading_never_executes_code(tmp_path):
    sentinel = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    g = mlp()
    g.set_label("hidden", payload)
    g.name = payload + '\n"""'
    g.node("relu").params["evil"] = payload
    g.training = {"hook": payload}
    path = tmp_path / "evil.dcnet"
    save_graph(g, path)
    loaded = load_graph(path)
    engine.infer_shapes(loaded)
    save_graph(loaded, path)
    assert not sentinel.exists()
    assert loaded.node("hidden").label == payload
    assert loaded.node("relu").params["evil"] == payload
    assert loaded.name == payload + '\n"""' and loaded.training == {"hook": payload}


def test_json_special_floats_in_params_are_kept_and_refused_by_validation():
    g = mlp()
    doc = json.loads(dumps(g))
    text = json.dumps(doc).replace('"out_features": 8', '"out_features": NaN')
    loaded = loads(text)
    inf = engine.infer_shapes(loaded)
    assert [p.param for p in inf.problems_for("hidden")] == ["out_features"]
    assert dumps(loads(dumps(loaded))) == dumps(loaded)


def test_a_non_finite_position_does_not_make_an_unreadable_file(tmp_path):
    g = mlp()
    doc = json.loads(dumps(g))
    doc["layout"] = {"x": [1e400, 0]}
    loaded = loads(json.dumps(doc).replace("Infinity", "1e400"))
    path = tmp_path / "pos.dcnet"
    save_graph(loaded, path)
    load_graph(path)


def test_the_weights_a_graph_starts_from_are_part_of_the_document(tmp_path):
    import torch

    from engine.compiler import build
    from engine.onnx_weights import WeightsError, build_with_weights, save_node_weights, to_node_keys

    g = mlp()
    compiled = build(g, seed=7)
    state, _ = to_node_keys(compiled.model.state_dict(), compiled.plan.attrs)
    save_node_weights(tmp_path / "mlp.safetensors", state, {})
    g.weights = "mlp.safetensors"
    save_graph(g, tmp_path / "mlp.dcnet")
    again = load_graph(tmp_path / "mlp.dcnet")
    assert again.weights == "mlp.safetensors" and again.path == str(tmp_path / "mlp.dcnet")
    started = build_with_weights(again, seed=0).model  # another seed: the file's weights win
    for name, value in compiled.model.state_dict().items():
        assert torch.equal(started.state_dict()[name], value)
    (tmp_path / "mlp.safetensors").unlink()
    with pytest.raises(WeightsError, match="does not exist"):
        build_with_weights(again)
    with pytest.raises(GraphFileError, match="weights"):
        loads(dumps(g).replace('"weights": "mlp.safetensors"', '"weights": 3'))


def test_write_atomic_names_a_missing_folder(tmp_path):
    from engine.fileio import write_atomic

    with pytest.raises(FileNotFoundError) as err:
        write_atomic(tmp_path / "no" / "x.py", "text")
    assert str(err.value) == f"cannot write {tmp_path / 'no' / 'x.py'}: the folder {tmp_path / 'no'} does not exist"
