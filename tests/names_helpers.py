"""Small graphs for naming tests, built node by node (names empty unless given)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model(
    nodes: list[tuple[str, list[str], list[str]]],
    params: dict[str, tuple[int, ...]] | None = None,
    *,
    inputs: tuple[str, ...] = ("x",),
    outputs: tuple[str, ...] = ("y",),
    names: dict[int, str] | None = None,
) -> onnx.ModelProto:
    """A model from ``(op_type, inputs, outputs)`` triples; ``params``: initializer shapes (float32)."""
    rng = np.random.default_rng(0)
    graph_nodes = []
    for k, (op, ins, outs) in enumerate(nodes):
        graph_nodes.append(helper.make_node(op, ins, outs, name=(names or {}).get(k, "")))
    initializers = [
        numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
        for name, shape in (params or {}).items()
    ]
    graph = helper.make_graph(
        graph_nodes,
        "g",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None) for x in inputs],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, None) for y in outputs],
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
