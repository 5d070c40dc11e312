"""The canvas editor driven through real interactions, headless (pytest-qt, offscreen Qt): mouse drags
between ports, drops from the palette, typed values, keys, buttons. The engine document is checked
after each gesture, and the scene is checked against the document."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

import engine
from engine import Edge

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def window(qtbot, tmp_path):
    from gui.mainwindow import MainWindow

    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    w = MainWindow(settings, tmp_path / "autosave")
    w.asked = []
    w.reports = []

    def ask(title, text, buttons):
        w.asked.append((title, text))
        return w.answers.pop(0) if w.answers else "Cancel"
    w.answers = []
    w.ask = ask
    w.report = lambda title, text: w.reports.append(text)
    w.resize(1400, 900)
    w.show()
    QTest.qWaitForWindowExposed(w)
    w.start(example="lenet5")
    qtbot.wait(50)
    yield w
    w.doc.undo_stack.setClean()  # closed here, with nothing left to ask about
    w.doc._recovered = False
    w.close()
    w.deleteLater()


def scene_matches_document(w) -> None:
    g, c = w.doc.graph, w.canvas
    assert set(c._nodes) == set(g.nodes)
    assert c.view_edges() == set(g.edges)
    for nid, node in g.nodes.items():
        assert c.node_item(nid).name == node.label


def view_pos(w, item) -> QtCore.QPoint:
    return w.canvas.viewer.mapFromScene(item.sceneBoundingRect().center())


def drag_wire(w, src, src_port, dst, dst_port) -> None:
    c = w.canvas
    c.viewer.centerOn(c.node_item(dst))
    QtWidgets.QApplication.processEvents()
    a = view_pos(w, c.port_item(src, src_port, True))
    b = view_pos(w, c.port_item(dst, dst_port, False))
    vp = c.viewer.viewport()
    QTest.mousePress(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(vp, (a + b) / 2)
    QTest.mouseMove(vp, b)
    QTest.mouseRelease(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, b)
    QtWidgets.QApplication.processEvents()


def fresh(w, nodes) -> None:
    """A new document with the given (type, label, params, pos) nodes and no wires."""
    g = engine.Graph("test")
    for type_name, label, params, pos in nodes:
        g.add_node(type_name, label, params, pos=pos)
    from gui.document import Document
    w.set_document(Document(g))
    w.canvas.fit()
    QtWidgets.QApplication.processEvents()


# ------------------------------------------------------------------------------------------ start-up

def test_opens_on_the_lenet_example(window):
    w = window
    assert "DeepCanvas" in w.windowTitle()
    assert w.doc.graph.name == "LeNet-5" and not w.doc.modified
    assert w.doc.inference.ok
    scene_matches_document(w)
    assert w.statusBar().validity.text() == "Valid"
    assert "61,706 params" in w.statusBar().totals.text()
    assert w.canvas.node_item("conv1").subtitle == "Conv2d · 156 params"
    assert w.problems.summary.text().startswith("No problems")


# ------------------------------------------------------------------------------------------ palette, search

def test_dragging_from_the_palette_creates_the_node(window):
    w = window
    item = w.palette.item_for("Dropout")
    data = w.palette.tree.mimeData([item])
    vp = w.canvas.viewer.viewport()
    at = vp.rect().center()
    for cls in (QtGui.QDragEnterEvent, QtGui.QDragMoveEvent):
        ev = cls(at, QtCore.Qt.DropAction.CopyAction, data, QtCore.Qt.MouseButton.LeftButton,
                 QtCore.Qt.KeyboardModifier.NoModifier)
        QtWidgets.QApplication.sendEvent(vp, ev)
        assert ev.isAccepted()
    drop = QtGui.QDropEvent(QtCore.QPointF(at), QtCore.Qt.DropAction.CopyAction, data,
                            QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(vp, drop)
    new = [n for n in w.doc.graph.nodes.values() if n.type == "Dropout"]
    assert len(new) == 1
    x, y = w.doc.graph.layout[new[0].id]
    scene = w.canvas.viewer.mapToScene(at)
    assert abs(x + 95 - scene.x()) < 2 and abs(y + 25 - scene.y()) < 2  # centred where it was dropped
    assert w.canvas.selected_ids() == [new[0].id]
    scene_matches_document(w)


def test_palette_filter_and_tab_search_add_nodes_by_name(window, qtbot):
    w = window
    w.palette.filter.setText("sigm")
    visible = [w.palette.item_for(s.type) for s in w.doc.graph.registry]
    shown = [it.text(0) for it in visible if it is not None and not it.isHidden()]
    assert "Sigmoid" in shown and "Conv2d" not in shown and "Linear" not in shown
    w.canvas.viewer.setFocus()
    QTest.keyClick(w.canvas.viewer, QtCore.Qt.Key.Key_Tab)
    assert w.canvas.search.isVisible()
    QTest.keyClicks(w.canvas.search.edit, "maxpool2")
    assert w.canvas.search.list.currentItem().data(QtCore.Qt.ItemDataRole.UserRole) == "MaxPool2d"
    QTest.keyClick(w.canvas.search.edit, QtCore.Qt.Key.Key_Return)
    assert not w.canvas.search.isVisible()
    assert sum(n.type == "MaxPool2d" for n in w.doc.graph.nodes.values()) == 1
    scene_matches_document(w)


# ------------------------------------------------------------------------------------------ wires

def test_connecting_two_ports_shows_the_shape(window):
    w = window
    fresh(w, [("Input", "x", {"shape": [1, 28, 28]}, (0, 0)), ("Conv2d", "conv", {"out_channels": 8}, (0, 120))])
    card = w.canvas.node_item("conv")
    out_port = w.canvas.port_item("conv", "out", True)
    assert card._shape_labels[out_port].text() == ""
    drag_wire(w, "x", "out", "conv", "in")
    assert w.doc.graph.edges == [Edge("x", "out", "conv", "in")]
    assert card._shape_labels[out_port].text() == "(N, 8, 26, 26)"
    assert "(N, 1, 28, 28) float32 from 'x'" in w.canvas.port_item("conv", "in", False).toolTip()
    assert card.subtitle == "Conv2d · 80 params"
    scene_matches_document(w)


def test_an_incompatible_wire_is_refused_with_the_reason(window):
    w = window
    g = w.doc.graph
    w.canvas.add_node("Conv2d", QtCore.QPointF(400, 1080))
    conv = [n.id for n in g.nodes.values() if n.type == "Conv2d" and n.label not in ("conv1", "conv2")][0]
    before = list(g.edges)
    drag_wire(w, "fc3", "out", conv, "in")
    assert g.edges == before
    assert "expects a 4-D input (N, C, H, W), got (N, 10)" in w.canvas.last_refusal
    assert w.statusBar().currentMessage() == w.canvas.last_refusal
    scene_matches_document(w)  # the refused wire is not left on the canvas
    # dragging an existing wire onto a port that refuses it keeps the old wire too
    drag_wire(w, "label", "out", "fc1", "in")
    assert "Target 'label' may only feed loss nodes" in w.canvas.last_refusal
    assert Edge("flatten", "out", "fc1", "in") in g.edges
    scene_matches_document(w)


# ------------------------------------------------------------------------------------------ properties

def test_an_invalid_param_is_refused_with_the_reason(window):
    w = window
    w.canvas.select(["conv1"])
    QtWidgets.QApplication.processEvents()
    spin = w.properties.fields["out_channels"].widget
    spin.selectAll()
    QTest.keyClicks(spin, "0")
    QTest.keyClick(spin, QtCore.Qt.Key.Key_Return)
    assert w.doc.graph.nodes["conv1"].params["out_channels"] == 6
    err = w.properties.errors["out_channels"]
    assert err.isVisible() and "must be at least 1, got 0" in err.text()
    assert spin.value() == 6
    kernel = w.properties.fields["kernel_size"].widget
    kernel.setFocus()
    kernel.selectAll()
    QTest.keyClicks(kernel, "3, 0")
    QTest.keyClick(kernel, QtCore.Qt.Key.Key_Return)
    assert "every value must be at least 1" in w.properties.errors["kernel_size"].text()
    assert w.doc.graph.nodes["conv1"].params["kernel_size"] == 5
    # a valid value goes into the document and through shape inference
    spin.selectAll()
    QTest.keyClicks(spin, "12")
    QTest.keyClick(spin, QtCore.Qt.Key.Key_Return)
    assert w.doc.graph.nodes["conv1"].params["out_channels"] == 12
    assert not w.properties.errors["out_channels"].isVisible()
    assert str(w.doc.inference.shape("conv1")) == "(N, 12, 28, 28)"
    assert w.canvas.node_item("conv1").subtitle == "Conv2d · 312 params"


def test_float_params_keep_their_precision(window):
    w = window
    nid = w.canvas.add_node("BatchNorm2d")
    field = w.properties.fields["eps"]
    assert field.widget.text() == "1e-05"
    field.widget.setFocus()
    field.widget.selectAll()
    QTest.keyClicks(field.widget, "0.000123")
    QTest.keyClick(field.widget, QtCore.Qt.Key.Key_Return)
    assert w.doc.graph.nodes[nid].params["eps"] == 0.000123
    field.widget.selectAll()
    QTest.keyClicks(field.widget, "small")
    QTest.keyClick(field.widget, QtCore.Qt.Key.Key_Return)
    assert "expected a number, got 'small'" in w.properties.errors["eps"].text()
    # a list param is typed as a list and stored as one
    nid = w.canvas.add_node("Reshape")
    field = w.properties.fields["shape"]
    field.widget.setFocus()
    field.widget.selectAll()
    QTest.keyClicks(field.widget, "4, 4, -1")
    QTest.keyClick(field.widget, QtCore.Qt.Key.Key_Return)
    assert w.doc.graph.nodes[nid].params["shape"] == [4, 4, -1]
    assert field.widget.text() == "4, 4, -1"


# ------------------------------------------------------------------------------------------ undo, clipboard

def test_undo_redo_every_kind_of_edit(window):
    w = window
    g, undo, redo = w.doc.graph, w.actions_["undo"], w.actions_["redo"]
    from gui.document import snapshot
    start = snapshot(g)
    w.canvas.add_node("ReLU")
    w.doc.set_param("conv1", "out_channels", 10)
    w.canvas.select(["tanh1"])
    w.canvas.delete_selected()
    w.canvas.request_wires([Edge("pool2", "out", "flatten", "in")], [])
    w.doc.move({"image": (500.0, 0.0)})
    after = snapshot(g)
    assert w.doc.modified and "*" not in w.windowTitle().replace("[*]", "")
    for _ in range(5):
        undo.trigger()
        scene_matches_document(w)
    assert snapshot(g) == start and not w.doc.modified
    assert tuple(w.canvas.node_item("image").xy_pos) == (0.0, 0.0)
    for _ in range(5):
        redo.trigger()
    assert snapshot(g) == after
    scene_matches_document(w)
    assert tuple(w.canvas.node_item("image").xy_pos) == (500.0, 0.0)


def test_copy_paste_duplicate_delete_and_select_all(window):
    w = window
    g = w.doc.graph
    w.canvas.select(["conv1", "tanh1"])
    w.actions_["copy"].trigger()
    w.actions_["paste"].trigger()
    pasted = w.canvas.selected_ids()
    assert sorted(g.nodes[n].label for n in pasted) == ["conv1_2", "tanh1_2"]
    assert Edge(pasted[0], "out", pasted[1], "in") in g.edges  # the wire between them came along
    assert g.layout[pasted[0]] == (g.layout["conv1"][0] + 40, g.layout["conv1"][1] + 40)
    w.actions_["duplicate"].trigger()
    assert len(g.nodes) == 20
    w.actions_["select_all"].trigger()
    assert len(w.canvas.selected_ids()) == 20
    w.canvas.select(pasted)
    w.canvas.viewer.setFocus()
    QTest.keyClick(w.canvas.viewer, QtCore.Qt.Key.Key_Delete)
    assert len(g.nodes) == 18 and not set(pasted) & set(g.nodes)
    scene_matches_document(w)


# ------------------------------------------------------------------------------------------ fixes

def test_a_one_click_fix_repairs_the_graph(window, qtbot):
    w = window
    w.canvas.select(["flatten"])
    w.canvas.delete_selected()
    drag_wire(w, "pool2", "out", "fc1", "in")
    assert Edge("pool2", "out", "fc1", "in") in w.doc.graph.edges
    assert not w.doc.inference.ok
    assert w.canvas.node_item("ce_loss").severity == "error"
    assert "class ids for scores" in w.canvas.node_item("ce_loss").toolTip()
    assert w.statusBar().validity.text() == "1 error"
    buttons = w.problems.fix_buttons()
    assert [b.text() for b in buttons] == ["Insert a Flatten before 'fc1'"]
    # clicking the problem selects its node
    item = w.problems.tree.topLevelItem(0)
    w.problems.tree.itemClicked.emit(item, 0)
    qtbot.wait(10)
    assert w.canvas.selected_ids() == ["ce_loss"]
    qtbot.mouseClick(buttons[0], QtCore.Qt.MouseButton.LeftButton)
    assert w.doc.inference.ok and w.doc.inference.total_params == 61_706
    assert w.canvas.node_item("ce_loss").severity is None
    assert w.problems.summary.text().startswith("No problems")
    scene_matches_document(w)
    w.actions_["undo"].trigger()
    assert not w.doc.inference.ok


def test_fixes_are_offered_on_the_node_and_in_its_menu(window):
    w = window
    w.doc.set_param("conv2", "in_channels", 3)
    w.canvas.select(["conv2"])
    QtWidgets.QApplication.processEvents()
    buttons = w.properties.findChildren(QtWidgets.QPushButton)
    assert [b.text() for b in buttons if b.isVisibleTo(w.properties)] == ["Set in_channels of 'conv2' to 6"]
    menu = w.canvas.node_menu("conv2")
    fix = menu.actions()[0]
    assert fix.text() == "Set in_channels of 'conv2' to 6"
    fix.trigger()
    assert w.doc.graph.nodes["conv2"].params["in_channels"] == 6 and w.doc.inference.ok


# ------------------------------------------------------------------------------------------ views

def test_code_summary_and_preflight(window):
    w = window
    w.views.setCurrentWidget(w.code)
    QTest.qWait(200)
    assert "class LeNet5(nn.Module)" in w.code.text.toPlainText()
    w.views.setCurrentWidget(w.summary)
    QTest.qWait(200)
    assert w.summary.table.rowCount() == 16
    assert w.summary.table.item(1, 0).text() == "conv1" and w.summary.table.item(1, 3).text() == "156"
    from gui.device import DeviceInfo
    w.set_device(DeviceInfo("cuda", "Tiny GPU", 4 << 20, "test"))
    w.preflight.batch.setValue(1024)
    assert w.preflight.verdict.text().startswith("Does not fit in the GPU")
    w.preflight.batch.setValue(8)
    assert w.preflight.verdict.text().startswith("Fits in the GPU at batch 8")
    assert w.statusBar().device.text() == "GPU: Tiny GPU"
    fig = w.preflight.figures()
    assert fig["params"] == 61_706 and fig["activation_bytes"] == w.doc.inference.activation_bytes(8)


def test_every_template_opens_without_errors(window):
    from engine.templates import list_templates, load_template

    w = window
    infos = list_templates()
    assert len(infos) >= 7
    for info in infos:
        assert w.files.open_graph(load_template(info.name))
        assert w.doc.inference.ok, (info.name, [p.message for p in w.doc.inference.errors])
        scene_matches_document(w)
        assert not any(w.canvas.node_item(n).severity == "error" for n in w.doc.graph.nodes)


def test_template_browser_opens_a_template_as_a_new_graph(window):
    from gui.templates import TemplateBrowser

    dialog = TemplateBrowser(window)
    dialog.select("resnet18")
    assert "11,689,512 parameters" in dialog.details.text() and "(N, 3, 224, 224)" in dialog.details.text()
    assert dialog.preview.graph is not None and len(dialog.preview.graph.nodes) > 50
    dialog.preview.grab()  # paints without errors
    dialog.open_button.click()
    assert dialog.chosen_graph.name == "ResNet-18"
    dialog.close()


def test_theme_switch_and_dock_layout_are_remembered(window, tmp_path):
    from gui.mainwindow import MainWindow

    w = window
    w.actions_["theme"].trigger()
    assert w.canvas.theme.name == "light"
    w.docks["preflight"].hide()
    w.docks["palette"].hide()
    w.close()
    w2 = MainWindow(w.settings, tmp_path / "autosave2")
    w2.show()
    assert w2.canvas.theme.name == "light" and not w2.actions_["theme"].isChecked()
    assert not w2.docks["palette"].isVisible()
    w2.apply_theme(__import__("gui.theme", fromlist=["DARK"]).DARK)
    w2.close()


def test_compat_fixes_let_nodegraphqt_widgets_build(qtbot):
    from gui import compat
    compat.apply()
    from NodeGraphQt.custom_widgets.properties_bin.prop_widgets_base import PropDoubleSpinBox, PropSpinBox
    from NodeGraphQt.widgets.tab_search import TabSearchCompleter
    for cls in (PropSpinBox, PropDoubleSpinBox):
        box = cls()
        qtbot.addWidget(box)
        assert box.buttonSymbols() == QtWidgets.QAbstractSpinBox.ButtonSymbols.NoButtons
    TabSearchCompleter()


def test_group_into_a_composite_and_expand_it_again(window):
    w = window
    g = w.doc.graph
    w.ask_text = lambda title, label, default: "Stem"
    w.canvas.select(["conv1", "tanh1", "pool1"])
    w.canvas.viewer.setFocus()
    QTest.keyClick(w.canvas.viewer, QtCore.Qt.Key.Key_G, QtCore.Qt.KeyboardModifier.ControlModifier)
    (block,) = w.canvas.selected_ids()
    assert g.nodes[block].type == "Composite" and "Stem" in g.composites
    assert w.doc.inference.ok and w.doc.inference.total_params == 61_706
    assert str(w.doc.inference.shape(block)) == "(N, 6, 14, 14)"
    scene_matches_document(w)
    w.actions_["undo"].trigger()
    assert "Stem" not in g.composites and "conv1" in g.nodes
    w.actions_["redo"].trigger()
    assert "Stem" in g.composites
    w.canvas.select([block])
    menu = w.canvas.node_menu(block)
    [a for a in menu.actions() if a.text() == "Expand Composite"][0].trigger()
    assert block not in g.nodes and len(g.nodes) == 16 and w.doc.inference.ok
    scene_matches_document(w)


def test_moving_renaming_and_unplugging_on_the_canvas_are_undoable(window):
    w = window
    c, g, vp = w.canvas, w.doc.graph, w.canvas.viewer.viewport()
    item = c.node_item("conv1")
    p = c.viewer.mapFromScene(item.sceneBoundingRect().center() + QtCore.QPointF(30, 8))
    QTest.mousePress(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, p)
    for i in range(1, 6):
        QTest.mouseMove(vp, p + QtCore.QPoint(20 * i, 10 * i))
    QTest.mouseRelease(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                       p + QtCore.QPoint(100, 50))
    x, y = g.layout["conv1"]
    assert x > 50 and y > 120 and tuple(item.xy_pos) == (x, y)
    assert w.doc.undo_stack.undoText() == "Move 1 node(s)"
    # rename by editing the title on the card; F and Backspace type text instead of acting on the canvas
    title = item._text_item
    title.set_editable(True)
    title.setFocus()
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_End)
    QTest.keyClicks(c.viewer, "f")
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_Backspace)
    QTest.keyClicks(c.viewer, "_a")
    QTest.keyClick(c.viewer, QtCore.Qt.Key.Key_Return)
    assert g.nodes["conv1"].label == "conv1_a" and len(g.nodes) == 16
    # a label that is taken is refused and the card shows the old one again
    c._renamed(item.id, "tanh1")
    assert g.nodes["conv1"].label == "conv1_a" and item.name == "conv1_a"
    assert "already used" in c.last_refusal
    # drag the wire end off fc1's input into empty canvas: unplugged
    c.viewer.centerOn(c.node_item("fc1"))
    port = c.port_item("fc1", "in", False)
    a = view_pos(w, port)
    QTest.mousePress(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(vp, a + QtCore.QPoint(150, 20))
    QTest.mouseRelease(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                       a + QtCore.QPoint(300, 40))
    assert Edge("flatten", "out", "fc1", "in") not in g.edges
    scene_matches_document(w)
    for _ in range(3):
        w.actions_["undo"].trigger()
    assert Edge("flatten", "out", "fc1", "in") in g.edges
    assert g.nodes["conv1"].label == "conv1" and g.layout["conv1"] == (0.0, 90.0)
    scene_matches_document(w)


def test_dropping_a_file_on_the_canvas_opens_it(window, tmp_path):
    from engine.templates import template_path
    w = window
    data = QtCore.QMimeData()
    data.setUrls([QtCore.QUrl.fromLocalFile(str(template_path("mlp")))])
    vp = w.canvas.viewer.viewport()
    enter = QtGui.QDragEnterEvent(vp.rect().center(), QtCore.Qt.DropAction.CopyAction, data,
                                  QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(vp, enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(QtCore.QPointF(vp.rect().center()), QtCore.Qt.DropAction.CopyAction, data,
                            QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(vp, drop)
    assert w.doc.path == template_path("mlp") and w.doc.graph.name == "MLP classifier"
    scene_matches_document(w)


def test_a_failing_edit_leaves_the_document_unchanged(window):
    from gui.document import snapshot
    w = window
    before = snapshot(w.doc.graph)

    def buggy(g):
        g.remove_node("conv1")
        raise RuntimeError("bug")
    with pytest.raises(RuntimeError):
        w.doc.edit("buggy", buggy)
    assert snapshot(w.doc.graph) == before and w.doc.undo_stack.count() == 0
