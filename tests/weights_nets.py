"""Tiny networks for the ``--weights`` tests: the founding example's shape at a few kilobytes.

``fine_tuned`` is a small pretrained-style CNN with a ``fine_tune_block`` added by
``add_module``, as PyTorch users add a head to a pretrained ``nn.Sequential``; ``other`` is
another architecture. Factories build the architecture only (seeded weights that a weights file
replaces); SPECs name them as ``tests.weights_nets:fine_tuned``.
"""

from __future__ import annotations

import torch
from torch import nn

FINE_TUNED = "tests.weights_nets:fine_tuned"
OTHER = "tests.weights_nets:other"


class CustomLayer(nn.Module):
    """The block added for fine-tuning: a 3x3 convolution and a ReLU."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


def pretrained() -> nn.Sequential:
    """The 'pretrained' network: two conv stages with BatchNorm."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
    )


def fine_tuned() -> nn.Sequential:
    """``pretrained_model.add_module("fine_tune_block", CustomLayer())``: the founding example."""
    model = pretrained()
    model.add_module("fine_tune_block", CustomLayer())
    return model


def other() -> nn.Sequential:
    """Another architecture: its weights fit ``fine_tuned`` nowhere."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU(), nn.Conv2d(4, 6, 1))


def fine_tune(model: nn.Module, steps: int = 3, seed: int = 0) -> nn.Module:
    """A few seeded SGD steps on random images (the block's mean activation towards a target),
    so every weight, BatchNorm statistic included, differs from the factory's."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(steps):
        out = model(torch.randn(4, 3, 32, 32, generator=generator))
        loss = (out.mean(dim=(2, 3)) - 1.0).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()
