"""Graph surgery on ONNX protos: expose layers as extra graph outputs.

The proto is edited directly (not through onnx-graphsurgeon, which drops node ``metadata_props``),
so nothing but the graph outputs and the model's ``onnxdream.exposed`` entry changes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from onnxdream.errors import OnnxDreamError, UnknownLayerError, first_line, suggest
from onnxdream.graph import GraphIndex, Layer
from onnxdream.metadata import EXPOSED_KEY, get_json, set_json
from onnxdream.shapes import infer_model, input_dims


@dataclass
class ExposeResult:
    """A model with layers exposed, and which graph outputs belong to which layer.

    Attributes:
        model: the new model (the input model is left untouched).
        exposed: layer name -> its output tensors, in the order they were requested.
        added: tensors that became graph outputs in this call (tensors that already were
            outputs are listed in ``exposed`` but not added again).
    """

    model: onnx.ModelProto
    exposed: dict[str, tuple[str, ...]]
    added: tuple[str, ...]

    def value_info(self, tensor: str) -> onnx.ValueInfoProto:
        """The graph output describing ``tensor`` (dtype and shape)."""
        for output in self.model.graph.output:
            if output.name == tensor:
                return output
        raise KeyError(tensor)


def _node_layer(index: GraphIndex, i: int) -> list[Layer]:
    """Layers for one node: itself when its name finds it, else one per activation tensor.

    Unused optional outputs (a Dropout mask, BatchNorm running statistics) are not activations.
    """
    node = index.nodes[i]
    outputs = index.activations(i)
    if node.name and index.by_name.get(node.name) == i:
        return [Layer(node.name, "node", (i,), outputs)]
    return [Layer(x, "tensor", (i,), (x,)) for x in outputs]


def _select(
    index: GraphIndex,
    layers: Sequence[str],
    match: Sequence[str],
    op_types: Sequence[str],
    exclude: Sequence[str],
    everything: bool,
) -> list[Layer]:
    """Resolve every request to layers, validating all of them before anything is changed."""
    chosen: list[Layer] = list(index.resolve_many(layers))
    for pattern in match:
        # Models whose nodes have no names (old zoo files) are addressed by tensor names instead.
        names = index.match(pattern) or [
            x
            for i in index.order
            if not index.nodes[i].name
            for x in index.nodes[i].output
            if x and fnmatch.fnmatchcase(x, pattern)
        ]
        if not names:
            hint = suggest(pattern, index.layer_names())
            raise UnknownLayerError(
                f"{index.source}: no layer matches {pattern!r}" + (f"; {hint}" if hint else "")
            )
        chosen.extend(index.resolve_many(names))
    present = {n.op_type for n in index.nodes}
    for op_type in op_types:
        if op_type not in present:
            hint = suggest(op_type, sorted(present))
            raise OnnxDreamError(
                f"{index.source}: no node has op type {op_type!r}" + (f"; {hint}" if hint else "")
            )
        for i in index.order:
            if index.nodes[i].op_type == op_type:
                chosen.extend(_node_layer(index, i))
    if everything:
        # Like Polygraphy's "mark all": every computed tensor, but not constants or their folds.
        for i in index.order:
            if not index.is_constant(i):
                chosen.extend(_node_layer(index, i))
    unique: dict[str, Layer] = {}
    for layer in chosen:
        if not any(fnmatch.fnmatchcase(layer.name, pattern) for pattern in exclude):
            unique.setdefault(layer.name, layer)
    if not unique:
        what = "the requested layers are all excluded" if chosen else "no layer requested"
        raise OnnxDreamError(f"{index.source}: nothing to expose ({what})")
    for layer in unique.values():
        if not layer.outputs:
            raise OnnxDreamError(f"{index.source}: layer {layer.name!r} has no output used by anything")
    return list(unique.values())


def _inferred_types(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """Types of every tensor from ONNX shape inference (the path form past the 2 GB limit)."""
    graph = infer_model(model).graph
    return {v.name: v for v in [*graph.input, *graph.value_info, *graph.output]}


def _typed(info: onnx.ValueInfoProto | None) -> bool:
    return info is not None and info.type.WhichOneof("value") is not None


def _complete(info: onnx.ValueInfoProto | None) -> bool:
    """Whether ``info`` is a type the checker accepts on a graph output (a tensor needs a shape)."""
    if not _typed(info):
        return False
    assert info is not None
    if info.type.WhichOneof("value") != "tensor_type":
        return True
    tensor = info.type.tensor_type
    return bool(tensor.elem_type) and tensor.HasField("shape")


def _observed_types(
    model: onnx.ModelProto,
    index: GraphIndex,
    tensors: Sequence[str],
    feeds: Mapping[str, np.ndarray] | None,
) -> dict[str, onnx.ValueInfoProto]:
    """Types of ``tensors`` from one ONNX Runtime run, for what shape inference cannot type.

    The run's dims are written only when every input of the model is fixed (they are then the
    dims of every run); otherwise only the rank is (each dim unknown), which is all a run at one
    input size can say.

    Raises:
        OnnxDreamError: ONNX Runtime cannot run the model on ``feeds`` (default: seeded random
            inputs of the declared shapes).
    """
    from onnxdream.check import random_inputs
    from onnxdream.runtime import make_session

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for tensor in tensors:
        probe.graph.output.add().name = tensor
    run_feeds = dict(feeds) if feeds is not None else random_inputs(model)
    try:
        values = make_session(probe, device="cpu", optimization="none").run(run_feeds, tensors, quiet=True)
    except Exception as exc:  # ORT raises several unrelated types for models and feeds it rejects
        node = index.nodes[index.producer[tensors[0]]]
        what = "the input" if feeds is not None else "the default input"
        raise OnnxDreamError(
            f"{index.source}: shape inference gives no shape for tensor {tensors[0]!r} (output of "
            f"{node.op_type} node {node.name!r}) and ONNX Runtime cannot run {what} to find it: "
            f"{first_line(exc)}"
        ) from None
    inputs = [v for v in model.graph.input if v.name in index.graph_inputs]
    static = all((dims := input_dims(v)) is not None and None not in dims for v in inputs)
    observed = {}
    for tensor in tensors:
        value = np.asarray(values[tensor])
        dims: list[int | None] = list(value.shape) if static else [None] * value.ndim
        elem = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
        observed[tensor] = onnx.helper.make_tensor_value_info(tensor, elem, dims)
    return observed


def expose(
    model: onnx.ModelProto,
    layers: Iterable[str] = (),
    *,
    match: Iterable[str] = (),
    op_types: Iterable[str] = (),
    exclude: Iterable[str] = (),
    all: bool = False,
    source: str = "<model>",
    feeds: Mapping[str, np.ndarray] | None = None,
) -> ExposeResult:
    """Add the activations of named layers to the graph outputs.

    Args:
        model: the model; it is not modified.
        layers: node names, scopes (their boundary outputs are exposed) or tensor names.
        match: shell globs over layer names (nodes and scopes); when none matches, over the
            output tensors of unnamed nodes.
        op_types: expose the outputs of every node of these op types.
        exclude: shell globs; matching layer names are left out of everything above.
        all: expose every node's activations (outputs something uses), skipping constants;
            nodes without a unique name are keyed by their output tensor.
        source: how to name the model in error messages (usually its path).
        feeds: an input to run when shape inference cannot give a new output's type or shape
            (an op it cannot follow, a Reshape to a shape computed at run time); by default,
            seeded random inputs of the declared shapes.

    Returns:
        The new model and the mapping layer -> output tensors. Original outputs stay first and
        unchanged; new outputs follow in request order with dtype/shape from shape inference,
        else dtype and rank from an ONNX Runtime run, so every output passes ``onnx.checker``.

    Raises:
        UnknownLayerError: a layer name or glob matches nothing (with suggestions).
        OnnxDreamError: nothing to expose, an unknown op type, or a tensor that neither shape
            inference nor a run can type.
    """
    index = GraphIndex(model.graph, source)
    selected = _select(index, list(layers), list(match), list(op_types), list(exclude), all)
    existing = set(index.graph_outputs)
    added: list[str] = []
    for layer in selected:
        for tensor in layer.outputs:
            if tensor not in existing:
                existing.add(tensor)
                added.append(tensor)

    types = _inferred_types(model) if added else {}
    declared = {v.name: v for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    infos = {t: types[t] if _complete(types.get(t)) else declared.get(t) for t in added}
    unknown = [t for t, info in infos.items() if not _complete(info)]
    if unknown:
        infos.update(_observed_types(model, index, unknown, feeds))
    new_outputs: list[onnx.ValueInfoProto] = []
    for tensor in added:
        output = onnx.ValueInfoProto()
        output.CopyFrom(infos[tensor])
        new_outputs.append(output)

    result = onnx.ModelProto()
    result.CopyFrom(model)
    result.graph.output.extend(new_outputs)
    exposed = {layer.name: layer.outputs for layer in selected}
    record: dict[str, list[str]] = get_json(result, EXPOSED_KEY, {})
    for name, tensors in exposed.items():
        record[name] = list(dict.fromkeys([*record.get(name, []), *tensors]))
    set_json(result, EXPOSED_KEY, record)
    return ExposeResult(result, exposed, tuple(added))
