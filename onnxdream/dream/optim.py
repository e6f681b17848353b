"""Optimisers over an :class:`ImageParam`, and the step every dream and visualisation takes.

One step: decode the latent to pixels, transform them at random, get the objective's gradient for
that view (whole or tile by tile), normalise it in the view's frame (``mean`` or ``lap``), carry it
back through the transforms and the parameterisation to the latent, and update:

- ``ascent``: normalised gradient ascent; ``lr`` is the mean pixel change per step (for a latent
  other than the pixels themselves the step is rescaled so that this stays true);
- ``adam``: Adam (maximising) on the latent, ``lr`` its step size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from onnxdream.dream.adam import Adam
from onnxdream.dream.param import ImageParam, pixel_change
from onnxdream.dream.step import normalize_gradient
from onnxdream.dream.tiling import Gradient
from onnxdream.dream.transforms import Transforms
from onnxdream.errors import OnnxDreamError, OptionError

OPTIMIZERS = ("ascent", "adam")
DEFAULT_LR = {"ascent": 0.01, "adam": 0.03}
"""``--lr`` when none is given, per optimiser."""
_EPS = 1e-12


def check_optimizer(kind: str, lr: float | None) -> None:
    """Raise for an unknown optimiser or a non-positive learning rate.

    Raises:
        OnnxDreamError: naming the valid choices.
    """
    if kind not in OPTIMIZERS:
        raise OnnxDreamError(f"unknown optimizer {kind!r}; choose one of {', '.join(OPTIMIZERS)}")
    if lr is not None and not lr > 0:
        raise OptionError(f"{{lr}} must be positive, got {lr}", "lr")


class Optimizer:
    """Applies image-frame gradients to one :class:`ImageParam`'s latent."""

    def __init__(
        self, param: ImageParam, kind: str = "ascent", lr: float | None = None, grad_norm: str = "mean"
    ):
        check_optimizer(kind, lr)
        self.param, self.kind, self.grad_norm = param, kind, grad_norm
        self.lr = DEFAULT_LR[kind] if lr is None else lr
        self._adam = Adam(param.latent, lr=self.lr, maximize=True) if kind == "adam" else None

    def apply(self, view: torch.Tensor, view_grad: torch.Tensor) -> None:
        """Update the latent from the objective's gradient w.r.t. ``view`` (a function of the latent)."""
        latent = self.param.latent
        direction = normalize_gradient(view_grad, self.grad_norm)
        (grad,) = torch.autograd.grad(view, latent, direction)
        if self._adam is not None:
            self._adam.step(grad)
        else:
            if not self.param.identity:
                grad = grad / max(pixel_change(self.param, grad), _EPS)
            with torch.no_grad():
                latent += self.lr * grad
        self.param.project()


def take_step(
    optimizer: Optimizer,
    transforms: Transforms,
    gradient: Callable[[torch.Tensor], Gradient],
    rng: np.random.Generator,
) -> Gradient:
    """One step: a random view of the image, its gradient, the update; returns the gradient found."""
    view = transforms(optimizer.param.pixels(), rng)
    found = gradient(view.detach())
    optimizer.apply(view, found.grad)
    return found
