"""Code generation: a graph becomes readable PyTorch source.

The same text serves two purposes. ``generate_code`` returns it for the user to keep, and
``engine.compiler.compile_graph`` executes exactly this text to build the model, so what a user trains,
exports and reads are one thing. ``forward`` is straight-line code (no interpreter loop), with one line
per node and the inferred shape as a comment.

Everything written into the source is either a registry-made expression, a validated number or choice
(rendered with ``repr``), or a name passed through ``identifier``; comments are stripped of line breaks.
Nothing the graph file contains can become code.

Source for trained weights that were trained on standardized inputs (``data.standardize``: the checkpoint
carries ``input_norm``, the training set's mean and std) takes ``input_norm=``: the class then holds the
mean and std as buffers, written into the source as numbers, and ``forward`` standardizes the raw input
before the first layer, so the class computes what the trained model computed on the inputs a user has.
The buffers are not persistent: they are not in ``state_dict()``, so the trained checkpoint's weights still
load with ``load_state_dict(..., strict=True)``, and the source alone carries the statistics. The compiler
never passes ``input_norm``; without it the source is what it always was.
"""

from __future__ import annotations

import functools
import keyword
import re
from dataclasses import dataclass, field

from . import __version__
from .graph import Graph, identifier
from .inference import Inference, require_valid
from .spec import INPUT, LAYER, LOSS, OUTPUT, TARGET, format_shape

# Names a submodule may not take: anything nn.Module already has (methods such as `to_empty` or
# `training`), and the metadata the generated classes carry.
_GENERATED_ATTRS = frozenset({"input_names", "output_names", "target_names"})


@functools.lru_cache(maxsize=1)
def _module_attrs() -> frozenset[str]:
    from torch import nn
    return frozenset(dir(nn.Module)) | _GENERATED_ATTRS | frozenset(vars(nn.Module()))


def class_name_for(name: str) -> str:
    """'LeNet-5' -> 'LeNet5', 'my resnet' -> 'MyResnet'."""
    words = re.findall(r"[A-Za-z0-9]+", name)
    out = "".join(w[0].upper() + w[1:] for w in words) or "Net"
    return out if not out[0].isdigit() else f"Net{out}"


def _comment(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text)


def _docstring(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return re.sub(r"[\x00-\x09\x0b-\x1f\x7f]", " ", text)


class _Names:
    """Unique legal names within one scope."""

    def __init__(self, reserved=()):
        self.taken = set(reserved)

    def claim(self, base: str) -> str:
        name, i = base, 2
        while name in self.taken:
            name = f"{base}_{i}"
            i += 1
        self.taken.add(name)
        return name


@dataclass
class Plan:
    """Names chosen for a graph's code; shared by the generator and the compiler's metadata."""

    class_name: str
    attrs: dict[str, str] = field(default_factory=dict)  # node id -> submodule attribute (shared: the owner's)
    owned: list[str] = field(default_factory=list)  # node ids whose submodule is built in __init__
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (node id, argument name)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (Output node id, returned name)
    targets: list[tuple[str, str]] = field(default_factory=list)  # (Target node id, argument name)
    losses: list[str] = field(default_factory=list)  # loss node ids


def make_plan(graph: Graph, inf: Inference, class_name: str | None = None) -> Plan:
    if class_name is None or not (class_name.isascii() and class_name.isidentifier()) \
            or keyword.iskeyword(class_name):
        class_name = class_name_for(class_name or graph.name)
    plan = Plan(class_name)
    reg = graph.registry
    attr_names = _Names(_module_attrs())
    arg_names = _Names({"self"})
    for nid in inf.order:
        node = graph.nodes[nid]
        spec = reg[node.type]
        if spec.role == INPUT:
            plan.inputs.append((nid, arg_names.claim(identifier(node.label))))
        elif spec.role == LAYER and node.shares is None and _has_module(spec, inf.nodes[nid]):
            plan.attrs[nid] = attr_names.claim(identifier(node.label))
            plan.owned.append(nid)
        elif spec.role == LOSS:
            plan.losses.append(nid)
    for nid in inf.order:
        owner = graph.nodes[nid].shares
        if owner is not None and owner in plan.attrs:
            plan.attrs[nid] = plan.attrs[owner]
    out_names = _Names({"self"} | {a for _, a in plan.inputs})
    loss_args = _Names({"self"})
    for nid in inf.ids_with_role(OUTPUT):
        name = out_names.claim(identifier(graph.nodes[nid].label))
        loss_args.claim(name)
        plan.outputs.append((nid, name))
    for nid in inf.ids_with_role(TARGET):
        plan.targets.append((nid, loss_args.claim(identifier(graph.nodes[nid].label))))
    plan.inputs.sort(key=lambda item: list(graph.nodes).index(item[0]))  # document order
    return plan


def _has_module(spec, info) -> bool:
    if spec.subgraph is not None:
        return True
    return spec.module is not None and spec.module(info.params, info.inputs) is not None


class _ClassPool:
    """The classes of one generated file. A composite used with the same inside (same definition, same
    arriving shapes) shares one class; one used at other sizes gets its own, numbered."""

    def __init__(self, top_name: str):
        self.names = _Names({top_name, f"{top_name}Loss", "torch", "nn", "F"})
        self.by_body: dict[str, str] = {}  # definition name + class text -> class name
        self.sources: list[list[str]] = []

    def class_for(self, sub: Graph, sub_inf: Inference) -> str:
        plan = make_plan(sub, sub_inf, "__CLASS__")
        lines = _model_class(sub, sub_inf, plan, self)
        body = sub.name + "\n" + "\n".join(lines)  # a definition's name is part of what a class means
        if body not in self.by_body:
            name = self.names.claim(class_name_for(sub.name))
            self.by_body[body] = name
            self.sources.append([line.replace("__CLASS__", name, 1) if i == 0 else line
                                 for i, line in enumerate(lines)])
        return self.by_body[body]


def generate_code(graph: Graph, class_name: str | None = None, input_norm: dict | None = None) -> str:
    """Readable PyTorch source for a valid graph: the model class and, when the graph has loss nodes, a
    loss class. ``input_norm``: the input standardization of the weights the source is for (a checkpoint's
    ``{"mean", "std"}``; see the module docstring), None or ``{}`` for none. Raises ``GraphError`` listing
    every problem for an invalid graph, ``WeightsError`` for an ``input_norm`` that does not fit it."""
    inf = require_valid(graph)
    norm = None
    if input_norm:
        from .onnx_weights import fit_input_norm

        norm = fit_input_norm(input_norm, graph, inf, "the weights' input standardization")
    return _generate(graph, inf, make_plan(graph, inf, class_name), norm)


def _generate(graph: Graph, inf: Inference, plan: Plan, norm: dict | None = None) -> str:
    lines = ['"""' + _docstring(graph.name) + f" - PyTorch code generated by DeepCanvas {__version__}."]
    if graph.description.strip():
        lines += ["", _docstring(graph.description.strip())]
    lines += ['"""', "", "import torch", "from torch import nn", "import torch.nn.functional as F"]
    pool = _ClassPool(plan.class_name)
    main = _model_class(graph, inf, plan, pool, norm)
    for cls in pool.sources:
        lines += ["", ""] + cls
    lines += ["", ""] + main
    if plan.losses:
        lines += _loss_class(graph, inf, plan)
    return "\n".join(lines) + "\n"


def _model_class(graph: Graph, inf: Inference, plan: Plan, pool: _ClassPool,
                 norm: dict | None = None) -> list[str]:
    reg = graph.registry
    in_desc = [f"{arg}: {inf.shape(nid)} {inf.shape(nid).dtype}" for nid, arg in plan.inputs]
    out_desc = [f"{name}: {inf.nodes[nid].inputs['in']}" for nid, name in plan.outputs]
    lines = [f"class {plan.class_name}(nn.Module):",
              f'    """Inputs: {", ".join(in_desc)}.',
              f'    Returns: {", ".join(out_desc)}."""',
              "",
              f"    input_names = {tuple(a for _, a in plan.inputs)!r}",
              f"    output_names = {tuple(n for _, n in plan.outputs)!r}",
              "",
              "    def __init__(self):",
              "        super().__init__()"]
    for nid in plan.owned:
        info, spec = inf.nodes[nid], reg[graph.nodes[nid].type]
        if spec.subgraph is not None:
            ctor = f"{pool.class_for(graph.definition(nid), info.sub)}()"
        else:
            ctor = spec.module(info.params, info.inputs).render()
        lines.append(f"        self.{plan.attrs[nid]} = {ctor}")
    standardize = []
    if norm is not None:
        taken = _Names(_module_attrs() | set(plan.attrs.values()))
        mean, std = taken.claim("input_mean"), taken.claim("input_std")
        arg = dict(plan.inputs)[norm["input"]]
        dtype = inf.shape(norm["input"]).dtype
        lines += [f"        # forward() takes {arg} raw and standardizes it with the training set's mean and std, as "
                  "training did.",
                  "        # Not in state_dict() (persistent=False), so the trained checkpoint loads with strict=True.",
                  _buffer_line(mean, norm["mean"], dtype), _buffer_line(std, norm["std"], dtype)]
        standardize = [f"        {arg} = ({arg} - self.{mean}) / self.{std}  # standardized as in training"]
    lines += ["", f"    def forward(self, {', '.join(a for _, a in plan.inputs)}):"]
    lines += standardize + _forward_body(graph, inf, plan)
    return lines


def _buffer_line(name: str, tensor, dtype: str, width: int = 110) -> str:
    """``self.register_buffer(name, torch.tensor([...]), persistent=False)`` with the tensor's values as
    the shortest decimals that give back the same numbers, wrapped when long (an MLP on pixels has one
    value per pixel)."""
    import textwrap

    import torch

    flat = tensor.detach().cpu().reshape(-1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()  # float16 and bfloat16 values are float32 numbers: printed so, cast back exactly
    values = [str(v) for v in flat.numpy()]  # numpy's shortest round-trip repr of each value
    # float32 is what torch.tensor makes of Python floats (the default dtype, as nn.Linear's weights)
    kind = "" if dtype == "float32" else f", dtype=torch.{dtype}"
    shape = "" if tensor.dim() == 1 else ".reshape(())" if tensor.dim() == 0 else f".reshape{tuple(tensor.shape)!r}"
    head, tail = f'        self.register_buffer("{name}", torch.tensor([', f"]{kind}){shape}, persistent=False)"
    one = head + ", ".join(values) + tail
    if len(one) <= width:
        return one
    body = textwrap.wrap(", ".join(values) + ",", width=width, initial_indent=" " * 12,
                         subsequent_indent=" " * 12, break_long_words=False, break_on_hyphens=False)
    return "\n".join([head, *body, "        " + tail])


def _forward_body(graph: Graph, inf: Inference, plan: Plan) -> list[str]:
    """Straight-line forward with variables reused once their value is dead (as a person writes
    ``x = ...`` over and over), so intermediate tensors are freed as early as in hand-written code."""
    reg = graph.registry
    model_nodes = [nid for nid in inf.order if reg[graph.nodes[nid].type].role == LAYER]
    position = {nid: i for i, nid in enumerate(model_nodes)}
    never = len(model_nodes) + 1
    last_use: dict[tuple[str, str], int] = {}
    for nid in model_nodes:
        for src in inf.nodes[nid].sources.values():
            last_use[src] = max(last_use.get(src, -1), position[nid])
    for out_id, _ in plan.outputs:
        last_use[inf.nodes[out_id].sources["in"]] = never
    var: dict[tuple[str, str], str] = {}
    for nid, arg in plan.inputs:
        var[(nid, "out")] = arg
    temps_in_use: set[str] = set()
    reserved = {a for _, a in plan.inputs} | {"self", "torch", "nn", "F"}

    def fresh() -> str:
        i = 0
        while True:
            name = "x" if i == 0 else f"x{i}"
            if name not in temps_in_use and name not in reserved:
                return name
            i += 1

    body = []
    for nid in model_nodes:
        node, info = graph.nodes[nid], inf.nodes[nid]
        spec = reg[node.type]
        ports = graph.input_port_names(nid)
        args = [var[info.sources[p]] for p in ports if p in info.sources]
        dying = [var[info.sources[p]] for p in ports if p in info.sources
                 and last_use[info.sources[p]] == position[nid] and var[info.sources[p]] in temps_in_use]
        for name in dying:
            temps_in_use.discard(name)
        mod = f"self.{plan.attrs[nid]}" if nid in plan.attrs else None
        if spec.subgraph is not None:
            expr = f"{mod}({', '.join(args)})"
        else:
            expr = spec.forward(info.params, args, mod)
        targets = []
        for port in graph.output_port_names(nid):
            name = dying[0] if dying and dying[0] not in temps_in_use else fresh()
            if dying and name == dying[0]:
                dying.pop(0)
            temps_in_use.add(name)
            var[(nid, port)] = name
            targets.append(name)
            if last_use.get((nid, port), -1) < 0:
                temps_in_use.discard(name)  # never read: free at once
        shapes = ", ".join(str(t) for t in info.outputs.values())
        note = shapes if mod else f"{_comment(node.label)}: {shapes}"
        body.append(f"        {', '.join(targets)} = {expr}  # {note}")
    returned = [var[inf.nodes[out_id].sources["in"]] for out_id, _ in plan.outputs]
    body.append(f"        return {', '.join(returned)}")
    return body


def _loss_class(graph: Graph, inf: Inference, plan: Plan) -> list[str]:
    """The loss module: ``terms()`` gives each loss node's value by label (unweighted; a GAN trainer steps
    each network on its own terms), ``forward()`` their weighted sum."""
    reg = graph.registry
    var = {}
    for out_id, name in plan.outputs:
        var[(out_id, "out")] = name
    for tid, name in plan.targets:
        var[(tid, "out")] = name
    args = [n for _, n in plan.outputs] + [n for _, n in plan.targets]
    names = _Names(set(args) | {"self", "torch", "nn", "F", "terms"})
    weighted, body, keys = [], [], []
    for nid in plan.losses:
        node, info = graph.nodes[nid], inf.nodes[nid]
        spec = reg[node.type]
        ports = [p.name for p in spec.input_ports(info.params)]
        expr = spec.forward(info.params, [var[info.sources[p]] for p in ports if p in info.sources], None)
        name = names.claim(identifier(node.label))
        body.append(f"        {name} = {expr}")
        keys.append((node.label, name))
        w = info.params.get("weight", 1.0)
        key = repr(node.label)
        weighted.append(f"terms[{key}]" if w == 1.0 else f"{w!r} * terms[{key}]")
    arglist = ", ".join(args)
    desc = " + ".join(w.replace("terms[", "").replace("]", "").replace("'", "") for w in weighted)
    lines = ["", "", f"class {plan.class_name}Loss(nn.Module):",
             f'    """The training loss: {_docstring(_comment(desc))}. Arguments: the model\'s outputs, then the targets."""', "",
             f"    output_names = {tuple(n for _, n in plan.outputs)!r}",
             f"    target_names = {tuple(n for _, n in plan.targets)!r}", "",
             f"    def terms(self, {arglist}):",
             '        """Each loss node\'s value, unweighted, by node label."""']
    lines += body
    lines.append("        return {" + ", ".join(f"{label!r}: {name}" for label, name in keys) + "}")
    lines += ["", f"    def forward(self, {arglist}):", f"        terms = self.terms({arglist})",
              f"        return {' + '.join(weighted)}"]
    return lines


__all__ = ["generate_code", "class_name_for", "make_plan", "Plan", "format_shape"]
