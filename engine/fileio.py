"""The ``.dcnet`` graph file: JSON, versioned, migrated on load, written atomically and diff-friendly.

Layout of the current format (version 2)::

    {
      "format": "deepcanvas.graph",
      "version": 2,
      "name": "...", "description": "...",
      "nodes": [ {"id", "type", "label", "params"}, ... ],   one block per node
      "edges": [ {"from": "conv1:out", "to": "pool1:in"}, ... ],   one line per wire
      "layout": {"conv1": [x, y], ...},                      canvas positions, apart from the network
      "composites": {"name": {"description", "nodes", "edges", "layout"}},   sub-graphs that Composite
                                                             nodes instantiate (optional)
      "weights": "net.safetensors",                          weights the network starts from (optional)
      "training": {...}                                      the trainer's configuration
    }

Loading never executes anything from the file. Problems that stop a document being built (not JSON,
a node without an id) raise ``GraphFileError`` listing every one with its location; problems inside a
well-formed document (unknown node types, bad param values, wires to missing ports) are kept as they
are, so nothing the user made is lost, and ``infer_shapes`` reports them on their nodes.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .graph import Edge, Graph, Node
from .nodes import REGISTRY
from .spec import Registry

FORMAT = "deepcanvas.graph"
VERSION = 2
EXTENSION = ".dcnet"


class GraphFileError(ValueError):
    """A graph file that cannot be read. ``problems`` lists each with its location."""

    def __init__(self, path: str | os.PathLike | None, problems: list[str]):
        self.path = str(path) if path is not None else "<text>"
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"cannot read graph file {self.path}:\n{lines}")


# --------------------------------------------------------------------------- migrations
def _v1_to_v2(doc: dict) -> dict:
    """Version 1 kept each node's canvas position inside the node ("pos") and wires as 4-item lists
    [src, src_port, dst, dst_port]. Version 2 keeps the layout apart from the network and names wire
    ends "node:port"."""
    doc = dict(doc)
    layout = {}
    nodes = []
    for node in doc.get("nodes", []):
        if isinstance(node, dict):
            node = dict(node)
            pos = node.pop("pos", None)
            if pos is not None and "id" in node:
                layout[node["id"]] = pos
        nodes.append(node)
    edges = []
    for e in doc.get("edges", []):
        if isinstance(e, list) and len(e) == 4:
            edges.append({"from": f"{e[0]}:{e[1]}", "to": f"{e[2]}:{e[3]}"})
        else:
            edges.append(e)  # left for validation to report
    doc.update(nodes=nodes, edges=edges, layout=layout, version=2)
    doc.pop("format_version", None)
    doc["format"] = FORMAT
    return doc


MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2}


def _version_of(doc: dict) -> Any:
    return doc.get("version", doc.get("format_version"))


# --------------------------------------------------------------------------- reading
def loads(text: str, path: str | os.PathLike | None = None, registry: Registry = REGISTRY) -> Graph:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphFileError(path, [f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"]) from None
    if not isinstance(doc, dict):
        raise GraphFileError(path, ["the file must hold a JSON object with 'nodes' and 'edges'"])
    version = _version_of(doc)
    if doc.get("format", FORMAT) != FORMAT:
        raise GraphFileError(path, [f"field 'format': expected {FORMAT!r}, got {doc.get('format')!r}"])
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise GraphFileError(path, [f"field 'version': expected a format version number, got {version!r}"])
    if version > VERSION:
        raise GraphFileError(path, [f"field 'version': the file was written by a newer DeepCanvas (format "
                                    f"{version}); this one reads formats up to {VERSION}"])
    while version < VERSION:
        doc = MIGRATIONS[version](doc)
        version = _version_of(doc)
    return _build(doc, path, registry)


def _build(doc: dict, path, registry: Registry) -> Graph:
    problems: list[str] = []
    graph = Graph(registry=registry)
    for key in ("name", "description"):
        value = doc.get(key, "" if key == "description" else "Untitled")
        if isinstance(value, str):
            setattr(graph, key, value)
        else:
            problems.append(f"field '{key}': expected text, got {value!r}")
    _build_body(doc, graph, "", problems)

    composites = doc.get("composites", {})
    if not isinstance(composites, dict):
        problems.append("field 'composites': expected an object of name: sub-graph")
        composites = {}
    for name, body in composites.items():
        where = f"composite '{name}': "
        if not isinstance(body, dict):
            problems.append(f"{where}expected an object with nodes and edges")
            continue
        sub = Graph(name, registry=registry)
        description = body.get("description", "")
        if isinstance(description, str):
            sub.description = description
        else:
            problems.append(f"{where}field 'description': expected text")
        for key in sorted(set(body) - {"description", "nodes", "edges", "layout"}):
            problems.append(f"{where}unknown field '{key}'")
        _build_body(body, sub, where, problems)
        sub.composites = graph.composites
        graph.composites[name] = sub

    training = doc.get("training", {})
    if isinstance(training, dict):
        graph.training = training
    else:
        problems.append("field 'training': expected an object")
    weights = doc.get("weights")
    if weights is None or (isinstance(weights, str) and weights.strip()):
        graph.weights = weights
    else:
        problems.append(f"field 'weights': expected the name of a weights file, got {weights!r}")
    for key in sorted(set(doc) - {"format", "version", "name", "description", "nodes", "edges", "layout",
                                  "composites", "training", "weights"}):
        problems.append(f"unknown top-level field '{key}'")
    if problems:
        raise GraphFileError(path, problems)
    return graph


def _build_body(doc: dict, graph: Graph, prefix: str, problems: list[str]) -> None:
    """Nodes, edges and layout of a graph or of one composite's sub-graph."""
    registry = graph.registry
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        problems.append(f"{prefix}field 'nodes': expected a list of nodes")
        nodes = []
    for i, raw in enumerate(nodes):
        where = f"{prefix}nodes[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected an object with id, type, label and params")
            continue
        nid, ntype = raw.get("id"), raw.get("type")
        if not isinstance(nid, str) or not nid:
            problems.append(f"{where}: field 'id' must be non-empty text, got {nid!r}")
            continue
        where = f"{prefix}node '{nid}'"
        if nid in graph.nodes:
            problems.append(f"{where}: the id is used by an earlier node too")
            continue
        if not isinstance(ntype, str) or not ntype:
            problems.append(f"{where}: field 'type' must be a node type name, got {ntype!r}")
            continue
        label = raw.get("label", nid)
        if not isinstance(label, str) or not label.strip():
            problems.append(f"{where}: field 'label' must be non-empty text, got {label!r}")
            continue
        params = raw.get("params", {})
        if not isinstance(params, dict):
            problems.append(f"{where}: field 'params' must be an object of name: value, got {params!r}")
            continue
        shares = raw.get("shares")
        if shares is not None and not isinstance(shares, str):
            problems.append(f"{where}: field 'shares' must be a node id, got {shares!r}")
            continue
        for key in sorted(set(raw) - {"id", "type", "label", "params", "shares"}):
            problems.append(f"{where}: unknown field '{key}'")
        # Known types keep their canonical name (legacy aliases are renamed); unknown ones stay as written
        # and are reported by validation, never dropped.
        graph.nodes[nid] = Node(nid, registry.canonical(ntype), label, dict(params), shares)

    edges = doc.get("edges", [])
    if not isinstance(edges, list):
        problems.append(f"{prefix}field 'edges': expected a list of wires")
        edges = []
    for i, raw in enumerate(edges):
        edge = _parse_edge(raw)
        if edge is None:
            problems.append(f"{prefix}edges[{i}]: expected {{\"from\": \"node:port\", \"to\": \"node:port\"}}, "
                            f"got {raw!r}")
        else:
            graph.edges.append(edge)  # endpoints are checked by validation, with the node named

    layout = doc.get("layout", {})
    if not isinstance(layout, dict):
        problems.append(f"{prefix}field 'layout': expected an object of node id: [x, y]")
        layout = {}
    for nid, pos in layout.items():
        if (isinstance(pos, list) and len(pos) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pos)):
            # An overflowing coordinate (1e400 reads as infinity) only loses the position: the editor places
            # the node itself, and the network is untouched.
            if nid in graph.nodes and all(math.isfinite(v) for v in pos):
                graph.layout[nid] = (float(pos[0]), float(pos[1]))
        else:
            problems.append(f"{prefix}layout of node '{nid}': expected [x, y], got {pos!r}")


def _parse_edge(raw) -> Edge | None:
    if not isinstance(raw, dict) or set(raw) != {"from", "to"}:
        return None
    ends = []
    for key in ("from", "to"):
        value = raw[key]
        if not isinstance(value, str) or ":" not in value:
            return None
        node, _, port = value.rpartition(":")
        if not node or not port:
            return None
        ends += [node, port]
    return Edge(*ends)


def load_graph(path: str | os.PathLike, registry: Registry = REGISTRY) -> Graph:
    """Read a ``.dcnet`` file. Raises ``GraphFileError`` naming the file and each problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GraphFileError(path, ["the file does not exist"]) from None
    except IsADirectoryError:
        raise GraphFileError(path, ["this is a folder, not a graph file"]) from None
    except UnicodeDecodeError:
        raise GraphFileError(path, ["the file is not UTF-8 text (is it a graph file?)"]) from None
    except OSError as exc:
        raise GraphFileError(path, [exc.strerror or str(exc)]) from None
    graph = loads(text, path, registry)
    graph.path = str(p)
    return graph


# --------------------------------------------------------------------------- writing
def _j(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def dumps(graph: Graph) -> str:
    """Canonical text of a graph: stable key order, one block per node, one line per wire and per
    position, so the same graph always gives the same bytes and a diff reads as the edit."""
    out = ["{", f'  "format": {_j(FORMAT)},', f'  "version": {VERSION},', f'  "name": {_j(graph.name)},',
           f'  "description": {_j(graph.description)},']
    out += _body_lines(graph, "  ")
    if graph.composites:
        blocks = []
        for name, sub in graph.composites.items():
            inner = [f'      "description": {_j(sub.description)},'] + _body_lines(sub, "      ")
            inner[-1] = inner[-1].rstrip(",")
            blocks.append(f"    {_j(name)}: {{\n" + "\n".join(inner) + "\n    }")
        out.append('  "composites": {\n' + ",\n".join(blocks) + "\n  },")
    if graph.weights:
        out.append(f'  "weights": {_j(graph.weights)},')
    training = json.dumps(graph.training, indent=2, ensure_ascii=False).replace("\n", "\n  ")
    out.append(f'  "training": {training}')
    out.append("}")
    return "\n".join(out) + "\n"


def _body_lines(graph: Graph, ind: str) -> list[str]:
    out = []
    blocks = []
    for n in graph.nodes.values():
        params = ", ".join(f"{_j(k)}: {_j(list(v) if isinstance(v, tuple) else v)}" for k, v in n.params.items())
        fields = [f'"id": {_j(n.id)}', f'"type": {_j(n.type)}', f'"label": {_j(n.label)}']
        if n.shares is not None:
            fields.append(f'"shares": {_j(n.shares)}')
        fields.append(f'"params": {{{params}}}')
        inner = f",\n{ind}    ".join(fields)
        blocks.append(f"{ind}  {{\n{ind}    {inner}\n{ind}  }}")
    out.append(f'{ind}"nodes": [' + ("\n" + ",\n".join(blocks) + f"\n{ind}]," if blocks else "],"))
    edges = [f'{ind}  {{"from": {_j(f"{e.src}:{e.src_port}")}, "to": {_j(f"{e.dst}:{e.dst_port}")}}}'
             for e in graph.edges]
    out.append(f'{ind}"edges": [' + ("\n" + ",\n".join(edges) + f"\n{ind}]," if edges else "],"))
    pos = [f"{ind}  {_j(nid)}: [{_fmt_coord(x)}, {_fmt_coord(y)}]" for nid, (x, y) in graph.layout.items()
           if nid in graph.nodes and math.isfinite(x) and math.isfinite(y)]
    out.append(f'{ind}"layout": {{' + ("\n" + ",\n".join(pos) + f"\n{ind}}}," if pos else "},"))
    return out


def _fmt_coord(v: float) -> str:
    v = round(float(v), 1)
    return str(int(v)) if v.is_integer() else str(v)


def save_graph(graph: Graph, path: str | os.PathLike) -> None:
    """Write atomically: a temporary file in the same folder, flushed to disk, then renamed over the
    target, so a crash leaves either the old file or the new one, never half of one."""
    write_atomic(path, dumps(graph))


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write text (UTF-8, '\\n' line ends) or bytes so that the target is the old file or the new one."""
    target = Path(path)
    if not target.parent.is_dir():  # (mkstemp would name its temporary file instead)
        raise FileNotFoundError(f"cannot write {target}: the folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
