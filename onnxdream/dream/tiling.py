"""Gradients tile by tile, so memory stays bounded on large images."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from onnxdream.dream.activations import Activation
from onnxdream.errors import OnnxDreamError

Evaluate = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, Activation], torch.Tensor]]
"""Pixels (NCHW, requires grad) -> (objective, activations, model input)."""


@dataclass
class Sample:
    """One forward pass kept for the ONNX Runtime check: its model input and activations."""

    model_input: torch.Tensor
    activations: dict[str, Activation]


@dataclass
class Gradient:
    """The gradient of the objective for a whole image, its value, and an optional sample."""

    grad: torch.Tensor
    objective: float
    sample: Sample | None


def _bounds(length: int, tile: int) -> list[tuple[int, int]]:
    """Split ``length`` into near-equal parts of at most ``tile`` (no sliver at the end)."""
    parts = max(1, math.ceil(length / tile))
    edges = [round(i * length / parts) for i in range(parts + 1)]
    return list(itertools.pairwise(edges))


def _grad(objective: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if not objective.requires_grad:
        raise OnnxDreamError("the objective does not depend on the image: the target layers are constant")
    (grad,) = torch.autograd.grad(objective, x)
    return grad


def covers(shape: tuple[int, ...], tile: int | None) -> bool:
    """Whether one tile covers the whole image (then tiling is exactly the untiled computation)."""
    return tile is None or (shape[-2] <= tile and shape[-1] <= tile)


def compute_gradient(
    evaluate: Evaluate,
    pixels: torch.Tensor,
    tile: int | None,
    rng: np.random.Generator,
    keep_sample: bool = False,
) -> Gradient:
    """Gradient of the objective w.r.t. ``pixels``, whole or tile by tile.

    With tiles, the image is first rolled by a random offset (so tile seams move every step) and
    each tile's objective is weighted by its share of the image area, so the sum approximates the
    whole-image objective and no tile dominates the normalised step. When one tile covers the
    image no offset is drawn and the result is bit for bit the untiled one.
    """
    if covers(tuple(pixels.shape), tile):
        x = pixels.detach().requires_grad_(True)
        objective, acts, model_input = evaluate(x)
        grad = _grad(objective, x)
        sample = Sample(model_input.detach(), _detach(acts)) if keep_sample else None
        return Gradient(grad, float(objective.detach()), sample)
    assert tile is not None
    h, w = pixels.shape[-2:]
    sy, sx = (int(v) for v in rng.integers(0, tile, size=2))
    shifted = torch.roll(pixels.detach(), shifts=(sy, sx), dims=(-2, -1))
    grad = torch.zeros_like(shifted)
    total = 0.0
    sample = None
    for y0, y1 in _bounds(h, tile):
        for x0, x1 in _bounds(w, tile):
            crop = shifted[..., y0:y1, x0:x1].clone().requires_grad_(True)
            objective, acts, model_input = evaluate(crop)
            share = (y1 - y0) * (x1 - x0) / (h * w)
            grad[..., y0:y1, x0:x1] = _grad(objective * share, crop)
            total += float(objective.detach()) * share
            if keep_sample and sample is None:
                sample = Sample(model_input.detach(), _detach(acts))
    return Gradient(torch.roll(grad, shifts=(-sy, -sx), dims=(-2, -1)), total, sample)


def _detach(acts: dict[str, Activation]) -> dict[str, Activation]:
    return {
        k: v.detach() if isinstance(v, torch.Tensor) else [t.detach() for t in v] for k, v in acts.items()
    }


@torch.no_grad()
def objective_value(evaluate: Evaluate, pixels: torch.Tensor, tile: int | None) -> float:
    """The objective of an image without gradients, tile by tile (no shift) when tiling."""
    if covers(tuple(pixels.shape), tile):
        return float(evaluate(pixels)[0])
    assert tile is not None
    h, w = pixels.shape[-2:]
    total = 0.0
    for y0, y1 in _bounds(h, tile):
        for x0, x1 in _bounds(w, tile):
            total += float(evaluate(pixels[..., y0:y1, x0:x1])[0]) * (y1 - y0) * (x1 - x0) / (h * w)
    return total
