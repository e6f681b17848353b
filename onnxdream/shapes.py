"""Tensor types from ONNX shape inference, with symbolic dimensions kept by name."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from onnxdream.graph import GraphIndex
from onnxdream.io import PROTO_LIMIT, save_model

Dim = int | str | None


@dataclass(frozen=True)
class TensorType:
    """Element type and shape of a tensor (``None`` rank when unknown)."""

    dtype: str
    shape: tuple[Dim, ...] | None

    def __str__(self) -> str:
        if self.shape is None:
            return f"{self.dtype} (?)"
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype} ({dims})"


def value_type(value: onnx.ValueInfoProto) -> TensorType | None:
    """The tensor type a ``ValueInfoProto`` declares (``None`` for non-tensor values)."""
    if not value.type.HasField("tensor_type"):
        return None
    tensor = value.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
    if not tensor.HasField("shape"):
        return TensorType(dtype, None)
    dims: list[Dim] = []
    for dim in tensor.shape.dim:
        # Some exporters write -1 for a dynamic dim; no tensor has a negative size.
        if dim.HasField("dim_value") and dim.dim_value >= 0:
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return TensorType(dtype, tuple(dims))


def input_dims(value: onnx.ValueInfoProto) -> tuple[int | None, ...] | None:
    """A graph input's declared dims, ``None`` for each one that is not fixed.

    Exporters mark a dynamic dimension in several ways: a symbol (``N``), no value at all, or
    a value of ``-1`` or ``0`` (no real input has a side of 0). All of them are ``None`` here.
    Returns ``None`` when the input declares no shape (unknown rank).
    """
    found = value_type(value)
    if found is None or found.shape is None:
        return None
    return tuple(d if isinstance(d, int) and d > 0 else None for d in found.shape)


FOLD_LIMIT = 65536
"""Only small constant subgraphs (shape arithmetic, pads) are folded before inference."""


def fold_small_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Copy of ``model`` whose small constant computations are initializers.

    The legacy torch exporter computes pads through Shape/Slice/Transpose chains that shape
    inference cannot see through; folding them first gives concrete output shapes.
    """
    from onnx.reference import ReferenceEvaluator

    index = GraphIndex(model.graph)
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    foldable, produced = [], set()
    for i in index.order:
        node = index.nodes[i]
        inputs = [x for x in node.input if x]
        if node.op_type in ("If", "Loop", "Scan") or not index.is_constant(i):
            continue
        if all(x in produced or sizes.get(x, FOLD_LIMIT + 1) <= FOLD_LIMIT for x in inputs):
            foldable.append(node)
            produced.update(x for x in node.output if x)
    if not foldable:
        return model
    used = {x for n in foldable for x in n.input if x}
    inits = [t for t in model.graph.initializer if t.name in used]
    outputs = [onnx.helper.make_empty_tensor_value_info(name) for name in sorted(produced)]
    sub = onnx.helper.make_graph(foldable, "fold", [], outputs, inits)
    submodel = onnx.helper.make_model(sub, opset_imports=model.opset_import, ir_version=model.ir_version)
    try:
        values = ReferenceEvaluator(submodel).run(None, {})
    except Exception:
        return model  # folding is an optimisation for display; inference works without it
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    # IR < 4 only sees initializers that are also graph inputs; this copy is for inference only.
    folded.ir_version = max(folded.ir_version, 4)
    keep = [n for n in folded.graph.node if not (set(n.output) & produced)]
    del folded.graph.node[:]
    folded.graph.node.extend(keep)
    for name, value in zip(sorted(produced), values, strict=True):
        folded.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return folded


def _weightless(model: onnx.ModelProto) -> onnx.ModelProto:
    """What shape inference reads, with initializers past :data:`FOLD_LIMIT` elements kept as
    type and dims only.

    Inference needs the values of small constants (shapes, axes, pads), never those of weights;
    inferring on the model itself would copy every weight four times (550 MB each for vgg19).
    """
    skeleton = onnx.ModelProto(ir_version=model.ir_version)
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    graph = skeleton.graph
    graph.name = model.graph.name
    for field in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(graph, field).extend(getattr(model.graph, field))
    graph.initializer.extend(weightless_tensor(tensor) for tensor in model.graph.initializer)
    return skeleton


def weightless_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    """``tensor`` itself up to :data:`FOLD_LIMIT` elements (inference may need its values), else
    its name, type and dims only."""
    if np.prod(tensor.dims) <= FOLD_LIMIT:
        return tensor
    return onnx.TensorProto(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)


def infer_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shape-inferred copy of ``model``, weights reduced to their dims (through a file past 2 GB).

    The copy is for types only: its large initializers hold no values.
    """
    skeleton = _weightless(model)
    if skeleton.ByteSize() < PROTO_LIMIT:
        return onnx.shape_inference.infer_shapes(fold_small_constants(skeleton), data_prop=True)
    with tempfile.TemporaryDirectory() as folder:
        source = save_model(model, Path(folder) / "model.onnx", external_data=True)
        target = os.path.join(folder, "inferred.onnx")
        onnx.shape_inference.infer_shapes_path(str(source), target)
        return onnx.load_model(target, load_external_data=False)


def tensor_types(model: onnx.ModelProto) -> dict[str, TensorType]:
    """Every tensor's type as far as shape inference knows (graph I/O, values, initializers)."""
    inferred = infer_model(model)
    graph = inferred.graph
    types: dict[str, TensorType] = {}
    for init in graph.initializer:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).name
        types[init.name] = TensorType(dtype, tuple(init.dims))
    for value in [*graph.input, *graph.value_info, *graph.output]:
        found = value_type(value)
        if found is not None:
            types[value.name] = found
    return types
