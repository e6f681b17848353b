"""Activation statistics: per-image, per-channel numbers (computed in the graph, see
:mod:`.reductions`) combined over the dataset into layer statistics and each channel's top-k images."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

REDUCTIONS = ("max", "argmax", "mean", "active")
"""Per image and channel: peak value, its flat position, spatial mean, fraction > 0."""

CONSTANT_TOLERANCE = 1e-5
"""A channel whose peak stays within this fraction (of max(|peak|, 1)) of its smallest image mean is
constant: float32 means of equal values land within a few ulps of them."""


@dataclass(frozen=True)
class TopImage:
    """One of a channel's strongest images: which image, its peak value and where (feature cell)."""

    image: int
    value: float
    y: int
    x: int


@dataclass
class LayerStats:
    """A layer's statistics over the images.

    Attributes:
        images: how many images went in.
        mean: mean activation over images, channels and positions.
        sparsity: fraction of activations that are 0 or less.
        dead: channels that are never above 0, or constant, on every image.
        channel_mean / channel_max / channel_active: per channel over images and positions.
        top: per channel, its strongest images (peak value, highest first).
    """

    images: int
    mean: float
    sparsity: float
    dead: list[int]
    channel_mean: list[float]
    channel_max: list[float]
    channel_active: list[float]
    top: list[list[TopImage]]


def summarize(batches: Iterable[dict[str, np.ndarray]], width: int, top_k: int) -> LayerStats:
    """Combine reduced batches (in image order) into :class:`LayerStats`; ``width``: the map's W."""
    parts = list(batches)
    stacked = {key: np.concatenate([p[key] for p in parts], axis=0) for key in REDUCTIONS}
    peak = stacked["max"]
    images, channels = peak.shape
    channel_max = peak.max(axis=0)
    # Every value lies between an image's mean and the channel's max, and an image's mean equals its
    # max only when its map is constant: max == the smallest mean means one value everywhere.
    spread = channel_max - stacked["mean"].min(axis=0)
    scale = np.maximum(np.abs(channel_max), 1.0)
    dead = np.nonzero((channel_max <= 0) | (spread <= CONSTANT_TOLERANCE * scale))[0]
    order = np.argsort(-peak, axis=0, kind="stable")[:top_k]
    top = [
        [
            TopImage(
                int(i),
                float(peak[i, c]),
                int(stacked["argmax"][i, c] // width),
                int(stacked["argmax"][i, c] % width),
            )
            for i in order[:, c]
        ]
        for c in range(channels)
    ]
    return LayerStats(
        images=images,
        mean=float(stacked["mean"].mean(dtype=np.float64)),
        sparsity=float(1.0 - stacked["active"].mean(dtype=np.float64)),
        dead=[int(c) for c in dead],
        channel_mean=[float(v) for v in stacked["mean"].mean(axis=0, dtype=np.float64)],
        channel_max=[float(v) for v in channel_max],
        channel_active=[float(v) for v in stacked["active"].mean(axis=0, dtype=np.float64)],
        top=top,
    )
