"""Cut a model down to what computes some of its tensors, which become its outputs."""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from onnxdream.errors import OnnxDreamError
from onnxdream.graph import GraphIndex
from onnxdream.shapes import infer_model


def cut_model(model: onnx.ModelProto, outputs: Sequence[str]) -> onnx.ModelProto:
    """The part of ``model`` that computes ``outputs``, with those tensors as its outputs.

    Graph inputs keep their names and element types; every dimension becomes symbolic. The cut
    is a new proto: the weights it keeps are copies.

    Raises:
        OnnxDreamError: an output is not produced by any node or input.
    """
    graph = model.graph
    index = GraphIndex(graph)
    inputs = {i.name: i for i in graph.input if i.name not in index.initializers}
    needed_nodes = set(index.upstream(outputs))
    needed_names = set(outputs).union(*(index.reads(i) for i in needed_nodes))
    for name in [*outputs, *sorted(needed_names)]:
        if name not in index.producer and name not in inputs and name not in index.initializers:
            raise OnnxDreamError(f"tensor {name!r} is not computed by the model")
    nodes = [index.nodes[i] for i in sorted(needed_nodes, key=index.position.__getitem__)]
    new_inputs = []
    for name, info in inputs.items():
        if name not in needed_names:
            continue
        elem = info.type.tensor_type.elem_type
        rank = len(info.type.tensor_type.shape.dim)
        dims = [f"{name}_d{k}" for k in range(rank)] if info.type.tensor_type.HasField("shape") else None
        new_inputs.append(onnx.helper.make_tensor_value_info(name, elem, dims))
    initializers = [t for t in graph.initializer if t.name in needed_names]
    if model.ir_version < 4:
        # Before IR 4, every initializer must also be listed as a graph input.
        new_inputs += [
            onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in initializers
        ]
    new_outputs = [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in outputs]
    # Built in place: make_graph and make_model would each copy every weight once more.
    cut = onnx.ModelProto(ir_version=model.ir_version)
    cut.opset_import.extend(model.opset_import)
    cut.graph.name = graph.name or "cut"
    cut.graph.node.extend(nodes)
    cut.graph.input.extend(new_inputs)
    cut.graph.output.extend(new_outputs)
    cut.graph.initializer.extend(initializers)
    cut.graph.sparse_initializer.extend(t for t in graph.sparse_initializer if t.values.name in needed_names)
    cut.functions.extend(model.functions)
    _type_outputs(cut)
    return cut


def _type_outputs(model: onnx.ModelProto) -> None:
    """Give the outputs inferred (symbolic) shapes where shape inference finds them.

    Inference runs on the weightless skeleton (:func:`onnxdream.shapes.infer_model`): on the cut
    itself it would serialise and parse every weight again (2.3 GB more for 0.4 GB of weights).
    """
    try:
        graph = infer_model(model).graph
    except (onnx.shape_inference.InferenceError, ValueError):
        return
    inferred = [*graph.value_info, *graph.output]
    types = {v.name: v.type for v in inferred if v.type.tensor_type.HasField("shape")}
    for output in model.graph.output:
        if output.name in types:
            output.type.CopyFrom(types[output.name])
