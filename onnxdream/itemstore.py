"""Resumable work: each result is addressed by a hash of its inputs and written atomically.

Long jobs (microscope items, video frames) are split into items. An item's key is a hash of
everything its result depends on (model bytes, settings, the store's format version); its result
is written to a temp file and moved into place, so a killed run leaves whole items or none, and a
rerun skips every item that already exists. A file that cannot be read back (a disk that filled
up under another program, a hand-edited file) counts as missing and is computed again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from onnxdream.io import atomic_path

STORE_VERSION = 1
"""Part of every key: bump it when the meaning of stored results changes."""

PathLike = str | os.PathLike[str]


def _canonical(part: object) -> bytes:
    """Bytes that identify ``part``: bytes as they are, anything else as canonical JSON."""
    if isinstance(part, bytes | bytearray | memoryview):
        return b"b" + bytes(part)
    if isinstance(part, np.ndarray):
        header = json.dumps([str(part.dtype), part.shape]).encode()
        return b"a" + header + np.ascontiguousarray(part).tobytes()
    return b"j" + json.dumps(part, sort_keys=True, separators=(",", ":"), default=str).encode()


def content_key(*parts: object) -> str:
    """A hex key for the inputs ``parts`` (bytes, arrays or JSON-able values), in order."""
    digest = hashlib.sha256(str(STORE_VERSION).encode())
    for part in parts:
        data = _canonical(part)
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:32]


def file_digest(path: PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes (read in chunks: memory stays bounded for large models)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ItemStore:
    """Finished items under ``root``, one file per item, named by its key.

    ``root/ab/abcdef....npy``: two-character fan-out keeps folders small for long jobs.
    """

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)

    def path(self, key: str, suffix: str) -> Path:
        """Where the item ``key`` lives (whether or not it exists)."""
        return self.root / key[:2] / f"{key}{suffix}"

    def has(self, key: str, suffix: str) -> bool:
        """Whether the item exists (it may still be unreadable: loaders return ``None`` then)."""
        return self.path(key, suffix).is_file()

    def write_bytes(self, key: str, suffix: str, data: bytes) -> Path:
        """Store ``data`` as the item, atomically; returns its path."""
        target = self.path(key, suffix)
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
        return target

    def read_bytes(self, key: str, suffix: str) -> bytes | None:
        """The item's bytes, or ``None`` when it is missing or cannot be read."""
        try:
            return self.path(key, suffix).read_bytes()
        except OSError:
            return None

    def save_array(self, key: str, array: np.ndarray) -> Path:
        """Store an array (``.npy``, no pickles) atomically."""
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        return self.write_bytes(key, ".npy", buffer.getvalue())

    def load_array(self, key: str) -> np.ndarray | None:
        """The stored array, or ``None`` when missing or unreadable (it is then computed again)."""
        data = self.read_bytes(key, ".npy")
        if data is None:
            return None
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None

    def save_json(self, key: str, value: Any) -> Path:
        """Store a JSON-able value atomically."""
        return self.write_bytes(key, ".json", json.dumps(value, sort_keys=True).encode())

    def load_json(self, key: str) -> Any | None:
        """The stored value, or ``None`` when missing or unreadable."""
        data = self.read_bytes(key, ".json")
        if data is None:
            return None
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
