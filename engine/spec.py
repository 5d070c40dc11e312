"""The node-spec machinery: one declarative ``NodeSpec`` per node type.

A spec says everything about a node type once: its name, category, ports, typed params, the shape rule,
its cost (parameters, multiply-accumulates), and how it becomes PyTorch code (the module built in
``__init__`` and the expression evaluated in ``forward``). The compiler executes the very code the code
generator writes, so a spec's emitters are the single place a layer's meaning is defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .params import Param

BATCH = "N"  # the symbolic batch axis, first in every tensor shape

# Roles tell the validator and the compiler where a node belongs.
INPUT, OUTPUT, TARGET, LAYER, LOSS = "input", "output", "target", "layer", "loss"

CATEGORIES = (
    "Input/Output", "Layers", "Convolution", "Pooling", "Normalization", "Regularization",
    "Activations", "Shape", "Merge", "Recurrent", "Attention", "Blocks", "Generative", "Loss",
)


class ShapeError(ValueError):
    """Raised by a shape rule. ``port`` names the input the problem came in on (so the message can say
    which node sent it)."""

    def __init__(self, message: str, port: str | None = None):
        super().__init__(message)
        self.port = port


@dataclass(frozen=True)
class TensorInfo:
    """What flows along a wire: a shape whose first axis is the batch ``N`` and a dtype name."""

    shape: tuple
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return format_shape(self.shape)


def format_shape(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def numel(shape: tuple) -> int:
    """Elements per sample: the product of the non-batch axes, a symbolic axis counting as 1."""
    n = 1
    for d in shape[1:]:
        if isinstance(d, int):
            n *= d
    return n


@dataclass(frozen=True)
class PortSpec:
    name: str
    doc: str = ""
    optional: bool = False


@dataclass(frozen=True)
class Call:
    """A constructor call to emit, e.g. ``Call("nn.Conv2d", (1, 6), {"kernel_size": 5})``."""

    func: str
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        parts = [render_value(a) for a in self.args]
        parts += [f"{k}={render_value(v)}" for k, v in self.kwargs.items()]
        return f"{self.func}({', '.join(parts)})"


def render_value(value: Any) -> str:
    """Python source for a validated JSON-native value. Only plain data can reach here, so the code we
    execute never contains anything the graph file could inject."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (tuple, list)):
        if len(value) > 1 and all(v == value[0] for v in value):
            return render_value(value[0])
        inner = ", ".join(render_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(f"cannot render {type(value).__name__} as code")


@dataclass(frozen=True)
class Cost:
    """Trainable parameters, and forward floating-point operations per sample (a multiply-add is 2)."""

    params: int = 0
    flops: int = 0


# Signatures of the spec callables (p is the dict of coerced params; ins maps input port -> TensorInfo):
#   infer(p, ins) -> dict[output port, TensorInfo]          raises ShapeError
#   module(p, ins) -> Call | None                           the submodule to build, if any
#   forward(p, args, mod) -> str                            python expression; args are input variable
#                                                           names in port order, mod is "self.<name>"
#   cost(p, ins, outs) -> Cost
#   check(p) -> None                                        cross-param validation, raises ShapeError

@dataclass(frozen=True)
class NodeSpec:
    type: str
    category: str
    doc: str
    role: str = LAYER
    inputs: tuple[PortSpec, ...] | Callable[[dict], tuple[PortSpec, ...]] = (PortSpec("in"),)
    outputs: tuple[PortSpec, ...] | Callable[[dict], tuple[PortSpec, ...]] = (PortSpec("out"),)
    params: tuple[Param, ...] = ()
    infer: Callable[..., dict] | None = None
    module: Callable[..., Call | None] | None = None
    forward: Callable[..., str] | None = None
    cost: Callable[..., Cost] | None = None
    aliases: tuple[str, ...] = ()
    label_prefix: str = ""
    # Composite types: subgraph(params, composites) -> Graph, the network the node stands for (its Input
    # nodes are the node's input ports and its Output nodes its output ports, by label). Shape inference,
    # costs and code come from that sub-graph; such a spec has no infer/module/forward of its own.
    subgraph: Callable[..., Any] | None = None

    def __post_init__(self):
        assert self.category in CATEGORIES, f"{self.type}: unknown category {self.category!r}"
        names = [p.name for p in self.params]
        assert len(set(names)) == len(names), f"{self.type}: duplicate param names"
        for p in self.params:
            # A default that its own descriptor refuses would make every new node invalid.
            p.coerce(p.default)

    def input_ports(self, params: dict | None = None) -> tuple[PortSpec, ...]:
        """Input ports; some types (Add, Concat) have as many as a param says."""
        if callable(self.inputs):
            return self.inputs(params if params is not None else self.default_params())
        return self.inputs

    def output_ports(self, params: dict | None = None) -> tuple[PortSpec, ...]:
        """Output ports; some types (Split) have as many as a param says."""
        if callable(self.outputs):
            return self.outputs(params if params is not None else self.default_params())
        return self.outputs

    def default_params(self) -> dict:
        return {p.name: p.default for p in self.params}

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    @property
    def prefix(self) -> str:
        """The start of automatic labels: 'conv' for Conv2d gives conv1, conv2, ..."""
        return self.label_prefix or self.type.lower()

    def to_json(self) -> dict:
        return {
            "type": self.type, "category": self.category, "doc": self.doc, "role": self.role,
            "inputs": [p.name for p in self.input_ports()], "outputs": [p.name for p in self.output_ports()],
            "params": [p.to_json() for p in self.params], "aliases": list(self.aliases),
        }


class Registry:
    """The one registry of node types. Built from an explicit list (no import side effects)."""

    def __init__(self, specs: list[NodeSpec]):
        self._specs: dict[str, NodeSpec] = {}
        self._aliases: dict[str, str] = {}
        for spec in specs:
            if spec.type in self._specs or spec.type in self._aliases:
                raise ValueError(f"node type {spec.type!r} registered twice")
            self._specs[spec.type] = spec
            for alias in spec.aliases:
                self._aliases[alias] = spec.type

    def get(self, type_name: str) -> NodeSpec | None:
        """The spec for a type name, following legacy aliases; None when unknown."""
        return self._specs.get(type_name) or self._specs.get(self._aliases.get(type_name, ""))

    def canonical(self, type_name: str) -> str:
        return self._aliases.get(type_name, type_name)

    def __getitem__(self, type_name: str) -> NodeSpec:
        spec = self.get(type_name)
        if spec is None:
            raise KeyError(f"unknown node type {type_name!r}")
        return spec

    def __contains__(self, type_name: str) -> bool:
        return self.get(type_name) is not None

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def by_category(self) -> dict[str, list[NodeSpec]]:
        out: dict[str, list[NodeSpec]] = {c: [] for c in CATEGORIES}
        for spec in self._specs.values():
            out[spec.category].append(spec)
        return {c: specs for c, specs in out.items() if specs}
