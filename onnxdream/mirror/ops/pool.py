"""MaxPool, AveragePool (pads, auto_pad, ceil_mode, dilations), GlobalAveragePool, GlobalMaxPool."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from onnxdream.mirror.ops._common import same_pads, symmetric, torch_pad
from onnxdream.mirror.registry import Converted, NodeView, converter

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _geometry(node: NodeView) -> tuple[list[int], list[int], list[int], str, list[int], bool]:
    kernel = node.attr("kernel_shape")
    rank = len(kernel)
    if rank not in _MAX:
        raise node.unsupported(f"{rank}-D pooling")
    strides = node.attr("strides", [1] * rank)
    dilations = node.attr("dilations", [1] * rank)
    pads = node.attr("pads", [0] * 2 * rank)
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise node.unsupported(f"auto_pad {auto_pad!r}")
    if auto_pad == "VALID":
        pads = [0] * 2 * rank
    return kernel, strides, dilations, auto_pad, pads, bool(node.attr("ceil_mode", 0))


def _pads_for(x: torch.Tensor, kernel, strides, dilations, auto_pad: str, pads: list[int]) -> list[int]:
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return same_pads(x.shape[2:], kernel, strides, dilations, auto_pad == "SAME_UPPER")
    return pads


def _native_padding(pads: list[int], kernel: list[int], dilations: list[int]) -> tuple[int, ...] | None:
    """Pads torch's pooling accepts directly (symmetric, at most half the effective kernel)."""
    n = len(kernel)
    if not symmetric(pads):
        return None
    if any(p > ((k - 1) * d + 1) // 2 for p, k, d in zip(pads[:n], kernel, dilations, strict=True)):
        return None
    return tuple(pads[:n])


@converter("MaxPool", 1)
def max_pool(node: NodeView) -> Converted:
    kernel, strides, dilations, auto_pad, pads, ceil = _geometry(node)
    fn = _MAX[len(kernel)]
    if node.attr("storage_order", 0):
        raise node.unsupported("storage_order=1 (column-major indices)")
    with_indices = len(node.outputs) > 1
    rank = len(kernel)

    def run(x: torch.Tensor):
        p = _pads_for(x, kernel, strides, dilations, auto_pad, pads)
        native = _native_padding(p, kernel, dilations)
        if native is None:
            fill = -math.inf if x.dtype.is_floating_point else torch.iinfo(x.dtype).min
            padded = F.pad(x, torch_pad(p), value=fill)
            native = (0,) * rank
        else:
            padded = x
        if not with_indices:
            return fn(padded, kernel, strides, native, dilations, ceil)
        y, idx = fn(padded, kernel, strides, native, dilations, ceil, return_indices=True)
        return y, _onnx_indices(idx, x, padded, p)

    return node.call(run, 0)


def _onnx_indices(idx: torch.Tensor, x: torch.Tensor, padded: torch.Tensor, pads: list[int]) -> torch.Tensor:
    """torch's per-plane indices into ``padded`` -> ONNX row-major indices into the whole ``x``."""
    spatial = x.shape[2:]
    rank = len(spatial)
    if padded is not x:
        coords, rest = [], idx
        for size in reversed(padded.shape[2:]):
            coords.append(rest % size)
            rest = rest // size
        coords.reverse()
        idx = torch.zeros_like(idx)
        for c, size, begin in zip(coords, spatial, pads[:rank], strict=True):
            idx = idx * size + (c - begin)
    plane = math.prod(spatial)
    base = torch.arange(x.shape[0] * x.shape[1], device=idx.device).reshape(x.shape[0], x.shape[1])
    return idx + (base * plane).reshape(*base.shape, *([1] * rank))


@converter("AveragePool", 1)
def average_pool(node: NodeView) -> Converted:
    kernel, strides, dilations, auto_pad, pads, ceil = _geometry(node)
    if any(d != 1 for d in dilations):
        raise node.unsupported("dilated average pooling")
    fn = _AVG[len(kernel)]
    include_pad = bool(node.attr("count_include_pad", 0))

    def run(x: torch.Tensor) -> torch.Tensor:
        p = _pads_for(x, kernel, strides, dilations, auto_pad, pads)
        native = _native_padding(p, kernel, dilations)
        if native is not None:
            return fn(x, kernel, strides, native, ceil, include_pad)
        explicit = torch_pad(p)
        total = fn(F.pad(x, explicit), kernel, strides, 0, ceil, True)
        if include_pad:
            return total
        # Divide by the number of real (unpadded) cells in each window.
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        count = fn(F.pad(ones, explicit), kernel, strides, 0, ceil, True)
        return total / count

    return node.call(run, 0)


@converter("GlobalAveragePool", 1)
def global_average_pool(node: NodeView) -> Converted:
    return node.call(lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True), 0)


@converter("GlobalMaxPool", 1)
def global_max_pool(node: NodeView) -> Converted:
    return node.call(lambda x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True), 0)
