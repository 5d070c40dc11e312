"""ONNX import (engine.onnx_import): op-by-op mapping onto node types, weights beside the graph, the
check against onnxruntime, unsupported ops listed; and the round trip export -> import -> export of
every template.

The templates run as reduced copies (see ``reduced``): image inputs at 64x64 where the network accepts
it, adaptive pools set to the size they then see, hidden Linear layers capped at 256 units. Node types,
wiring and ONNX ops are the template's; only sizes shrink, so the whole file stays within its time
budget (VGG-16 at full size alone takes a minute: benchmarks/bench_onnx.py exports every template at
full size).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import engine
from engine import export as ex
from engine.cli import main
from engine.onnx_import import OnnxImportError, import_onnx, save_imported
from engine.onnx_weights import build_with_weights

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(ROOT.glob("templates/*.dcnet"))


def _ort(path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)


# ----------------------------------------------------------------------------- templates: the round trip
def _feeds_output(graph: engine.Graph, nid: str) -> bool:
    return any(graph.nodes[e.dst].type == "Output" for e in graph.edges_from(nid))


def reduced(graph: engine.Graph) -> engine.Graph:
    """A smaller copy of a template with the same node types and wiring (see the module docstring)."""
    g = graph.copy()
    for nid, n in g.nodes.items():
        if n.type == "Linear" and n.params.get("out_features", 0) > 256 and not _feeds_output(g, nid):
            n.params["out_features"] = 256
            n.params["in_features"] = 0
    inputs = [n for n in g.nodes.values() if n.type == "Input" and len(n.params["shape"]) == 3]
    if not inputs or all(n.params["shape"][1] <= 64 for n in inputs):
        return g
    original = {n.id: list(n.params["shape"]) for n in inputs}
    for size in (64, 96, 128, 160, None):
        for n in inputs:
            n.params["shape"] = original[n.id] if size is None else [original[n.id][0], size, size]
        inf = engine.infer_shapes(g)
        for nid, n in g.nodes.items():  # an adaptive pool gets a window that divides its input
            if n.type == "AdaptiveAvgPool2d" and inf.nodes[nid].inputs:
                h, w = inf.nodes[nid].inputs["in"].shape[2:]
                want = n.params["output_size"]
                want = want if isinstance(want, list) else [want, want]
                n.params["output_size"] = [max(d for d in range(1, min(o, s) + 1) if s % d == 0)
                                           for o, s in zip(want, (h, w))]
        for n in g.nodes.values():  # layers take their input size from the wire
            if n.type == "Linear":
                n.params["in_features"] = 0
        if engine.infer_shapes(g).ok:
            return g
    return g


def _output_shapes(graph):
    inf = engine.infer_shapes(graph)
    return [str(inf.nodes[nid].inputs["in"]) for nid in inf.ids_with_role("output")]


# The first export uses the default exporter (dynamo), except for these: the deepest graphs, where
# dynamo takes 7-10 s each here, and seq2seq, whose 3-D attention dynamo cannot translate (the default
# falls back to the legacy exporter after trying). benchmarks/bench_onnx.py exports every template with
# the default exporter at full size.
FIRST_EXPORTER = {"googlenet": "legacy", "resnet50": "legacy", "seq2seq_attention": "legacy",
                  "bigru_tagger": "legacy"}


def _random_feeds(inputs: list[dict], batch: int = 3) -> dict:
    rng = np.random.default_rng(1)
    feeds = {}
    for i in inputs:
        shape = [batch, *i["shape"][1:]]
        feeds[i["name"]] = (rng.integers(0, 2, shape) if i["dtype"] == "int64"
                            else rng.standard_normal(shape).astype(np.float32))
    return feeds


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_every_template_exports_imports_and_reexports_the_same(path, tmp_path):
    torch.manual_seed(0)
    graph = reduced(engine.load_graph(path))
    inf = engine.infer_shapes(graph)
    assert inf.ok, [p.message for p in inf.errors]
    exporter = FIRST_EXPORTER.get(path.stem, "auto")
    first = ex.export_graph(graph, tmp_path / "a.onnx", exporter=exporter)  # verified inside, or it raises
    assert first.ok and first.max_diff <= 1e-4 and len(first.checks) == 2
    assert first.checks[0].batch != first.checks[1].batch

    result = import_onnx(tmp_path / "a.onnx")
    assert result.report.max_diff <= 1e-4
    save_imported(result, tmp_path / "b.dcnet")
    back = engine.load_graph(tmp_path / "b.dcnet")
    assert _output_shapes(back) == _output_shapes(graph)
    assert engine.infer_shapes(back).total_params == inf.total_params
    for role in ("Input", "Output"):  # same names, same order (the order of forward()'s arguments and results)
        assert [n.label for n in back.nodes.values() if n.type == role] == \
            [n.label for n in graph.nodes.values() if n.type == role]

    second = ex.export_graph(back, tmp_path / "c.onnx", graph_file=tmp_path / "b.dcnet", exporter="legacy",
                             opset=17)
    assert "weights file" in second.weights and second.ok
    x = _random_feeds(first.inputs)
    a, c = _ort(tmp_path / "a.onnx", x), _ort(tmp_path / "c.onnx", x)
    assert len(a) == len(c)
    for ya, yc in zip(a, c):
        assert ya.shape == yc.shape and np.abs(ya - yc).max() <= 1e-4


def test_reduced_copies_keep_node_types_and_wiring():
    for path in TEMPLATES:
        g = engine.load_graph(path)
        r = reduced(g)
        assert sorted(n.type for n in r.nodes.values()) == sorted(n.type for n in g.nodes.values())
        assert r.edges == g.edges


# ----------------------------------------------------------------------------- hand-made ONNX files
def _model(nodes, inputs, outputs, inits=(), opset=18, name="hand made"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=[numpy_helper.from_array(v, k)
                                                                          for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _f(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_matmul_add_gemm_and_friends_map_to_nodes_and_compute_the_same(tmp_path):
    inits = [("w1", _f(6, 5)), ("b1", _f(5, seed=1)), ("w2", _f(4, 5, seed=2)), ("c2", _f(4, seed=3)),
             ("ratio", np.array(0.25, dtype=np.float32))]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="dense1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="dense1_bias"),
        helper.make_node("LeakyRelu", ["hb"], ["a"], alpha=0.2),
        helper.make_node("Dropout", ["a", "ratio"], ["d"]),
        helper.make_node("Gemm", ["d", "w2", "c2"], ["g"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Sigmoid", ["g"], ["s"]),
        helper.make_node("Mul", ["g", "s"], ["silu"]),  # x * sigmoid(x): Sigmoid + Multiply
        helper.make_node("Softmax", ["silu"], ["p"], axis=-1),
    ]
    m = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6])],
               [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 4])], inits)
    onnx.save(m, tmp_path / "m.onnx")
    result = import_onnx(tmp_path / "m.onnx")
    types = [n.type for n in result.graph.nodes.values()]
    assert types == ["Input", "Linear", "LeakyReLU", "Dropout", "Linear", "Sigmoid", "Multiply", "Softmax",
                     "Output"]
    assert result.report.ops["Add"] == 1 and result.report.ops["MatMul"] == 1  # fused into one Linear
    assert result.report.max_diff <= 1e-5 and len(result.report.checks) == 2
    dense = result.graph.by_label("dense1")
    assert dense.params["out_features"] == 5 and dense.params["bias"] is True
    np.testing.assert_allclose(result.weights[f"{dense.id}/weight"].numpy(), inits[0][1].T)


def test_conv_bn_pool_concat_flatten_and_shape_ops(tmp_path):
    c = 3
    inits = [("conv.weight", _f(4, c, 3, 3)), ("conv.bias", _f(4, seed=1)),
             ("bn.scale", _f(4, seed=2)), ("bn.shift", _f(4, seed=3)), ("bn.mean", _f(4, seed=4)),
             ("bn.var", np.abs(_f(4, seed=5)) + 0.5), ("target", np.array([0, -1], dtype=np.int64)),
             ("axes", np.array([2, 3], dtype=np.int64))]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn.scale", "bn.shift", "bn.mean", "bn.var"], ["b1"],
                         epsilon=1e-3, momentum=0.8),
        helper.make_node("Relu", ["b1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["r1"], ["p2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         count_include_pad=1),
        helper.make_node("Concat", ["p1", "p2"], ["cat"], axis=1),
        helper.make_node("Transpose", ["cat"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["t"], ["u"], perm=[0, 3, 1, 2]),
        helper.make_node("ReduceMean", ["u", "axes"], ["gap"], keepdims=1),
        helper.make_node("Reshape", ["gap", "target"], ["flat"]),
        helper.make_node("Flatten", ["u"], ["flat2"], axis=1),
    ]
    m = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", c, 8, 8])],
               [helper.make_tensor_value_info("flat", TensorProto.FLOAT, ["n", 8]),
                helper.make_tensor_value_info("flat2", TensorProto.FLOAT, ["n", 128])], inits)
    onnx.save(m, tmp_path / "m.onnx")
    result = import_onnx(tmp_path / "m.onnx")
    g = result.graph
    assert g.by_label("conv").type == "Conv2d" and g.by_label("conv").params["padding"] == [1, 1]
    bn = next(n for n in g.nodes.values() if n.type == "BatchNorm2d")
    assert bn.params["eps"] == pytest.approx(1e-3) and bn.params["momentum"] == pytest.approx(0.2)
    kinds = [n.type for n in g.nodes.values()]
    for t in ("MaxPool2d", "AvgPool2d", "Concat", "Permute", "GlobalAvgPool2d", "Flatten"):
        assert t in kinds
    assert result.report.max_diff <= 1e-5


def test_unsupported_ops_are_all_listed_by_name_and_type_and_nothing_is_written(tmp_path):
    inits = [("w", _f(4, 3, 3, 3)), ("k", _f(1, 4, 1, 1))]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[0, 0, 1, 1], name="lopsided"),
        helper.make_node("Cos", ["c"], ["cos"], name="wave"),
        helper.make_node("Add", ["cos", "k"], ["plus"], name="shift"),
        helper.make_node("Relu", ["plus"], ["y"], name="after"),
    ]
    m = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 7, 7])], inits)
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(OnnxImportError) as err:
        import_onnx(tmp_path / "m.onnx")
    text = str(err.value)
    assert "'lopsided' (Conv): asymmetric padding" in text
    assert "'wave' (Cos): no DeepCanvas node type for the ONNX op Cos" in text
    assert err.value.blocked == 2 and "2 further node(s)" in text  # shift and after read what failed
    rc = main(["import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out.dcnet")])
    assert rc == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_a_constant_operand_is_named_as_the_reason(tmp_path):
    nodes = [helper.make_node("Add", ["x", "k"], ["y"], name="bias_add")]
    m = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])], [("k", _f(3))])
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(OnnxImportError, match=r"'bias_add' \(Add\): adds the constant 'k'"):
        import_onnx(tmp_path / "m.onnx")


def test_int64_ids_through_an_embedding_table_and_a_static_batch(tmp_path):
    table = _f(20, 6)
    nodes = [helper.make_node("Gather", ["embed.weight", "ids"], ["e"], axis=0),
             helper.make_node("Flatten", ["e"], ["f"], axis=1)]
    m = _model(nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])],
               [helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, 24])], [("embed.weight", table)])
    onnx.save(m, tmp_path / "m.onnx")
    result = import_onnx(tmp_path / "m.onnx")
    emb = result.graph.by_label("embed")
    assert emb.type == "Embedding" and emb.params["num_embeddings"] == 20
    assert [c["batch"] for c in result.report.checks] == [1, 1]  # the file fixes batch 1: checked at 1


def test_unreadable_and_missing_files_get_one_clear_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(OnnxImportError, match="not a readable ONNX file|onnx.checker"):
        import_onnx(bad)
    with pytest.raises(OnnxImportError, match="does not exist"):
        import_onnx(tmp_path / "nope.onnx")


# ----------------------------------------------------------------------------- files written, weights used
def test_import_writes_graph_and_weights_that_compile_train_and_export_from_them(tmp_path):
    from graphs import residual_block

    g = residual_block()
    model = engine.compile_graph(g, seed=3).eval()
    with torch.no_grad():  # make the BN statistics and weights non-trivial
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        model.bn1.running_mean.uniform_(-0.5, 0.5)
        model.bn1.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), tmp_path / "ckpt.pt")
    ex.export_graph(g, tmp_path / "res.onnx", weights=tmp_path / "ckpt.pt", exporter="legacy", opset=13)
    rc = main(["import", str(tmp_path / "res.onnx"), "-o", str(tmp_path / "res.dcnet")])
    assert rc == 0
    assert (tmp_path / "res.safetensors").is_file()
    back = engine.load_graph(tmp_path / "res.dcnet")
    assert back.weights == "res.safetensors"
    compiled = build_with_weights(back, tmp_path / "res.dcnet")
    x = torch.randn(5, 4, 8, 8)
    with torch.no_grad():
        ours = compiled.model.eval()(x)
        theirs = model(x)
    assert torch.allclose(ours, theirs, atol=1e-5)
    # exporting the imported graph starts from its weights file (no --weights given)
    rc = main(["export", str(tmp_path / "res.dcnet"), "--onnx", str(tmp_path / "again.onnx")])
    assert rc == 0
    y = _ort(tmp_path / "again.onnx", {"x": x.numpy()})[0]
    assert np.abs(y - theirs.numpy()).max() <= 1e-4


def test_import_cli_json_report(tmp_path, capsys):
    from graphs import mlp

    ex.export_graph(mlp(), tmp_path / "mlp.onnx")
    rc = main(["import", str(tmp_path / "mlp.onnx"), "-o", str(tmp_path / "mlp"), "--json"])
    assert rc == 0
    import json
    report = json.loads(capsys.readouterr().out)
    assert report["graph_file"].endswith("mlp.dcnet") and report["max_diff"] <= 1e-4
    assert report["ops"] == {"Gemm": 2, "Relu": 1} and math.isfinite(report["max_diff"])
