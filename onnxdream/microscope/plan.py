"""What a microscope site shows: the layers (feature maps with a name), their facts and the tree."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from onnxdream.graph import GraphIndex, scopes_of
from onnxdream.itemstore import content_key
from onnxdream.metadata import ORIGIN_KEY, get_prop
from onnxdream.microscope.receptive import WHOLE, Field, receptive_fields
from onnxdream.model import Model
from onnxdream.shapes import tensor_types
from onnxdream.surgery.select import select

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(name: str) -> str:
    """A file-name-safe, unique stem for a layer name (readable part + hash of the whole name)."""
    readable = _UNSAFE.sub("_", name).strip("._-")[:48] or "layer"
    return f"{readable}-{content_key('slug', name)[:8]}"


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the site: its name and graph facts, and the tensor that is its activation."""

    name: str
    op_type: str
    origin: str
    tensor: str
    shape: tuple[int | str | None, ...]
    field: Field = WHOLE

    @property
    def slug(self) -> str:
        return slug(self.name)

    @property
    def channels(self) -> int | None:
        """Channel count (dim 1) when the shape declares it."""
        dim = self.shape[1]
        return dim if isinstance(dim, int) else None


def _facts(index: GraphIndex, nodes: Sequence[int], kind: str, name: str) -> tuple[str, str]:
    origins = {get_prop(index.nodes[i], ORIGIN_KEY) or "kept" for i in nodes}
    origin = origins.pop() if len(origins) == 1 else "mixed"
    if kind == "tensor":
        origin = "tensor (node has no name)"
    op_type = index.nodes[nodes[0]].op_type if kind != "scope" else "scope"
    return op_type, origin


def plan_layers(
    model: Model, image_input: str, layers: Sequence[str] = (), match: Sequence[str] = ()
) -> tuple[list[LayerInfo], list[str]]:
    """The layers to show, in topological order, and why any requested one is left out.

    Without ``layers`` or ``match``, every named node whose output is a feature map (N, C, H, W)
    with more than one position (a globally pooled 1 x 1 map has nothing to visualise).

    Raises:
        UnknownLayerError: a name or glob that matches nothing (nearest names suggested).
    """
    index = model.index
    chosen = select(index, list(layers), list(match), everything=not layers and not match)
    types = tensor_types(model.proto)
    fields = receptive_fields(index, image_input)
    found: list[tuple[int, LayerInfo]] = []
    skipped = []
    for layer in chosen:
        if len(layer.outputs) != 1:
            skipped.append(f"{layer.name!r}: {len(layer.outputs)} output tensors (one feature map needed)")
            continue
        tensor = layer.outputs[0]
        known = types.get(tensor)
        if known is None or known.shape is None or len(known.shape) != 4 or known.dtype != "float32":
            if layers or match:
                what = "unknown" if known is None else str(known)
                skipped.append(f"{layer.name!r}: output {what} is not a float32 feature map (N, C, H, W)")
            continue
        if any(d == 1 for d in known.shape[2:]):
            if layers or match:
                skipped.append(f"{layer.name!r}: output {known} has no spatial extent to visualise")
            continue
        op_type, origin = _facts(index, layer.nodes, layer.kind, layer.name)
        info = LayerInfo(layer.name, op_type, origin, tensor, known.shape, fields.get(tensor, WHOLE))
        found.append((min(index.position[i] for i in layer.nodes), info))
    found.sort(key=lambda pair: pair[0])
    return [info for _, info in found], skipped


@dataclass
class TreeNode:
    """A scope of the layer tree: its own layer (if it is one) and its children, in order."""

    name: str
    label: str
    layer: LayerInfo | None = None
    children: list[TreeNode] = field(default_factory=list)


def layer_tree(layers: Sequence[LayerInfo]) -> list[TreeNode]:
    """Layers nested by scope (``a.b.c`` under ``a.b`` under ``a``); labels are the last component."""
    roots: list[TreeNode] = []
    nodes: dict[str, TreeNode] = {}

    def node_for(name: str, parent: str | None) -> TreeNode:
        if name not in nodes:
            label = name[len(parent) + 1 :] if parent else name
            nodes[name] = TreeNode(name, label or name)
            (nodes[parent].children if parent else roots).append(nodes[name])
        return nodes[name]

    for info in layers:
        parent = None
        for scope in scopes_of(info.name):
            node_for(scope, parent)
            parent = scope
        node_for(info.name, parent).layer = info
    return roots
