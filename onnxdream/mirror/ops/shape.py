"""Shape ops: Shape, Size, Reshape, Flatten, Transpose, Concat, Split, Slice, Squeeze,
Unsqueeze, Expand, Tile, Gather, GatherElements, Range, Trilu.

Shape and Size read the live tensor, so the mirror follows the input's real size; their
results (and what is computed from them) are CPU int64 tensors.
"""

from __future__ import annotations

import math

import torch

from onnxdream.mirror.ops._common import as_ints, norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter


@converter("Shape", 1, shape_inputs=(0,))
def shape(node: NodeView) -> Converted:
    start, end = node.attr("start", 0), node.attr("end")

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.tensor(list(x.shape)[slice(start, end)], dtype=torch.int64)

    return node.call(run, 0)


@converter("Size", 1, shape_inputs=(0,))
def size(node: NodeView) -> Converted:
    return node.call(lambda x: torch.tensor(x.numel(), dtype=torch.int64), 0)


def _reshape_target(shape: list[int], dims: torch.Size, allowzero: bool) -> list[int]:
    if allowzero:
        return shape
    return [dims[i] if s == 0 else s for i, s in enumerate(shape)]


@converter("Reshape", 1)
def reshape_attr(node: NodeView) -> Converted:
    target = node.attr("shape")
    return node.call(lambda x: x.reshape(_reshape_target(target, x.shape, False)), 0)


@converter("Reshape", 5, shape_inputs=(1,))
def reshape(node: NodeView) -> Converted:
    allowzero = bool(node.attr("allowzero", 0))
    target = node.static_ints(1)
    if target is not None:
        if allowzero or 0 not in target:
            fixed = tuple(target)
            return node.call(lambda x: x.reshape(fixed), 0)
        return node.call(lambda x: x.reshape(_reshape_target(target, x.shape, False)), 0)
    return node.call(lambda x, s: x.reshape(_reshape_target(as_ints(s), x.shape, allowzero)), 0, 1)


@converter("Flatten", 1)
def flatten(node: NodeView) -> Converted:
    axis = node.attr("axis", 1)

    def run(x: torch.Tensor) -> torch.Tensor:
        a = norm_axis(axis, x.dim())
        return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))

    return node.call(run, 0)


@converter("Transpose", 1)
def transpose(node: NodeView) -> Converted:
    perm = node.attr("perm")
    if perm is None:
        return node.call(lambda x: x.permute(*reversed(range(x.dim()))), 0)
    return node.call(lambda x: x.permute(*perm), 0)


@converter("Concat", 1)
def concat(node: NodeView) -> Converted:
    axis = node.attr("axis", 1)
    return node.call(lambda *xs: torch.cat(xs, dim=axis), *range(len(node.inputs)))


def _split(x: torch.Tensor, axis: int, sizes: list[int] | None, parts: int) -> tuple[torch.Tensor, ...]:
    if sizes is None:
        sizes_or_chunk: list[int] | int = math.ceil(x.shape[axis] / parts)
    else:
        sizes_or_chunk = sizes
    return tuple(torch.split(x, sizes_or_chunk, dim=axis))


@converter("Split", 1, shape_inputs=(1,))
def split_attr(node: NodeView) -> Converted:
    axis, parts = node.attr("axis", 0), len(node.outputs)
    sizes = node.attr("split") or node.static_ints(1)
    return node.call(lambda x: _split(x, axis, sizes, parts), 0)


@converter("Split", 13, shape_inputs=(1,))
def split(node: NodeView) -> Converted:
    axis = node.attr("axis", 0)
    parts = node.attr("num_outputs", len(node.outputs))
    if node.is_static(1):
        sizes = node.static_ints(1)
        return node.call(lambda x: _split(x, axis, sizes, parts), 0)
    return node.call(lambda x, s: _split(x, axis, as_ints(s), parts), 0, 1)


def _slice(
    x: torch.Tensor, starts: list[int], ends: list[int], axes: list[int] | None, steps: list[int] | None
) -> torch.Tensor:
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index: list[slice] = [slice(None)] * x.dim()
    flips = []
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        a = norm_axis(axis, x.dim())
        dim = x.shape[a]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
            index[a] = slice(start, max(start, end), step)
        else:
            # torch slicing has no negative step: take the mirrored range of the flipped axis.
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            flips.append(a)
            lo, hi = dim - 1 - start, dim - 1 - end
            index[a] = slice(lo, max(lo, hi), -step)
    if flips:
        x = torch.flip(x, flips)
    return x[tuple(index)]


@converter("Slice", 1)
def slice_attr(node: NodeView) -> Converted:
    starts, ends, axes = node.attr("starts"), node.attr("ends"), node.attr("axes")
    return node.call(lambda x: _slice(x, starts, ends, axes, None), 0)


@converter("Slice", 10, shape_inputs=(1, 2, 3, 4))
def slice_(node: NodeView) -> Converted:
    if all(node.is_static(i) for i in (1, 2, 3, 4)):
        starts, ends, axes, steps = (node.static_ints(i) for i in (1, 2, 3, 4))
        return node.call(lambda x: _slice(x, starts, ends, axes, steps), 0)

    def run(x, starts, ends, axes=None, steps=None):
        return _slice(
            x,
            as_ints(starts),
            as_ints(ends),
            None if axes is None else as_ints(axes),
            None if steps is None else as_ints(steps),
        )

    return node.call(run, 0, 1, 2, 3, 4)


def _squeeze(x: torch.Tensor, axes: list[int] | None) -> torch.Tensor:
    if axes is None:
        return x.squeeze()
    dims = sorted({norm_axis(a, x.dim()) for a in axes})
    return x.squeeze(dims) if dims else x


def _unsqueeze(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    rank = x.dim() + len(axes)
    for a in sorted(norm_axis(a, rank) for a in axes):
        x = x.unsqueeze(a)
    return x


@converter("Squeeze", 1)
def squeeze_attr(node: NodeView) -> Converted:
    axes = node.attr("axes")
    return node.call(lambda x: _squeeze(x, axes), 0)


@converter("Squeeze", 13, shape_inputs=(1,))
def squeeze(node: NodeView) -> Converted:
    if node.is_static(1):
        axes = node.static_ints(1)
        return node.call(lambda x: _squeeze(x, axes), 0)
    return node.call(lambda x, a: _squeeze(x, as_ints(a)), 0, 1)


@converter("Unsqueeze", 1)
def unsqueeze_attr(node: NodeView) -> Converted:
    axes = node.attr("axes")
    return node.call(lambda x: _unsqueeze(x, axes), 0)


@converter("Unsqueeze", 13, shape_inputs=(1,))
def unsqueeze(node: NodeView) -> Converted:
    if node.is_static(1):
        axes = node.static_ints(1)
        return node.call(lambda x: _unsqueeze(x, axes), 0)
    return node.call(lambda x, a: _unsqueeze(x, as_ints(a)), 0, 1)


def _expand(x: torch.Tensor, target: list[int]) -> torch.Tensor:
    return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(target)))


@converter("Expand", 8, shape_inputs=(1,))
def expand(node: NodeView) -> Converted:
    if node.is_static(1):
        target = node.static_ints(1)
        return node.call(lambda x: _expand(x, target), 0)
    return node.call(lambda x, s: _expand(x, as_ints(s)), 0, 1)


@converter("Tile", 6, shape_inputs=(1,))
def tile(node: NodeView) -> Converted:
    if node.is_static(1):
        repeats = node.static_ints(1)
        return node.call(lambda x: x.repeat(*repeats), 0)
    return node.call(lambda x, r: x.repeat(*as_ints(r)), 0, 1)


@converter("Gather", 1)
def gather(node: NodeView) -> Converted:
    axis = node.attr("axis", 0)

    def run(data: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        a = norm_axis(axis, data.dim())
        flat = indices.reshape(-1).to(device=data.device, dtype=torch.int64)
        flat = torch.where(flat < 0, flat + data.shape[a], flat)
        out = torch.index_select(data, a, flat)
        return out.reshape((*data.shape[:a], *indices.shape, *data.shape[a + 1 :]))

    return node.call(run, 0, 1)


@converter("GatherElements", 11)
def gather_elements(node: NodeView) -> Converted:
    axis = node.attr("axis", 0)

    def run(data: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        a = norm_axis(axis, data.dim())
        idx = indices.to(device=data.device, dtype=torch.int64)
        return torch.gather(data, a, torch.where(idx < 0, idx + data.shape[a], idx))

    return node.call(run, 0, 1)


@converter("Range", 11)
def range_(node: NodeView) -> Converted:
    def run(start: torch.Tensor, limit: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        count = max(math.ceil((limit.item() - start.item()) / delta.item()), 0)
        steps = torch.arange(count, dtype=start.dtype, device=start.device)
        return start + steps * delta

    return node.call(run, 0, 1, 2)


@converter("Trilu", 14, shape_inputs=(1,))
def trilu(node: NodeView) -> Converted:
    fn = torch.triu if node.attr("upper", 1) else torch.tril
    if node.is_static(1):
        k = (node.static_ints(1) or [0])[0]
        return node.call(lambda x: fn(x, k), 0)
    return node.call(lambda x, k: fn(x, int(k.item())), 0, 1)
