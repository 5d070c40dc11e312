"""Weights that belong to a graph: reading checkpoints, the weights file a graph refers to, and loading
either into a compiled model with a clear message for every key that does not fit.

Two layouts of the same numbers exist:

- **model keys**, as ``model.state_dict()`` of the compiled graph names them (``conv1.weight``): what a
  trainer's checkpoint holds (``torch.save`` of a state dict, or of ``{"model": state_dict, ...}``);
- **node keys**, ``<node id>/<parameter>`` (``conv1/weight``): what a graph's own weights file holds.
  Node ids never change when a node is relabelled, so the file keeps fitting the graph after edits, and
  a part of a graph (one network of a GAN) finds its weights by the same ids.

A graph refers to its weights file by a path relative to the graph file, kept for now in
``graph.training["weights"]`` (e.g. ``"mnist.safetensors"``); see ``graph_weights_path``.

A trainer's checkpoint may also carry ``input_norm`` (``{"mean": tensor, "std": tensor}``): the training
set's statistics the inputs were standardized with (``data.standardize``). The weights only mean what they
meant in training on inputs standardized so; ``read_checkpoint_and_norm`` reads both, and
``fit_input_norm`` checks the statistics against the graph they are to be built into (the ONNX export and
the generated PyTorch source apply them inside the model, so that it takes raw inputs).

Nothing here imports Qt; torch is imported when a function needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .graph import Graph

SEP = "/"


class WeightsError(ValueError):
    """A weights file that cannot be read or does not fit the graph; the message says which keys."""


# ----------------------------------------------------------------------------- files
def read_checkpoint(path: str | os.PathLike) -> dict[str, "torch.Tensor"]:
    """Tensors from a checkpoint: a ``.safetensors`` file, or a ``torch.save`` file holding a state dict
    or a dict with a ``"model"`` entry that holds one (read with ``weights_only=True``: nothing in the
    file is executed)."""
    return read_checkpoint_and_norm(path)[0]


def read_checkpoint_and_norm(path: str | os.PathLike) -> tuple[dict[str, "torch.Tensor"], dict | None]:
    """``read_checkpoint``'s tensors and the checkpoint's input standardization (``{"mean", "std"}``), or
    None when it carries none (a bare state dict, a safetensors file, a run without ``data.standardize``).
    One read of the file: a resumable checkpoint holds the optimizer's state too and may be large."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file {p}: {'is a folder' if p.is_dir() else 'does not exist'}")
    if _is_safetensors(p):
        try:
            from safetensors.torch import load_file
            return dict(load_file(str(p))), None
        except Exception as exc:
            raise WeightsError(f"weights file {p}: not a readable safetensors file ({exc})") from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"weights file {p}: cannot be read as a PyTorch checkpoint: {torch_load_problem(p, exc)}"
                           ) from None
    norm = None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        norm = obj.get("input_norm") or None  # a run without standardization stores {}
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"weights file {p}: expected a state dict (or a dict with a 'model' state dict), "
                           f"got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"weights file {p}: entries that are not tensors: {_names(bad)}")
    if norm is not None and not (isinstance(norm, dict) and all(isinstance(norm.get(k), torch.Tensor)
                                                                for k in ("mean", "std"))):
        raise WeightsError(f"weights file {p}: its 'input_norm' is not a dict of 'mean' and 'std' tensors")
    return _strip_wrappers(dict(obj)), norm


def _is_safetensors(p: Path) -> bool:
    if p.suffix == ".safetensors":
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(9)
        return len(head) == 9 and head[8:9] == b"{"  # 8-byte header length, then the JSON header
    except OSError:
        return False


def _strip_wrappers(state: dict) -> dict:
    """Drop the prefixes torch.compile (``_orig_mod.``) and DataParallel (``module.``) put on every key."""
    for prefix in ("_orig_mod.", "module."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def save_node_weights(path: str | os.PathLike, tensors: dict[str, "torch.Tensor"],
                      metadata: dict[str, str] | None = None) -> None:
    """Write node-keyed tensors as a safetensors file, atomically (temporary file, then rename)."""
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                metadata={"format": "deepcanvas.weights", "keys": "node_id/parameter", **(metadata or {})})
    write_bytes_atomic(path, data)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """``engine.fileio.write_atomic`` for bytes: the target is either the old file or the new one."""
    from .fileio import write_atomic

    write_atomic(path, data)


def graph_weights_path(graph: "Graph", graph_file: str | os.PathLike | None = None) -> Path | None:
    """The weights file a graph refers to (``graph.weights``), relative to the graph file (``graph_file``,
    or where the graph was loaded from)."""
    ref = graph.weights
    if not ref:
        return None
    p = Path(ref)
    base = graph_file if graph_file is not None else graph.path
    if not p.is_absolute() and base is not None:
        p = Path(base).resolve().parent / p
    if not p.exists():
        raise WeightsError(f"graph '{graph.name}' starts from the weights file {p}, which does not exist")
    return p


# ----------------------------------------------------------------------------- keys
def to_node_keys(state: dict, attrs: dict[str, str]) -> tuple[dict, list[str]]:
    """Model keys -> node keys, given the compiled plan's ``node id -> attribute``. Returns the node-keyed
    tensors and the keys that belong to no node."""
    by_attr = {a: nid for nid, a in attrs.items()}
    out, stray = {}, []
    for key, value in state.items():
        attr_name, _, rest = key.partition(".")
        nid = by_attr.get(attr_name)
        if nid is None or not rest:
            stray.append(key)
        else:
            out[f"{nid}{SEP}{rest}"] = value
    return out, stray


def to_model_keys(node_state: dict, attrs: dict[str, str]) -> tuple[dict, list[str]]:
    """Node keys -> model keys; also returns the node keys whose node has no module in this model."""
    out, stray = {}, []
    for key, value in node_state.items():
        nid, sep, rest = key.rpartition(SEP) if SEP in key else ("", "", key)
        # node ids may contain '/', parameter paths never do: split at the last one
        if not sep or nid not in attrs:
            stray.append(key)
        else:
            out[f"{attrs[nid]}.{rest}"] = value
    return out, stray


def is_node_keyed(state: dict) -> bool:
    return bool(state) and all(SEP in k for k in state)


def apply_state(model, state: dict, source: str) -> None:
    """Load model-keyed tensors into ``model``; every missing, unexpected or wrongly shaped key is named."""
    import torch

    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} (file {tuple(state[k].shape)}, graph {tuple(own[k].shape)})" for k in state
             if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing from the file: {_names(missing)}")
    if unexpected:
        problems.append(f"in the file but not in the graph: {_names(unexpected)}")
    if wrong:
        problems.append(f"different shapes: {_names(wrong)}")
    if problems:
        raise WeightsError(f"{source} does not fit the graph; " + "; ".join(problems))
    with torch.no_grad():
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)


def load_into(model, attrs: dict[str, str], state: dict, source: str) -> None:
    """Load a checkpoint (model keys) or a graph weights file (node keys) into a compiled model."""
    if is_node_keyed(state):
        state, stray = to_model_keys(state, attrs)
        if stray:
            raise WeightsError(f"{source} does not fit the graph; weights of nodes not in the graph: "
                               f"{_names(stray)}")
    apply_state(model, state, source)


def fit_input_norm(norm: dict | None, graph: "Graph", inf, source: str) -> dict | None:
    """The input standardization ``norm`` (``{"mean", "std"}``, as a trainer fits it) made ready to be
    built into ``graph``'s model: float tensors of the Input's dtype on the CPU, plus ``"input"``, the
    Input's node id. None for no standardization (None or ``{}``). Raises ``WeightsError`` when it cannot
    apply: the trainer standardizes only a graph with one float Input (per channel of an image, (C, 1, 1);
    per feature otherwise), so statistics that do not broadcast onto that Input's example shape belong to
    another graph."""
    import torch

    from .spec import INPUT

    if not norm:
        return None
    mean, std = norm.get("mean"), norm.get("std")
    if not isinstance(mean, torch.Tensor) or not isinstance(std, torch.Tensor):
        raise WeightsError(f"{source}: its input standardization is not a dict of 'mean' and 'std' tensors")
    inputs = inf.ids_with_role(INPUT)
    if len(inputs) != 1:
        raise WeightsError(f"{source} standardizes the input of a graph with one Input, but graph "
                           f"'{graph.name}' has {len(inputs)}; it belongs to another graph")
    nid = inputs[0]
    t = inf.shape(nid)
    label = graph.nodes[nid].label
    if not t.dtype.startswith("float"):
        raise WeightsError(f"{source} standardizes a float input, but Input '{label}' holds {t.dtype}; "
                           "it belongs to another graph")
    example = list(t.shape[1:])
    for name, v in (("mean", mean), ("std", std)):
        dims = list(v.shape)
        fits = len(dims) <= len(example) and all(
            m == 1 or m == d for m, d in zip(reversed(dims), reversed(example)))
        if not fits:
            raise WeightsError(f"{source}: the input standardization's {name} has the shape {tuple(dims)}, "
                               f"which does not fit Input '{label}' of shape {tuple(example)}; it belongs to "
                               "another graph")
    dtype = getattr(torch, t.dtype)
    mean = mean.detach().to("cpu", dtype).contiguous()
    std = std.detach().to("cpu", dtype).contiguous()
    if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(std).all()) and bool((std > 0).all())):
        raise WeightsError(f"{source}: the input standardization has a mean or std that is not finite, or a "
                           "std that is not above 0")
    return {"input": nid, "mean": mean, "std": std}


def _names(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def build_with_weights(graph: "Graph", graph_file: str | os.PathLike | None = None, seed: int | None = 0):
    """Compile a graph (``engine.compiler.build``) and load the weights file it names, if it names one:
    how compiling, training and exporting an imported graph start from its weights."""
    from .compiler import build

    compiled = build(graph, seed)
    path = graph_weights_path(graph, graph_file)
    if path is not None:
        load_into(compiled.model, compiled.plan.attrs, read_checkpoint(path), f"the graph's weights file {path}")
    return compiled


__all__ = ["WeightsError", "read_checkpoint", "read_checkpoint_and_norm", "save_node_weights",
           "write_bytes_atomic", "graph_weights_path", "to_node_keys", "to_model_keys", "is_node_keyed",
           "apply_state", "load_into", "fit_input_norm", "build_with_weights"]


def torch_load_problem(path: str | os.PathLike, exc: BaseException) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in a user's words (torch's own message, for a
    file that is not a checkpoint at all, suggested loading it with ``weights_only=False``: unsafe)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        return err.strerror or str(err)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # a zip (torch.save), or an old pickle
        return "the file does not begin as one does (a damaged file, or another kind of file)"
    text = str(exc).strip()
    if "Weights only load failed" in text:
        return ("it holds Python objects besides tensors and plain containers, which DeepCanvas does not load "
                "(loading them could run code); save the state dict alone (torch.save(model.state_dict(), ...))")
    return f"the file is damaged ({text.splitlines()[0] if text else type(exc).__name__})"
