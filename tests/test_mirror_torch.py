"""The mirror as a torch module: print, torch.save/load, forward hooks, fx tracing, re-export."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.fx

from onnxdream.errors import BadModelError, OnnxDreamError, UnknownLayerError
from onnxdream.mirror import NodeModule, to_torch
from onnxdream.mirror.fx import MirrorTracer, placeholder_names, trace
from onnxdream.torch_export import quiet_exporter
from tests.mirror_helpers import ort_run, parse, rand

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_cnn.onnx"

# Legacy-exporter style flatten, with the batch size read from the live input:
#   x -> Relu -> r -> Reshape(r, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) -> y
#                \-> Shape -> Cast(float) -> Mul(r, ReduceSum(shape)) -> z   (a CPU shape used as data)
DYNAMIC_TEXT = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[N,C,H,W] x) => (float[N,D] y, float[N,C,H,W] z)
<int64 zero = {0}, int64[1] ax = {0}, int64[1] minus = {-1}>
{ s = Shape (x)
  n = Gather (s, zero)
  u = Unsqueeze (n, ax)
  t = Concat <axis=0> (u, minus)
  r = Relu (x)
  y = Reshape (r, t)
  f = Cast <to=1> (s)
  k = ReduceSum <keepdims=1> (f)
  z = Mul (r, k) }
"""


def _tiny() -> onnx.ModelProto:
    return onnx.load(str(TINY))


def _save_load(module: torch.nn.Module) -> tuple[torch.nn.Module, int]:
    buffer = io.BytesIO()
    torch.save(module, buffer)
    size = len(buffer.getvalue())
    buffer.seek(0)
    return torch.load(buffer, weights_only=False), size


def test_print_shows_each_node_with_op_type_and_attributes():
    text = repr(to_torch(_tiny()))
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "Mirror("
    assert lines[1:] == [
        "(weights): Constants(6 parameters, 0 buffers)",
        "(host): HostConstants(0 parameters, 0 buffers)",
        "(stem_0): Conv(k=3x3, s=1, p=1, d=1, g=1)",
        "(stem_1): Relu()",
        "(block_0): Conv(k=3x3, s=1, p=1, d=1, g=2)",
        "(block_2): Relu()",
        "(Add): Add()",
        "(pool): GlobalAveragePool()",
        "(Flatten): Flatten()",
        "(fc): Gemm(transB=1)",
        ")",
    ]


def test_repr_drops_schema_defaults_and_shows_small_constant_inputs():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1,2,5,7] x) => (float[1,24] y)
    <float lo = {0.0}, float hi = {6.0}, int64[2] shape = {1, -1}>
    { m = MaxPool <kernel_shape=[2,3], strides=[1,2], pads=[0,0,0,0], auto_pad="NOTSET"> (x)
      c = Clip (m, lo, hi)
      y = Reshape (c, shape) }
    """)
    mirror = to_torch(model)
    assert [repr(m) for m in mirror.nodes.values()] == [
        "MaxPool(k=2x3, s=[1, 2], p=0)",
        "Clip(min=0, max=6)",
        "Reshape(shape=[1, -1])",
    ]


def test_submodule_names_escape_dots_keep_slashes_and_avoid_clashes():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y)
    { a = Relu (x)
      b = Neg (a)
      c = Abs (b)
      d = Sigmoid (c)
      y = Tanh (d) }
    """)
    for node, name in zip(model.graph.node, ["a.b", "a_b", "head/fc", "weights", "forward"], strict=True):
        node.name = name
    mirror = to_torch(model)
    assert mirror.module_names == {
        "a.b": "a_b",
        "a_b": "a_b_1",
        "head/fc": "head/fc",
        "weights": "weights_1",
        "forward": "forward_1",
    }
    for key, name in mirror.module_names.items():
        assert mirror.get_submodule(name) is mirror.node_module(key)
        assert mirror.node_module(key).key == key
    assert isinstance(mirror.weights, torch.nn.Module) and not isinstance(mirror.weights, NodeModule)


def test_node_module_errors_name_the_node():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y)
    <float[2] w = {1.0, 2.0}>
    { v = Neg (w)
      y = Add (x, v) }
    """)
    model.graph.node[0].name = "fold.me"
    model.graph.node[1].name = "stem.add"
    mirror = to_torch(model)
    with pytest.raises(UnknownLayerError, match=r"unknown node 'stem\.ad'; did you mean 'stem\.add'"):
        mirror.node_module("stem.ad")
    with pytest.raises(UnknownLayerError, match=r"node 'fold\.me' computes a constant, folded"):
        mirror.node_module("fold.me")


def test_forward_hooks_see_the_node_output_and_only_run_for_needed_nodes():
    mirror = to_torch(_tiny())
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        mirror.get_submodule(mirror.module_names[name]).register_forward_hook(
            lambda module, inputs, output: seen.__setitem__(module.key, output)
        )
        for name in ["stem.1", "fc"]
    ]
    x = torch.randn(1, 3, 32, 32)
    acts = mirror(x, layers=["stem.1"])
    assert list(seen) == ["stem.1"]  # the cut graph never runs fc
    torch.testing.assert_close(seen["stem.1"], acts["stem.1"], rtol=0, atol=0)
    logits = mirror(x)
    torch.testing.assert_close(seen["fc"], logits, rtol=0, atol=0)
    for hook in hooks:
        hook.remove()
    seen.clear()
    mirror(x)
    assert seen == {}


def test_forward_hook_can_replace_a_node_output():
    mirror = to_torch(_tiny())
    x = torch.randn(1, 3, 32, 32)
    mirror.node_module("block.2").register_forward_hook(lambda m, i, out: torch.zeros_like(out))
    acts = mirror(x, layers=["Add", "stem.1"])
    torch.testing.assert_close(acts["Add"], acts["stem.1"], rtol=0, atol=0)  # Add(stem.1, 0)


@pytest.mark.parametrize("size", [8, 13])
def test_save_and_load_give_identical_outputs_for_a_dynamic_graph(size: int):
    model = parse(DYNAMIC_TEXT)
    mirror = to_torch(model)
    loaded, _ = _save_load(mirror)
    x = torch.randn(2, 3, size, size)
    for got, want in zip(loaded(x), mirror(x), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    want = ort_run(model, {"x": x.numpy()})
    np.testing.assert_allclose(loaded(x)[1].numpy(), want[1], rtol=1e-5, atol=1e-5)
    assert loaded.module_names == mirror.module_names
    torch.testing.assert_close(loaded(x, layers=["r"])["r"], x.relu(), rtol=0, atol=0)


def test_save_and_load_keep_weights_state_dict_and_frozen_parameters():
    mirror = to_torch(_tiny())
    loaded, size = _save_load(mirror)
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    torch.testing.assert_close(loaded(x), mirror(x), rtol=0, atol=0)
    assert list(loaded.state_dict()) == list(mirror.state_dict())
    assert all(not p.requires_grad for p in loaded.parameters())
    loaded(x, layers=["block"])["block"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # The file holds each weight once (the graph is pickled without the initializers' data).
    weight_bytes = sum(t.numel() * t.element_size() for t in mirror.state_dict().values())
    assert size < weight_bytes + 40_000


def test_initializer_data_is_stored_once_in_the_saved_file():
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1,256] x) => (float[1,256] y) { y = Gemm <transB=1> (x, w) }
    """)
    model.graph.initializer.append(onnx.numpy_helper.from_array(rand(256, 256), "w"))
    mirror = to_torch(model)
    loaded, size = _save_load(mirror)
    assert 256 * 256 * 4 < size < 256 * 256 * 4 * 1.1
    x = torch.randn(1, 256)
    torch.testing.assert_close(loaded(x), mirror(x), rtol=0, atol=0)


def test_a_node_module_unpickled_alone_says_so():
    module, _ = _save_load(to_torch(_tiny()).node_module("stem.1"))
    with pytest.raises(BadModelError, match=r"node 'stem\.1' \(Relu\) was unpickled apart from its mirror"):
        module(torch.randn(2))


def _runs_on_meta(mirror: torch.nn.Module) -> None:
    y, z = mirror(torch.empty(2, 3, 4, 4, device="meta"))
    assert y.device.type == "meta" and y.shape == (2, 48)
    assert z.device.type == "meta" and z.shape == (2, 3, 4, 4)


def test_cpu_shape_values_move_to_the_device_of_the_data():
    # The meta device stands in for a GPU: a CPU tensor mixed into a meta computation fails.
    mirror = to_torch(parse(DYNAMIC_TEXT))
    _runs_on_meta(mirror.to("meta"))
    assert {t.device.type for t in mirror.host.buffers()} == {"cpu"}


def test_fx_trace_has_one_call_module_per_node_and_matches_the_mirror():
    mirror = to_torch(_tiny())
    gm = trace(mirror)
    calls = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert calls == list(mirror.module_names.values())
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(gm(x), mirror(x), rtol=0, atol=0)
    cut = trace(mirror, layers=["block", "stem.1"])
    assert [n.target for n in cut.graph.nodes if n.op == "call_module"] == [
        "stem_0",
        "stem_1",
        "block_0",
        "block_2",
    ]
    got, want = cut(x), mirror(x, layers=["block", "stem.1"])
    assert list(got) == ["block", "stem.1"]
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)


def test_fx_trace_of_a_dynamic_graph_follows_the_input_and_shares_hooks():
    model = parse(DYNAMIC_TEXT)
    mirror = to_torch(model)
    gm = trace(mirror)
    seen = []
    mirror.node_module("node_Relu_0").register_forward_hook(lambda m, i, out: seen.append(out.shape))
    for shape in [(1, 2, 3, 3), (2, 3, 5, 4)]:
        x = rand(*shape)
        for got, want in zip(gm(torch.from_numpy(x)), ort_run(model, {"x": x}), strict=True):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    assert seen == [(1, 2, 3, 3), (2, 3, 5, 4)]


def test_plain_symbolic_trace_points_to_the_mirror_tracer():
    with pytest.raises(
        OnnxDreamError, match=r"symbolic_trace cannot trace a mirror; use onnxdream\.mirror\.fx\.trace"
    ):
        torch.fx.symbolic_trace(to_torch(_tiny()))


def test_fx_placeholders_are_identifiers_named_after_the_inputs():
    assert placeholder_names(["input.1", "x", "x", "0"]) == ["input_1", "x", "x_1", "x_0"]
    with pytest.raises(TypeError, match="MirrorTracer traces a Mirror, not Linear"):
        MirrorTracer().trace(torch.nn.Linear(2, 2))


def _reexport_matches(model: onnx.ModelProto, x: np.ndarray, tmp_path: Path, dynamo: bool = True) -> None:
    mirror = to_torch(model)
    path = tmp_path / "again.onnx"
    # The legacy exporter passes the default of the keyword-only ``layers`` as a second
    # positional input, so it exports the traced module, whose inputs are the graph's.
    module = mirror if dynamo else trace(mirror)
    with quiet_exporter():
        torch.onnx.export(module, (torch.from_numpy(x),), str(path), dynamo=dynamo, verbose=False)
    again = onnx.load(str(path))
    want = ort_run(model, {model.graph.input[0].name: x})
    got = ort_run(again, {again.graph.input[0].name: x})
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-4 * max(1.0, float(np.abs(w).max())), rtol=0)


def test_legacy_onnx_export_of_the_traced_mirror_matches_the_original(tmp_path: Path):
    _reexport_matches(_tiny(), rand(1, 3, 32, 32), tmp_path, dynamo=False)


@pytest.mark.slow
def test_torch_onnx_export_of_the_mirror_matches_the_original(tmp_path: Path):
    _reexport_matches(_tiny(), rand(1, 3, 32, 32), tmp_path)


@pytest.mark.slow
def test_torch_onnx_export_of_the_builtin_mirror_matches_the_original(
    builtin_exports: dict[str, Path], tmp_path: Path
):
    _reexport_matches(onnx.load(str(builtin_exports["dynamo"])), rand(1, 3, 224, 224), tmp_path)
