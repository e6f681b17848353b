"""Pixels <-> model input: ImageNet by default, the model's metadata, explicit overrides, checked inverses."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.normalize import IMAGENET_PREPROCESS, Preprocess, preprocess_for
from onnxdream.metadata import PREPROCESS_KEY, set_json, set_prop


def _model(preprocess: dict | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 2, 2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 2, 2])],
    )
    model = helper.make_model(graph)
    if preprocess is not None:
        set_json(model, PREPROCESS_KEY, preprocess)
    return model


def _pixels(seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((2, 3, 4, 5), dtype=np.float32))


def test_default_is_imagenet_on_rgb_unit_range() -> None:
    pre = preprocess_for(None)
    assert pre.source == "default"
    assert pre.mean == (0.485, 0.456, 0.406) and pre.std == (0.229, 0.224, 0.225)
    assert (pre.range, pre.channels) == ((0.0, 1.0), "RGB")
    assert preprocess_for(_model()) == pre
    pixels = _pixels()
    mean = np.array(IMAGENET_PREPROCESS["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(IMAGENET_PREPROCESS["std"], dtype=np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(
        pre.to_model(pixels).numpy(), (pixels.numpy() - mean) / std, rtol=1e-6, atol=1e-6
    )


def test_caffe_style_bgr_0_255_matches_the_formula() -> None:
    pre = Preprocess(mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0), range=(0.0, 255.0), channels="BGR")
    pixels = _pixels(1)
    expected = pixels.numpy()[:, ::-1] * 255.0 - np.array([104.0, 117.0, 123.0]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(pre.to_model(pixels).numpy(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "pre",
    [
        Preprocess(),
        Preprocess(mean=(104.0, 117.0, 123.0), std=(58.0, 57.0, 57.5), range=(0.0, 255.0), channels="BGR"),
        Preprocess(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), range=(-1.0, 1.0)),
    ],
    ids=["imagenet", "caffe-bgr", "minus1-1"],
)
def test_to_pixels_inverts_to_model(pre: Preprocess) -> None:
    pixels = _pixels(2)
    np.testing.assert_allclose(pre.to_pixels(pre.to_model(pixels)).numpy(), pixels.numpy(), atol=1e-5)


def test_to_model_is_differentiable_and_keeps_dtype() -> None:
    pixels = _pixels(3).double().requires_grad_(True)
    out = Preprocess().to_model(pixels)
    assert out.dtype == torch.float64
    out.sum().backward()
    expected = np.broadcast_to((1.0 / np.array(IMAGENET_PREPROCESS["std"])).reshape(1, 3, 1, 1), pixels.shape)
    np.testing.assert_allclose(pixels.grad.numpy(), expected, rtol=1e-12)


def test_metadata_is_read_then_overridden() -> None:
    model = _model({"mean": [0.5], "std": [0.25, 0.5, 1.0], "range": [0, 255], "channels": "bgr"})
    pre = preprocess_for(model)
    assert pre == Preprocess(
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0), range=(0.0, 255.0), channels="BGR", source="metadata"
    )
    over = preprocess_for(model, std=[2.0], channels="rgb")
    assert over.source == "metadata+options"
    assert (over.mean, over.std, over.range, over.channels) == ((0.5,) * 3, (2.0,) * 3, (0.0, 255.0), "RGB")
    assert preprocess_for(None, value_range=[0, 255]).source == "default+options"


def test_partial_metadata_keeps_the_defaults() -> None:
    pre = preprocess_for(_model({"range": [0, 255]}))
    assert (pre.mean, pre.std, pre.range, pre.source) == (
        Preprocess().mean,
        Preprocess().std,
        (0.0, 255.0),
        "metadata",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"mean": 3}', "model metadata 'onnxdream.preprocess' is malformed"),
        ('["mean"]', "model metadata 'onnxdream.preprocess' is malformed"),
        ('{"range": [1, 0]}', "value range must be increasing, got [1.0, 0.0]"),
        ('{"std": [1, 0, 1]}', "std values must be positive, got [1.0, 0.0, 1.0]"),
        ('{"channels": "GRB"}', "channel order must be 'RGB' or 'BGR', got 'GRB'"),
        ('{"mean": [1, 2]}', "mean needs 1 or 3 values, got 2"),
    ],
    ids=["number-not-list", "list-not-object", "range", "std-zero", "channels", "mean-count"],
)
def test_bad_metadata_is_refused(value: str, message: str) -> None:
    model = _model()
    set_prop(model, PREPROCESS_KEY, value)
    with pytest.raises(OnnxDreamError, match="^" + message.replace("[", r"\[").replace("(", r"\(")):
        preprocess_for(model)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mean": [1, 2]}, "mean needs 1 or 3 values, got 2"),
        ({"std": [1, 2, 3, 4]}, "std needs 1 or 3 values, got 4"),
        ({"value_range": [0, 1, 2]}, "value_range needs 2 values (low, high), got 3"),
        ({"std": [-1]}, "std values must be positive, got [-1.0, -1.0, -1.0]"),
        ({"channels": "rgba"}, "channel order must be 'RGB' or 'BGR', got 'RGBA'"),
    ],
    ids=["mean", "std", "range", "std-negative", "channels"],
)
def test_bad_overrides_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(OnnxDreamError) as info:
        preprocess_for(None, **kwargs)
    assert str(info.value) == message
