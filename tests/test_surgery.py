"""Graph surgery helpers: cuts through subgraph reads and outputs added in place for one block."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from onnxdream.errors import OnnxDreamError
from onnxdream.graph import GraphIndex
from onnxdream.surgery import cut_model, outputs_added, select
from tests.mirror_helpers import ort_run, parse
from tests.test_graph import SUBGRAPH_TEXT

FEEDS = {"x": np.array([1.5, -2.0], np.float32), "c": np.array(True)}


def test_cut_keeps_what_a_subgraph_reads_from_outside():
    model = parse(SUBGRAPH_TEXT)
    cut = cut_model(model, ["y"])
    onnx.checker.check_model(cut, full_check=True)
    assert [n.op_type for n in cut.graph.node] == ["Relu", "Abs", "Abs", "If"]
    assert [i.name for i in cut.graph.input] == ["x", "c"]
    assert [t.name for t in cut.graph.initializer] == ["w"]
    for cond in (True, False):
        feeds = {**FEEDS, "c": np.array(cond)}
        (want, _) = ort_run(model, feeds)
        (got,) = ort_run(cut, feeds)
        np.testing.assert_array_equal(got, want)


def test_cut_refuses_a_tensor_nothing_computes():
    with pytest.raises(OnnxDreamError, match=r"^tensor 'nope' is not computed by the model$"):
        cut_model(parse(SUBGRAPH_TEXT), ["nope"])


def test_outputs_added_in_place_for_the_block_only():
    model = parse(SUBGRAPH_TEXT)
    before = model.SerializeToString()
    extra = [onnx.ValueInfoProto(name=t) for t in ("d", "y", "b", "d")]  # y already is an output
    with outputs_added(model, extra) as exposed:
        assert exposed is model
        assert [o.name for o in model.graph.output] == ["y", "z", "d", "b"]
        y, z, d, b = ort_run(model, FEEDS)
    x = FEEDS["x"]
    np.testing.assert_array_equal(d, np.abs(np.maximum(x, 0)))
    np.testing.assert_array_equal(b, -x)
    np.testing.assert_array_equal(y, d * np.abs(np.array([1.0, -2.0], np.float32)))  # then branch
    np.testing.assert_allclose(z, 1 / (1 + np.exp(x)), rtol=1e-6)
    assert model.SerializeToString() == before
    with pytest.raises(RuntimeError, match="inside"), outputs_added(model, extra):
        raise RuntimeError("inside")
    assert model.SerializeToString() == before


def test_select_says_why_nothing_is_left():
    index = GraphIndex(parse(SUBGRAPH_TEXT).graph, "g.onnx")
    assert [layer.name for layer in select(index, everything=True)] == ["a", "b", "d", "y", "z"]
    excluded = r"^g\.onnx: nothing to expose \(the requested layers are all excluded\)$"
    with pytest.raises(OnnxDreamError, match=excluded):
        select(index, ["d"], exclude=["*"])
    constant = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y) <float[2] w = {1.0, -2.0}> { y = Abs (w) }
    """)
    with pytest.raises(OnnxDreamError, match=r"nothing to expose \(no node computes from the inputs\)$"):
        select(GraphIndex(constant.graph), everything=True)
