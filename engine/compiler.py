"""The compiler: a valid graph becomes an ordinary ``torch.nn.Module``.

It executes the source that ``engine.codegen`` writes (so the trained model and the code a user reads
are the same thing) inside a fresh module object registered in ``sys.modules`` and ``linecache``:
tracebacks point at the generated line, ``inspect.getsource`` works, and instances pickle within the
process. The model's ``forward`` is straight-line code, as fast as hand-written PyTorch.
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import types
from dataclasses import dataclass, field

import torch
from torch import nn

from .codegen import Plan, _generate, make_plan
from .graph import Graph
from .inference import Inference, require_valid


class CompileError(RuntimeError):
    """A valid graph whose module could not be built (usually: its weights do not fit in memory)."""


@dataclass
class Compiled:
    """Everything compiling a graph gives: the model, its loss (None without loss nodes), the source
    they were built from, the names chosen and the shape inference they rest on."""

    model: nn.Module
    loss: nn.Module | None
    source: str
    plan: Plan
    inference: Inference
    # The networks a graph holds (its top-level composite nodes, e.g. a GAN's generator and
    # discriminator), by label; each is a submodule of ``model`` and can be trained or exported alone.
    networks: dict[str, nn.Module] = field(default_factory=dict)


_PACKAGE = "deepcanvas_generated"  # where generated modules live in sys.modules (so instances pickle)


def _load_source(source: str, class_name: str) -> types.ModuleType:
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    if _PACKAGE not in sys.modules:
        package = types.ModuleType(_PACKAGE, "Modules that DeepCanvas compiled from graphs in this process.")
        package.__path__ = []
        sys.modules[_PACKAGE] = package
    mod_name = f"{_PACKAGE}.{class_name}_{digest}"
    if mod_name in sys.modules:  # same source compiled before: reuse its classes
        return sys.modules[mod_name]
    filename = f"<deepcanvas {class_name} {digest}>"
    module = types.ModuleType(mod_name)
    module.__file__ = filename
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(code, module.__dict__)  # the source is ours: see engine.codegen on what can reach it
    sys.modules[mod_name] = module
    setattr(sys.modules[_PACKAGE], mod_name.rpartition(".")[2], module)
    return module


def build(graph: Graph, seed: int | None = 0, class_name: str | None = None) -> Compiled:
    """Compile a graph into model and loss modules. ``seed`` fixes the initial weights (the same graph
    and seed always give the same weights) without touching the global random state; ``None`` draws
    them from torch's global generator like a hand-written module would."""
    inf = require_valid(graph)
    plan = make_plan(graph, inf, class_name)
    source = _generate(graph, inf, plan)
    module = _load_source(source, plan.class_name)
    model_cls = getattr(module, plan.class_name)
    try:
        if seed is None:
            model = model_cls()
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = model_cls()
    except (RuntimeError, MemoryError) as exc:  # e.g. not enough memory for the weights
        raise CompileError(f"building '{graph.name}' ({inf.total_params:,} parameters, "
                           f"{inf.total_params * 4 / 2**30:.2f} GiB as float32) failed: {exc}") from exc
    loss_cls = getattr(module, f"{plan.class_name}Loss", None)
    loss = loss_cls() if loss_cls is not None and plan.losses else None
    networks = {graph.nodes[nid].label: getattr(model, plan.attrs[nid]) for nid in plan.owned
                if graph.registry[graph.nodes[nid].type].subgraph is not None}
    return Compiled(model, loss, source, plan, inf, networks)


def compile_graph(graph: Graph, seed: int | None = 0) -> nn.Module:
    """The model of a graph as an ``nn.Module``; its loss is not part of it (see ``compile_loss``)."""
    return build(graph, seed).model


def compile_loss(graph: Graph) -> nn.Module:
    """The graph's loss nodes as a module: ``loss(*outputs, *targets) -> scalar``. Raises ``GraphError``
    for an invalid graph and ``ValueError`` when the graph has no loss node."""
    compiled = build(graph)
    if compiled.loss is None:
        raise ValueError(f"graph '{graph.name}' has no loss node; add one (e.g. CrossEntropyLoss) reading an "
                         "Output and a Target")
    return compiled.loss
