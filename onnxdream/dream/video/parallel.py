"""A video dreamed in pieces on an executor's workers (``dream VIDEO OUT --ray ADDRESS``).

Three passes over the input, each holding only a few frames: (1) the driver finds the scene cuts
with the same optical flow as the sequential run and plans the pieces (:mod:`.segments`); (2)
workers dream the pieces, each a :class:`FrameDreamer` started afresh, and the driver keeps every
finished frame on disk (a temp folder next to the output); (3) the driver encodes the frames in
order, crossfading the overlaps, and the output appears atomically as in a sequential run. Pieces
split at scene cuts give exactly the sequential run's frames; a run is not resumable yet.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxdream.dream.engine import DreamOptions
from onnxdream.dream.objectives import LayerSpec
from onnxdream.dream.video.coherence import Coherence
from onnxdream.dream.video.decode import SourceFrame, open_source, select
from onnxdream.dream.video.flow import FlowEstimator
from onnxdream.dream.video.run import (
    FrameDreamer,
    FrameReport,
    VideoSettings,
    VideoSummary,
    open_sink,
    summarize,
)
from onnxdream.dream.video.segments import Segment, crossfade, plan_segments
from onnxdream.io import staged

if TYPE_CHECKING:
    from onnxdream.dream.engine import Dreamer
    from onnxdream.dream.folder_job import DreamerRecipe
    from onnxdream.executors import Executor


@dataclass(frozen=True)
class Pieces:
    """How to cut a shot without scene cuts: a keyframe every ``seconds``, ``overlap`` frames crossfaded."""

    seconds: float = 4.0
    overlap: int = 6


class SegmentJob:
    """Dream one piece per item: ``(segment number, frames)`` -> ``(segment number, [(frame, report)])``."""

    def __init__(
        self,
        recipe: DreamerRecipe | None,
        specs: Sequence[LayerSpec],
        options: DreamOptions,
        coherence: Coherence,
        dreamer: Dreamer | None = None,
    ) -> None:
        self.recipe, self.specs, self.coherence = recipe, list(specs), coherence
        self.options = replace(options, progress=False)
        self._dreamer = dreamer
        self._frames: FrameDreamer | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dreamer": None, "_frames": None}

    def setup(self) -> None:
        if self._dreamer is None:
            assert self.recipe is not None
            self._dreamer = self.recipe.open()
        self._frames = FrameDreamer(self._dreamer, self.specs, self.options, self.coherence)

    def run(self, item: tuple[int, list[SourceFrame]]) -> tuple[int, list[tuple[np.ndarray, FrameReport]]]:
        number, frames = item
        assert self._frames is not None, "setup() first"
        self._frames.reset()
        return number, [self._frames(frame) for frame in frames]


def _scan(
    source_path: str | os.PathLike[str], settings: VideoSettings
) -> tuple[list[int], list[tuple[int, float]]]:
    """Pass 1: the positions of scene cuts and every selected frame's (pts, time)."""
    flow = FlowEstimator()
    cuts: list[int] = []
    stamps: list[tuple[int, float]] = []
    previous: np.ndarray | None = None
    for position, frame in enumerate(select(open_source(source_path).frames(), settings.selection)):
        motion = flow.motion(previous, frame.image) if previous is not None else None
        if position > 0 and settings.coherence.is_cut(motion):
            cuts.append(position)
        stamps.append((frame.pts, frame.time))
        previous = frame.image
    return cuts, stamps


def _pieces(
    source_path: str | os.PathLike[str], settings: VideoSettings, segments: list[Segment]
) -> Iterator[tuple[int, list[SourceFrame]]]:
    """Pass 2: each segment's frames, read as the decoder reaches them (overlaps read once)."""
    frames = select(open_source(source_path).frames(), settings.selection)
    buffer: list[SourceFrame] = []
    first = 0  # position of buffer[0]
    for number, segment in enumerate(segments):
        while first + len(buffer) < segment.stop:
            buffer.append(next(frames))
        piece = buffer[segment.start - first : segment.stop - first]
        yield number, piece
        keep = segments[number + 1].start if number + 1 < len(segments) else segment.stop
        buffer = buffer[keep - first :]
        first = keep


def dream_video_parallel(
    dreamer: Dreamer,
    specs: Sequence[LayerSpec],
    options: DreamOptions,
    source_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: VideoSettings,
    executor: Executor,
    recipe: DreamerRecipe | None,
    pieces: Pieces = Pieces(),
) -> VideoSummary:
    """Dream ``source_path`` into ``out`` as :func:`~onnxdream.dream.video.run.dream_video` does, in
    pieces on ``executor`` (split at scene cuts, and every ``pieces.seconds`` within a shot).

    Raises:
        OnnxDreamError: as :func:`~onnxdream.dream.video.run.dream_video`.
    """
    began = time.perf_counter()
    out = Path(out)
    dreamer.net.validate([s.layer for s in specs])
    source = open_source(source_path)
    info = source.info
    cuts, stamps = _scan(source_path, settings)
    chunk = max(pieces.overlap + 1, round(pieces.seconds * float(info.rate) / settings.selection.every))
    segments = plan_segments(len(stamps), cuts, chunk, pieces.overlap)
    job = SegmentJob(recipe, specs, options, settings.coherence, None if recipe is not None else dreamer)
    reports: dict[int, FrameReport] = {}
    with tempfile.TemporaryDirectory(prefix=".onnxdream-pieces-", dir=out.parent) as scratch:
        results = executor.map_unordered(job, _pieces(source_path, settings, segments))
        try:
            for _item, (number, dreamed) in results:
                for offset, (pixels, report) in enumerate(dreamed):
                    np.save(Path(scratch) / f"{number}_{offset}.npy", pixels)
                    if offset >= segments[number].lead:
                        reports[segments[number].start + offset] = report
        finally:
            results.close()
        with staged() as staging:
            sink = open_sink(out, source, settings, staging)
            _encode(sink, Path(scratch), segments, stamps)
            end = None if settings.selection.end is None else _end(settings, stamps, float(1 / info.rate))
            sink.close(end)
    ordered = [reports[p] for p in sorted(reports)]
    return summarize(out, sink, source, settings, options, ordered, time.perf_counter() - began)


def _encode(sink: Any, scratch: Path, segments: list[Segment], stamps: list[tuple[int, float]]) -> None:
    """Pass 3: every frame in order, overlaps crossfaded from the previous piece to the next."""
    for number, segment in enumerate(segments):
        next_lead = segments[number + 1].lead if number + 1 < len(segments) else 0
        for offset in range(segment.lead, segment.stop - segment.start):
            position = segment.start + offset
            pixels = np.load(scratch / f"{number}_{offset}.npy")
            tail = segment.stop - segment.start - next_lead
            if offset >= tail:  # this frame is also the next piece's head: crossfade into it
                head = np.load(scratch / f"{number + 1}_{offset - tail}.npy")
                pixels = crossfade(pixels, head, offset - tail, next_lead)
            sink.write(pixels, *stamps[position])


def _end(settings: VideoSettings, stamps: list[tuple[int, float]], frame_seconds: float) -> float | None:
    assert settings.selection.end is not None
    if settings.selection.end.seconds is not None:
        return settings.selection.end.seconds
    return (stamps[-1][1] if stamps else 0.0) + frame_seconds
