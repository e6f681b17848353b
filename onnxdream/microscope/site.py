"""The static site: Jinja2 templates (autoescape on: names from a model are text, never markup),
assets copied beside the pages, and the page items that render them."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
from PIL import Image

from onnxdream.errors import OnnxDreamError

ASSETS = ("style.css", "site.js")
"""Files copied to ``SITE/assets/`` (no CDN: the site opens from ``file://`` with no network)."""
CROP_SIDE = 112
"""Longest side of a top-k crop on a channel page, in pixels."""


def _package_file(folder: str, name: str) -> bytes:
    return resources.files("onnxdream.microscope").joinpath(folder, name).read_bytes()


def asset_files() -> dict[str, bytes]:
    """``assets/NAME`` -> bytes, for every asset."""
    return {f"assets/{name}": _package_file("assets", name) for name in ASSETS}


def environment():
    """The Jinja2 environment: package templates, autoescape on every template, strict undefined.

    Raises:
        OnnxDreamError: Jinja2 is not installed.
    """
    try:
        import jinja2
    except ImportError:
        raise OnnxDreamError("microscope needs Jinja2: pip install 'onnxdream[microscope]'") from None
    return jinja2.Environment(
        loader=jinja2.PackageLoader("onnxdream.microscope", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class Crop:
    """A box of one dataset image, as the model saw it, to show on a channel page."""

    path: str
    size: tuple[int, int]
    box: tuple[int, int, int, int]
    max_pixels: int = 0


@dataclass
class PageItem:
    """One page: its template, where it goes in the site, its context and the pictures it shows.

    ``pictures``: site path -> uint8 RGB array (written as PNG, or JPEG for ``.jpg``);
    ``crops``: site path -> :class:`Crop` (cut from the image file by the worker).
    """

    template: str
    path: str
    context: dict[str, Any]
    pictures: dict[str, np.ndarray] = field(default_factory=dict)
    crops: dict[str, Crop] = field(default_factory=dict)

    def outputs(self) -> list[str]:
        """Every site path this page writes, the page itself last."""
        return [*self.pictures, *self.crops, self.path]


def encode(picture: Image.Image, path: str) -> bytes:
    """A picture in the format its site path names (PNG, or JPEG quality 90)."""
    buffer = io.BytesIO()
    if path.endswith(".jpg"):
        picture.convert("RGB").save(buffer, "JPEG", quality=90)
    else:
        picture.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def cut_crop(crop: Crop) -> Image.Image:
    """The crop of the image as the model saw it, its longest side scaled to :data:`CROP_SIDE`."""
    from onnxdream.inputs.images import to_pil
    from onnxdream.microscope.dataset import prepare_image

    pixels = prepare_image(crop.path, crop.size, crop.max_pixels)
    left, top, right, bottom = crop.box
    picture = to_pil(pixels[top:bottom, left:right])
    scale = CROP_SIDE / max(picture.size)
    side = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(side, Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)


@dataclass
class PageJob:
    """Renders :class:`PageItem` s to bytes (the driver writes them into the site)."""

    def setup(self) -> None:
        self._env = environment()

    def run(self, item: PageItem) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for path, pixels in item.pictures.items():
            files[path] = encode(Image.fromarray(np.asarray(pixels, dtype=np.uint8)), path)
        for path, crop in item.crops.items():
            files[path] = encode(cut_crop(crop), path)
        depth = item.path.count("/")
        html = self._env.get_template(item.template).render(root="../" * depth, **item.context)
        files[item.path] = html.encode("utf-8")
        return files
