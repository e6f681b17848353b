"""How many Keras convolution layers each path to ONNX leaves reachable by their Keras name.

    python -m tools.keras_names_report [--alpha 0.35] [--size 96] [--out out/keras_report]

Builds the issue's example on Keras's torch backend: MobileNetV2 (``weights=None``, seeded) as
the pretrained model and ``Sequential([pretrained, Conv2D(64, (3, 3), activation="relu",
name="fine_tune_conv1")])``, both saved as ``.h5`` and ``.keras``, and counts, against Keras's own
layer list, the convolution layers a command can select by their path (or, for names given back
by a pretrained reference, by the layer's own name) after:

- ``onnxdream export`` of the ``.keras`` and ``.h5`` files;
- Keras-on-torch ``model.export(format="onnx")`` + ``rename`` (no reference, the pretrained
  ``.h5``, the fine-tuned ``.h5`` as reference);
- the Keras-on-TensorFlow (tf2onnx) fixtures in ``fixtures/keras/`` + ``rename`` (no reference,
  the pretrained tf2onnx export as reference).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from onnxdream.graph import GraphIndex
from onnxdream.io import save_model
from onnxdream.keras_export import export_keras
from onnxdream.keras_models import import_keras
from onnxdream.model import open_model
from onnxdream.names.apply import rename
from tools.keras_example import conv_layers, fine_tune_wrap, pretend_trained

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keras"


def reachable(proto, layers: list[str]) -> dict[str, int]:
    """Layers selectable by their full Keras path, and by path or their own (last) name."""
    index = GraphIndex(proto.graph)

    def resolves(name: str) -> bool:  # a node or a scope: a layer, not just a tensor name
        return name in index.by_name or name in index.scopes

    full = sum(resolves(layer) for layer in layers)
    own = sum(resolves(layer) or resolves(layer.rsplit("/", 1)[-1]) for layer in layers)
    return {"total": len(layers), "by_path": full, "by_path_or_own_name": own}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--out", type=Path, default=Path("out/keras_report"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    keras = import_keras()
    keras.utils.set_random_seed(0)
    shape = (args.size, args.size, 3)
    pretrained = keras.applications.MobileNetV2(
        weights=None, alpha=args.alpha, input_shape=shape, include_top=False
    )
    pretend_trained(pretrained, np.random.default_rng(0))  # outputs of a real scale
    model = fine_tune_wrap(keras, pretrained, 64, shape)
    layers = conv_layers(model)
    files = {
        name: args.out / name
        for name in ("pretrained_model.h5", "fine_tuned_model.h5", "fine_tuned_model.keras")
    }
    pretrained.save(files["pretrained_model.h5"])
    model.save(files["fine_tuned_model.h5"])
    model.save(files["fine_tuned_model.keras"])
    report: dict[str, dict] = {}

    for name in ("fine_tuned_model.keras", "fine_tuned_model.h5"):
        start = time.perf_counter()
        result = export_keras(str(files[name]))
        save_model(result.model, args.out / f"{name}.onnx")
        report[f"onnxdream export {name}"] = reachable(result.model, layers) | {
            "seconds": round(time.perf_counter() - start, 1),
            "nodes": len(result.model.graph.node),
            "ort_vs_keras_max_abs_diff": float(result.max_abs_diff),
            "output_scale": float(result.scale),
        }

    model.predict(np.zeros((1, *shape), np.float32), verbose=0)
    keras_export = args.out / "keras_export.onnx"
    model.export(str(keras_export), format="onnx", verbose=False)
    report["keras-on-torch export, as exported"] = reachable(open_model(str(keras_export)).proto, layers)
    for reference in (None, "pretrained_model.h5", "fine_tuned_model.h5"):
        result = rename(str(keras_export), reference=str(files[reference]) if reference else None)
        key = f"keras-on-torch export + rename{' --reference ' + reference if reference else ''}"
        report[key] = reachable(result.model, layers) | {"origins": result.plan.counts()}

    tf_layers = json.loads((FIXTURES / "layers.json").read_text())["fine_tuned_tf2onnx.onnx"]
    target = str(FIXTURES / "fine_tuned_tf2onnx.onnx")
    report["tf2onnx fixture, as exported"] = reachable(open_model(target).proto, tf_layers)
    for reference in (None, "pretrained_tf2onnx.onnx"):
        result = rename(target, reference=str(FIXTURES / reference) if reference else None)
        key = f"tf2onnx fixture + rename{' --reference ' + reference if reference else ''}"
        report[key] = reachable(result.model, tf_layers) | {"origins": result.plan.counts()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
