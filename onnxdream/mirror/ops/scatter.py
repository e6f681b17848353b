"""Scatter and gather by index: ScatterElements (Scatter), ScatterND, GatherND, TensorScatter."""

from __future__ import annotations

import torch

from onnxdream.mirror.ops._common import norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter

_REDUCE = {"none": None, "add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _reduction(node: NodeView) -> str | None:
    name = node.attr("reduction", "none")
    if name not in _REDUCE:
        raise node.unsupported(f"reduction {name!r}")
    return _REDUCE[name]


def _positive(idx: torch.Tensor, size: int | torch.Tensor) -> torch.Tensor:
    return torch.where(idx < 0, idx + size, idx)


@converter("ScatterElements", 11)
def scatter_elements(node: NodeView) -> Converted:
    axis, reduce = node.attr("axis", 0), _reduction(node)

    def run(data: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        a = norm_axis(axis, data.dim())
        idx = _positive(indices.to(device=data.device, dtype=torch.int64), data.shape[a])
        if reduce is None:
            return data.scatter(a, idx, updates)
        return data.scatter_reduce(a, idx, updates, reduce, include_self=True)

    return node.call(run, 0, 1, 2)


@converter("Scatter", 9)
def scatter(node: NodeView) -> Converted:
    return scatter_elements(node)


@converter("ScatterND", 11)
def scatter_nd(node: NodeView) -> Converted:
    reduce = _reduction(node)

    def run(data: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        k = indices.shape[-1]
        idx = indices.to(device=data.device, dtype=torch.int64).reshape(-1, k)
        sizes = torch.tensor(data.shape[:k], device=data.device)
        idx = _positive(idx, sizes)
        # Row-major offsets of the indexed slices in data viewed as [prod(shape[:k]), rest...].
        strides = torch.tensor(
            [int(torch.tensor(data.shape[i + 1 : k]).prod()) for i in range(k)], device=data.device
        )
        flat = (idx * strides).sum(-1)
        out = data.reshape(-1, *data.shape[k:]).clone()
        upd = updates.reshape(-1, *data.shape[k:])
        if reduce is None:
            out[flat] = upd
        else:
            index = flat.reshape(-1, *([1] * (out.dim() - 1))).expand_as(upd)
            out = out.scatter_reduce(0, index, upd, reduce, include_self=True)
        return out.reshape(data.shape)

    return node.call(run, 0, 1, 2)


@converter("GatherND", 11)
def gather_nd(node: NodeView) -> Converted:
    batch_dims = node.attr("batch_dims", 0)

    def run(data: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        idx = indices.to(device=data.device, dtype=torch.int64)
        batch = data.shape[:batch_dims]
        nb = int(torch.tensor(batch).prod()) if batch_dims else 1
        k = idx.shape[-1]
        d = data.reshape(nb, *data.shape[batch_dims:])
        i = idx.reshape(nb, -1, k)
        sizes = torch.tensor(d.shape[1 : k + 1], device=data.device)
        i = _positive(i, sizes)
        b = torch.arange(nb, device=data.device).reshape(-1, 1).expand(nb, i.shape[1])
        picked = d[(b, *i.unbind(-1))]  # [nb, m, rest...]
        return picked.reshape(*idx.shape[:-1], *data.shape[batch_dims + k :])

    return node.call(run, 0, 1)


@converter("TensorScatter", 24)
def tensor_scatter(node: NodeView) -> Converted:
    axis, circular = node.attr("axis", -2), node.attr("mode", "linear") == "circular"

    def run(past: torch.Tensor, update: torch.Tensor, write: torch.Tensor | None = None) -> torch.Tensor:
        a = norm_axis(axis, past.dim())
        batch, steps = update.shape[0], update.shape[a]
        start = (
            torch.zeros(batch, dtype=torch.int64, device=past.device)
            if write is None
            else write.to(past.device, torch.int64)
        )
        pos = start.reshape(-1, 1) + torch.arange(steps, device=past.device).reshape(1, -1)  # [batch, steps]
        if circular:
            pos = pos % past.shape[a]
        shape = [batch] + [1] * (past.dim() - 1)
        shape[a] = steps
        index = pos.reshape(shape).expand(update.shape)
        return past.scatter(a, index, update)

    return node.call(run, 0, 1, 2)
