"""Sampling grids and patch folding: GridSample, AffineGrid, Col2Im, MaxUnpool."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from onnxdream.mirror.ops._common import as_ints
from onnxdream.mirror.registry import Converted, NodeView, converter

_MODES = {
    "linear": "bilinear",
    "bilinear": "bilinear",
    "nearest": "nearest",
    "cubic": "bicubic",
    "bicubic": "bicubic",
}


@converter("GridSample", 16)
def grid_sample(node: NodeView) -> Converted:
    mode = node.attr("mode", "bilinear" if node.opset < 20 else "linear")
    padding = node.attr("padding_mode", "zeros")
    align = bool(node.attr("align_corners", 0))
    if mode not in _MODES:
        raise node.unsupported(f"mode {mode!r}")
    if padding not in ("zeros", "border", "reflection"):
        raise node.unsupported(f"padding_mode {padding!r}")

    def run(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (4, 5) or (x.dim() == 5 and _MODES[mode] == "bicubic"):
            raise node.unsupported(f"{x.dim() - 2}-D {mode} sampling")
        return F.grid_sample(x, grid.to(x.dtype), _MODES[mode], padding, align)

    return node.call(run, 0, 1)


@converter("AffineGrid", 20, shape_inputs=(1,))
def affine_grid(node: NodeView) -> Converted:
    align = bool(node.attr("align_corners", 0))
    return node.call(lambda theta, size: F.affine_grid(theta, as_ints(size), align), 0, 1)


@converter("Col2Im", 18, shape_inputs=(1, 2))
def col2im(node: NodeView) -> Converted:
    def run(x: torch.Tensor, image: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
        size, kernel = as_ints(image), as_ints(block)
        n = len(size)
        if n != 2:
            raise node.unsupported(f"{n}-D images (torch folds 2-D only)")
        dilations = node.attr("dilations", [1] * n)
        strides = node.attr("strides", [1] * n)
        pads = node.attr("pads", [0] * 2 * n)
        padded = [s + pads[i] + pads[i + n] for i, s in enumerate(size)]
        y = F.fold(x, padded, kernel, dilation=dilations, stride=strides)
        return y[..., pads[0] : pads[0] + size[0], pads[1] : pads[1] + size[1]]

    return node.call(run, 0, 1, 2)


@converter("MaxUnpool", 9, shape_inputs=(2,))
def max_unpool(node: NodeView) -> Converted:
    kernel = node.attr("kernel_shape")
    n = len(kernel)
    strides = node.attr("strides", [1] * n)
    pads = node.attr("pads", [0] * 2 * n)

    def run(x: torch.Tensor, indices: torch.Tensor, output_shape: torch.Tensor | None = None) -> torch.Tensor:
        spatial = [
            (d - 1) * s + k - pads[i] - pads[i + n]
            for i, (d, s, k) in enumerate(zip(x.shape[2:], strides, kernel, strict=True))
        ]
        shape = [*x.shape[:2], *spatial]
        # ONNX indices address the whole (N, C, spatial...) tensor of the inferred shape, flattened.
        flat = torch.zeros(int(torch.tensor(shape).prod()), dtype=x.dtype, device=x.device)
        flat = flat.scatter(0, indices.reshape(-1).to(device=x.device, dtype=torch.int64), x.reshape(-1))
        y = flat.reshape(shape)
        if output_shape is None:
            return y
        # A larger output_shape pads the inferred result at the end of each axis.
        extra = [t - s for t, s in zip(as_ints(output_shape), shape, strict=True)]
        return F.pad(y, [v for e in reversed(extra) for v in (0, e)])

    return node.call(run, 0, 1, 2)
