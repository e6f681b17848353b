"""Fixtures for the microscope tests: an image folder and a tiny model whose names hold markup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from tests.dream_helpers import pattern, tiny_onnx

HOSTILE = {
    "block1.0": '<script>alert("x")</script>',
    "block2.0": "<img src=x onerror=alert(2)>.conv",
}
"""Tiny-CNN node -> its new name: markup and script that must show as text."""

QUICK = [
    "--channels", "3", "--batch", "2", "--steps", "3", "--size", "32", "--top-k", "2",
    "--image-batch", "2", "--dream-steps", "2", "--dream-octaves", "1", "--dream-size", "32",
    "--device", "cpu", "--quiet", "--json",
]  # fmt: skip
"""CLI settings that keep a tiny site to seconds."""


def quick_options():
    """:data:`QUICK` as Python API options, with the CLI's default ``--max-pixels``."""
    from onnxdream.inputs.limits import MAX_PIXELS
    from onnxdream.microscope import MicroscopeOptions

    return MicroscopeOptions(
        channels=3,
        batch=2,
        steps=3,
        size=32,
        top_k=2,
        image_batch=2,
        dream_steps=2,
        dream_octaves=1,
        dream_size=32,
        device="cpu",
        max_pixels=MAX_PIXELS,
    )


def image_folder(folder: Path, count: int = 5, size: tuple[int, int] = (48, 64), junk: bool = True) -> Path:
    """``count`` seeded pattern images (PNG and JPEG) and, with ``junk``, a file that is no image."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = (pattern(*size, seed=i) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"pattern{i}.{'png' if i % 2 else 'jpg'}")
    if junk:
        (folder / "notes.jpg").write_text("not an image")
    return folder


def hostile_model(path: Path) -> Path:
    """The tiny CNN with some node names replaced by :data:`HOSTILE` markup."""
    model = tiny_onnx()
    for node in model.graph.node:
        node.name = HOSTILE.get(node.name, node.name)
    onnx.save(model, path)
    return path
