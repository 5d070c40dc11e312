"""DeepCanvas engine: graph documents, node specs, shape inference, compilation to PyTorch, code
generation. Pure Python + torch; never imports Qt.

Public API::

    graph = engine.load_graph("net.dcnet")          # or engine.Graph() and graph.add_node(...)
    result = engine.infer_shapes(graph)              # per-port shapes, costs, every problem
    model = engine.compile_graph(graph)              # an ordinary torch.nn.Module
    loss_fn = engine.compile_loss(graph)             # loss(*outputs, *targets) -> scalar
    source = engine.generate_code(graph)             # readable PyTorch source
    engine.save_graph(graph, "net.dcnet")            # atomic, diff-friendly

torch is imported only by the compiler, so validating and editing graphs stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .fileio import EXTENSION, GraphFileError, dumps, load_graph, loads, save_graph  # noqa: E402
from .graph import Edge, Graph, GraphEditError, Node  # noqa: E402
from .inference import GraphError, Inference, Problem, check_connection, infer_shapes  # noqa: E402
from .nodes import REGISTRY  # noqa: E402
from .params import ParamError  # noqa: E402
from .spec import NodeSpec, TensorInfo  # noqa: E402


def generate_code(graph: Graph, class_name: str | None = None, input_norm: dict | None = None) -> str:
    """Readable PyTorch source for the graph (see ``engine.codegen``; ``input_norm``: the input
    standardization of the weights it is for)."""
    from .codegen import generate_code as _gen
    return _gen(graph, class_name, input_norm)


def compile_graph(graph: Graph, seed: int | None = 0):
    """The graph as a ``torch.nn.Module`` (see ``engine.compiler``)."""
    from .compiler import compile_graph as _compile
    return _compile(graph, seed)


def compile_loss(graph: Graph):
    """The graph's loss nodes as a ``torch.nn.Module`` (see ``engine.compiler``)."""
    from .compiler import compile_loss as _compile_loss
    return _compile_loss(graph)


__all__ = [
    "__version__", "Graph", "Node", "Edge", "GraphEditError", "GraphFileError", "GraphError", "ParamError",
    "Problem", "Inference", "NodeSpec", "TensorInfo", "REGISTRY", "EXTENSION", "load_graph", "loads",
    "save_graph", "dumps", "infer_shapes", "check_connection", "compile_graph", "compile_loss",
    "generate_code",
]
