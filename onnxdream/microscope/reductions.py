"""Per-channel statistics computed inside the graph: the model is cut after the layers and each
layer's activation feeds reduction nodes, so ONNX Runtime returns (N, C) arrays instead of whole
feature maps (no copy of every activation out of the runtime, reductions in its own kernels).

A layer that is a Relu, or a Clip that keeps the sign (lower bound <= 0 < upper bound), of
another requested layer reads its max, peak position and fraction > 0 off that layer's
statistics: a non-decreasing function commutes with max (so the source's peak is one of its
peaks), and keeps exactly the positives positive. Only its mean is reduced again. Where the
function saturates, several positions tie at its peak and the source's peak picks the one with
the strongest input; where everything sits at the lower bound (a Relu of a map with nothing
positive), the first position counts, as numpy's argmax counts ties.

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


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and Constant-node outputs of ``graph`` by name."""
    found = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def _clip_bounds(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> tuple[float, float] | None:
    """A Clip's (lower, upper) bounds when they are known constants (attributes before opset 11)."""
    if node.input[1:] or not node.attribute:
        bounds = [-np.inf, np.inf]
        for i, name in enumerate(node.input[1:3]):
            if name:
                if name not in constants or constants[name].size != 1:
                    return None
                bounds[i] = float(constants[name].reshape(()))
        return bounds[0], bounds[1]
    attrs = {a.name: a.f for a in node.attribute}
    return attrs.get("min", -np.inf), attrs.get("max", np.inf)


def _sign_keeping_sources(
    graph: onnx.GraphProto, tensors: Sequence[str]
) -> dict[int, tuple[int, onnx.NodeProto, float]]:
    """Layer ``k`` -> (layer ``j``, node, lower bound) where layer k is ``node`` (Relu, or a Clip
    with lower bound <= 0 < upper bound) applied to layer j: k's max, peak position and fraction
    > 0 follow from j's."""
    position = {tensor: k for k, tensor in enumerate(tensors)}
    producers = {out: node for node in graph.node for out in node.output}
    constants = _constants(graph)
    sources = {}
    for k, tensor in enumerate(tensors):
        node = producers.get(tensor)
        if node is None or node.op_type not in ("Relu", "Clip") or node.input[0] not in position:
            continue
        j = position[node.input[0]]
        lower = 0.0
        if node.op_type == "Clip":
            bounds = _clip_bounds(node, constants)
            if bounds is None or not bounds[0] <= 0 < bounds[1]:
                continue
            lower = bounds[0]
        sources[k] = (j, node, lower)
    return sources


def statistics_model(model: onnx.ModelProto, tensors: Sequence[str]) -> onnx.ModelProto:
    """``model`` cut after ``tensors``, whose outputs are their per-image, per-channel statistics.

    Raises:
        OnnxDreamError: a tensor the model does not compute.
    """
    cut = cut_model(model, list(tensors))
    opset = next((o.version for o in cut.opset_import if o.domain in ("", "ai.onnx")), 1)
    shape, zero, axes = f"{PREFIX}/flat_shape", f"{PREFIX}/zero", f"{PREFIX}/axes"
    one, first = f"{PREFIX}/one", f"{PREFIX}/first"
    nodes = [
        _constant(shape, np.array([0, 0, -1], dtype=np.int64)),
        _constant(zero, np.array(0, dtype=np.float32)),
        _constant(one, np.array([1], dtype=np.int64)),
    ]
    if opset >= 13:
        nodes.append(_constant(axes, np.array([2], dtype=np.int64)))
    outputs = []
    shared = _sign_keeping_sources(cut.graph, tensors)
    if shared:
        nodes.append(_constant(first, np.array(0, dtype=np.int64)))
    for k, tensor in enumerate(tensors):
        flat, peak, where, positive, as_float = (
            f"{PREFIX}/{k}/{part}" for part in ("flat", "peak", "where", "positive", "positive_float")
        )
        j, activation, lower = shared.get(k, (None, None, 0.0))
        nodes += [
            helper.make_node("Reshape", [tensor, shape], [flat]),
            _reduce("ReduceMean", flat, output_name(k, "mean"), opset, axes),
            helper.make_node("Shape", [tensor], [output_name(k, "shape")]),
        ]
        if activation is not None and lower == -np.inf:
            nodes.append(helper.make_node("Identity", [output_name(j, "argmax")], [output_name(k, "argmax")]))
        elif activation is not None and opset >= 9:
            # The input's peak is a peak of the activation, unless the input never rises above the
            # lower bound: then every position ties there and the first one counts.
            above, bound = f"{PREFIX}/{k}/above", f"{PREFIX}/{k}/lower"
            nodes += [
                _constant(bound, np.array(lower, dtype=np.float32)),
                helper.make_node("Greater", [output_name(j, "max"), bound], [above]),
                helper.make_node(
                    "Where", [above, output_name(j, "argmax"), first], [output_name(k, "argmax")]
                ),
            ]
        else:
            nodes += [
                # TopK with k = 1 finds the peak and its position in one pass (ReduceMax + ArgMax take
                # two, and ONNX Runtime's ArgMax is slower); ties go to the first position, as ArgMax's.
                _peak(flat, peak, where, opset, one),
                _squeeze(where, output_name(k, "argmax"), opset, axes),
            ]
        if activation is not None:
            bounds, attributes = list(activation.input[1:]), list(activation.attribute)
            derived = helper.make_node(
                activation.op_type, [output_name(j, "max"), *bounds], [output_name(k, "max")]
            )
            derived.attribute.extend(attributes)
            nodes.append(derived)
            nodes.append(helper.make_node("Identity", [output_name(j, "active")], [output_name(k, "active")]))
        else:
            nodes += [
                _squeeze(peak, output_name(k, "max"), opset, axes),
                helper.make_node("Greater", [flat, zero], [positive]),
                helper.make_node("Cast", [positive], [as_float], to=TensorProto.FLOAT),
                _reduce("ReduceMean", as_float, output_name(k, "active"), opset, axes),
            ]
        for stat in ("max", "mean", "active"):
            outputs.append(helper.make_tensor_value_info(output_name(k, stat), TensorProto.FLOAT, None))
        outputs.append(helper.make_tensor_value_info(output_name(k, "argmax"), TensorProto.INT64, None))
        outputs.append(helper.make_tensor_value_info(output_name(k, "shape"), TensorProto.INT64, None))
    cut.graph.node.extend(nodes)
    del cut.graph.output[:]
    cut.graph.output.extend(outputs)
    return cut
