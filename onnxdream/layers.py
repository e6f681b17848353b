"""The ``layers`` listing: what a user can target, with shapes and the origin of each name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from onnxdream.graph import GraphIndex, scope_at_depth, scopes_of
from onnxdream.layout import input_layout, tensor_layouts
from onnxdream.lookup import glob_names, is_glob
from onnxdream.metadata import ORIGIN_KEY, get_prop
from onnxdream.model import ModelSpec, open_model
from onnxdream.shapes import TensorType, tensor_types


@dataclass(frozen=True)
class LayerRow:
    """One row of the listing: a node, or a scope when names are collapsed with ``depth``.

    ``layouts`` gives, per output, ``NCHW`` or ``NHWC`` where the graph's layout can be followed
    to it from the input (``None`` elsewhere).
    """

    name: str
    op_type: str
    outputs: list[str]
    shapes: list[list[int | str | None] | None]
    dtypes: list[str]
    origin: str
    layouts: list[str | None]

    def as_json(self) -> dict:
        return asdict(self)


def _row(
    name: str,
    op_type: str,
    outputs: Sequence[str],
    types: dict[str, TensorType],
    origin: str,
    layouts: dict[str, str],
) -> LayerRow:
    known = [types.get(out) for out in outputs]
    return LayerRow(
        name=name,
        op_type=op_type,
        outputs=list(outputs),
        shapes=[list(t.shape) if t and t.shape is not None else None for t in known],
        dtypes=[t.dtype if t else "?" for t in known],
        origin=origin,
        layouts=[layouts.get(out) for out in outputs],
    )


def list_layers(
    model: ModelSpec,
    *,
    op_types: Sequence[str] = (),
    match: str | Sequence[str] = (),
    depth: int | None = None,
    include_constants: bool = False,
    layout: str | None = None,
) -> list[LayerRow]:
    """Layers in topological order, filtered by op type and ``match``, optionally collapsed to scopes.

    A ``match`` pattern with glob characters keeps the rows whose names it matches (full names,
    else their own names); a plain name is resolved as every verb resolves a layer (full name
    or own name) and keeps the rows of that layer: the node, or the nodes of the scope.

    With ``depth``, nodes are grouped by their name's first ``depth`` components; a group's
    outputs are its boundary outputs and its op type is the node's own for a single node,
    else ``scope``. Each row's ``layouts`` follow the input's layout (``layout``: ``nchw`` /
    ``nhwc``, else found from the model) through the graph.
    """
    model = open_model(model)
    index = model.index
    types = tensor_types(model.proto)
    layouts = tensor_layouts(index, input_layout(model.proto, layout, index).layout)
    selected = [
        i
        for i in index.order
        if (include_constants or not index.is_constant(i))
        and (not op_types or index.nodes[i].op_type in op_types)
    ]
    if depth is None:
        rows = [
            _row(
                index.nodes[i].name,
                index.nodes[i].op_type,
                index.activations(i),
                types,
                get_prop(index.nodes[i], ORIGIN_KEY) or "kept",
                layouts,
            )
            for i in selected
        ]
    else:
        groups: dict[str, list[int]] = {}
        for i in selected:
            groups.setdefault(scope_at_depth(index.nodes[i].name, depth), []).append(i)
        rows = []
        for name, members in groups.items():
            origins = {get_prop(index.nodes[i], ORIGIN_KEY) or "kept" for i in members}
            single = len(members) == 1 and index.nodes[members[0]].name == name
            op_type = index.nodes[members[0]].op_type if single else "scope"
            layer_nodes = index.scopes.get(name, members) if not single else members
            outputs = index.boundary_outputs(layer_nodes)
            origin = origins.pop() if len(origins) == 1 else "mixed"
            rows.append(_row(name, op_type, outputs, types, origin, layouts))
    patterns = [match] if isinstance(match, str) else list(match)
    if patterns:
        names = [r.name for r in rows]
        keep = {
            n
            for p in patterns
            for n in (glob_names(names, p) if is_glob(p) else _inside(index, names, p, depth is not None))
        }
        rows = [r for r in rows if r.name in keep]
    return rows


def _inside(index: GraphIndex, names: list[str], layer: str, collapsed: bool) -> list[str]:
    """Row names that are the layer ``layer`` resolves to, lie inside it, or (rows ``collapsed``
    into scopes) hold it.

    Raises:
        UnknownLayerError: no such layer; ``AmbiguousLayerError`` for an own name that ends several.
    """
    found = index.resolve(layer)
    full = index.nodes[found.nodes[0]].name if found.kind == "tensor" else found.name
    return [
        n for n in names if n and (n == full or full in scopes_of(n) or (collapsed and n in scopes_of(full)))
    ]
