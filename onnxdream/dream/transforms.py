"""Random, differentiable transforms applied to the image before every forward pass.

A feature the network sees only at one exact offset, scale and angle is an adversarial pattern
rather than a feature; optimising through small random changes of all three keeps what is robust.
Every draw comes from the run's seeded generator, every range is bounded, and with everything at
zero the image passes through untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from onnxdream.errors import OptionError

MAX_SCALE = 0.5
MAX_ROTATE = 45.0


@dataclass(frozen=True)
class Transforms:
    """Per-step random transforms, in the order applied.

    Attributes:
        pad: reflect-pad every side by this many pixels (at most the image side minus one).
        scale: zoom by a random factor in ``[1 - scale, 1 + scale]`` (same output size).
        rotate: rotate by a random angle in ``[-rotate, rotate]`` degrees (same output size).
        jitter: roll by a random offset in ``[-jitter, jitter]`` pixels on each axis.
    """

    pad: int = 0
    scale: float = 0.0
    rotate: float = 0.0
    jitter: int = 0

    def __post_init__(self) -> None:
        if self.pad < 0:
            raise OptionError(f"{{pad}} must be 0 or more, got {self.pad}", "pad")
        if self.jitter < 0:
            raise OptionError(f"{{jitter}} must be 0 or more, got {self.jitter}", "jitter")
        if not 0.0 <= self.scale <= MAX_SCALE:
            raise OptionError(f"{{scale}} must be between 0 and {MAX_SCALE:g}, got {self.scale}", "scale")
        if not 0.0 <= self.rotate <= MAX_ROTATE:
            raise OptionError(
                f"{{rotate}} must be between 0 and {MAX_ROTATE:g} degrees, got {self.rotate}", "rotate"
            )

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Transform an NCHW batch (one draw for the whole batch); differentiable w.r.t. ``x``."""
        # The jitter is drawn first so that jitter alone draws what Deep Dream always drew.
        dy, dx = (
            (int(v) for v in rng.integers(-self.jitter, self.jitter + 1, size=2)) if self.jitter else (0, 0)
        )
        if self.pad:
            p = min(self.pad, min(x.shape[-2:]) - 1)
            x = F.pad(x, (p, p, p, p), mode="reflect") if p > 0 else x
        if self.scale or self.rotate:
            factor = 1.0 + self.scale * float(rng.uniform(-1.0, 1.0)) if self.scale else 1.0
            angle = math.radians(self.rotate * float(rng.uniform(-1.0, 1.0))) if self.rotate else 0.0
            x = _affine(x, factor, angle)
        if dy or dx:
            x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        return x


def _affine(x: torch.Tensor, factor: float, angle: float) -> torch.Tensor:
    """Zoom by ``factor`` and rotate by ``angle`` radians about the centre, same size, edges reflected."""
    h, w = x.shape[-2:]
    cos, sin = math.cos(angle) / factor, math.sin(angle) / factor
    # affine_grid works in coordinates normalised per axis: the aspect ratio keeps the rotation rigid.
    theta = torch.tensor(
        [[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]], dtype=x.dtype, device=x.device
    ).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
