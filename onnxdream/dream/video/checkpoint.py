"""Dreamed frames checkpointed losslessly beside the output, so a killed run continues where it stopped.

Each frame is a PNG in an :class:`~onnxdream.itemstore.ItemStore` under ``.OUT.frames/`` next to
the output, keyed by everything the frame depends on: the input file's digest, the model files'
digests, the dream and coherence settings, the frame selection, the seed and the frame index.
The dream of frame t starts from the (checkpointed) dream of frame t-1, so a resumed run reads
finished frames back bit for bit and continues exactly as an uninterrupted one would.

A video dreamed in pieces (:mod:`.parallel`) keeps whole pieces instead (:class:`PieceCheckpoints`):
each piece's frames and their reports, keyed by the run's key and the piece.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


class PieceCheckpoints:
    """The finished pieces of a run dreamed in pieces: each piece's frames (PNG) and reports (JSON).

    A piece's frames are written first and its reports last, so a piece counts as finished only
    when its reports exist and every one of its frames reads back; anything less is dreamed again.
    """

    def __init__(self, folder: str | os.PathLike[str], key: str) -> None:
        self.folder = Path(folder)
        self.key = key

    def _frames(self, piece: object) -> FrameCheckpoints:
        return FrameCheckpoints(self.folder, content_key(self.key, "piece", piece))

    def save(self, piece: object, frames: Sequence[np.ndarray], reports: list[dict[str, Any]]) -> None:
        """Store the piece ``piece`` (any JSON-able identity): its frames, then one report per frame."""
        store = self._frames(piece)
        for offset, pixels in enumerate(frames):
            store.save(offset, pixels)
        store.store.save_json(store.key, reports)

    def reports(self, piece: object, shape: tuple[int, ...]) -> list[Any] | None:
        """The reports of the finished piece ``piece`` whose frames all read back at ``shape``, else ``None``."""
        store = self._frames(piece)
        reports = store.store.load_json(store.key)
        if not isinstance(reports, list):
            return None
        if any(store.load(offset, shape) is None for offset in range(len(reports))):
            return None
        return reports

    def frame(self, piece: object, offset: int, shape: tuple[int, ...]) -> np.ndarray | None:
        """Frame ``offset`` of the piece ``piece``, or ``None`` when missing or unreadable."""
        return self._frames(piece).load(offset, shape)

    def remove(self) -> None:
        """Delete the checkpoints (after the output is complete)."""
        shutil.rmtree(self.folder, ignore_errors=True)
