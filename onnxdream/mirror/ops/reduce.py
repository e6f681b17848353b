"""Reductions (axes as an attribute before opset 13/18, as an input after) and ArgMax/ArgMin."""

from __future__ import annotations

from collections.abc import Callable

import torch

from onnxdream.mirror.ops._common import as_ints, norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter


def _prod(x: torch.Tensor, dim: tuple[int, ...], keepdim: bool) -> torch.Tensor:
    for d in sorted(dim, reverse=True):
        x = torch.prod(x, dim=d, keepdim=keepdim)
    return x


def _mean(x: torch.Tensor, dim: tuple[int, ...], keepdim: bool) -> torch.Tensor:
    return (
        torch.mean(x, dim=dim, keepdim=keepdim)
        if x.dtype.is_floating_point
        else (torch.sum(x, dim=dim, keepdim=keepdim) // max(1, _count(x, dim)))
    )


def _count(x: torch.Tensor, dim: tuple[int, ...]) -> int:
    n = 1
    for d in dim:
        n *= x.shape[d]
    return n


def _empty_extreme(x: torch.Tensor, dim: tuple[int, ...], keepdim: bool, low: bool) -> torch.Tensor:
    """Max (``low``) or min over an empty set: the identity element, as ONNX defines it."""
    shape = (
        [1 if d in dim else n for d, n in enumerate(x.shape)]
        if keepdim
        else [n for d, n in enumerate(x.shape) if d not in dim]
    )
    if x.dtype == torch.bool:
        return torch.full(shape, not low, dtype=torch.bool, device=x.device)
    if x.dtype.is_floating_point:
        fill = -torch.inf if low else torch.inf
    else:
        info = torch.iinfo(x.dtype)
        fill = info.min if low else info.max
    return torch.full(shape, fill, dtype=x.dtype, device=x.device)


def _amax(x: torch.Tensor, dim: tuple[int, ...], keepdim: bool) -> torch.Tensor:
    if any(x.shape[d] == 0 for d in dim):
        return _empty_extreme(x, dim, keepdim, low=True)
    return torch.amax(x, dim=dim, keepdim=keepdim)


def _amin(x: torch.Tensor, dim: tuple[int, ...], keepdim: bool) -> torch.Tensor:
    if any(x.shape[d] == 0 for d in dim):
        return _empty_extreme(x, dim, keepdim, low=False)
    return torch.amin(x, dim=dim, keepdim=keepdim)


_REDUCE: dict[str, tuple[int, Callable]] = {
    # op: (first version taking axes as an input, reduction(x, dims, keepdim))
    "ReduceSum": (13, lambda x, d, k: torch.sum(x, dim=d, keepdim=k)),
    "ReduceMean": (18, _mean),
    "ReduceMax": (18, _amax),
    "ReduceMin": (18, _amin),
    "ReduceProd": (18, _prod),
    "ReduceL1": (18, lambda x, d, k: torch.sum(torch.abs(x), dim=d, keepdim=k)),
    "ReduceL2": (18, lambda x, d, k: torch.sqrt(torch.sum(x * x, dim=d, keepdim=k))),
    "ReduceSumSquare": (18, lambda x, d, k: torch.sum(x * x, dim=d, keepdim=k)),
    "ReduceLogSum": (18, lambda x, d, k: torch.log(torch.sum(x, dim=d, keepdim=k))),
    "ReduceLogSumExp": (18, lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k)),
}


def _reducer(reduce: Callable, axes: list[int] | None, keepdims: bool, noop: bool) -> Callable:
    def run(x: torch.Tensor, dynamic_axes: torch.Tensor | None = None) -> torch.Tensor:
        wanted = as_ints(dynamic_axes) if dynamic_axes is not None else axes
        if not wanted:
            if noop:
                return x
            wanted = list(range(x.dim()))
        if x.dim() == 0:
            return x
        dims = tuple(sorted({norm_axis(a, x.dim()) for a in wanted}))
        return reduce(x, dims, keepdims)

    return run


def _register_reduce(op: str, input_since: int, reduce: Callable) -> None:
    @converter(op, 1)
    def attr_form(node: NodeView) -> Converted:
        return node.call(_reducer(reduce, node.attr("axes"), bool(node.attr("keepdims", 1)), False), 0)

    @converter(op, input_since, shape_inputs=(1,))
    def input_form(node: NodeView) -> Converted:
        keepdims, noop = bool(node.attr("keepdims", 1)), bool(node.attr("noop_with_empty_axes", 0))
        if node.is_static(1):
            return node.call(_reducer(reduce, node.static_ints(1), keepdims, noop), 0)
        return node.call(_reducer(reduce, None, keepdims, noop), 0, 1)


for _op, (_since, _fn) in _REDUCE.items():
    _register_reduce(_op, _since, _fn)


def _arg(node: NodeView, fn: Callable) -> Converted:
    axis, keepdims = node.attr("axis", 0), bool(node.attr("keepdims", 1))
    last = bool(node.attr("select_last_index", 0))

    def run(x: torch.Tensor) -> torch.Tensor:
        a = norm_axis(axis, x.dim())
        if not last:
            return fn(x, dim=a, keepdim=keepdims)
        flipped = fn(torch.flip(x, (a,)), dim=a, keepdim=keepdims)
        return x.shape[a] - 1 - flipped

    return node.call(run, 0)


@converter("ArgMax", 1)
def argmax(node: NodeView) -> Converted:
    return _arg(node, torch.argmax)


@converter("ArgMin", 1)
def argmin(node: NodeView) -> Converted:
    return _arg(node, torch.argmin)
