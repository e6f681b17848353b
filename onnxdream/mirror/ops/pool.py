"""MaxPool, AveragePool, LpPool (pads, auto_pad, ceil_mode, dilations), GlobalAveragePool, GlobalMaxPool."""

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
    column_major = bool(node.attr("storage_order", 0))
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
        return y, _onnx_indices(idx, x, padded, p, column_major)

    return node.call(run, 0)


def _onnx_indices(
    idx: torch.Tensor, x: torch.Tensor, padded: torch.Tensor, pads: list[int], column_major: bool
) -> torch.Tensor:
    """torch's per-plane indices into ``padded`` -> ONNX indices into the whole ``x``."""
    spatial = list(x.shape[2:])
    rank = len(spatial)
    coords, rest = [], idx
    for size in reversed(padded.shape[2:]):
        coords.append(rest % size)
        rest = rest // size
    coords.reverse()
    if padded is not x:
        coords = [c - begin for c, begin in zip(coords, pads[:rank], strict=True)]
    axes = list(range(rank))
    if column_major:
        axes.reverse()
    flat = torch.zeros_like(idx)
    for a in axes:
        flat = flat * spatial[a] + coords[a]
    plane = math.prod(spatial)
    base = torch.arange(x.shape[0] * x.shape[1], device=idx.device).reshape(x.shape[0], x.shape[1])
    return flat + (base * plane).reshape(*base.shape, *([1] * rank))


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _ceil_extra(sizes, kernel, strides, dilations, pads) -> list[int]:
    """Extra end padding so that ``ceil_mode`` windows exist; windows starting in the end pad are dropped."""
    n = len(kernel)
    extra = []
    for i, size in enumerate(sizes):
        padded = size + pads[i] + pads[i + n]
        span = (kernel[i] - 1) * dilations[i] + 1
        out = math.ceil((padded - span) / strides[i]) + 1
        if (out - 1) * strides[i] >= size + pads[i]:
            out -= 1
        extra.append(max((out - 1) * strides[i] + span - padded, 0))
    return extra


def _average_by_conv(x, kernel, strides, dilations, pads, ceil: bool, include_pad: bool) -> torch.Tensor:
    """Average pooling as a depthwise sum over the window divided by the cells counted (any dilation)."""
    rank = len(kernel)
    conv = _CONV[rank]
    extra = _ceil_extra(x.shape[2:], kernel, strides, dilations, pads) if ceil else [0] * rank
    full = list(pads[:rank]) + [p + e for p, e in zip(pads[rank:], extra, strict=True)]
    channels = x.shape[1]
    ones_kernel = torch.ones((channels, 1, *kernel), dtype=x.dtype, device=x.device)
    total = conv(F.pad(x, torch_pad(full)), ones_kernel, None, strides, 0, dilations, channels)
    mask = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
    if include_pad:
        mask = F.pad(mask, torch_pad(list(pads)), value=1.0)
        mask = F.pad(mask, torch_pad([0] * rank + extra))
    else:
        mask = F.pad(mask, torch_pad(full))
    count = conv(mask, ones_kernel[:1], None, strides, 0, dilations)
    return total / count


@converter("AveragePool", 1)
def average_pool(node: NodeView) -> Converted:
    kernel, strides, dilations, auto_pad, pads, ceil = _geometry(node)
    fn = _AVG[len(kernel)]
    include_pad = bool(node.attr("count_include_pad", 0))
    dilated = any(d != 1 for d in dilations)

    def run(x: torch.Tensor) -> torch.Tensor:
        p = _pads_for(x, kernel, strides, dilations, auto_pad, pads)
        native = _native_padding(p, kernel, dilations)
        if native is not None and not dilated and not ceil:
            return fn(x, kernel, strides, native, ceil, include_pad)
        return _average_by_conv(x, kernel, strides, dilations, p, ceil, include_pad)

    return node.call(run, 0)


@converter("GlobalAveragePool", 1)
def global_average_pool(node: NodeView) -> Converted:
    return node.call(lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True), 0)


@converter("GlobalMaxPool", 1)
def global_max_pool(node: NodeView) -> Converted:
    return node.call(lambda x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True), 0)


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@converter("LpPool", 2)
def lp_pool(node: NodeView) -> Converted:
    kernel, strides, dilations, auto_pad, pads, ceil = _geometry(node)
    p = float(node.attr("p", 2))
    rank = len(kernel)

    def run(x: torch.Tensor) -> torch.Tensor:
        begin_end = _pads_for(x, kernel, strides, dilations, auto_pad, pads)
        if ceil:  # extend the end so the last (partial) window is included
            begin_end = list(begin_end)
            for i, (n, k, s, d) in enumerate(zip(x.shape[2:], kernel, strides, dilations, strict=True)):
                span = n + begin_end[i] + begin_end[i + rank] - ((k - 1) * d + 1)
                out = -(-span // s) + 1
                begin_end[i + rank] += max((out - 1) * s - span, 0)
        # (sum over the window of |x|^p)^(1/p): a depthwise conv of ones over the padded powers.
        z = F.pad(x.abs().pow(p), torch_pad(begin_end))
        ones = torch.ones(x.shape[1], 1, *kernel, dtype=x.dtype, device=x.device)
        return _CONV[rank](z, ones, None, strides, 0, dilations, x.shape[1]).pow(1.0 / p)

    return node.call(run, 0)
