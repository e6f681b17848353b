"""Per-channel statistics computed inside the graph: the model is cut after the layers and each
layer's activation feeds reduction nodes, so ONNX Runtime returns (N, C) arrays instead of whole
feature maps (no copy of every activation out of the runtime, reductions in its own kernels).

Per layer ``k`` the outputs are ``onnxdream.microscope/k/<stat>`` for every stat of
:data:`~onnxdream.microscope.stats.REDUCTIONS`, and ``onnxdream.microscope/k/shape``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxdream.surgery import cut_model

PREFIX = "onnxdream.microscope"


def output_name(k: int, stat: str) -> str:
    """The graph output holding statistic ``stat`` (or ``shape``) of the ``k``-th layer."""
    return f"{PREFIX}/{k}/{stat}"


def _constant(name: str, value: np.ndarray) -> onnx.NodeProto:
    # A Constant node, not an initializer: models before IR 4 list every initializer as an input.
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _reduce(op: str, source: str, target: str, opset: int, axes_name: str) -> onnx.NodeProto:
    """``op`` over axis 2 without keeping it (``axes`` became an input in opset 18)."""
    if opset >= 18:
        return helper.make_node(op, [source, axes_name], [target], keepdims=0)
    return helper.make_node(op, [source], [target], axes=[2], keepdims=0)


def _squeeze(source: str, target: str, opset: int, axes_name: str) -> onnx.NodeProto:
    """Drop axis 2 (``axes`` became an input in opset 13)."""
    if opset >= 13:
        return helper.make_node("Squeeze", [source, axes_name], [target])
    return helper.make_node("Squeeze", [source], [target], axes=[2])


def _peak(source: str, values: str, positions: str, opset: int, one: str) -> onnx.NodeProto:
    """TopK with k = 1 over axis 2 (``k`` became an input in opset 10)."""
    if opset >= 10:
        return helper.make_node("TopK", [source, one], [values, positions], axis=2)
    return helper.make_node("TopK", [source], [values, positions], axis=2, k=1)


def statistics_model(model: onnx.ModelProto, tensors: Sequence[str]) -> onnx.ModelProto:
    """``model`` cut after ``tensors``, whose outputs are their per-image, per-channel statistics.

    Raises:
        OnnxDreamError: a tensor the model does not compute.
    """
    cut = cut_model(model, list(tensors))
    opset = next((o.version for o in cut.opset_import if o.domain in ("", "ai.onnx")), 1)
    shape, zero, axes = f"{PREFIX}/flat_shape", f"{PREFIX}/zero", f"{PREFIX}/axes"
    one = f"{PREFIX}/one"
    nodes = [
        _constant(shape, np.array([0, 0, -1], dtype=np.int64)),
        _constant(zero, np.array(0, dtype=np.float32)),
        _constant(one, np.array([1], dtype=np.int64)),
    ]
    if opset >= 13:
        nodes.append(_constant(axes, np.array([2], dtype=np.int64)))
    outputs = []
    for k, tensor in enumerate(tensors):
        flat, peak, where, positive, as_float = (
            f"{PREFIX}/{k}/{part}" for part in ("flat", "peak", "where", "positive", "positive_float")
        )
        nodes += [
            helper.make_node("Reshape", [tensor, shape], [flat]),
            # TopK with k = 1 finds the peak and its position in one pass (ReduceMax + ArgMax take two);
            # ties go to the first position, as ArgMax's would.
            _peak(flat, peak, where, opset, one),
            _squeeze(peak, output_name(k, "max"), opset, axes),
            _squeeze(where, output_name(k, "argmax"), opset, axes),
            _reduce("ReduceMean", flat, output_name(k, "mean"), opset, axes),
            helper.make_node("Greater", [flat, zero], [positive]),
            helper.make_node("Cast", [positive], [as_float], to=TensorProto.FLOAT),
            _reduce("ReduceMean", as_float, output_name(k, "active"), opset, axes),
            _reduce("ReduceMin", flat, output_name(k, "min"), opset, axes),
            helper.make_node("Shape", [tensor], [output_name(k, "shape")]),
        ]
        for stat in ("max", "mean", "active", "min"):
            outputs.append(helper.make_tensor_value_info(output_name(k, stat), TensorProto.FLOAT, None))
        outputs.append(helper.make_tensor_value_info(output_name(k, "argmax"), TensorProto.INT64, None))
        outputs.append(helper.make_tensor_value_info(output_name(k, "shape"), TensorProto.INT64, None))
    cut.graph.node.extend(nodes)
    del cut.graph.output[:]
    cut.graph.output.extend(outputs)
    return cut
