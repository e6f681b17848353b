"""The octave pyramid: image sizes from small to full, the smallest size a model can dream at, and
padding to the multiple a strided network needs."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from onnxdream.errors import OnnxDreamError, OptionError

MIN_FEATURE = 3
"""The deepest target layer's feature map must be at least this many cells on each side."""


def octave_sizes(height: int, width: int, octaves: int, scale: float, minimum: int) -> list[tuple[int, int]]:
    """Sizes from the smallest octave to the full image, each ``scale`` times the previous one.

    Octaves that would take the shorter side below ``minimum`` are dropped, never shrunk further.

    Raises:
        OnnxDreamError: bad ``octaves``/``scale``, or the image itself is below ``minimum``.
    """
    if octaves < 1:
        raise OptionError(f"{{octaves}} must be at least 1, got {octaves}", "octaves")
    if not scale > 1.0:
        raise OptionError(f"{{octave_scale}} must be greater than 1, got {scale}", "octave_scale")
    if min(height, width) < minimum:
        raise OnnxDreamError(
            f"image is {width}x{height}, too small for the target layers: they need at least "
            f"{minimum}x{minimum} pixels (use a bigger image or a shallower layer)"
        )
    sizes = [(height, width)]
    for i in range(1, octaves):
        size = (round(height / scale**i), round(width / scale**i))
        if min(size) < minimum:
            break
        sizes.append(size)
    return sizes[::-1]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of an NCHW tensor (identity when the size already matches)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=size[0] < x.shape[-2])


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad an NCHW tensor at the bottom and right so both sides are multiples of ``multiple``.

    Mirror padding (edge padding where the image is too small to mirror) keeps the border
    natural for the network; the gradient of the padding flows back into the pixels it copies.
    """
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def minimum_size(
    probe: Callable[[int], list[tuple[int, ...]]], reference: int = 224, limit: int = 4096
) -> int:
    """Smallest square side at which every target activation has at least ``MIN_FEATURE`` cells a side.

    Args:
        probe: runs the target layers on a ``1x3xNxN`` input and returns their activation shapes;
            it may raise for sizes the network cannot take.
        reference: side used to measure each layer's downsampling factor.
        limit: give up above this side.

    Raises:
        OnnxDreamError: no size up to ``limit`` works.
    """
    try:
        shapes = probe(reference)
    except RuntimeError:
        shapes = []
    factors = [reference / min(s[-2:]) for s in shapes if len(s) == 4 and min(s[-2:]) > 0]
    side = max(8, math.ceil(max(factors, default=1.0) * MIN_FEATURE))
    while side <= limit:
        try:
            shapes = probe(side)
        except RuntimeError:
            side = math.ceil(side * 1.25)
            continue
        if all(len(s) != 4 or min(s[-2:]) >= MIN_FEATURE for s in shapes):
            return side
        side = math.ceil(side * 1.25)
    raise OnnxDreamError(f"the target layers produce no usable activation for inputs up to {limit}x{limit}")
