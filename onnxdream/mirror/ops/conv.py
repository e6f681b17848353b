"""Conv, ConvTranspose (1-D to 3-D; groups, dilations, explicit and automatic pads) and DeformConv (2-D)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from onnxdream.mirror.ops._common import same_pads, symmetric, torch_pad
from onnxdream.mirror.registry import Converted, Fn, NodeView, converter

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _spatial_rank(node: NodeView) -> int | None:
    weight = node.static(1)
    if weight is not None:
        return weight.dim() - 2
    kernel = node.attr("kernel_shape")
    return None if kernel is None else len(kernel)


def _by_rank(node: NodeView, make: Callable[[NodeView, int], Fn], table: dict[int, Fn]) -> Converted:
    """Build the call for the weight's rank, now if it is known, else on first use."""
    rank = _spatial_rank(node)
    if rank is not None:
        if rank not in table:
            raise node.unsupported(f"{rank}-D kernel")
        return node.call(make(node, rank), 0, 1, 2)
    built: dict[int, Fn] = {}

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        r = w.dim() - 2
        if r not in built:
            if r not in table:
                raise ValueError(f"node {node.key!r}: {r}-D kernel is not supported")
            built[r] = make(node, r)
        return built[r](x, w, b)

    return node.call(run, 0, 1, 2)


_AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


@converter("Conv", 1)
def conv(node: NodeView) -> Converted:
    if node.attr("auto_pad", "NOTSET") not in _AUTO_PADS:
        raise node.unsupported(f"auto_pad {node.attr('auto_pad')!r}")
    return _by_rank(node, _conv, _CONV)


@converter("ConvTranspose", 1)
def conv_transpose(node: NodeView) -> Converted:
    if node.attr("auto_pad", "NOTSET") not in _AUTO_PADS:
        raise node.unsupported(f"auto_pad {node.attr('auto_pad')!r}")
    return _by_rank(node, _conv_transpose, _CONV_T)


def _conv(node: NodeView, rank: int) -> Fn:
    fn = _CONV[rank]
    strides = tuple(node.attr("strides", [1] * rank))
    dilations = tuple(node.attr("dilations", [1] * rank))
    groups = node.attr("group", 1)
    auto_pad = node.attr("auto_pad", "NOTSET")
    pads = node.attr("pads", [0] * 2 * rank)

    if auto_pad in ("NOTSET", "VALID"):
        if auto_pad == "VALID":
            pads = [0] * 2 * rank
        if symmetric(pads):
            padding = tuple(pads[:rank])
            return lambda x, w, b=None: fn(x, w, b, strides, padding, dilations, groups)
        explicit = torch_pad(pads)
        return lambda x, w, b=None: fn(F.pad(x, explicit), w, b, strides, 0, dilations, groups)
    upper = auto_pad == "SAME_UPPER"

    def same(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        p = same_pads(x.shape[2:], w.shape[2:], strides, dilations, upper)
        if symmetric(p):
            return fn(x, w, b, strides, tuple(p[:rank]), dilations, groups)
        return fn(F.pad(x, torch_pad(p)), w, b, strides, 0, dilations, groups)

    return same


def _conv_transpose(node: NodeView, rank: int) -> Fn:
    fn = _CONV_T[rank]
    strides = node.attr("strides", [1] * rank)
    dilations = node.attr("dilations", [1] * rank)
    groups = node.attr("group", 1)
    auto_pad = node.attr("auto_pad", "NOTSET")
    output_padding = node.attr("output_padding", [0] * rank)
    output_shape = node.attr("output_shape")
    pads_attr = node.attr("pads", [0] * 2 * rank)

    def pads_for(sizes: list[int], kernel: list[int]) -> list[int]:
        full = [
            (n - 1) * s + (k - 1) * d + 1 + op
            for n, s, k, d, op in zip(sizes, strides, kernel, dilations, output_padding, strict=True)
        ]
        if output_shape is None and auto_pad in ("NOTSET", "VALID"):
            return [0] * 2 * rank if auto_pad == "VALID" else list(pads_attr)
        target = (
            list(output_shape[-rank:])
            if output_shape is not None
            else [n * s for n, s in zip(sizes, strides, strict=True)]
        )
        total = [f - t for f, t in zip(full, target, strict=True)]
        if auto_pad == "SAME_UPPER":
            return [t // 2 for t in total] + [t - t // 2 for t in total]
        return [t - t // 2 for t in total] + [t // 2 for t in total]

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        p = pads_for(list(x.shape[2:]), list(w.shape[2:]))
        # Compute the full (unpadded) result, then crop ``pads`` and extend by output_padding;
        # the bias is added last so extended border cells get it too.
        y = fn(x, w, None, strides, 0, 0, groups, dilations)
        crop = [-v for v in p[:rank]] + [op - v for v, op in zip(p[rank:], output_padding, strict=True)]
        if any(crop):
            y = F.pad(y, torch_pad(crop))
        if b is not None:
            y = y + b.reshape(1, -1, *([1] * rank))
        return y

    return run


@converter("DeformConv", 19)
def deform_conv(node: NodeView) -> Converted:
    groups, offset_groups = node.attr("group", 1), node.attr("offset_group", 1)

    def run(x, w, offset, b=None, mask=None):
        if x.dim() != 4:
            raise node.unsupported(f"{x.dim() - 2}-D deformable convolution (2-D only)")
        dtype = x.dtype
        # Sums of bilinear samples: float64 keeps them exact enough to match the op's reference.
        x, w = x.to(torch.float64), w.to(torch.float64)
        n, c, height, width = x.shape
        k_h, k_w = w.shape[2:]
        strides = node.attr("strides", [1, 1])
        dilations = node.attr("dilations", [1, 1])
        pads = node.attr("pads", [0, 0, 0, 0])
        out_h, out_w = offset.shape[2:]
        kernel = k_h * k_w
        ki = torch.arange(k_h, device=x.device).repeat_interleave(k_w)
        kj = torch.arange(k_w, device=x.device).repeat(k_h)
        base_y = (
            torch.arange(out_h, device=x.device).reshape(1, -1) * strides[0]
            - pads[0]
            + ki.reshape(-1, 1) * dilations[0]
        )
        base_x = (
            torch.arange(out_w, device=x.device).reshape(1, -1) * strides[1]
            - pads[1]
            + kj.reshape(-1, 1) * dilations[1]
        )
        off = offset.reshape(n, offset_groups, kernel, 2, out_h, out_w).to(x.dtype)
        ys = base_y.reshape(1, 1, kernel, out_h, 1) + off[:, :, :, 0]
        xs = base_x.reshape(1, 1, kernel, 1, out_w) + off[:, :, :, 1]
        # Pixel coordinates -> grid_sample's [-1, 1] (align_corners=False: pixel i sits at (2i+1)/size - 1);
        # zero padding makes corners outside the image contribute 0, as the op defines.
        grid = torch.stack([(2 * xs + 1) / width - 1, (2 * ys + 1) / height - 1], dim=-1)
        grid = grid.reshape(n * offset_groups, kernel * out_h, out_w, 2)
        sampled = F.grid_sample(
            x.reshape(n * offset_groups, c // offset_groups, height, width), grid, "bilinear", "zeros", False
        ).reshape(n, offset_groups, c // offset_groups, kernel, out_h, out_w)
        if mask is not None:
            sampled = sampled * mask.reshape(n, offset_groups, 1, kernel, out_h, out_w).to(x.dtype)
        cols = sampled.reshape(n, groups, c // groups, kernel, out_h, out_w)
        weight = w.reshape(groups, w.shape[0] // groups, c // groups, kernel)
        y = torch.einsum("ngckhw,gock->ngohw", cols, weight).reshape(n, w.shape[0], out_h, out_w)
        return (y if b is None else y + b.to(y.dtype).reshape(1, -1, 1, 1)).to(dtype)

    return node.call(run, 0, 1, 2, 3, 4)
