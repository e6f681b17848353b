"""The Mirror module: layers, the layer cut, live shapes, inputs, names, devices/dtypes, errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import pytest
import torch

from onnxdream.errors import OnnxDreamError, UnknownLayerError, UnsupportedOpError
from onnxdream.mirror import to_torch, unsupported_nodes
from tests.mirror_helpers import ort_run, parse, rand

#   x -> stem.conv (Conv) -> stem.relu (Relu) -> head/flat (Reshape to a size fixed for 8x8) -> head/fc (Gemm)
#                                      \-> (graph output "feat")
CUT_TEXT = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,2,8,8] x) => (float[1,3] y, float[1,4,8,8] feat)
<float[4,2,3,3] w = {0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,
                     0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,
                     0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,
                     0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3,0.1,0.2,0.3},
 int64[2] s = {1, 256}>
{
  c = Conv <pads=[1,1,1,1]> (x, w)
  feat = Relu (c)
  f = Reshape (feat, s)
  y = Gemm <transB=1> (f, fw)
}
"""


@pytest.fixture
def cut_model() -> onnx.ModelProto:
    model = onnx.parser.parse_model(CUT_TEXT)
    model.graph.initializer.append(onnx.numpy_helper.from_array(rand(3, 256), "fw"))
    for node, name in zip(model.graph.node, ["stem.conv", "stem.relu", "head/flat", "head/fc"], strict=True):
        node.name = name
    onnx.checker.check_model(model, full_check=True)
    return model


def test_outputs_match_onnxruntime(cut_model):
    x = rand(1, 2, 8, 8)
    y, feat = to_torch(cut_model)(torch.from_numpy(x))
    want_y, want_feat = ort_run(cut_model, {"x": x})
    np.testing.assert_allclose(y.detach().numpy(), want_y, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(feat.detach().numpy(), want_feat, atol=1e-6)


def test_layer_cut_skips_nodes_after_the_deepest_layer(cut_model):
    mirror = to_torch(cut_model)
    # At 16x16 the head's fixed Reshape cannot work: only a cut graph can run.
    x = torch.randn(1, 2, 16, 16, requires_grad=True)
    acts = mirror(x, layers=["stem.relu", "stem.conv"])
    assert list(acts) == ["stem.relu", "stem.conv"]
    assert acts["stem.relu"].shape == (1, 4, 16, 16)
    torch.testing.assert_close(acts["stem.relu"], torch.relu(acts["stem.conv"]))
    with pytest.raises(RuntimeError):
        mirror(x)


def test_scope_tensor_and_node_names_resolve(cut_model):
    mirror = to_torch(cut_model)
    x = torch.randn(1, 2, 8, 8)
    acts = mirror(x, layers=["stem", "head", "c"])
    torch.testing.assert_close(acts["stem"], acts["c"].relu())  # the scope's boundary output is feat
    assert acts["head"].shape == (1, 3)
    assert mirror.layer_tensors("stem") == ("feat",)
    assert set(mirror.nodes) == {"stem.conv", "stem.relu", "head/flat", "head/fc"}


def test_scope_with_several_outputs_gives_a_tuple():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1,4] x) => (float[1,4] y)
    { a = Relu (x)
      b = Sigmoid (x)
      y = Add (a, b) }
    """)
    for node, name in zip(model.graph.node, ["blk/relu", "blk/sig", "out"], strict=True):
        node.name = name
    acts = to_torch(model)(torch.randn(1, 4), layers=["blk"])
    assert isinstance(acts["blk"], tuple) and len(acts["blk"]) == 2


def test_unknown_layer_suggests_names(cut_model):
    with pytest.raises(UnknownLayerError, match=r"did you mean 'stem\.relu'"):
        to_torch(cut_model)(torch.randn(1, 2, 8, 8), layers=["stem.rel"])


def test_multiple_inputs_by_position_and_by_name():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2,3] a, float[2,3] b) => (float[2,3] y) { y = Sub (a, b) }
    """)
    mirror = to_torch(model)
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(mirror(a, b), a - b)
    torch.testing.assert_close(mirror({"b": b, "a": a}), a - b)
    with pytest.raises(OnnxDreamError, match="expected 2 input"):
        mirror(a)


def test_shapes_follow_the_live_input():
    # Flatten written the way the legacy exporter does: Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N,C,H,W] x) => (float[N,D] y)
    <int64 zero = {0}, int64[1] ax = {0}, int64[1] minus = {-1}>
    { s = Shape (x)
      n = Gather (s, zero)
      u = Unsqueeze (n, ax)
      t = Concat <axis=0> (u, minus)
      y = Reshape (x, t) }
    """)
    mirror = to_torch(model)
    for shape in [(1, 3, 5, 7), (2, 4, 6, 6)]:
        x = rand(*shape)
        np.testing.assert_array_equal(mirror(torch.from_numpy(x)).numpy(), ort_run(model, {"x": x})[0])


def test_weights_are_frozen_parameters_that_follow_dtype_and_state_dict(cut_model):
    mirror = to_torch(cut_model)
    state = mirror.state_dict()
    assert set(state) == {"weights.w", "weights.fw"}
    assert mirror.weight_keys == {"w": "w", "fw": "fw"}
    assert all(not p.requires_grad for p in mirror.parameters())
    mirror.double()
    assert mirror.weights.w.dtype == torch.float64
    out = mirror(torch.randn(1, 2, 8, 8, dtype=torch.float64), layers=["stem.relu"])["stem.relu"]
    assert out.dtype == torch.float64
    assert mirror.half().weights.fw.dtype == torch.float16


def test_unnamed_nodes_get_deterministic_keys_and_names_are_kept():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y) { a = Relu (x)
      b = Neg (a)
      y = Abs (b) }
    """)
    model.graph.node[1].name = "features.0/neg"
    mirror = to_torch(model)
    assert list(mirror.nodes) == ["node_Relu_0", "features.0/neg", "node_Abs_0"]


def test_every_unsupported_node_is_listed():
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13, "custom" : 1]>
    g (float[2] x) => (float[2] y) { a = custom.Frobnicate (x)
      b = Relu (a)
      y = NoSuchOp (b) }
    """)
    problems = unsupported_nodes(model)
    assert [(p.node, p.op_type) for p in problems] == [
        ("node_Frobnicate_0", "Frobnicate"),
        ("node_NoSuchOp_0", "NoSuchOp"),
    ]
    with pytest.raises(
        UnsupportedOpError, match=r"2 unsupported node\(s\).*'node_NoSuchOp_0' \(NoSuchOp, opset 13\)"
    ):
        to_torch(model)
