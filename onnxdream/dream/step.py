"""Gradient normalisation: mean |g|, or a Laplacian pyramid that flattens the gradient's spectrum."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from onnxdream.errors import OnnxDreamError

GRAD_NORMS = ("mean", "lap")
_EPS = 1e-8


def _lap_kernel(channels: int, like: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=like.dtype, device=like.device)
    k2 = torch.outer(k, k)
    k2 = k2 / k2.sum()
    return k2.expand(channels, 1, 5, 5).contiguous()


def _lap_split(x: torch.Tensor, kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur+downsample (``lo``) and the detail it loses (``hi``), as in the TF notebook."""
    channels, (h, w) = x.shape[1], x.shape[-2:]
    lo = F.conv2d(x, kernel, stride=2, padding=2, groups=channels)
    pad = (h - (2 * lo.shape[-2] - 1), w - (2 * lo.shape[-1] - 1))
    up = F.conv_transpose2d(lo, kernel * 4, stride=2, padding=2, output_padding=pad, groups=channels)
    return lo, x - up


def lap_normalize(grad: torch.Tensor, levels: int = 4) -> torch.Tensor:
    """Laplacian-pyramid normalisation: every band scaled to unit RMS, then merged back.

    Flattens the gradient's spectrum, so low frequencies (large shapes) are not drowned by pixel
    noise. Levels are dropped when the image is too small to split further.
    """
    kernel = _lap_kernel(grad.shape[1], grad)
    bands = []
    low = grad
    for _ in range(levels):
        if min(low.shape[-2:]) < 2:
            break
        low, high = _lap_split(low, kernel)
        bands.append(high)
    out = low / low.square().mean().sqrt().clamp_min(_EPS)
    for high in reversed(bands):
        h, w = high.shape[-2:]
        pad = (h - (2 * out.shape[-2] - 1), w - (2 * out.shape[-1] - 1))
        up = F.conv_transpose2d(out, kernel * 4, stride=2, padding=2, output_padding=pad, groups=out.shape[1])
        out = up + high / high.square().mean().sqrt().clamp_min(_EPS)
    return out


def normalize_gradient(grad: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Scale ``grad`` so its mean absolute value is 1 (after Laplacian flattening for ``lap``).

    The final mean-|g| scaling in both modes keeps ``--lr`` meaning the same thing: the average
    change of a pixel per step, as a fraction of the pixel range.

    Raises:
        OnnxDreamError: unknown mode.
    """
    if mode not in GRAD_NORMS:
        raise OnnxDreamError(
            f"unknown gradient normalisation {mode!r}; choose one of {', '.join(GRAD_NORMS)}"
        )
    if mode == "lap":
        grad = lap_normalize(grad)
    return grad / grad.abs().mean().clamp_min(_EPS)
