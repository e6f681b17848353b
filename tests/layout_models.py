"""Tiny channels-last (NHWC) CNNs as converters of Keras / TensorFlow models write them, no TensorFlow.

- :func:`tf2onnx_like`: what tf2onnx writes for a Keras model: an ``N x H x W x 3`` input
  transposed to NCHW (perm 0,3,1,2) by a ``Transpose__N`` node, ``model/<layer>/<op>`` node
  names, and a tail that goes back to NHWC (perm 0,2,3,1) before element-wise ops and a
  reduction, so some activations stay channels-last;
- :func:`torch_nhwc`: a torch module that permutes its NHWC input, exported with module names;
- :func:`hidden_layout`: an NHWC input read first by a per-pixel MatMul (a Dense on the channel
  axis) and transposed only afterwards: nothing shows the layout, ``--layout nhwc`` is needed.

::

    input (1,H,W,3) -> Transpose(0,3,1,2) -> block_1_expand Conv3x3 -> Relu -> block_1_project
    Conv3x3/2 -> block_2_expand Conv3x3 -> Relu -> Transpose(0,2,3,1) -> head Mul (NHWC)
    -> ReduceMean(1,2) -> (1, 12)
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from onnxdream.torch_export import export_model


def _conv(name: str, x: str, out: str, c_in: int, c_out: int, stride: int, rng: np.random.Generator):
    w = numpy_helper.from_array(
        (rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(9 * c_in)).astype(np.float32), f"{name}/kernel:0"
    )
    b = numpy_helper.from_array((0.1 * rng.standard_normal(c_out)).astype(np.float32), f"{name}/bias:0")
    node = helper.make_node(
        "Conv", [x, w.name, b.name], [out], name=f"{name}/Conv2D", pads=[1, 1, 1, 1], strides=[stride, stride]
    )
    return node, [w, b]


def tf2onnx_like(
    size: int | None = None, seed: int = 0, opset: int = 13, prefix: str = "model"
) -> onnx.ModelProto:
    """The tf2onnx-style NHWC CNN; ``size`` fixes H and W (``None``: free, as ``unk__`` dims);
    ``prefix`` is the scope of every layer (``sequential/mobilenetv2_1.00_224`` for a wrapped one)."""
    rng = np.random.default_rng(seed)
    side = size if size is not None else "unk__7"
    other = size if size is not None else "unk__8"
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["input_nchw"], name="Transpose__12", perm=[0, 3, 1, 2])
    ]
    inits = []
    for name, x, out, c_in, c_out, stride in (
        (f"{prefix}/block_1_expand", "input_nchw", "e1", 3, 8, 1),
        (f"{prefix}/block_1_project", "r1", "p1", 8, 8, 2),
        (f"{prefix}/block_2_expand", "p1", "e2", 8, 12, 1),
    ):
        node, weights = _conv(name, x, out, c_in, c_out, stride, rng)
        nodes.append(node)
        inits += weights
        if name.endswith("expand"):
            relu_out = "r1" if out == "e1" else "r2"
            nodes.append(helper.make_node("Relu", [out], [relu_out], name=f"{name}_relu/Relu"))
    scale = numpy_helper.from_array(
        (1.0 + 0.1 * rng.standard_normal(12)).astype(np.float32), f"{prefix}/head/scale:0"
    )
    inits.append(scale)
    nodes += [
        helper.make_node(
            "Transpose", ["r2"], ["r2_nhwc"], name=f"{prefix}/block_2_expand_relu/Relu__20", perm=[0, 2, 3, 1]
        ),
        helper.make_node("Mul", ["r2_nhwc", scale.name], ["head_out"], name=f"{prefix}/head/Mul"),
        helper.make_node(
            "ReduceMean", ["head_out"], ["logits"], name=f"{prefix}/pool/Mean", axes=[1, 2], keepdims=0
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "tf2onnx_like",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__6", side, other, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["unk__6", 12])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tf2onnx", ir_version=8
    )
    onnx.checker.check_model(model)
    return model


def hidden_layout(seed: int = 0) -> onnx.ModelProto:
    """An NHWC model whose layout nothing shows: a per-pixel MatMul reads the input first."""
    rng = np.random.default_rng(seed)
    dense = numpy_helper.from_array(rng.standard_normal((3, 6)).astype(np.float32), "dense/kernel:0")
    conv, weights = _conv("model/conv", "d_nchw", "c", 6, 8, 1, rng)
    nodes = [
        helper.make_node("MatMul", ["image", dense.name], ["d"], name="model/dense/MatMul"),
        helper.make_node("Relu", ["d"], ["d_relu"], name="model/dense/Relu"),
        helper.make_node("Transpose", ["d_relu"], ["d_nchw"], name="Transpose__3", perm=[0, 3, 1, 2]),
        conv,
        helper.make_node("Relu", ["c"], ["out"], name="model/conv_relu/Relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "hidden_layout",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", "h", "w", 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 8, "h", "w"])],
        [dense, *weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model


class TorchNHWC(nn.Module):
    """Channels-last input, permuted to NCHW; two residual-free stages with ``conv1`` in each."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1 = nn.Sequential(_Block(8), _Block(8))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x.permute(0, 3, 1, 2)))
        return self.pool(self.layer1(x)).flatten(1)


class _Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(torch.relu(self.conv1(x))))


def torch_nhwc(seed: int = 0) -> TorchNHWC:
    """The torch NHWC module with seeded weights, in eval mode."""
    torch.manual_seed(seed)
    return TorchNHWC().eval()


def torch_nhwc_onnx() -> onnx.ModelProto:
    """:func:`torch_nhwc` exported at 1x32x32x3 with module names on the nodes."""
    return export_model("tests.layout_models:torch_nhwc", legacy=True, input_shape=(1, 32, 32, 3)).model


def channels_last(model: onnx.ModelProto, name: str = "input_nhwc") -> onnx.ModelProto:
    """``model`` (one NCHW input) with an NHWC input transposed to the old one, as tf2onnx writes it."""
    wrapped = onnx.ModelProto()
    wrapped.CopyFrom(model)
    graph = wrapped.graph
    weights = {t.name for t in graph.initializer}
    (old,) = [v for v in graph.input if v.name not in weights]
    dims = list(old.type.tensor_type.shape.dim)
    new = helper.make_tensor_value_info(name, old.type.tensor_type.elem_type, None)
    for k in (0, 2, 3, 1):
        new.type.tensor_type.shape.dim.add().CopyFrom(dims[k])
    position = list(graph.input).index(old)
    graph.input.remove(old)
    graph.input.insert(position, new)
    graph.node.insert(
        0, helper.make_node("Transpose", [name], [old.name], name="Transpose__nhwc", perm=[0, 3, 1, 2])
    )
    return wrapped


def stride_two_skip() -> onnx.ModelProto:
    """NHWC input, transposed; a stride-2 conv upsampled x2 and added to its input: even sides only."""
    rng = np.random.default_rng(0)
    conv, weights = _conv("model/down", "x", "y", 3, 3, 2, rng)
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node("Transpose", ["image"], ["x"], name="Transpose__1", perm=[0, 3, 1, 2]),
        conv,
        helper.make_node("Resize", ["y", "", scales.name], ["z"], name="model/up/Resize", mode="nearest"),
        helper.make_node("Add", ["x", "z"], ["out"], name="model/skip/Add"),
    ]
    graph = helper.make_graph(
        nodes,
        "stride_two_skip",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", "h", "w", 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [*weights, scales],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def keras_torch_like(seed: int = 0) -> onnx.ModelProto:
    """What Keras 3 on torch exports for channels-last layers: every conv between a Transpose to
    NCHW and one back, batch norm and ReLU6 on the last axis (NHWC), so layer outputs are NHWC."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "image"
    for k, (layer, c_in, c_out) in enumerate((("Conv1", 3, 8), ("block_1_expand", 8, 6))):
        conv, weights = _conv(layer, f"t{k}", f"c{k}", c_in, c_out, 1 + (k == 0), rng)
        gamma = numpy_helper.from_array(
            (1 + 0.1 * rng.standard_normal(c_out)).astype(np.float32), f"{layer}_BN/gamma"
        )
        beta = numpy_helper.from_array(
            (0.1 * rng.standard_normal(c_out)).astype(np.float32), f"{layer}_BN/beta"
        )
        low = numpy_helper.from_array(np.array(0, np.float32), f"{layer}_relu/min")
        high = numpy_helper.from_array(np.array(6, np.float32), f"{layer}_relu/max")
        inits += [*weights, gamma, beta, low, high]
        nodes += [
            helper.make_node("Transpose", [x], [f"t{k}"], name=f"{layer}/Transpose", perm=[0, 3, 1, 2]),
            conv,
            helper.make_node(
                "Transpose", [f"c{k}"], [f"o{k}"], name=f"{layer}/Transpose_1", perm=[0, 2, 3, 1]
            ),
            helper.make_node("Mul", [f"o{k}", gamma.name], [f"m{k}"], name=f"{layer}_BN/Mul"),
            helper.make_node("Add", [f"m{k}", beta.name], [f"b{k}"], name=f"{layer}_BN/Add"),
            helper.make_node("Clip", [f"b{k}", low.name, high.name], [f"r{k}"], name=f"{layer}_relu/Clip"),
        ]
        x = f"r{k}"
    graph = helper.make_graph(
        nodes,
        "keras_torch_like",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 32, 32, 3])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
