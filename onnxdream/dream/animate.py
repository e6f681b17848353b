"""Zoom animations: each frame is the previous dream, zoomed in, dreamed again."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from onnxdream.dream.engine import Dreamer, DreamOptions, DreamResult
from onnxdream.dream.objectives import LayerSpec
from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.inputs.images import FORMATS, from_pil, resize_array, save_image
from onnxdream.io import staged

FRAME_MS = 100


def zoom_in(image: np.ndarray, zoom: float) -> np.ndarray:
    """The centre ``1/zoom`` of an HxWx3 image, resized back to the full size."""
    h, w = image.shape[:2]
    ch, cw = max(1, round(h / zoom)), max(1, round(w / zoom))
    top, left = (h - ch) // 2, (w - cw) // 2
    return resize_array(np.ascontiguousarray(image[top : top + ch, left : left + cw]), (h, w))


def animate(
    dreamer: Dreamer,
    image: np.ndarray,
    specs: Sequence[LayerSpec],
    options: DreamOptions,
    frames: int,
    zoom: float,
    on_frame: Callable[[int, Image.Image, DreamResult], None] | None = None,
) -> list[Image.Image]:
    """Dream ``frames`` times, feeding each result back zoomed in by ``zoom``.

    Frame ``i`` uses seed ``options.seed + i``, so the whole animation is reproducible.

    Raises:
        OnnxDreamError: fewer than one frame or a zoom below 1.
    """
    if frames < 1:
        raise OptionError(f"{{frames}} must be at least 1, got {frames}", "frames")
    if not zoom >= 1.0:
        raise OptionError(f"{{zoom}} must be 1 or more, got {zoom}", "zoom")
    out: list[Image.Image] = []
    current = image
    for i in range(frames):
        frame, result = dreamer.run(current, specs, replace(options, seed=options.seed + i))
        out.append(frame)
        if on_frame is not None:
            on_frame(i, frame, result)
        current = zoom_in(from_pil(frame), zoom)
    return out


def frame_paths(out: str | os.PathLike[str], count: int) -> tuple[list[Path], Path]:
    """Numbered frame files and the GIF for an output path (``a.gif`` -> ``a_0001.png``..., ``a.gif``)."""
    out = Path(out)
    suffix = out.suffix.lower()
    frame_suffix = suffix if suffix in FORMATS else ".png"
    if suffix not in FORMATS and suffix != ".gif":
        raise OnnxDreamError(
            f"{out}: animation output must end in .gif or one of {', '.join(sorted(FORMATS))}"
        )
    frames = [out.with_name(f"{out.stem}_{i + 1:04d}{frame_suffix}") for i in range(count)]
    return frames, out.with_suffix(".gif")


def save_animation(frames: Sequence[Image.Image], out: str | os.PathLike[str]) -> tuple[list[Path], Path]:
    """Write numbered frames and a looping animated GIF, all or none; returns their paths."""
    paths, gif = frame_paths(out, len(frames))
    with staged() as staging:
        for frame, path in zip(frames, paths, strict=True):
            save_image(frame, path, staging)
        frames[0].save(
            staging.path(gif),
            format="GIF",
            save_all=True,
            append_images=list(frames[1:]),
            duration=FRAME_MS,
            loop=0,
        )
    return paths, gif
