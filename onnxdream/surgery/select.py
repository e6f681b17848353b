"""Layer selection: which layers a request names (names, globs, op types, everything, exclusions).

Every request is validated before anything is changed; a name, glob or op type that matches
nothing fails with the nearest valid ones suggested.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from onnxdream.errors import OnnxDreamError, UnknownLayerError, unknown
from onnxdream.graph import GraphIndex, Layer
from onnxdream.lookup import glob_names


def node_layers(index: GraphIndex, i: int) -> list[Layer]:
    """Layers for one node: itself when its name finds it, else one per activation tensor.

    Unused optional outputs (a Dropout mask, BatchNorm running statistics) are not activations.
    """
    node = index.nodes[i]
    outputs = index.activations(i)
    if node.name and index.by_name.get(node.name) == i:
        return [Layer(node.name, "node", (i,), outputs)]
    return [Layer(x, "tensor", (i,), (x,)) for x in outputs]


def _matching(index: GraphIndex, pattern: str) -> list[str]:
    """Layer names matching a glob; for models whose nodes have no names, their output tensors."""
    return index.match(pattern) or [
        x
        for i in index.order
        if not index.nodes[i].name
        for x in index.nodes[i].output
        if x and fnmatch.fnmatchcase(x, pattern)
    ]


def select(
    index: GraphIndex,
    layers: Sequence[str] = (),
    match: Sequence[str] = (),
    op_types: Sequence[str] = (),
    exclude: Sequence[str] = (),
    everything: bool = False,
) -> list[Layer]:
    """Resolve every request to layers, in request order, each layer once.

    Args:
        index: the graph.
        layers: node names, scopes, tensor names, or a layer's own name (its last path
            components, when they end exactly one layer).
        match: shell globs over layer names (see :func:`_matching`).
        op_types: every node of these op types.
        exclude: shell globs; matching layer names (full names, else own names) are left out
            of everything above.
        everything: every node's activations, skipping constants (Polygraphy's "mark all").

    Raises:
        UnknownLayerError: a name or glob matches nothing (with suggestions), or an own name
            ends several layers (``AmbiguousLayerError``, listing them).
        OnnxDreamError: an unknown op type, nothing selected, or a layer with no used output.
    """
    chosen: list[Layer] = list(index.resolve_many(layers))
    for pattern in match:
        names = _matching(index, pattern)
        if not names:
            raise UnknownLayerError(
                unknown("layer", pattern, index.layer_names(), where=index.source, lead="no layer matches")
            )
        chosen.extend(index.resolve_many(names))
    present = {n.op_type for n in index.nodes}
    for op_type in op_types:
        if op_type not in present:
            raise OnnxDreamError(
                unknown("op type", op_type, sorted(present), where=index.source, lead="no node has op type")
            )
        for i in index.order:
            if index.nodes[i].op_type == op_type:
                chosen.extend(node_layers(index, i))
    if everything:
        for i in index.order:
            if not index.is_constant(i):
                chosen.extend(node_layers(index, i))
    names = list(dict.fromkeys(layer.name for layer in chosen))
    excluded = {name for pattern in exclude for name in glob_names(names, pattern)}
    unique: dict[str, Layer] = {}
    for layer in chosen:
        if layer.name not in excluded:
            unique.setdefault(layer.name, layer)
    if not unique:
        if chosen:
            what = "the requested layers are all excluded"
        else:
            what = "no node computes from the inputs" if everything else "no layer requested"
        raise OnnxDreamError(f"{index.source}: nothing to expose ({what})")
    for layer in unique.values():
        if not layer.outputs:
            raise OnnxDreamError(f"{index.source}: layer {layer.name!r} has no output used by anything")
    return list(unique.values())
