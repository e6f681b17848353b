"""Size probes answered by shape inference: the same minimum size, multiple and activation shapes
as running the mirror, on the built-in model, zoo graphs and synthetic ones."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from onnxdream.dream import open_dreamer
from onnxdream.dream.engine import Dreamer
from onnxdream.dream.octaves import octave_sizes
from tests.layout_models import stride_two_skip, tf2onnx_like
from tests.realworld_helpers import fpn_model

SIDES = [(97, 131), (128, 128), (129, 129), (224, 224), (35, 50)]


def _run_shapes(dreamer: Dreamer, layers: list[str], height: int, width: int) -> list[tuple[int, ...]] | None:
    try:
        with torch.no_grad():
            acts = dreamer.net(dreamer.preprocess.to_model(torch.zeros(1, 3, height, width)), layers)
    except Exception:
        return None
    return [tuple(t.shape) for v in acts.values() for t in ([v] if torch.is_tensor(v) else v)]


def _sizes(dreamer: Dreamer, layers: list[str]) -> tuple[int, int, list[tuple[int, int]]]:
    dreamer._minimum.clear()
    dreamer._multiple.clear()
    minimum = dreamer.minimum_size(layers)
    return minimum, dreamer.multiple(layers), octave_sizes(300, 411, 4, 1.4, minimum)


def assert_same_as_probing(dreamer: Dreamer, layers: list[str], answered: int) -> None:
    """Static and probed sizes agree; shapes agree wherever inference answers (``answered`` of
    :data:`SIDES` at least)."""
    static = dreamer.static
    assert static is not None
    found = _sizes(dreamer, layers)
    dreamer.static = None
    try:
        assert found == _sizes(dreamer, layers)
    finally:
        dreamer.static = static
    known = 0
    for height, width in SIDES:
        inferred = static.shapes(layers, height, width)
        if inferred is not None:
            known += 1
            assert inferred == _run_shapes(dreamer, layers, height, width), (height, width)
    assert known >= answered


@pytest.fixture(scope="module")
def builtin() -> Dreamer:
    return open_dreamer(None, "cpu")


@pytest.mark.parametrize("layers", [["_blocks.10"], ["_blocks.2", "_blocks.14"], ["_conv_head"]])
def test_builtin_model_sizes_match_probing(builtin: Dreamer, layers: list[str]) -> None:
    assert_same_as_probing(builtin, layers, answered=len(SIDES))


def test_builtin_default_layer_sizes_are_as_before(builtin: Dreamer) -> None:
    builtin._minimum.clear()
    builtin._multiple.clear()
    assert (builtin.minimum_size(["_blocks.10"]), builtin.multiple(["_blocks.10"])) == (48, 1)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "layer"), [("zoo:googlenet", "n48"), ("zoo:resnet50", "n88")])
def test_zoo_sizes_match_probing(model: str, layer: str) -> None:
    assert_same_as_probing(open_dreamer(model, "cpu"), [layer], answered=len(SIDES) - 1)


def _conv(name: str, x: str, out: str, cin: int, rng: np.random.Generator, **attrs) -> tuple:
    kernel = attrs.pop("kernel", 3)
    weight = numpy_helper.from_array(
        rng.standard_normal((4, cin, kernel, kernel)).astype(np.float32), f"{name}.w"
    )
    return helper.make_node("Conv", [x, weight.name], [out], name=name, **attrs), weight


def _model(nodes: list, inits: list, output: str) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "synthetic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def strided_chain() -> onnx.ModelProto:
    """Odd strides, asymmetric pads, dilation, a ceil-mode pool and a padded average pool."""
    rng = np.random.default_rng(0)
    a, wa = _conv("a", "x", "a", 3, rng, kernel=5, strides=[3, 3], pads=[2, 1, 0, 2])
    b, wb = _conv("b", "a", "b", 4, rng, dilations=[2, 2], pads=[1, 1, 1, 1])
    pool = helper.make_node(
        "MaxPool", ["b"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1
    )
    avg = helper.make_node(
        "AveragePool", ["p"], ["y"], name="avg", kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 1, 0]
    )
    return _model([a, b, pool, avg], [wa, wb], "y")


def same_padding_merge() -> onnx.ModelProto:
    """A stride-2 SAME_UPPER branch upsampled and added to a stride-1 one: runs at even sides only."""
    rng = np.random.default_rng(1)
    a, wa = _conv("a", "x", "a", 3, rng, pads=[1, 1, 1, 1])
    b, wb = _conv("b", "x", "b", 3, rng, strides=[2, 2], auto_pad="SAME_UPPER")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    up = helper.make_node("Resize", ["b", "", "scales"], ["u"], name="up", mode="nearest")
    add = helper.make_node("Add", ["a", "u"], ["y"], name="merge")
    return _model([a, b, up, add], [wa, wb, scales], "y")


@pytest.mark.parametrize(
    ("make", "layer", "multiple", "answered"),
    [
        (strided_chain, "avg", 1, len(SIDES)),
        (same_padding_merge, "merge", 2, 2),  # odd sides: inference cannot be sure, the mirror runs
        (fpn_model, "neck.out", 8, 2),
        (tf2onnx_like, "model/block_2_expand_relu", 1, len(SIDES)),  # NHWC: activations kept NHWC
        (stride_two_skip, "model/skip", 2, 2),  # NHWC input, even sides only
    ],
)
def test_synthetic_sizes_match_probing(make, layer: str, multiple: int, answered: int) -> None:
    dreamer = open_dreamer(make(), "cpu", channels="RGB", mean=[0.5], std=[0.5])
    assert_same_as_probing(dreamer, [layer], answered)
    assert dreamer.multiple([layer]) == multiple
