"""Qt-free parts of the app: automatic layout and the clipboard's graph text."""

import pytest

import engine
from engine.templates import list_templates, load_template
from gui import autolayout, clipboard
from tests import graphs


def _check_layered(g):
    assert set(g.layout) == set(g.nodes)
    spots = list(g.layout.values())
    assert len(set(spots)) == len(spots), "two nodes on one spot"
    for e in g.edges:
        assert g.layout[e.dst][1] > g.layout[e.src][1], f"{e} does not flow downwards"
    assert min(x for x, _ in spots) == 0.0 and min(y for _, y in spots) == 0.0


@pytest.mark.parametrize("name", sorted(graphs.ALL))
def test_layout_flows_down_without_overlaps(name):
    g = graphs.ALL[name]()
    g.layout.clear()
    autolayout.apply(g)
    _check_layered(g)
    if name == "inception":  # three branches side by side in one row
        rows = {}
        for nid, (x, y) in g.layout.items():
            rows.setdefault(y, []).append(nid)
        assert max(len(r) for r in rows.values()) == 3


def test_every_template_lays_out():
    for info in list_templates():
        g = load_template(info.name)
        g.layout.clear()
        autolayout.apply(g)
        _check_layered(g)


def test_missing_positions_are_filled_below_the_rest():
    g = graphs.mlp()
    g.layout.clear()
    autolayout.apply(g)
    bottom = max(y for _, y in g.layout.values())
    n = g.add_node("ReLU", "extra")
    autolayout.place_missing(g)
    assert g.layout[n.id][1] > bottom


def test_clipboard_text_is_a_graph_file_and_pastes_with_fresh_names():
    g = graphs.lenet5()
    g.layout.update({nid: (0.0, 90.0 * i) for i, nid in enumerate(g.nodes)})
    text = clipboard.copy_text(g, ["conv1", "tanh1", "pool1"])
    sub = engine.loads(text)
    assert list(sub.nodes) == ["conv1", "tanh1", "pool1"] and len(sub.edges) == 2
    new = clipboard.paste(g, text, at=(500.0, 0.0))
    assert [g.nodes[n].label for n in new] == ["conv1_2", "tanh1_2", "pool1_2"]
    assert g.layout[new[0]] == (500.0, 0.0) and g.layout[new[1]] == (500.0, 90.0)
    again = clipboard.paste(g, text)
    assert [g.nodes[n].label for n in again] == ["conv1_3", "tanh1_3", "pool1_3"]
    with pytest.raises(engine.GraphFileError):
        clipboard.paste(g, "not a graph")
