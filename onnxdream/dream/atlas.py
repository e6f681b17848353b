"""Atlas: one dream per layer, laid out as a labelled grid, to see what each named layer does."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.graph import scope_at_depth
from onnxdream.lookup import glob_names

LABEL_PAD = 4
FONT_SIZE = 14


def atlas_layers(
    names: Sequence[str], match: str | Sequence[str] | None = None, depth: int | None = None
) -> list[str]:
    """Layer names for an atlas: collapsed to ``depth`` components, then filtered by the glob(s)
    ``match`` (over full names; a glob that matches none is tried on the layers' own names).

    Raises:
        OptionError: neither ``match`` nor ``depth`` given, or a bad depth.
        OnnxDreamError: nothing matches.
    """
    globs = [match] if isinstance(match, str) else list(match or ())
    if not globs and depth is None:
        raise OptionError("an atlas needs {match} (a glob) or {depth} to choose the layers", "match", "depth")
    if depth is not None and depth < 1:
        raise OptionError(f"{{depth}} must be at least 1, got {depth}", "depth")
    chosen = list(dict.fromkeys(scope_at_depth(n, depth) for n in names)) if depth else list(names)
    if globs:
        found = {n for g in globs for n in glob_names(chosen, g)}
        chosen = [n for n in chosen if n in found]
    if not chosen:
        what = f"match {' or '.join(map(repr, globs))}" if globs else f"exist at depth {depth}"
        raise OnnxDreamError(f"no layer names {what}")
    return chosen


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=FONT_SIZE)


def label_height() -> int:
    """Height of the label band under each cell."""
    top, bottom = _font().getbbox("Ag_/.")[1::2]
    return int(bottom - top) + 2 * LABEL_PAD


def make_grid(
    images: Sequence[Image.Image], labels: Sequence[str], columns: int | None = None
) -> Image.Image:
    """A grid of equally sized cells, each an image with its label underneath.

    Images are resized to the first one's size; ``columns`` defaults to a near-square layout.
    """
    if not images:
        raise OnnxDreamError("atlas: no image to lay out")
    width, height = images[0].size
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    band = label_height()
    grid = Image.new("RGB", (columns * width, rows * (height + band)), "white")
    draw = ImageDraw.Draw(grid)
    font = _font()
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        x, y = (i % columns) * width, (i // columns) * (height + band)
        grid.paste(image.convert("RGB").resize((width, height)), (x, y))
        text = label
        while len(text) > 1 and draw.textlength(text, font=font) > width - 2 * LABEL_PAD:
            text = text[:-2] + "…"
        draw.text((x + LABEL_PAD, y + height + LABEL_PAD), text, fill="black", font=font)
    return grid
