"""The Python API: ``onnxdream.dream(image, model=None, layers=..., **options) -> PIL.Image``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
from PIL import Image

from onnxdream.dream.engine import Dreamer, DreamOptions, DreamResult
from onnxdream.dream.objectives import LayerSpec, parse_spec
from onnxdream.dream.source import ModelArg, default_layers, open_dreamer
from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.images import MAX_PIXELS, from_pil, limit_size, load_image
from onnxdream.lookup import NameLookup

ImageArg = str | os.PathLike[str] | Image.Image | np.ndarray


def as_array(image: ImageArg, max_size: int | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image path, Pillow image or HxWx3 float array in [0, 1] as an RGB float32 array.

    A path is read only up to ``max_pixels`` pixels (0: no limit).
    """
    if isinstance(image, Image.Image):
        return limit_size(from_pil(image), max_size)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise OnnxDreamError(f"image array must be HxWx3, got shape {image.shape}")
        return limit_size(image.astype(np.float32, copy=False), max_size)
    return load_image(image, max_size, max_pixels)


def layer_specs(
    dreamer: Dreamer, layers: str | Sequence[str | LayerSpec] | None, model: ModelArg
) -> list[LayerSpec]:
    """Parse layer specs (names that contain ``:`` or ``*`` are recognised), or the model's default."""
    if layers is None or (not isinstance(layers, str) and len(layers) == 0):
        layers = default_layers(model, dreamer)
    if isinstance(layers, str):
        layers = [layers]
    known = NameLookup(dreamer.layer_names()).knows
    return [s if isinstance(s, LayerSpec) else parse_spec(s, known) for s in layers]


def check_option_names(verb: str, options: Iterable[str], settings: type) -> None:
    """Refuse keyword options of a Python API verb that are not fields of its ``settings`` dataclass.

    Raises:
        OnnxDreamError: one line listing the unknown names and the valid ones.
    """
    valid = {f.name for f in fields(settings)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise OnnxDreamError(
            f"unknown {verb} option(s): {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
        )


def api_dreamer(model: ModelArg | Dreamer, **settings: Any) -> tuple[Dreamer, ModelArg]:
    """The dreamer a Python API verb runs on, and the model its default layers come from:
    ``model`` itself (and ``None``) when it is a :class:`Dreamer`, else ``model`` opened by
    :func:`~onnxdream.dream.source.open_dreamer` with ``settings`` (and ``model``)."""
    if isinstance(model, Dreamer):
        return model, None
    return open_dreamer(model, **settings), model


def run(
    image: ImageArg,
    model: ModelArg | Dreamer = None,
    layers: str | Sequence[str | LayerSpec] | None = None,
    *,
    device: str = "auto",
    max_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    value_range: Sequence[float] | None = None,
    channels: str | None = None,
    guide: ImageArg | None = None,
    precision: str = "fp32",
    compile: bool = False,
    layout: str | None = None,
    **options: object,
) -> tuple[Image.Image, DreamResult]:
    """Like :func:`dream`, and also return the :class:`DreamResult` (objective, time, checks)."""
    check_option_names("dream", options, DreamOptions)
    dreamer, source = api_dreamer(
        model,
        device=device,
        mean=mean,
        std=std,
        value_range=value_range,
        channels=channels,
        precision=precision,
        compile=compile,
        layout=layout,
    )
    specs = layer_specs(dreamer, layers, source)
    if guide is not None:
        options["guide"] = as_array(guide)
    return dreamer.run(as_array(image, max_size), specs, DreamOptions(**options))  # type: ignore[arg-type]


def dream(
    image: ImageArg,
    model: ModelArg | Dreamer = None,
    layers: str | Sequence[str | LayerSpec] | None = None,
    **options: object,
) -> Image.Image:
    """Deep Dream ``image`` on ``layers`` of ``model``; returns the dreamed RGB image.

    Args:
        image: a path, a Pillow image, or an HxWx3 float array in [0, 1].
        model: an ONNX path or ``ModelProto``, ``"zoo:efficientnet-lite0"`` (``None``: that
            built-in model), a torch module, an ``ActivationModel`` or a :class:`Dreamer` (reuse
            one across calls to build the mirror and ONNX Runtime sessions once).
        layers: layer specs such as ``"_blocks.8"``, ``"_blocks.11:17*0.5"``; default: the
            built-in model's default layer.
        **options: ``device``, ``max_size``, ``mean``, ``std``, ``value_range``, ``channels``,
            ``guide``, ``precision`` and ``compile`` (:mod:`onnxdream.dream.accel`), ``layout``
            (``"nchw"`` / ``"nhwc"``: the input layout, found from the model when not given) and
            every field of :class:`DreamOptions` (``octaves``, ``steps``, ``lr``,
            ``tile``, ``seed``, ``check``, ...).

    Raises:
        UnknownLayerError: a layer name the model does not have (nearest names suggested).
        MismatchError: a forward check failed (unless ``on_mismatch="warn"``).
        OnnxDreamError: any other bad input.
    """
    return run(image, model, layers, **options)[0]  # type: ignore[arg-type]
