"""Where a video splits into pieces that dream in parallel, and how the pieces join again.

A frame's dream depends on the frames before it back to the last scene cut, so a cut is a free
split: the pieces are exactly the sequential run's. A long cut-free shot is split at keyframes
every ``chunk`` frames; each such piece starts ``overlap`` frames early (dreamed fresh there, as
after a cut), and over those frames the output crossfades from the previous piece to this one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, stop)`` (positions in the selected frames) dreamed as one piece; the first
    ``lead`` of them are also the previous piece's last frames, crossfaded into it."""

    start: int
    stop: int
    lead: int = 0


def plan_segments(count: int, cuts: Sequence[int], chunk: int, overlap: int) -> list[Segment]:
    """Pieces of ``count`` frames: split at every scene cut (a position whose frame starts a new
    scene), and within a shot every ``chunk`` frames with ``overlap`` frames crossfaded.

    Raises:
        ValueError: ``chunk`` below 1, or an ``overlap`` not below ``chunk``.
    """
    if chunk < 1 or not 0 <= overlap < chunk:
        raise ValueError(f"chunk must be >= 1 and 0 <= overlap < chunk, got chunk {chunk}, overlap {overlap}")
    bounds = sorted({0, *(c for c in cuts if 0 < c < count), count}) if count else []
    segments: list[Segment] = []
    for shot_start, shot_stop in itertools.pairwise(bounds):
        segments.append(Segment(shot_start, min(shot_stop, shot_start + chunk)))
        for key in range(shot_start + chunk, shot_stop, chunk):
            segments.append(Segment(key - overlap, min(shot_stop, key + chunk), overlap))
    return segments


def crossfade(previous: np.ndarray, current: np.ndarray, position: int, lead: int) -> np.ndarray:
    """Frame ``position`` (0-based) of a ``lead``-frame crossfade from ``previous`` to ``current`` (uint8)."""
    weight = (position + 1) / (lead + 1)
    mixed = (1.0 - weight) * previous.astype(np.float32) + weight * current.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
