"""Activation shapes at a given input size read off the graph, without running it.

Finding the stride multiple and the smallest size a dream can use means running the network at
several sizes; on CPU each new size costs oneDNN a first call of its own (seconds on a large
model). ONNX shape inference on the part of the graph that feeds the target layers, with the
input's height and width set, gives the same shapes in milliseconds wherever the graph is static
(Conv, Pool, Pad, element-wise ops, Concat, ...: kernel, stride, pads, dilations and ceil_mode
all taken into account by the ONNX spec's own shape functions).

An answer is given only when it is certain: every tensor on the path to the target layers must
get a full, positive shape. A Resize or Reshape whose sizes inference cannot see, a custom op, a
branch whose sides disagree (inference leaves it unknown) all give ``None``, and the caller runs
the network for that size as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from onnxdream.graph import GraphIndex, subgraphs
from onnxdream.layout import NCHW, NHWC, TO_NCHW, in_layout
from onnxdream.shapes import fold_small_constants, weightless_tensor

Shape = tuple[int, ...]


class StaticShapes:
    """Shape inference on the subgraph that feeds some layers, for one rank-4 image input.

    Args:
        model: the ONNX model.
        index: its graph index (layer names resolve to tensors through it).
        input_name: the image input.
        layout: the input's layout (``nchw`` or ``nhwc``).
        layouts: tensors kept channels-last (their shapes are given as NCHW, as the mirror's
            activations are).
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        index: GraphIndex,
        input_name: str,
        layout: str = NCHW,
        layouts: dict[str, str] | None = None,
    ) -> None:
        self.model = model
        self.index = index
        self.input_name = input_name
        self.layout = layout
        self.layouts = layouts or {}
        self._skeletons: dict[tuple[str, ...], tuple[onnx.ModelProto, list[str], set[str]] | None] = {}

    def _skeleton(self, layers: tuple[str, ...]) -> tuple[onnx.ModelProto, list[str], set[str]] | None:
        """The weightless subgraph up to ``layers``, its target tensors and the tensors to check."""
        if layers in self._skeletons:
            return self._skeletons[layers]
        index = self.index
        targets = [t for name in layers for t in index.resolve(name).outputs]
        nodes = list(index.upstream(targets))
        if any(i not in index.position for i in nodes) or any(subgraphs(index.nodes[i]) for i in nodes):
            # A cycle (no topological order) or a nested graph: probing runs it and says what is wrong.
            found = None
        else:
            found = self._build(targets, sorted(nodes, key=index.position.__getitem__))
        self._skeletons[layers] = found
        return found

    def _build(
        self, targets: list[str], nodes: list[int]
    ) -> tuple[onnx.ModelProto, list[str], set[str]] | None:
        graph = self.model.graph
        chosen = [self.index.nodes[i] for i in nodes]
        read = {x for n in chosen for x in n.input if x}
        data_inputs = [v for v in graph.input if v.name in read and v.name not in self.index.initializers]
        if [v.name for v in data_inputs] != [self.input_name]:
            return None  # another data input on the path (or the image input unused): run instead
        sub = onnx.helper.make_graph(
            chosen,
            "static_shapes",
            [onnx.ValueInfoProto(name=self.input_name, type=data_inputs[0].type)],
            [onnx.helper.make_empty_tensor_value_info(t) for t in targets],
            [weightless_tensor(t) for t in graph.initializer if t.name in read],
        )
        model = onnx.helper.make_model(
            sub, opset_imports=self.model.opset_import, ir_version=self.model.ir_version
        )
        model.functions.extend(self.model.functions)
        model.ir_version = max(model.ir_version, 4)
        skeleton = fold_small_constants(model)
        produced = {x for n in skeleton.graph.node for x in n.output if x}
        used = {x for n in skeleton.graph.node for x in n.input if x}
        check = (produced & used) | set(targets)
        return skeleton, targets, check

    def shapes(self, layers: Sequence[str], height: int, width: int) -> list[Shape] | None:
        """The (NCHW) shapes of the tensors of ``layers`` on a ``1x3xHxW`` input, or ``None`` when
        inference cannot be sure of every tensor on the way."""
        found = self._skeleton(tuple(layers))
        if found is None:
            return None
        skeleton, targets, check = found
        model = onnx.ModelProto()
        model.CopyFrom(skeleton)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        if len(dims) != 4:
            return None
        for dim, value in zip(dims, in_layout((1, 3, height, width), self.layout), strict=True):
            dim.Clear()
            dim.dim_value = value
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception:  # inference raises on shapes it finds inconsistent: run instead
            return None
        known: dict[str, Shape] = {}
        for value in [*inferred.graph.value_info, *inferred.graph.output]:
            tensor = value.type.tensor_type
            if value.type.HasField("tensor_type") and tensor.HasField("shape"):
                dims_ = tensor.shape.dim
                if all(d.HasField("dim_value") and d.dim_value > 0 for d in dims_):
                    known[value.name] = tuple(d.dim_value for d in dims_)
        if not check <= known.keys():
            return None
        return [self._nchw(t, known[t]) for t in targets]

    def _nchw(self, tensor: str, shape: Shape) -> Shape:
        if len(shape) == 4 and self.layouts.get(tensor) == NHWC:
            return tuple(shape[i] for i in TO_NCHW)
        return shape
