"""Pixels <-> model input: mean/std, value range and channel order, from the model's metadata.

torch is imported where a tensor is built, so that the built-in models' metadata
(:data:`IMAGENET_PREPROCESS`, used by :mod:`onnxdream.zoo`) can be read without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import onnx

from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.layout import TO_NCHW, TO_NHWC, InputLayout, input_layout
from onnxdream.metadata import PREPROCESS_KEY, get_json

if TYPE_CHECKING:
    import torch

IMAGENET_PREPROCESS = {
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "range": [0.0, 1.0],
    "channels": "RGB",
}
"""ImageNet statistics on [0, 1] RGB, as ``onnxdream.preprocess`` metadata: the default."""


@dataclass(frozen=True)
class Preprocess:
    """How an RGB image with values in [0, 1] becomes the model's input.

    ``input = (lo + pixel * (hi - lo) - mean) / std``, in the model's channel order; ``mean`` and
    ``std`` are given in that order and in the units of ``range``. Pixels are NCHW; the model
    input is in ``layout`` (NHWC for channels-last models, see :mod:`onnxdream.layout`).
    """

    mean: tuple[float, float, float] = tuple(IMAGENET_PREPROCESS["mean"])  # type: ignore[assignment]
    std: tuple[float, float, float] = tuple(IMAGENET_PREPROCESS["std"])  # type: ignore[assignment]
    range: tuple[float, float] = (0.0, 1.0)
    channels: str = "RGB"
    source: str = "default"
    layout: InputLayout = field(default_factory=InputLayout)

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise OnnxDreamError(
                f"mean and std need 3 values each, got {list(self.mean)} and {list(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise OnnxDreamError(f"std values must be positive, got {list(self.std)}")
        if self.channels not in ("RGB", "BGR"):
            raise OnnxDreamError(f"channel order must be 'RGB' or 'BGR', got {self.channels!r}")
        if not self.range[1] > self.range[0]:
            raise OnnxDreamError(f"value range must be increasing, got {list(self.range)}")

    def _affine(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        lo, hi = self.range
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)
        return (hi - lo) / std, (lo - mean) / std

    def to_model(self, pixels: torch.Tensor) -> torch.Tensor:
        """NCHW RGB pixels in [0, 1] -> model input in the model's layout (differentiable)."""
        if self.channels == "BGR":
            pixels = pixels.flip(1)
        scale, shift = self._affine(pixels)
        model_input = pixels * scale + shift
        return model_input.permute(*TO_NHWC) if self.layout.channels_last else model_input

    def to_pixels(self, model_input: torch.Tensor) -> torch.Tensor:
        """Model input in the model's layout -> NCHW RGB pixels (the inverse of :meth:`to_model`,
        not clipped)."""
        if self.layout.channels_last:
            model_input = model_input.permute(*TO_NCHW)
        scale, shift = self._affine(model_input)
        pixels = (model_input - shift) / scale
        return pixels.flip(1) if self.channels == "BGR" else pixels


def _triple(values: Sequence[float] | None, what: str) -> tuple[float, float, float] | None:
    if values is None:
        return None
    values = [float(v) for v in values]
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise OptionError(f"{{{what}}} needs 1 or 3 values, got {len(values)}", what)
    return (values[0], values[1], values[2])


def preprocess_for(
    model: onnx.ModelProto | None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    value_range: Sequence[float] | None = None,
    channels: str | None = None,
    layout: str | None = None,
) -> Preprocess:
    """Preprocessing from the model's ``onnxdream.preprocess`` metadata, then explicit overrides.

    Without metadata, ImageNet statistics on [0, 1] RGB are assumed (``source == "default"``).
    The input layout is ``layout`` (nchw / nhwc) when given, else found from the model
    (:func:`onnxdream.layout.input_layout`).

    Raises:
        OnnxDreamError: malformed metadata or overrides.
    """
    found = input_layout(model, layout)
    base = Preprocess(layout=found)
    info = get_json(model, PREPROCESS_KEY) if model is not None else None
    if info is not None:
        try:
            base = Preprocess(
                mean=_triple(info.get("mean", base.mean), "mean") or base.mean,
                std=_triple(info.get("std", base.std), "std") or base.std,
                range=tuple(float(v) for v in info.get("range", base.range)),  # type: ignore[arg-type]
                channels=str(info.get("channels", base.channels)).upper(),
                source="metadata",
                layout=found,
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise OnnxDreamError(f"model metadata {PREPROCESS_KEY!r} is malformed: {exc}") from None
    overrides = {
        "mean": _triple(mean, "mean"),
        "std": _triple(std, "std"),
        "range": tuple(float(v) for v in value_range) if value_range is not None else None,
        "channels": channels.upper() if channels is not None else None,
    }
    if overrides["range"] is not None and len(overrides["range"]) != 2:
        raise OptionError(
            f"{{value_range}} needs 2 values (low, high), got {len(overrides['range'])}", "value_range"
        )
    changed = {k: v for k, v in overrides.items() if v is not None}
    if not changed:
        return base
    merged = {"mean": base.mean, "std": base.std, "range": base.range, "channels": base.channels}
    merged.update(changed)
    return Preprocess(**merged, source=f"{base.source}+options", layout=found)
