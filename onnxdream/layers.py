"""The ``layers`` listing: what a user can target, with shapes and the origin of each name."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from onnxdream.graph import scope_at_depth
from onnxdream.metadata import ORIGIN_KEY, get_prop
from onnxdream.model import ModelSpec, open_model
from onnxdream.shapes import TensorType, tensor_types


@dataclass(frozen=True)
class LayerRow:
    """One row of the listing: a node, or a scope when names are collapsed with ``depth``."""

    name: str
    op_type: str
    outputs: list[str]
    shapes: list[list[int | str | None] | None]
    dtypes: list[str]
    origin: str

    def as_json(self) -> dict:
        return asdict(self)


def _row(name: str, op_type: str, outputs: Sequence[str], types: dict[str, TensorType], origin: str):
    known = [types.get(out) for out in outputs]
    return LayerRow(
        name=name,
        op_type=op_type,
        outputs=list(outputs),
        shapes=[list(t.shape) if t and t.shape is not None else None for t in known],
        dtypes=[t.dtype if t else "?" for t in known],
        origin=origin,
    )


def list_layers(
    model: ModelSpec,
    *,
    op_types: Sequence[str] = (),
    match: str | Sequence[str] = (),
    depth: int | None = None,
    include_constants: bool = False,
) -> list[LayerRow]:
    """Layers in topological order, filtered by op type and glob(s), optionally collapsed to scopes.

    With ``depth``, nodes are grouped by their name's first ``depth`` components; a group's
    outputs are its boundary outputs and its op type is the node's own for a single node,
    else ``scope``.
    """
    model = open_model(model)
    index = model.index
    types = tensor_types(model.proto)
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
            rows.append(_row(name, op_type, outputs, types, origins.pop() if len(origins) == 1 else "mixed"))
    globs = [match] if isinstance(match, str) else list(match)
    if globs:
        rows = [r for r in rows if any(fnmatch.fnmatchcase(r.name, g) for g in globs)]
    return rows
