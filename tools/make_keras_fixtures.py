"""Write the Keras-on-TensorFlow ONNX fixtures (tf2onnx inside ``model.export``) into
``fixtures/keras/`` (regenerate, never edit). TensorFlow is too heavy for CI, so the tests read
these files and never need it; run this script in a virtual environment of its own:

    python3 -m venv .venv-tf && .venv-tf/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx
    .venv-tf/bin/python -m tools.make_keras_fixtures    # from the repository root

It builds the issue's example small: a "pretrained" MobileNetV2 (``weights=None``, alpha 0.10,
96x96 input, no top; seeded, with BatchNormalization statistics and weights drawn as training
would leave them), exported as the pretrained reference; then the fine-tuned model,
``Sequential([pretrained, Conv2D(8, (3, 3), activation="relu", name="fine_tune_conv1")])`` with
the backbone's weights moved by 2% noise (fine-tuning), exported the same way. The head has 8
filters rather than 64, and alpha is 0.10, to keep the files small: the names do not depend on
either. Beside them, ``layers.json`` lists each model's convolution layers by their Keras path
(as ``model.summary()`` nests them: ``mobilenetv2_0.10_96/block_13_expand``), the independent
truth the naming tests count against, and ``fine_tuned_tf2onnx_io.npz`` holds a seeded input
and Keras's own ``predict`` output for it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tools.keras_example import conv_layers, fine_tune_wrap, pretend_trained

os.environ["KERAS_BACKEND"] = "tensorflow"

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keras"
INPUT_SIZE = 96
ALPHA = 0.1
HEAD_FILTERS = 8


def _fine_tune(model, rng, noise: float = 0.02) -> None:
    """Move every weight by ``noise`` of its tensor's spread, as fine-tuning would."""
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w + noise * (w.std() or 1.0) * rng.standard_normal(w.shape) for w in weights])


def _export(model, path: Path, *, io: bool) -> None:
    import numpy as np
    import onnx

    x = np.random.default_rng(7).uniform(-1, 1, (1, INPUT_SIZE, INPUT_SIZE, 3)).astype(np.float32)
    expected = model.predict(x, verbose=0)  # Keras exports only a model that has been called
    model.export(str(path), format="onnx", verbose=False)
    onnx.checker.check_model(onnx.load(str(path)))
    if io:
        np.savez(path.with_name(path.stem + "_io.npz"), input=x, output=expected)


def make_all(out: Path = FIXTURES) -> list[Path]:
    """Write every Keras fixture under ``out``; return the paths written."""
    import keras
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    pretrained = keras.applications.MobileNetV2(
        weights=None, alpha=ALPHA, input_shape=(INPUT_SIZE, INPUT_SIZE, 3), include_top=False
    )
    pretend_trained(pretrained, rng)
    _export(pretrained, out / "pretrained_tf2onnx.onnx", io=False)
    layers = {"pretrained_tf2onnx.onnx": conv_layers(pretrained)}

    fine_tuned = fine_tune_wrap(keras, pretrained, HEAD_FILTERS, (INPUT_SIZE, INPUT_SIZE, 3))
    _fine_tune(pretrained, rng)
    _export(fine_tuned, out / "fine_tuned_tf2onnx.onnx", io=True)
    layers["fine_tuned_tf2onnx.onnx"] = conv_layers(fine_tuned)

    (out / "layers.json").write_text(json.dumps(layers, indent=1) + "\n")
    return sorted(out.iterdir())


if __name__ == "__main__":
    for written in make_all(Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURES):
        print(f"{written}: {written.stat().st_size / 2**10:.0f} KiB")
