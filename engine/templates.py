"""The template library: ready networks shipped as ``.dcnet`` files in the ``templates/`` folder.

A template is an ordinary graph file, opened by the same ``load_graph`` as a user's own file. Its
``name`` field is the title shown to the user, its ``description`` a short text about it, and its
layout places the nodes on the canvas. ``tools/build_templates.py`` writes the files.

    infos = list_templates()                  # name, title, description, input shapes, parameter count
    graph = load_template("resnet18")         # by name, or by a path to any .dcnet file

Listing needs no torch: the counts come from shape inference.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .fileio import EXTENSION, GraphFileError, load_graph
from .graph import Graph
from .inference import infer_shapes
from .spec import INPUT

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class TemplateNotFound(GraphFileError):
    """No template of that name; the message lists the ones there are."""

    def __init__(self, name: str, known: list[str], folder: Path):
        listing = ", ".join(known) if known else f"none: the folder {folder} has no {EXTENSION} files"
        super().__init__(name, [f"no template named {name!r} (templates: {listing})"])

    def __str__(self) -> str:
        return self.problems[0]


@dataclass(frozen=True)
class TemplateInfo:
    """One template as a gallery shows it. ``error`` says why a broken file could not be read or
    checked; the other fields are then as much as is known."""

    name: str  # the file name without .dcnet: what load_template takes
    title: str
    description: str
    path: Path
    input_shapes: tuple[tuple, ...] = ()  # one per Input node, batch axis left out, e.g. ((3, 224, 224),)
    params: int | None = None
    nodes: int = 0
    error: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "title": self.title, "description": self.description, "path": str(self.path),
                "input_shapes": [list(s) for s in self.input_shapes], "params": self.params,
                "nodes": self.nodes, "error": self.error}


def templates_dir() -> Path:
    """The folder the templates are read from: ``templates/`` next to the ``engine`` package."""
    return TEMPLATES_DIR


def template_names(folder: str | os.PathLike | None = None) -> list[str]:
    folder = Path(folder) if folder is not None else TEMPLATES_DIR
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob(f"*{EXTENSION}") if p.is_file())


def template_path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The file of a template name. Raises ``TemplateNotFound`` (a ``GraphFileError``) listing the known
    names when there is none."""
    folder = Path(folder) if folder is not None else TEMPLATES_DIR
    path = folder / f"{name}{EXTENSION}"
    if name and "/" not in name and "\\" not in name and path.is_file():
        return path
    raise TemplateNotFound(name, template_names(folder), folder)


def load_template(name_or_path: str | os.PathLike, folder: str | os.PathLike | None = None) -> Graph:
    """A fresh copy of a template, by name ('resnet18') or by the path of a ``.dcnet`` file.
    Raises ``GraphFileError`` naming the problem (an unknown name lists the known ones)."""
    text = os.fspath(name_or_path)
    as_path = Path(text)
    if text.endswith(EXTENSION) or os.sep in text or "/" in text or as_path.is_file():
        return load_graph(as_path)
    return load_graph(template_path(text, folder))


def describe(path: str | os.PathLike) -> TemplateInfo:
    """Read one template file and infer its shapes; never raises for a broken file."""
    path = Path(path)
    try:
        graph = load_graph(path)
    except GraphFileError as exc:
        return TemplateInfo(path.stem, path.stem, "", path, error="; ".join(exc.problems))
    inf = infer_shapes(graph)
    shapes = []
    for nid in inf.ids_with_role(INPUT):
        t = inf.shape(nid)
        if t is not None:
            shapes.append(tuple(t.shape[1:]))
    error = "; ".join(p.message for p in inf.errors) or None
    return TemplateInfo(path.stem, graph.name, graph.description, path, tuple(shapes),
                        inf.total_params if inf.ok else None, len(graph), error)


def list_templates(folder: str | os.PathLike | None = None) -> list[TemplateInfo]:
    """Every template in the folder, sorted by name."""
    folder = Path(folder) if folder is not None else TEMPLATES_DIR
    return [describe(folder / f"{name}{EXTENSION}") for name in template_names(folder)]


# --------------------------------------------------------------------------- `deepcanvas templates`

def register(subparsers) -> None:
    p = subparsers.add_parser(
        "templates", help="list the template networks, show one, or copy one to a file to start from",
        description="Without NAME: list the templates with their input shapes and parameter counts. "
                    "With NAME: show that template. With NAME and -o FILE: write it to FILE.")
    p.add_argument("name", nargs="?", help="a template name (see the list)")
    p.add_argument("-o", "--output", help="with NAME: the .dcnet file to write")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.add_argument("--force", action="store_true", help="with -o: replace an existing file")
    p.set_defaults(func=_cmd_templates)


def _shapes_text(info: TemplateInfo) -> str:
    return ", ".join("[" + ", ".join(map(str, s)) + "]" for s in info.input_shapes) or "-"


def _cmd_templates(args) -> int:
    from .cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE
    from .fileio import save_graph

    if args.name is not None:
        path = template_path(args.name)
        if not args.output:
            info = describe(path)
            print(f"{info.name}: {info.title}")
            print(info.description)
            print(f"file: {info.path}")
            print(f"input: {_shapes_text(info)}")
            if info.error:
                print(f"error: {info.error}")
                return EXIT_INVALID
            print(f"parameters: {info.params:,}")
            print(f"(to start from a copy: deepcanvas templates {info.name} -o FILE)")
            return EXIT_OK
        if Path(args.output).exists() and not args.force:
            print(f"deepcanvas templates: {args.output} exists; pass --force to replace it", file=sys.stderr)
            return EXIT_USAGE
        graph = load_graph(path)
        save_graph(graph, args.output)
        print(f"wrote {args.output} (template {args.name}: {graph.name})")
        return EXIT_OK
    if args.output:
        print("deepcanvas templates: -o needs a template NAME", file=sys.stderr)
        return EXIT_USAGE
    infos = list_templates()
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=2))
    else:
        if not infos:
            print(f"no templates in {TEMPLATES_DIR}")
        rows = [("name", "title", "input", "params")]
        for i in infos:
            rows.append((i.name, i.title, _shapes_text(i), f"{i.params:,}" if i.params is not None else "?"))
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        for k, r in enumerate(rows):
            print("  ".join(c.ljust(w) if n < 3 else c.rjust(w) for n, (c, w) in enumerate(zip(r, widths))))
            if k == 0:
                print("  ".join("-" * w for w in widths))
        for i in infos:
            if i.error:
                print(f"{i.path}: error: {i.error}")
    return EXIT_INVALID if any(i.error for i in infos) else EXIT_OK

