"""Keras models from a file: ``.keras`` (Keras 3) and ``.h5`` (legacy HDF5), read with Keras 3.

Keras is an optional extra (``pip install "onnxdream[keras]"``). It is imported on the torch
backend when the user chose none and TensorFlow is absent (Keras 3 defaults to TensorFlow and
fails to import without it).

Loading runs no code from the file: the model's config is read as JSON and checked first, and a
``Lambda`` layer (marshalled Python bytecode) or a custom object (a class Keras does not ship,
which a user-supplied module would have to define) is refused unless the user trusts the file
(``trust_pickle=True``, the CLI's ``--trust-pickle``, the opt-in for pickles too); a ``.keras``
file is then loaded in Keras's safe mode, an ``.h5`` file without compiling it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from onnxdream.errors import BadModelError, OnnxDreamError, OptionError, first_line

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
"""File endings of Keras models."""
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_LAMBDA_CLASSES = frozenset({"Lambda", "__lambda__"})
# Serialization markers Keras writes for values (tensors, tuples, ...) rather than objects.
_VALUE_MARKERS = frozenset(
    {"__keras_tensor__", "__tensor__", "__numpy__", "__tuple__", "__bytes__", "__typespec__", "__ellipsis__"}
)
_CLASS_NAMESPACES = (
    "layers",
    "models",
    "initializers",
    "regularizers",
    "constraints",
    "activations",
    "dtype_policies",
    "losses",
    "metrics",
    "optimizers",
)

_TF_MODE = {"range": [-1.0, 1.0], "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "channels": "RGB"}
_CAFFE_MODE = {
    "range": [0.0, 255.0],
    "mean": [103.939, 116.779, 123.68],
    "std": [1.0, 1.0, 1.0],
    "channels": "BGR",
}
_TORCH_MODE = {
    "range": [0.0, 1.0],
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "channels": "RGB",
}
_RAW_PIXELS = {"range": [0.0, 255.0], "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "channels": "RGB"}
APPLICATION_PREPROCESS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    # preprocess_input mode "tf": pixels scaled to [-1, 1].
    (("mobilenet_", "mobilenetv2_", "xception", "inception_v3", "inception_resnet_v2", "nasnet"), _TF_MODE),
    (("resnet50v2", "resnet101v2", "resnet152v2"), _TF_MODE),
    # mode "caffe": BGR pixels in [0, 255] minus the ImageNet BGR mean.
    (("vgg16", "vgg19", "resnet50", "resnet101", "resnet152"), _CAFFE_MODE),
    # mode "torch": ImageNet mean/std on [0, 1].
    (("densenet",), _TORCH_MODE),
    # models that rescale inside themselves: pixels in [0, 255].
    (("efficientnet", "convnext", "regnet", "mobilenetv3"), _RAW_PIXELS),
)
"""What ``keras.applications.<model>.preprocess_input`` does, by the model name's prefix (the
longest that matches), as ``onnxdream.preprocess`` metadata (``input = lo + pixel * (hi - lo)``,
then mean/std)."""


class UntrustedKerasError(OptionError, BadModelError):
    """A Keras file whose loading would run code from it, and ``trust_pickle`` was not given."""


def is_keras_spec(spec: str) -> bool:
    """Whether ``spec`` names a Keras file (by its ending: ``.keras``, ``.h5``, ``.hdf5``)."""
    return Path(spec).suffix.lower() in KERAS_SUFFIXES


def import_keras():
    """``keras``, on the torch backend when no backend was chosen and TensorFlow is absent.

    Raises:
        OnnxDreamError: Keras is not installed.
    """
    if "keras" not in sys.modules and not os.environ.get("KERAS_BACKEND"):
        if importlib.util.find_spec("tensorflow") is None:
            os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError as exc:
        raise OnnxDreamError(
            f"Keras files need Keras 3 and h5py: pip install 'onnxdream[keras]' ({first_line(exc)})"
        ) from None
    return keras


def _objects(config: Any) -> Iterator[dict[str, Any]]:
    """Every serialized object (a dict with ``class_name``) in a Keras config, depth first."""
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            yield config
        for value in config.values():
            yield from _objects(value)
    elif isinstance(config, list):
        for value in config:
            yield from _objects(value)


def _known_classes(keras) -> frozenset[str]:
    names = {"Functional", "Model", "Sequential", "function", "DTypePolicy", "FloatDTypePolicy"}
    for namespace in _CLASS_NAMESPACES:
        names.update(dir(getattr(keras, namespace, None)))
    return frozenset(names)


def code_in_config(config: Any, keras) -> str | None:
    """Why loading this config would run code from the file (``None``: it would not).

    A ``Lambda`` layer carries marshalled bytecode; an object from a module outside Keras, a
    class registered under a package of its own (``Custom>MyLayer``) or a class name Keras does
    not ship is a custom object, whose code a user module supplies.
    """
    known = _known_classes(keras)
    for item in _objects(config):
        name = item["class_name"]
        label = item.get("config", {}).get("name") if isinstance(item.get("config"), dict) else None
        where = f" {label!r}" if isinstance(label, str) else ""
        if name in _LAMBDA_CLASSES:
            return f"a Lambda layer{where} (Python bytecode)"
        module = item.get("module")
        registered = item.get("registered_name")
        if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
            return f"a custom object {name!r}{where} from module {module!r}"
        if isinstance(registered, str) and ">" in registered:
            return f"a custom object {registered!r}{where}"
        if name not in _VALUE_MARKERS and name not in known:
            return f"a custom object {name!r}{where}"
    return None


def read_config(path: Path) -> Any:
    """The model config a Keras file holds, read as JSON without Keras.

    Raises:
        BadModelError: not a Keras file, or no readable model config in it.
    """
    with path.open("rb") as file:
        head = file.read(8)
    try:
        if head == _HDF5_SIGNATURE:
            import h5py

            with h5py.File(path, "r") as h5:
                raw = h5.attrs.get("model_config")
            if raw is None:
                raise BadModelError(f"{path}: an HDF5 file with no Keras model in it (weights only?)")
            return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "config.json" not in archive.namelist():
                    raise BadModelError(f"{path}: a zip archive with no config.json: not a .keras model")
                return json.loads(archive.read("config.json"))
    except BadModelError:
        raise
    except ImportError:
        raise OnnxDreamError("reading .h5 files needs h5py: pip install 'onnxdream[keras]'") from None
    except Exception as exc:
        raise BadModelError(f"{path}: unreadable Keras model config ({first_line(exc)})") from None
    raise BadModelError(f"{path}: not a Keras file (neither a .keras zip archive nor HDF5)")


def load_keras_model(spec: str, *, trust_pickle: bool = False):
    """The Keras model a ``.keras`` or ``.h5`` file holds, loaded without running its code.

    Raises:
        BadModelError: a missing or unreadable file, or one that is not a Keras model.
        UntrustedKerasError: the file would run code (Lambda, custom objects) and
            ``trust_pickle`` is not set.
        OnnxDreamError: Keras is not installed.
    """
    path = Path(spec)
    if not path.is_file():
        raise BadModelError(f"{spec}: not found")
    config = read_config(path)
    keras = import_keras()
    reason = code_in_config(config, keras)
    if reason is not None and not trust_pickle:
        raise UntrustedKerasError(
            f"{path}: the Keras model holds {reason}, which runs code when loaded; if you trust "
            "this file, pass {trust_pickle}",
            trust_pickle="trust_pickle=True",
        )
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not trust_pickle)
    except Exception as exc:
        raise BadModelError(f"{path}: cannot load a Keras model ({first_line(exc)})") from None
    return model


def nested_models(model) -> Iterator[Any]:
    """``model`` and every model nested in it (a pretrained backbone in a Sequential), depth first."""
    yield model
    for layer in getattr(model, "layers", None) or []:
        if getattr(layer, "layers", None) is not None:
            yield from nested_models(layer)


def application_preprocess(model) -> dict[str, Any] | None:
    """The preprocessing the ``keras.applications`` model in ``model`` expects (``None``: unknown)."""
    for inner in nested_models(model):
        name = inner.name.lower()
        found = [
            (len(p), mode)
            for prefixes, mode in APPLICATION_PREPROCESS
            for p in prefixes
            if name.startswith(p)
        ]
        if found:
            return json.loads(json.dumps(max(found, key=lambda pair: pair[0])[1]))  # a deep copy
    return None
