"""Helpers shared by the converters: integer lists from tensors, axes, padding arithmetic."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def as_ints(value: torch.Tensor | Sequence[int]) -> list[int]:
    """A shape-like value (a CPU integer tensor or a sequence) as a list of Python ints."""
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    return [int(v) for v in value]


def norm_axis(axis: int, rank: int) -> int:
    """A possibly negative axis as an index in ``range(rank)``."""
    return axis + rank if axis < 0 else axis


def same_pads(
    sizes: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    upper: bool,
) -> list[int]:
    """ONNX ``SAME_UPPER``/``SAME_LOWER`` pads ``[b1, b2, ..., e1, e2, ...]`` for these input sizes."""
    begins, ends = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        out = math.ceil(n / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if upper else large)
        ends.append(large if upper else small)
    return begins + ends


def torch_pad(pads: Sequence[int]) -> list[int]:
    """ONNX pads ``[b1, ..., bn, e1, ..., en]`` (leading axes first) as ``F.pad``'s last-axis-first pairs."""
    n = len(pads) // 2
    out: list[int] = []
    for i in reversed(range(n)):
        out += [pads[i], pads[i + n]]
    return out


def symmetric(pads: Sequence[int]) -> bool:
    """Whether every axis is padded equally at both ends."""
    n = len(pads) // 2
    return list(pads[:n]) == list(pads[n:])
