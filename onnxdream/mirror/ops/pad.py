"""Pad: constant, reflect, edge and wrap modes; pads as attributes (opset < 11) or inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from onnxdream.mirror.ops._common import as_ints, norm_axis, torch_pad
from onnxdream.mirror.registry import Converted, NodeView, converter

_MODES = ("constant", "reflect", "edge", "wrap")


def _full_pads(pads: list[int], axes: list[int] | None, rank: int) -> list[int]:
    """Pads for every axis from pads given for ``axes`` (all axes when ``None``)."""
    if axes is None:
        return pads
    n = len(axes)
    full = [0] * 2 * rank
    for i, a in enumerate(axes):
        a = norm_axis(a, rank)
        full[a], full[a + rank] = pads[i], pads[i + n]
    return full


def _indices(size: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Source positions along one axis for reflect/edge/wrap padding (both pads non-negative)."""
    pos = torch.arange(-before, size + after)
    if mode == "edge":
        return pos.clamp(0, size - 1)
    if mode == "wrap":
        return pos % size
    period = 2 * (size - 1)
    if period == 0:
        return torch.zeros_like(pos)
    pos = pos.abs() % period
    return torch.where(pos >= size, period - pos, pos)


def _pad(x: torch.Tensor, pads: list[int], mode: str, value: float) -> torch.Tensor:
    rank = x.dim()
    if mode == "constant":
        return F.pad(x, torch_pad(pads), value=value) if any(pads) else x
    # Crop negative pads first, then gather the padded positions axis by axis.
    crop = [min(p, 0) for p in pads]
    if any(crop):
        x = F.pad(x, torch_pad(crop))
    for a in range(rank):
        before, after = max(pads[a], 0), max(pads[a + rank], 0)
        if before or after:
            idx = _indices(x.shape[a], before, after, mode).to(x.device)
            x = torch.index_select(x, a, idx)
    return x


@converter("Pad", 1)
def pad_attr(node: NodeView) -> Converted:
    mode = node.attr("mode", "constant")
    if mode not in _MODES:
        raise node.unsupported(f"mode {mode!r}")
    pads = node.attr("pads", node.attr("paddings"))
    value = node.attr("value", 0.0)
    return node.call(lambda x: _pad(x, pads, mode, value), 0)


@converter("Pad", 11, shape_inputs=(1, 3))
def pad(node: NodeView) -> Converted:
    mode = node.attr("mode", "constant")
    if mode not in _MODES:
        raise node.unsupported(f"mode {mode!r}")
    if node.is_static(1) and node.is_static(2) and node.is_static(3):
        pads, axes = node.static_ints(1), node.static_ints(3)
        value_t = node.static(2)
        value = 0.0 if value_t is None else value_t.item()
        return node.call(lambda x: _pad(x, _full_pads(pads, axes, x.dim()), mode, value), 0)

    def run(x, pads, value=None, axes=None):
        full = _full_pads(as_ints(pads), None if axes is None else as_ints(axes), x.dim())
        return _pad(x, full, mode, 0.0 if value is None else value.item())

    return node.call(run, 0, 1, 2, 3)
