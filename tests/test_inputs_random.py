"""Seeded random inputs of a model's declared shapes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.random import random_inputs


def _model(*inputs: onnx.ValueInfoProto) -> onnx.ModelProto:
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [2.0])
    nodes = [helper.make_node("Identity", [vi.name], [f"{vi.name}_out"]) for vi in inputs]
    outputs = [
        helper.make_tensor_value_info(f"{vi.name}_out", vi.type.tensor_type.elem_type, None) for vi in inputs
    ]
    graph = helper.make_graph(
        nodes, "g", [*inputs, helper.make_tensor_value_info("w", TensorProto.FLOAT, [1])], outputs, [weight]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_free_dims_take_batch_channels_and_size_declared_dims_stay() -> None:
    model = _model(
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", None, "h", 48]),
        helper.make_tensor_value_info("ids", TensorProto.INT64, [2, "t"]),
        helper.make_tensor_value_info("half", TensorProto.FLOAT16, [3]),
    )
    feeds = random_inputs(model, size=(64, 80))
    assert list(feeds) == ["image", "ids", "half"], "initializers listed as inputs are not fed"
    assert feeds["image"].shape == (1, 3, 64, 48) and feeds["image"].dtype == np.float32
    assert feeds["ids"].shape == (2, 1) and feeds["ids"].dtype == np.int64 and not feeds["ids"].any()
    assert feeds["half"].dtype == np.float16
    assert 0.5 < feeds["image"].std() < 1.5, "standard normal"


def test_the_seed_decides_the_values() -> None:
    model = _model(helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]))
    np.testing.assert_array_equal(random_inputs(model, seed=3)["x"], random_inputs(model, seed=3)["x"])
    assert not np.array_equal(random_inputs(model, seed=3)["x"], random_inputs(model, seed=4)["x"])


def test_an_input_without_shape_is_named() -> None:
    model = _model(helper.make_tensor_value_info("x", TensorProto.FLOAT, None))
    with pytest.raises(OnnxDreamError, match=r"^m\.onnx: input 'x' declares no shape"):
        random_inputs(model, source="m.onnx")


def test_too_many_elements_are_refused_before_allocating() -> None:
    model = _model(helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2**31, 2**31]))
    with pytest.raises(OnnxDreamError, match=r"^m\.onnx: .*'x'"):
        random_inputs(model, source="m.onnx")
