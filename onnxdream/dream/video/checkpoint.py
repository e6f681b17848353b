"""Dreamed frames checkpointed losslessly beside the output, so a killed run continues where it stopped.

Each frame is a PNG in an :class:`~onnxdream.itemstore.ItemStore` under ``.OUT.frames/`` next to
the output, keyed by everything the frame depends on: the input file's digest, the model files'
digests, the dream and coherence settings, the frame selection, the seed and the frame index.
The dream of frame t starts from the (checkpointed) dream of frame t-1, so a resumed run reads
finished frames back bit for bit and continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from onnxdream.itemstore import ItemStore, content_key, file_digest


def checkpoint_folder(out: str | os.PathLike[str]) -> Path:
    """Where the frames of the output ``out`` are checkpointed: ``.NAME.frames`` beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.frames"


def run_key(inputs: Sequence[str | os.PathLike[str]], settings: dict[str, object]) -> str:
    """The key shared by one run's frames: digests of every file read and the settings."""
    digests = [file_digest(path) for path in inputs]
    return content_key("video-frames", digests, settings)


class FrameCheckpoints:
    """The frames of one run, stored as PNG by frame index."""

    def __init__(self, folder: str | os.PathLike[str], key: str) -> None:
        self.folder = Path(folder)
        self.store = ItemStore(self.folder)
        self.key = key

    def _item(self, index: int) -> str:
        return content_key(self.key, index)

    def load(self, index: int, shape: tuple[int, ...]) -> np.ndarray | None:
        """Frame ``index`` as HxWx3 uint8, or ``None`` when missing, unreadable or of another size."""
        data = self.store.read_bytes(self._item(index), ".png")
        if data is None:
            return None
        try:
            with Image.open(io.BytesIO(data)) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, ValueError):
            return None
        return pixels if pixels.shape == shape else None

    def save(self, index: int, pixels: np.ndarray) -> None:
        """Store frame ``index`` (HxWx3 uint8) atomically."""
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        self.store.write_bytes(self._item(index), ".png", buffer.getvalue())

    def remove(self) -> None:
        """Delete the checkpoints (after the output is complete)."""
        shutil.rmtree(self.folder, ignore_errors=True)
