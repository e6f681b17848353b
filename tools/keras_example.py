"""The issue's Keras example, shared by the Keras tests and the tools that build Keras models:
the fine-tuning wrap, BatchNormalization statistics as training leaves them, and Keras's own list
of convolution layers (the truth the naming counts are checked against).

Imports neither Keras nor onnxdream: callers pass the ``keras`` module they loaded, so that
``tools/make_keras_fixtures.py`` can use it in a TensorFlow environment without onnxdream.
"""

from __future__ import annotations

from typing import Any

FINE_TUNE_LAYER = "fine_tune_conv1"


def fine_tune_wrap(keras: Any, pretrained: Any, filters: int, input_shape: tuple[int, int, int]) -> Any:
    """``Sequential([pretrained, Conv2D(filters, (3, 3), activation="relu", name="fine_tune_conv1")])``,
    built for ``input_shape`` (height, width, channels)."""
    model = keras.Sequential(
        [pretrained, keras.layers.Conv2D(filters, (3, 3), activation="relu", name=FINE_TUNE_LAYER)]
    )
    model.build((None, *input_shape))
    return model


def set_trained_statistics(layer: Any, rng: Any) -> None:
    """Give a BatchNormalization layer gamma, beta, moving mean and variance drawn from ``rng`` (a
    numpy Generator) as training would leave them, so that it changes its input."""
    n = layer.gamma.shape[0]
    layer.set_weights(
        [
            rng.uniform(0.5, 1.5, n),
            rng.normal(0, 0.1, n),
            rng.normal(0, 0.2, n),
            rng.uniform(0.5, 2.0, n),
        ]
    )


def is_batchnorm(layer: Any) -> bool:
    """Whether ``layer`` is a Keras BatchNormalization layer (whatever the backend)."""
    return type(layer).__name__ == "BatchNormalization"


def pretend_trained(model: Any, rng: Any) -> None:
    """:func:`set_trained_statistics` for every BatchNormalization layer of ``model``, in order."""
    for layer in model.layers:
        if is_batchnorm(layer):
            set_trained_statistics(layer, rng)


def conv_layers(model: Any, prefix: str = "") -> list[str]:
    """Keras paths of every convolution layer (the framework's own list), nested models included:
    ``mobilenetv2_0.10_96/block_13_expand`` as ``model.summary()`` nests them."""
    found = []
    for layer in model.layers:
        path = f"{prefix}/{layer.name}" if prefix else layer.name
        if getattr(layer, "layers", None) is not None:
            found += conv_layers(layer, path)
        elif "Conv" in type(layer).__name__:
            found.append(path)
    return found
