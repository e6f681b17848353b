"""Selection and indexing: TopK, NonZero, Compress, Unique, OneHot, EyeLike, ReverseSequence,
CumSum, CumProd, Det."""

from __future__ import annotations

import torch

from onnxdream.mirror.ops._common import norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter, torch_dtype


def _topk(x: torch.Tensor, k: int, axis: int, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    # A stable sort keeps ONNX's tie rule: among equal values the lower index comes first.
    a = norm_axis(axis, x.dim())
    values, indices = torch.sort(x, dim=a, descending=largest, stable=True)
    return values.narrow(a, 0, k), indices.narrow(a, 0, k)


@converter("TopK", 1)
def topk_attr(node: NodeView) -> Converted:
    k, axis = node.attr("k"), node.attr("axis", -1)
    return node.call(lambda x: _topk(x, k, axis, True), 0)


@converter("TopK", 10, shape_inputs=(1,))
def topk(node: NodeView) -> Converted:
    axis, largest = node.attr("axis", -1), bool(node.attr("largest", 1))
    return node.call(lambda x, k: _topk(x, int(k.reshape(-1)[0]), axis, largest), 0, 1)


@converter("NonZero", 9)
def nonzero(node: NodeView) -> Converted:
    return node.call(lambda x: torch.nonzero(x).T.contiguous(), 0)


@converter("Compress", 9)
def compress(node: NodeView) -> Converted:
    axis = node.attr("axis")

    def run(x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        keep = torch.nonzero(condition.reshape(-1).to(device=x.device, dtype=torch.bool)).reshape(-1)
        if axis is None:
            return x.reshape(-1).index_select(0, keep)
        return x.index_select(norm_axis(axis, x.dim()), keep)

    return node.call(run, 0, 1)


@converter("Unique", 11)
def unique(node: NodeView) -> Converted:
    axis, ordered = node.attr("axis"), bool(node.attr("sorted", 1))

    def run(x: torch.Tensor):
        source = x.reshape(-1) if axis is None else x
        dim = 0 if axis is None else norm_axis(axis, x.dim())
        y, inverse, counts = torch.unique(
            source, sorted=True, return_inverse=True, return_counts=True, dim=dim
        )
        positions = torch.arange(inverse.numel(), device=x.device)
        first = torch.full((counts.numel(),), inverse.numel(), device=x.device, dtype=torch.int64)
        first = first.scatter_reduce(0, inverse, positions, "amin")
        if not ordered:  # in order of first occurrence
            order = torch.argsort(first)
            rank = torch.empty_like(order)
            rank[order] = torch.arange(order.numel(), device=x.device)
            y, first, counts, inverse = y.index_select(dim, order), first[order], counts[order], rank[inverse]
        return y, first, inverse.reshape(-1), counts

    return node.call(run, 0)


@converter("OneHot", 9)
def one_hot(node: NodeView) -> Converted:
    axis = node.attr("axis", -1)

    def run(indices: torch.Tensor, depth: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        n = int(depth.reshape(-1)[0].item())
        idx = indices.to(torch.int64)
        idx = torch.where(idx < 0, idx + n, idx)
        hot = torch.arange(n, device=idx.device) == idx.unsqueeze(-1)
        off, on = values.reshape(-1)[0], values.reshape(-1)[1]
        y = torch.where(hot, on, off)
        return y.movedim(-1, norm_axis(axis, y.dim()))

    return node.call(run, 0, 1, 2)


@converter("EyeLike", 9)
def eye_like(node: NodeView) -> Converted:
    k = node.attr("k", 0)
    code = node.attr("dtype")
    dtype = torch_dtype(code) if code else None
    if code and dtype is None:
        raise node.unsupported(f"element type {code}")

    def run(x: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(x.shape[0], device=x.device).reshape(-1, 1)
        cols = torch.arange(x.shape[1], device=x.device).reshape(1, -1)
        return (cols - rows == k).to(dtype or x.dtype)

    return node.call(run, 0)


@converter("ReverseSequence", 10)
def reverse_sequence(node: NodeView) -> Converted:
    batch_axis, time_axis = node.attr("batch_axis", 1), node.attr("time_axis", 0)

    def run(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(x.shape[time_axis], device=x.device)
        n = lens.to(device=x.device, dtype=torch.int64)
        # index[t, b] = n[b] - 1 - t inside the sequence, t past its end
        index = torch.where(
            steps.reshape(-1, 1) < n.reshape(1, -1),
            n.reshape(1, -1) - 1 - steps.reshape(-1, 1),
            steps.reshape(-1, 1),
        )
        if time_axis > batch_axis:
            index = index.T
        index = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
        return torch.gather(x, time_axis, index)

    return node.call(run, 0, 1)


def _cumulative(node: NodeView, fn, identity: int) -> Converted:
    exclusive, reverse = bool(node.attr("exclusive", 0)), bool(node.attr("reverse", 0))

    def run(x: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
        a = norm_axis(int(axis.reshape(-1)[0]), x.dim())
        y = torch.flip(x, [a]) if reverse else x
        out = fn(y, dim=a, dtype=y.dtype)  # torch would widen int32 to int64
        if exclusive:  # shift by one along the axis, the identity first
            first = torch.full_like(y.narrow(a, 0, 1), identity)
            out = torch.cat([first, out.narrow(a, 0, y.shape[a] - 1)], dim=a)
        return torch.flip(out, [a]) if reverse else out

    return node.call(run, 0, 1)


@converter("CumSum", 11, shape_inputs=(1,))
def cumsum(node: NodeView) -> Converted:
    return _cumulative(node, torch.cumsum, 0)


@converter("CumProd", 26, shape_inputs=(1,))
def cumprod(node: NodeView) -> Converted:
    return _cumulative(node, torch.cumprod, 1)


@converter("Det", 11)
def det(node: NodeView) -> Converted:
    return node.call(torch.linalg.det, 0)
