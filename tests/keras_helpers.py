"""Small Keras models for the Keras tests: a MobileNetV2-like backbone (named layers, BatchNorm,
ReLU6, depthwise and pointwise convolutions, a residual Add) and the issue's fine-tuning wrap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from onnxdream.errors import OnnxDreamError
from onnxdream.keras_models import import_keras
from tools.keras_example import conv_layers, fine_tune_wrap, is_batchnorm, set_trained_statistics

__all__ = [
    "BACKBONE",
    "INPUT",
    "backbone",
    "conv_layers",
    "fine_tuned",
    "save_fine_tuning_example",
    "skip_without_keras",
]

INPUT = (16, 16, 3)
BACKBONE = "tinynet_1.00_16"


def backbone(seed: int = 0):
    """The "pretrained" model: a functional model with MobileNetV2's layer names."""
    keras = import_keras()
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(INPUT)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="Conv1")(inputs)
    x = layers.BatchNormalization(name="bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="block_1_depthwise")(x)
    y = layers.BatchNormalization(name="block_1_depthwise_BN")(y)
    y = layers.ReLU(6.0, name="block_1_depthwise_relu")(y)
    y = layers.Conv2D(8, 1, use_bias=False, name="block_1_project")(y)
    y = layers.BatchNormalization(name="block_1_project_BN")(y)
    x = layers.Add(name="block_1_add")([x, y])
    x = layers.Conv2D(16, 1, use_bias=False, name="block_13_expand")(x)
    x = layers.BatchNormalization(name="block_13_expand_BN")(x)
    x = layers.ReLU(6.0, name="block_13_expand_relu")(x)
    x = layers.Conv2D(16, 1, name="Conv_1")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)
    model = keras.Model(inputs, x, name=BACKBONE)
    for layer in model.layers:  # statistics as training leaves them, so BatchNorm does something
        if is_batchnorm(layer):
            set_trained_statistics(layer, np.random.default_rng(len(layer.name)))
    return model


def fine_tuned(pretrained=None):
    """``Sequential([pretrained, Conv2D(4, (3, 3), activation="relu", name="fine_tune_conv1")])``."""
    pretrained = pretrained if pretrained is not None else backbone()
    return fine_tune_wrap(import_keras(), pretrained, 4, INPUT)


def skip_without_keras() -> None:
    """Skip the calling test (or fixture) where the keras extra is not installed."""
    try:
        import_keras()
    except OnnxDreamError:
        pytest.skip("needs the keras extra")


def save_fine_tuning_example(folder: Path, export: str, x: np.ndarray) -> tuple[Any, np.ndarray]:
    """The issue's files, small, in ``folder``: ``pretrained_model.h5``, ``fine_tuned_model.h5`` and
    the fine-tuned model's own ONNX export named ``export`` (Keras exports only a model that has
    been called: it predicts ``x`` first). Returns the fine-tuned model and its prediction."""
    pretrained = backbone()
    pretrained.save(folder / "pretrained_model.h5")
    model = fine_tuned(pretrained)
    model.save(folder / "fine_tuned_model.h5")
    expected = model.predict(x, verbose=0)
    model.export(str(folder / export), format="onnx", verbose=False)
    return model, expected
