"""Composites opened for editing (issue #6) and shared weights on the canvas (issue #3), driven through
real interactions headless: double-clicks, keys, menu actions, typed values, buttons. After each gesture
the engine document is checked, and the scene against the document."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

import test_gui
from engine import Edge
from test_gui import drag_wire, fresh

window = test_gui.window  # the main window fixture of the canvas tests, shared

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def scene_matches_document(w) -> None:
    """The scene shows exactly the graph the canvas is on (the main graph or an open composite)."""
    c = w.canvas
    g = c.doc.graph
    assert set(c._nodes) == set(g.nodes)
    assert c.view_edges() == set(g.edges)
    for nid, node in g.nodes.items():
        assert c.node_item(nid).name == node.label


def open_template(w, name):
    from gui.templates import load_template
    w.files.open_graph(load_template(name), f"Opened {name}")
    QtWidgets.QApplication.processEvents()


def double_click(w, nid):
    """Double-click a card below its title (on the title it would start renaming)."""
    c = w.canvas
    item = c.node_item(nid)
    c.viewer.centerOn(item)
    QtWidgets.QApplication.processEvents()
    r = item.sceneBoundingRect()
    p = c.viewer.mapFromScene(QtCore.QPointF(r.left() + 40, r.top() + 38))
    vp = c.viewer.viewport()
    QTest.mouseClick(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, p)
    QTest.mouseDClick(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, p)
    QtWidgets.QApplication.processEvents()


def menu_action(menu, text):
    for action in menu.actions():
        if action.text() == text:
            return action
        if action.menu() is not None:
            found = [a for a in action.menu().actions() if a.text().split("  ")[0] == text]
            if found:
                return found[0]
    raise AssertionError(f"no menu entry {text!r} in {[a.text() for a in menu.actions()]}")


def shape_label(w, nid, port="out"):
    card = w.canvas.node_item(nid)
    return card._shape_labels[w.canvas.port_item(nid, port, True)].text()


# ------------------------------------------------------------------------------------------ issue #6

def test_a_composite_opens_for_editing_and_every_instance_follows(window):
    w = window
    open_template(w, "dcgan")
    c, root = w.canvas, w.doc
    params_before = root.inference.total_params
    double_click(w, "discriminator")
    assert c.scopes and c.scopes[-1].name == "discriminator" and c.doc.graph is root.graph.composites["discriminator"]
    assert c.crumbs.isVisible() and c.crumbs.crumb_texts() == ["Main", "discriminator"]
    assert "arrive at 'discriminator'" in c.crumbs.note.text()
    scene_matches_document(w)
    # the Input inside shows what arrives at the instance, the layers their shapes from there
    assert shape_label(w, "image") == "(N, 1, 32, 32)" and shape_label(w, "conv1") == "(N, 32, 16, 16)"
    # edit a param inside through the property editor: both discriminators (owner and twin) follow
    c.select(["conv1"])
    field = w.properties.fields["out_channels"].widget
    field.setValue(48)
    QtWidgets.QApplication.processEvents()
    sub = root.graph.composites["discriminator"]
    assert sub.nodes["conv1"].params["out_channels"] == 48
    assert shape_label(w, "conv1") == "(N, 48, 16, 16)"
    assert root.inference.ok and root.inference.total_params == params_before + 16 * 16 + 16 * 64 * 16
    # delete a layer inside with the Delete key, then wire around it by a drag: one history for all
    c.select(["lrelu2"])
    c.viewer.setFocus()
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_Delete)
    assert "lrelu2" not in sub.nodes and not root.inference.ok  # conv3 lost its input
    drag_wire(w, "bn2", "out", "conv3", "in")
    assert Edge("bn2", "out", "conv3", "in") in sub.edges and root.inference.ok
    assert root.undo_stack.undoText().endswith("(in discriminator)")
    scene_matches_document(w)
    for _ in range(3):
        w.actions_["undo"].trigger()
    sub = root.graph.composites["discriminator"]
    assert "lrelu2" in sub.nodes and sub.nodes["conv1"].params["out_channels"] == 32
    assert c.doc.graph is sub and set(c._nodes) == set(sub.nodes)  # still inside, showing the restored graph
    assert root.inference.total_params == params_before
    # back to the main graph through the breadcrumb: the composite is selected there
    c.crumbs.buttons[0].click()
    assert not c.scopes and c.doc is root and c.selected_ids() == ["discriminator"]
    assert not c.crumbs.isVisible()
    scene_matches_document(w)


def test_renaming_an_inside_input_keeps_the_wires_and_renaming_the_composite_renames_its_uses(window):
    w = window
    open_template(w, "siamese_triplet")
    c, root = w.canvas, w.doc
    c.select(["embedding_positive"])
    c.viewer.setFocus()
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_Return)  # Enter opens the selected composite
    scope = c.scopes[-1]
    assert scope.name == "embedding" and scope.arriving_from == "embedding_positive"
    (inp,) = [n.id for n in scope.graph.nodes.values() if n.type == "Input"]
    c.select([inp])
    w.properties.label_edit.setText("pixels")
    w.properties.label_edit.editingFinished.emit()
    for nid in ("embedding", "embedding_positive", "embedding_negative"):
        assert [e.dst_port for e in root.graph.edges_into(nid)] == ["pixels"]
    assert root.inference.ok
    # with nothing selected the panel edits the composite itself: its name renames every use
    c.select([])
    w.properties.name_edit.setText("tower")
    w.properties.name_edit.editingFinished.emit()
    assert "tower" in root.graph.composites and c.scopes[-1].name == "tower"
    assert c.crumbs.crumb_texts() == ["Main", "tower"]
    assert {root.graph.nodes[n].params["definition"] for n in ("embedding", "embedding_negative")} == {"tower"}
    # undoing the rename keeps the composite open under its old name; undoing the grouping closes it
    w.actions_["undo"].trigger()
    assert c.scopes[-1].name == "embedding" and c.crumbs.crumb_texts() == ["Main", "embedding"]
    w.actions_["close_composite"].trigger()
    assert not c.scopes
    scene_matches_document(w)


def test_a_built_in_block_opens_read_only_with_expand_to_edit(window):
    w = window
    fresh(w, [("Input", "x", {"shape": [16, 8, 8]}, (0, 0)),
              ("ResidualBlock", "res", {"out_channels": 16}, (0, 100)), ("Output", "y", None, (0, 200))])
    w.doc.edit("wire", lambda g: (g.connect("x", "out", "res", "x"), g.connect("res", "out", "y", "in")))
    c = w.canvas
    menu = c.node_menu("res")
    menu_action(menu, "Look Inside (read-only)").trigger()
    scope = c.scopes[-1]
    assert scope.read_only and c.crumbs.crumb_texts() == ["Main", "res (ResidualBlock)"]
    assert c.crumbs.expand_button.isVisible() and "Read-only" in c.crumbs.note.text()
    assert shape_label(w, "x") == "(N, 16, 8, 8)" and shape_label(w, "add") == "(N, 16, 8, 8)"
    c.select(["conv1"])
    assert not w.properties.fields["out_channels"].widget.isEnabled()
    assert "generated from its params" in w.properties.share_note.text()
    c.viewer.setFocus()
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_Delete)
    assert "read-only" in c.last_refusal and "conv1" in c.doc.graph.nodes and w.doc.undo_stack.count() == 1
    QTest.mouseClick(c.crumbs.expand_button, QtCore.Qt.MouseButton.LeftButton)
    g = w.doc.graph
    assert not c.scopes and "res" not in g.nodes and w.doc.inference.ok
    assert {"res.conv1", "res.add"} <= {n.label for n in g.nodes.values()}
    scene_matches_document(w)
    w.actions_["undo"].trigger()
    assert g.nodes["res"].type == "ResidualBlock"


# ------------------------------------------------------------------------------------------ issue #3

def test_sharing_weights_from_the_node_menu_marks_both_and_locks_the_twins_params(window):
    w = window
    fresh(w, [("Input", "a", {"shape": [8]}, (0, 0)), ("Input", "b", {"shape": [8]}, (300, 0)),
              ("Linear", "left", {"out_features": 4}, (0, 100)), ("Linear", "right", {"out_features": 6}, (300, 100)),
              ("Output", "ya", None, (0, 200)), ("Output", "yb", None, (300, 200))])
    w.doc.edit("wire", lambda g: [g.connect(s, "out", d, "in") for s, d in
                                  (("a", "left"), ("b", "right"), ("left", "ya"), ("right", "yb"))])
    c, g = w.canvas, w.doc.graph
    assert c.share_candidates("right") == ["left"] and c.share_candidates("a") == []
    menu = c.node_menu("right")
    menu_action(menu, "left").trigger()  # Share Weights With › left
    assert g.nodes["right"].shares == "left" and g.nodes["right"].params["out_features"] == 4
    twin, owner = c.node_item("right"), c.node_item("left")
    assert twin.share_color and twin.share_color == owner.share_color
    assert twin.subtitle == "shares weights of 'left'" and "also used by 'right'" in owner.toolTip()
    link = c.share_link("left", "right")
    assert link is not None and link.pen().style() == QtCore.Qt.PenStyle.DashLine
    assert w.doc.inference.total_params == 8 * 4 + 4  # the weights count once
    # the property editor shows the twin's params read-only, naming the owner
    c.select(["right"])
    p = w.properties
    assert not p.fields["out_features"].widget.isEnabled() and "'left'" in p.share_note.text()
    QTest.mouseClick(p.goto_owner, QtCore.Qt.MouseButton.LeftButton)
    assert c.selected_ids() == ["left"] and p.fields["out_features"].widget.isEnabled()
    p.fields["out_features"].widget.setValue(5)  # the owner's edit carries the twin along
    assert g.nodes["right"].params["out_features"] == 5
    # moving the twin moves the dashed link with it
    before = link.path().boundingRect()
    w.doc.move({"right": (500.0, 300.0)})
    assert link.path().boundingRect() != before
    c.select(["right"])
    QTest.mouseClick(p.stop_share, QtCore.Qt.MouseButton.LeftButton)
    assert g.nodes["right"].shares is None and c.share_link("left", "right") is None
    assert c.node_item("right").share_color is None and p.fields["out_features"].widget.isEnabled()
    w.actions_["undo"].trigger()
    assert g.nodes["right"].shares == "left" and c.share_link("left", "right") is not None
    for _ in range(3):
        w.actions_["undo"].trigger()
    assert g.nodes["right"].shares is None and c.share_link("left", "right") is None
    # two nodes selected: the menu offers the pair directly; 'Stop Sharing' ends it
    c.select(["left", "right"])
    menu_action(c.node_menu("right"), "Use the Weights of 'left'").trigger()
    assert g.nodes["right"].shares == "left"
    menu_action(c.node_menu("right"), "Stop Sharing Weights").trigger()
    assert g.nodes["right"].shares is None
    c.select(["left", "right"])
    w.actions_["share"].trigger()  # Edit › Share Weights With… on two selected nodes
    assert g.nodes["right"].shares == "left"
    scene_matches_document(w)


def test_intlist_params_take_bare_and_bracketed_lists(window):
    w = window
    fresh(w, [("Input", "x", {"shape": [2, 8]}, (0, 0)), ("Reshape", "reshape", None, (0, 100)),
              ("Permute", "permute", None, (0, 200)), ("Split", "split", None, (0, 300))])
    c, g, p = w.canvas, w.doc.graph, w.properties
    for nid, name, typed, stored in (("reshape", "shape", "4, -1", [4, -1]),
                                     ("reshape", "shape", "[2, -1]", [2, -1]),
                                     ("permute", "dims", "[3, 1, 2]", [3, 1, 2]), ("permute", "dims", "2 3 1", [2, 3, 1]),
                                     ("split", "sizes", "3, 5", [3, 5]), ("split", "sizes", "[]", [])):
        c.select([nid])
        edit = p.fields[name].widget
        edit.setFocus()
        edit.selectAll()
        QTest.keyClicks(edit, typed)
        QTest.keyClick(edit, QtCore.Qt.Key.Key_Return)
        assert g.nodes[nid].params[name] == stored, typed
        assert p.fields[name].widget.text() == ", ".join(map(str, stored))
    c.select(["reshape"])
    edit = p.fields["shape"].widget
    edit.setFocus()
    edit.selectAll()
    QTest.keyClicks(edit, "4, x")
    QTest.keyClick(edit, QtCore.Qt.Key.Key_Return)
    assert g.nodes["reshape"].params["shape"] == [2, -1]
    assert "refused" in p.errors["shape"].text() and "whole numbers" in p.errors["shape"].text()
    assert p.errors["shape"].isVisible() and edit.text() == "2, -1"


TEMPLATE_TWINS = {"dcgan": {"discriminator_real": "discriminator"}, "vae": {}, "seq2seq_attention": {},
                  "siamese_triplet": {"embedding_positive": "embedding", "embedding_negative": "embedding"}}


def test_templates_show_their_networks_as_composites_with_twins_marked(window):
    w = window
    for name, twins in TEMPLATE_TWINS.items():
        open_template(w, name)
        c, g = w.canvas, w.doc.graph
        assert w.doc.inference.ok, name
        instances = [nid for nid, n in g.nodes.items() if n.type == "Composite"]
        assert {g.nodes[i].params["definition"] for i in instances} == set(g.composites)
        for nid in instances:  # a composite card names its definition (a twin its owner, of that definition)
            assert c.node_item(nid).composite
            shown = c.node_item(nid).subtitle
            assert shown.startswith(g.nodes[nid].params["definition"]) or nid in twins, shown
        for twin, owner in twins.items():
            assert c.node_item(twin).share_color == c.node_item(owner).share_color is not None
            assert c.node_item(twin).subtitle == f"shares weights of '{owner}'"
            assert c.share_link(owner, twin) is not None
        for nid in instances:
            if g.nodes[nid].shares:
                continue
            assert c.open_composite(nid)
            scope = c.scopes[-1]
            assert scope.arriving_from == g.nodes[nid].label and scope.inference.ok
            info = w.doc.inference.nodes[nid]
            for n in scope.graph.nodes.values():  # each Input shows the tensor arriving at that port
                if n.type == "Input":
                    assert scope.inference.shape(n.id) == info.inputs[n.label]
            assert set(c._nodes) == set(scope.graph.nodes)
            w.actions_["close_composite"].trigger()
            assert not c.scopes


def test_composites_nest_and_an_undo_or_a_problem_elsewhere_leads_back(window):
    w = window
    c = w.canvas
    w.ask_text = lambda title, label, default: "Stem"
    c.select(["conv1", "tanh1", "pool1", "conv2", "tanh2"])
    c.viewer.setFocus()
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_G, QtCore.Qt.KeyboardModifier.ControlModifier)
    (stem,) = c.selected_ids()
    double_click(w, stem)
    w.ask_text = lambda title, label, default: "Inner"
    c.select(["conv2", "tanh2"])
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_G, QtCore.Qt.KeyboardModifier.ControlModifier)
    (inner,) = c.selected_ids()
    assert set(w.doc.graph.composites) == {"Stem", "Inner"} and w.doc.inference.ok
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_Return)
    assert c.crumbs.crumb_texts() == ["Main", "Stem", "Inner"]
    x = [n for n in c.doc.graph.nodes.values() if n.type == "Input"][0].id
    assert shape_label(w, x) == "(N, 6, 14, 14)" and shape_label(w, "tanh2") == "(N, 16, 10, 10)"
    c.crumbs.buttons[1].click()  # back one level, to Stem, with the inner composite selected
    assert [s.name for s in c.scopes] == ["Stem"] and c.selected_ids() == [inner]
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_Return)
    w.actions_["undo"].trigger()  # un-grouping Inner: its view closes, Stem shows conv2 again
    assert [s.name for s in c.scopes] == ["Stem"] and "conv2" in c._nodes
    scene_matches_document(w)
    w.doc.edit("unplug fc1", lambda g: g.disconnect([e for e in g.edges if e.dst == "fc1"][0]))
    item = w.problems.tree.topLevelItem(0)
    w.problems.tree.itemClicked.emit(item, 0)  # a problem of the main graph: the canvas goes there
    assert not c.scopes and c.selected_ids() == ["fc1"]
    scene_matches_document(w)


def test_removing_a_port_inside_removes_the_instances_wires_and_says_so(window):
    w = window
    open_template(w, "vae")
    c, root = w.canvas, w.doc
    messages = []
    c.message.connect(messages.append)
    decoder = root.graph.composites["decoder"]
    (out,) = [n.id for n in decoder.nodes.values() if n.type == "Output"]
    wired = [e for e in root.graph.edges if e.src == "decoder"]
    assert c.open_composite("decoder")
    c.select([out])
    c.viewer.setFocus()
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_Delete)
    assert not [e for e in root.graph.edges if e.src == "decoder"]
    assert f"{len(wired)} wire(s) of the composite's instances were removed" in messages[-1]
    w.actions_["undo"].trigger()
    assert [e for e in root.graph.edges if e.src == "decoder"] == wired and root.inference.ok


def test_panels_of_the_main_graph_see_no_selection_inside_a_composite(window):
    w = window
    open_template(w, "vae")
    c = w.canvas
    main, shown = [], []
    c.selection_changed.connect(main.append)
    c.shown_selection_changed.connect(shown.append)
    c.select(["encoder"])
    assert main[-1] == shown[-1] == ["encoder"]
    c.open_composite()
    inner = next(iter(c.doc.graph.nodes))
    c.select([inner])
    assert shown[-1] == [inner] and main[-1] == []  # the Preview and training health read main-graph ids
    assert w.properties.node_id == inner
    c.close_scope()
    assert main[-1] == shown[-1] == ["encoder"]
