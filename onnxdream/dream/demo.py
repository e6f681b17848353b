"""The ``--demo`` input: seeded fractal cloud noise, generated (no image files needed)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DEMO_SIZE = 384


def demo_image(size: int = DEMO_SIZE, seed: int = 0) -> np.ndarray:
    """Soft coloured clouds (sum of upsampled noise octaves), ``(size, size, 3)`` float32 in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(1, 3, size, size)
    for level in range(2, 7):
        cells = 2**level
        noise = torch.rand(1, 3, cells, cells, generator=generator)
        total += F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False) / 1.6**level
    grey = total.mean(dim=1, keepdim=True)
    # Mostly luminance with a little colour, like a cloudy sky.
    image = 0.75 * grey + 0.25 * total
    image = (image - image.min()) / (image.max() - image.min())
    return (0.15 + 0.75 * image)[0].permute(1, 2, 0).contiguous().numpy().astype(np.float32)
