"""Extra graph outputs: ``expose`` (a new model) and :func:`outputs_added` (in place, for a block).

The proto is edited directly, so nothing but the graph outputs (and, for ``expose``, the model's
``onnxdream.exposed`` entry) changes; node ``metadata_props`` in particular are kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from onnxdream.errors import OnnxDreamError, first_line
from onnxdream.graph import GraphIndex
from onnxdream.metadata import EXPOSED_KEY, get_json, set_json
from onnxdream.model import ModelSpec, editable_proto, open_model
from onnxdream.shapes import infer_model, input_dims
from onnxdream.surgery.select import select


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


@contextlib.contextmanager
def outputs_added(
    model: onnx.ModelProto, outputs: Iterable[onnx.ValueInfoProto]
) -> Iterator[onnx.ModelProto]:
    """``model`` with ``outputs`` as extra graph outputs (after its own) inside the block.

    They are added in place and removed on leaving, whatever happens inside: a copy would
    duplicate every weight (about 0.6 GB for VGG19) only to be serialised once for ONNX Runtime.
    A tensor that already is a graph output, or is named twice, is added once at most.
    """
    count = len(model.graph.output)
    present = {o.name for o in model.graph.output}
    for output in outputs:
        if output.name not in present:
            present.add(output.name)
            model.graph.output.append(output)
    try:
        yield model
    finally:
        del model.graph.output[count:]


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
    from onnxdream.inputs.random import random_inputs
    from onnxdream.runtime import make_session

    run_feeds = dict(feeds) if feeds is not None else random_inputs(model, source=index.source)
    try:
        with outputs_added(model, [onnx.ValueInfoProto(name=t) for t in tensors]) as probe:
            session = make_session(probe, device="cpu", optimization="none")
        values = session.run(run_feeds, tensors, quiet=True)
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
    model: ModelSpec,
    layers: Iterable[str] = (),
    *,
    match: Iterable[str] = (),
    op_types: Iterable[str] = (),
    exclude: Iterable[str] = (),
    all: bool = False,
    feeds: Mapping[str, np.ndarray] | None = None,
    inplace: bool = False,
) -> ExposeResult:
    """Add the activations of named layers to the graph outputs.

    Args:
        model: anything :func:`~onnxdream.model.open_model` opens. A proto or ``Model`` passed
            in is copied unless ``inplace``; a model read from a file here is edited directly.
        layers: node names, scopes (their boundary outputs are exposed), tensor names, or a
            layer's own name (its last path components, ending exactly one layer).
        match: shell globs over layer names (nodes and scopes; full names, else own names);
            when none matches, over the output tensors of unnamed nodes.
        op_types: expose the outputs of every node of these op types.
        exclude: shell globs; matching layer names are left out of everything above.
        all: expose every node's activations (outputs something uses), skipping constants;
            nodes without a unique name are keyed by their output tensor.
        feeds: an input to run when shape inference cannot give a new output's type or shape
            (an op it cannot follow, a Reshape to a shape computed at run time); by default,
            seeded random inputs of the declared shapes.
        inplace: add the outputs to the given proto itself.

    Returns:
        The new model and the mapping layer -> output tensors. Original outputs stay first and
        unchanged; new outputs follow in request order with dtype/shape from shape inference,
        else dtype and rank from an ONNX Runtime run, so every output passes ``onnx.checker``.

    Raises:
        UnknownLayerError: a layer name or glob matches nothing (with suggestions).
        OnnxDreamError: nothing to expose, an unknown op type, or a tensor that neither shape
            inference nor a run can type.
    """
    opened = open_model(model)
    proto, index = opened.proto, opened.index
    selected = select(index, list(layers), list(match), list(op_types), list(exclude), all)
    existing = set(index.graph_outputs)
    added: list[str] = []
    for layer in selected:
        for tensor in layer.outputs:
            if tensor not in existing:
                existing.add(tensor)
                added.append(tensor)

    types = _inferred_types(proto) if added else {}
    declared = {v.name: v for v in [*proto.graph.value_info, *proto.graph.input, *proto.graph.output]}
    infos = {t: types[t] if _complete(types.get(t)) else declared.get(t) for t in added}
    untyped = [t for t, info in infos.items() if not _complete(info)]
    if untyped:
        infos.update(_observed_types(proto, index, untyped, feeds))
    new_outputs: list[onnx.ValueInfoProto] = []
    for tensor in added:
        output = onnx.ValueInfoProto()
        output.CopyFrom(infos[tensor])
        new_outputs.append(output)

    result = editable_proto(model, opened, inplace)
    result.graph.output.extend(new_outputs)
    exposed = {layer.name: layer.outputs for layer in selected}
    record: dict[str, list[str]] = get_json(result, EXPOSED_KEY, {})
    for name, tensors in exposed.items():
        record[name] = list(dict.fromkeys([*record.get(name, []), *tensors]))
    set_json(result, EXPOSED_KEY, record)
    return ExposeResult(result, exposed, tuple(added))
