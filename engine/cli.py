"""The ``deepcanvas`` command line (also ``python -m engine``).

    deepcanvas validate FILE            exit 0 when valid; otherwise one line per problem, exit 1
    deepcanvas summary FILE [--json]    per-node table and totals
    deepcanvas codegen FILE [-o OUT]    readable PyTorch source
    deepcanvas nodes [--json|--markdown]  the node types of the registry (the docs are made from this)

Exit codes: 0 success, 1 the graph has errors, 2 the file or the command line is wrong.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from . import __version__
from .fileio import GraphFileError, load_graph, write_atomic
from .graph import Graph
from .inference import GraphError, Inference, infer_shapes
from .nodes import REGISTRY

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

# Feature modules that add sub-commands. Each has ``register(subparsers)``, which only declares its
# arguments and sets ``func``; heavy imports (torch, onnx) happen inside the handler, so ``validate``
# stays quick. Add one line per module.
COMMAND_MODULES: tuple[str, ...] = (
    "engine.templates",
    "engine.export",
    "engine.onnx_import",
    "engine.training.cli",
    "engine.optlab",
)


def _human(n: float, unit: str = "") -> str:
    for suffix in ("", "K", "M", "G", "T"):
        if abs(n) < 1000 or suffix == "T":
            return f"{n:.0f}{suffix}{unit}" if suffix == "" else f"{n:.2f}{suffix}{unit}"
        n /= 1000
    return str(n)  # pragma: no cover


def _bytes(n: int) -> str:
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or suffix == "TiB":
            return f"{n:.0f} {suffix}" if suffix == "B" else f"{n:.1f} {suffix}"
        n /= 1024
    return str(n)  # pragma: no cover


def _load(path: str) -> Graph:
    return load_graph(path)


def cmd_validate(args) -> int:
    graph = _load(args.file)
    inf = infer_shapes(graph)
    for p in inf.problems:
        if p.severity == "error" or args.warnings:
            print(f"{args.file}: {p.severity}: {p.message} [{p.location}]")
    training_ok = True
    if graph.training:  # the training settings saved with the graph are checked as `train` reads them
        from .training.config import ConfigError, TrainingConfig
        try:
            TrainingConfig.from_graph(graph)
        except (ConfigError, ValueError) as exc:
            training_ok = False
            print(f"{args.file}: error: {exc} [training]")
    if not inf.ok or not training_ok:
        return EXIT_INVALID
    print(f"{args.file}: valid ({len(graph)} nodes, {inf.total_params:,} parameters"
          f"{', ' + str(len(inf.warnings)) + ' warning(s)' if inf.warnings else ''})")
    return EXIT_OK


def summary_json(graph: Graph, inf: Inference, batch_size: int) -> dict:
    return {
        "name": graph.name, "description": graph.description, "valid": inf.ok,
        "nodes": inf.summary_rows(),
        "total_params": inf.total_params, "total_flops": inf.total_flops,
        "batch_size": batch_size, "activation_bytes": inf.activation_bytes(batch_size),
        "problems": [p.to_json() for p in inf.problems],
    }


def cmd_summary(args) -> int:
    graph = _load(args.file)
    inf = infer_shapes(graph)
    if args.json:
        print(json.dumps(summary_json(graph, inf, args.batch_size), indent=2))
        return EXIT_OK if inf.ok else EXIT_INVALID
    rows = [("node", "type", "output", "params", "FLOPs")]
    for r in inf.summary_rows():
        out = ", ".join(r["output"].values()) or ("-" if not r["problems"] else "?")
        rows.append((r["label"], r["type"], out, f"{r['params']:,}", _human(r["flops"])))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    print(f"{graph.name}" + (f" - {graph.description.splitlines()[0]}" if graph.description.strip() else ""))
    for k, row in enumerate(rows):
        print("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(f"total parameters: {inf.total_params:,}")
    print(f"forward FLOPs per sample: {_human(inf.total_flops)}")
    print(f"activation memory at batch {args.batch_size}: {_bytes(inf.activation_bytes(args.batch_size))}")
    for p in inf.problems:
        print(f"{p.severity}: {p.message}")
    return EXIT_OK if inf.ok else EXIT_INVALID


def cmd_codegen(args) -> int:
    from .codegen import generate_code

    graph = _load(args.file)
    source = generate_code(graph, args.class_name)
    if args.output:
        write_atomic(args.output, source)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(source)
    return EXIT_OK


def nodes_markdown() -> str:
    """The node reference, made from the registry (docs/nodes.md is this text)."""
    out = ["# Node reference", "", "Generated from the registry by `deepcanvas nodes --markdown`; do not edit.", ""]
    for category, specs in REGISTRY.by_category().items():
        out += [f"## {category}", ""]
        for spec in specs:
            ins = ", ".join(p.name for p in spec.input_ports()) or "none"
            outs = ", ".join(p.name for p in spec.output_ports()) or "none"
            out += [f"### {spec.type}", "", spec.doc, "", f"Inputs: {ins}. Outputs: {outs}."]
            if spec.aliases:
                out.append(f"Also read from files as: {', '.join(spec.aliases)}.")
            if spec.params:
                out += ["", "| param | default | allowed | meaning |", "| --- | --- | --- | --- |"]
                for p in spec.params:
                    out.append(f"| `{p.name}` | `{json.dumps(p.default)}` | {p.describe_range()} | {p.doc} |")
            out.append("")
    return "\n".join(out)


def cmd_nodes(args) -> int:
    if args.json:
        print(json.dumps([s.to_json() for s in REGISTRY], indent=2))
    elif args.markdown:
        sys.stdout.write(nodes_markdown())
    else:
        for category, specs in REGISTRY.by_category().items():
            print(f"{category}:")
            for spec in specs:
                print(f"  {spec.type:<18} {spec.doc}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepcanvas", description="Build, check and compile neural networks "
                                     "drawn as DeepCanvas graphs (.dcnet files).")
    parser.add_argument("--version", action="version", version=f"deepcanvas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a graph; exit 0 when valid, 1 with one line per problem")
    p.add_argument("file")
    p.add_argument("--warnings", action="store_true", help="print warnings too")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("summary", help="per-node table: type, output shape, parameters, FLOPs; totals")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--batch-size", type=int, default=1, help="batch size for the activation memory figure")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("codegen", help="write the graph as readable PyTorch source")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.add_argument("--class-name", help="name of the generated nn.Module class (default: from the graph name)")
    p.set_defaults(func=cmd_codegen)

    p = sub.add_parser("nodes", help="list the node types")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true")
    group.add_argument("--markdown", action="store_true")
    p.set_defaults(func=cmd_nodes)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.whole_process = argv is None  # run as the program (not called with arguments, as tests do)
    try:
        return args.func(args)
    except GraphFileError as exc:
        print(f"deepcanvas: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GraphError as exc:
        print(f"deepcanvas: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # the reader stopped early (`deepcanvas summary f | head`): not our error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"deepcanvas: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
