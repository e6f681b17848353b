"""Image I/O with Pillow: any readable input becomes an RGB float array; output format by extension."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.inputs.limits import MAX_PIXELS
from onnxdream.io import Staging, atomic_path

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
"""Output extensions and the Pillow format each one is written in."""

_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}, "TIFF": {"compression": "tiff_lzw"}}


def output_format(path: str | os.PathLike[str]) -> str:
    """The Pillow format for an output path, from its extension.

    Raises:
        OnnxDreamError: the extension is not one of :data:`FORMATS`.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OnnxDreamError(
            f"{path}: cannot tell the image format from {suffix or 'no extension'!r}; "
            f"use one of {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[suffix]


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """HxWx3 float32 in [0, 1]; alpha is composited over white, 16-bit precision is kept."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = np.asarray(image, dtype=np.float64)
        # Mode "I" holds 16-bit PNGs as well as real 32-bit data: scale by what the values need.
        top = 65535.0 if image.mode.startswith("I;16") or grey.max(initial=0) <= 65535 else grey.max()
        grey = np.clip(grey / top, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    if image.mode == "F":
        grey = np.asarray(image, dtype=np.float64)
        grey = grey / 255.0 if grey.max(initial=0) > 1.0 else grey
        return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:4]
        return (rgba[..., :3] * alpha + (1.0 - alpha)).astype(np.float32)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def resize_array(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxWx3 float array to ``(height, width)`` (bicubic, antialiased when shrinking)."""
    if array.shape[:2] == tuple(size):
        return array
    t = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]
    out = F.interpolate(t, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy()


def fit_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """``(height, width)`` shrunk so the longer side is at most ``max_size`` (never enlarged)."""
    longest = max(height, width)
    if longest <= max_size:
        return height, width
    scale = max_size / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def _open(path: Path, max_pixels: int) -> Image.Image:
    """Open ``path`` lazily, refusing more than ``max_pixels`` pixels (0: no limit) before decoding."""
    # Pillow's own decompression-bomb check is replaced by ours, which says how to lift it.
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        opened = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    width, height = opened.size
    if max_pixels and width * height > max_pixels:
        opened.close()
        raise OptionError(
            f"{path}: {width}x{height} is {width * height} pixels, over the limit of {max_pixels} "
            "({max_pixels} raises it, 0 lifts it)",
            "max_pixels",
        )
    return opened


def load_image(
    path: str | os.PathLike[str], max_size: int | None = None, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Read any Pillow-readable image as an RGB float32 array ``(H, W, 3)`` in [0, 1].

    EXIF orientation is applied; RGBA, greyscale, palette, 16-bit and CMYK inputs all become RGB.

    Raises:
        OnnxDreamError: missing or unreadable file, more than ``max_pixels`` pixels (0: no
            limit), or ``max_size`` below 1.
    """
    path = Path(path)
    if not path.is_file():
        raise OnnxDreamError(f"{path}: image not found")
    try:
        with _open(path, max_pixels) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
            array = _to_rgb_array(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise OnnxDreamError(f"{path}: not a readable image ({exc})") from None
    return limit_size(array, max_size)


def limit_size(array: np.ndarray, max_size: int | None) -> np.ndarray:
    """Apply ``--max-size`` to an HxWx3 array.

    Raises:
        OnnxDreamError: ``max_size`` below 1.
    """
    if max_size is None:
        return array
    if max_size < 1:
        raise OptionError(f"{{max_size}} must be at least 1, got {max_size}", "max_size")
    return resize_array(array, fit_size(array.shape[0], array.shape[1], max_size))


def to_pil(array: np.ndarray) -> Image.Image:
    """An HxWx3 float array in [0, 1] as an 8-bit RGB Pillow image (rounded, not truncated)."""
    data = np.clip(np.rint(np.asarray(array, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(data)


def from_pil(image: Image.Image) -> np.ndarray:
    """A Pillow image (any mode) as an RGB float32 array in [0, 1]."""
    return _to_rgb_array(ImageOps.exif_transpose(image))


def save_image(image: Image.Image, path: str | os.PathLike[str], staging: Staging | None = None) -> Path:
    """Write ``image`` atomically in the format its extension names (with ``staging``: as one of
    the outputs that land together when the staging commits).

    Raises:
        OnnxDreamError: unknown extension.
    """
    fmt = output_format(path)
    if staging is not None:
        image.save(staging.path(path), format=fmt, **_SAVE_OPTIONS.get(fmt, {}))
        return Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))
    return Path(path)
