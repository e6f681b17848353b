"""A tiny CNN (a few KB of weights) and its ONNX export, shared by the dream tests."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from onnxdream.torch_export import export_model

FAST = ["--octaves", "2", "--steps", "3", "--lr", "0.05", "--quiet", "--device", "cpu"]
"""``dream`` flags for a quick run of the tiny CNN on the CPU."""


class TinyCNN(nn.Module):
    """stem -> block1 (stride 2) -> block2 (stride 2, two branches added) -> head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.block1 = nn.Sequential(nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(12, 16, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block1(self.stem(x))))


def tiny_cnn(seed: int = 0) -> TinyCNN:
    """The tiny CNN with seeded weights, in eval mode."""
    torch.manual_seed(seed)
    return TinyCNN().eval()


def tiny_onnx() -> onnx.ModelProto:
    """The tiny CNN exported at 1x3x32x32 (a fixed size, as zoo files have), node names = module paths."""
    return export_model("tests.dream_helpers:tiny_cnn", legacy=True, input_shape=(1, 3, 32, 32)).model


def pattern(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth seeded RGB pattern in [0, 1], shape (H, W, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    phases = rng.uniform(0, 2 * np.pi, 3)
    channels = [0.5 + 0.4 * np.sin(6 * xx + 4 * yy * (c + 1) + phases[c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.float32)
