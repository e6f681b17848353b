"""The ``weights`` strategy: a node with parameters is named after their common stem.

``layer1.0.conv1.weight`` -> ``layer1.0.conv1``; ``inception_4c/3x3_w_0`` + ``_b_0`` ->
``inception_4c/3x3``; ``gpu_0/res2_0_branch1_bn_{s,b,rm,riv}_0`` -> ``gpu_0/res2_0_branch1_bn``;
the dynamo exporter's fused BatchNorm ``_blocks.3._depthwise_conv.weight`` +
``_blocks.3._depthwise_conv.weight_bias`` -> ``_blocks.3._depthwise_conv``.

A parameter is a floating-point initializer or ``Constant`` node output (paddle2onnx keeps
weights there: ``conv2d_53.w_0`` -> ``conv2d_53``, ``conv1_weights`` -> ``conv1``) with more
than one element and a name a person gave (``onnx::Conv_909`` is not one), read directly or
through constant-only nodes (the ``Unsqueeze`` of a scale in Caffe2 models). Layers (Conv,
Gemm, BatchNormalization, ...) take the stem itself; any other node with parameters (a ``Mul``
by a scale, an ``Add`` of a bias) is a helper of that layer and gets ``<stem>/<OpType>``.
"""

from __future__ import annotations

import math
import re

import onnx

from onnxdream.graph import GraphIndex
from onnxdream.names.lost import is_generated
from onnxdream.names.scope import common_scope

LAYER_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "ConvInteger",
        "QLinearConv",
        "DeformConv",
        "Gemm",
        "MatMul",
        "MatMulInteger",
        "QLinearMatMul",
        "BatchNormalization",
        "InstanceNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "RMSNormalization",
        "PRelu",
        "LSTM",
        "GRU",
        "RNN",
    }
)
"""Ops whose parameters make them a layer of their own (named exactly after the stem)."""

_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
)
# Caffe/Caffe2 parameter roles, after the trailing instance number ('_0') is gone.
_ROLE = re.compile(
    r"(.+?)_(?:w|b|s|rm|riv|scale|bias|mean|var|weight|weights|gamma|beta|kernel"
    r"|offset|variance|running_mean|running_var|moving_mean|moving_variance)"
)


def parameter_stem(name: str) -> str:
    """The module or layer a parameter belongs to.

    Torch names drop their attribute (``a.b.weight`` -> ``a.b``); Caffe-style names drop the
    instance number and the role (``conv1/7x7_s2_w_0`` -> ``conv1/7x7_s2``).
    """
    last = name.rsplit("/", 1)[-1]
    if "." in last:
        return name[: name.rfind(".")]
    stem = re.sub(r"_\d+$", "", name)
    match = _ROLE.fullmatch(stem)
    return match.group(1) if match else stem


def _is_parameter(tensor: onnx.TensorProto, name: str) -> bool:
    return tensor.data_type in _FLOAT_TYPES and math.prod(tensor.dims) > 1 and not is_generated(name)


def _constant_value(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The tensor a ``Constant`` node holds in its ``value`` attribute (``None`` otherwise)."""
    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
        return None
    return next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)


def _parameters_by_tensor(index: GraphIndex) -> dict[str, tuple[str, ...]]:
    """Parameter names behind each constant tensor, following constant-only nodes back."""
    behind: dict[str, tuple[str, ...]] = {
        t.name: (t.name,) for t in index.graph.initializer if _is_parameter(t, t.name)
    }
    for i in index.order:
        if not index.is_constant(i):
            continue
        value = _constant_value(index.nodes[i])
        out = index.nodes[i].output[0] if index.nodes[i].output else ""
        if value is not None and out and _is_parameter(value, out):
            behind[out] = (out,)
            continue
        found = [p for x in index.nodes[i].input if x for p in behind.get(x, ())]
        if found:
            unique = tuple(dict.fromkeys(found))
            for out in index.nodes[i].output:
                if out:
                    behind[out] = unique
    return behind


def stem_of(parameters: list[str]) -> str:
    """The common stem of a node's parameters ('' when none); the first one's stem if they disagree."""
    if not parameters:
        return ""
    stems = [parameter_stem(p) for p in parameters]
    return common_scope(stems) or stems[0]


def names_from_weights(index: GraphIndex) -> dict[int, str]:
    """Node index -> name from its parameters, for every node that has some."""
    behind = _parameters_by_tensor(index)
    names: dict[int, str] = {}
    for i, node in enumerate(index.nodes):
        found = [p for x in node.input if x for p in behind.get(x, ())]
        stem = stem_of(list(dict.fromkeys(found)))
        if stem:
            names[i] = stem if node.op_type in LAYER_OPS else f"{stem}/{node.op_type}"
    return names
