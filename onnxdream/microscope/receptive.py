"""Receptive fields of feature maps: which input pixels a unit at (y, x) of a tensor sees.

Walked over the graph in topological order, per spatial axis, with the usual recurrence
(``jump`` = input pixels between neighbouring units, ``size`` = the field's side, ``start`` = the
centre of unit 0 in input pixels): a convolution or pooling of kernel k, stride s, dilation d and
leading pad p gives ``size + (k - 1) * d * jump``, ``jump * s`` and ``start + ((k - 1) / 2 * d - p) * jump``.
Element-wise ops and concatenations keep the widest field of their spatial inputs; an op that
mixes every position (global pooling, flatten, resize, matmul) sees the whole image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import onnx

from onnxdream.graph import GraphIndex

_WINDOWED = frozenset({"Conv", "MaxPool", "AveragePool", "LpPool", "QLinearConv", "ConvInteger"})
_WHOLE = frozenset(
    {
        "GlobalAveragePool",
        "GlobalMaxPool",
        "GlobalLpPool",
        "Flatten",
        "Reshape",
        "Gemm",
        "MatMul",
        "Resize",
        "Upsample",
        "ConvTranspose",
        "ReduceMean",
        "ReduceMax",
        "Transpose",
    }
)


@dataclass(frozen=True)
class Field:
    """The receptive field of one tensor's units along (height, width); ``None`` sizes: whole image."""

    size: tuple[float, float] | None
    jump: tuple[float, float] = (1.0, 1.0)
    start: tuple[float, float] = (0.0, 0.0)

    def box(
        self, y: int, x: int, height: int, width: int, scale: tuple[float, float] = (1.0, 1.0)
    ) -> tuple[int, int, int, int]:
        """The (left, top, right, bottom) pixel box of unit (y, x), clipped to a height x width image.

        ``scale``: input pixels per feature cell, used when the field is unknown (the box is then
        the whole image) or when the walk could not follow the strides (``jump`` of 0).
        """
        if self.size is None:
            return 0, 0, width, height
        centre = [self.start[0] + y * self.jump[0], self.start[1] + x * self.jump[1]]
        half = [self.size[0] / 2, self.size[1] / 2]
        top = max(0, math.floor(centre[0] - half[0] + 0.5))
        left = max(0, math.floor(centre[1] - half[1] + 0.5))
        bottom = min(height, math.floor(centre[0] + half[0] + 0.5))
        right = min(width, math.floor(centre[1] + half[1] + 0.5))
        if bottom <= top or right <= left:
            cy, cx = (y + 0.5) * scale[0], (x + 0.5) * scale[1]
            return int(cx), int(cy), int(cx) + 1, int(cy) + 1
        return left, top, right, bottom


WHOLE = Field(None)


def _ints(node: onnx.NodeProto, name: str, default: list[int]) -> list[int]:
    for attribute in node.attribute:
        if attribute.name == name:
            return list(attribute.ints)
    return default


def _auto_pad(node: onnx.NodeProto) -> str:
    for attribute in node.attribute:
        if attribute.name == "auto_pad":
            return attribute.s.decode()
    return "NOTSET"


def _windowed(node: onnx.NodeProto, source: Field, weights: dict[str, onnx.TensorProto]) -> Field:
    kernel = _ints(node, "kernel_shape", [])
    if not kernel and node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in weights:
        kernel = list(weights[node.input[1]].dims[2:])
    if len(kernel) != 2 or source.size is None:
        return WHOLE
    strides = _ints(node, "strides", [1, 1])
    dilations = _ints(node, "dilations", [1, 1])
    pads = _ints(node, "pads", [0, 0, 0, 0])
    size, jump, start = [], [], []
    for axis in range(2):
        k, s, d = kernel[axis], strides[axis], dilations[axis]
        if _auto_pad(node) in ("SAME_UPPER", "SAME_LOWER"):
            total = (k - 1) * d + 1 - s
            lead = max(total, 0) // 2 if _auto_pad(node) == "SAME_UPPER" else (max(total, 0) + 1) // 2
        else:
            lead = pads[axis] if len(pads) == 4 else 0
        size.append(source.size[axis] + (k - 1) * d * source.jump[axis])
        start.append(source.start[axis] + ((k - 1) / 2 * d - lead) * source.jump[axis])
        jump.append(source.jump[axis] * s)
    return Field((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]))


def _widest(fields: list[Field]) -> Field:
    if any(f.size is None for f in fields):
        return WHOLE
    return max(fields, key=lambda f: (f.size[0] * f.size[1], f.jump))  # type: ignore[index]


def receptive_fields(index: GraphIndex, image_input: str) -> dict[str, Field]:
    """Tensor name -> :class:`Field` for every tensor computed from ``image_input``."""
    weights = {t.name: t for t in index.graph.initializer}
    fields: dict[str, Field] = {image_input: Field((1.0, 1.0))}
    for i in index.order:
        node = index.nodes[i]
        sources = [fields[x] for x in node.input if x in fields]
        if not sources:
            continue
        if node.op_type in _WINDOWED:
            found = _windowed(node, sources[0], weights)
        elif node.op_type in _WHOLE:
            found = WHOLE
        else:
            found = _widest(sources)
        for out in node.output:
            if out:
                fields[out] = found
    return fields
