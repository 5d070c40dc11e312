"""The node reference in docs/ is generated from the registry and must not drift from it."""

from pathlib import Path

from engine.cli import nodes_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_node_reference_is_up_to_date():
    committed = (ROOT / "docs" / "nodes.md").read_text(encoding="utf-8")
    assert committed == nodes_markdown(), (
        "docs/nodes.md is stale: run `.venv/bin/python -m engine nodes --markdown > docs/nodes.md`")


def test_every_node_type_is_documented():
    from engine import REGISTRY

    text = (ROOT / "docs" / "nodes.md").read_text(encoding="utf-8")
    for spec in REGISTRY:
        assert f"### {spec.type}\n" in text
        for p in spec.params:
            assert f"`{p.name}`" in text, (spec.type, p.name)
