"""A video dreamed in pieces on an executor's workers (``dream VIDEO OUT --ray ADDRESS``).

Three passes over the input, each holding only a few frames: (1) the driver finds the scene cuts
with the same optical flow as the sequential run and plans the pieces (:mod:`.segments`); (2)
workers dream the pieces, each a :class:`FrameDreamer` started afresh, and the driver checkpoints
each piece as it arrives (:class:`~.checkpoint.PieceCheckpoints` in ``.OUT.frames/`` beside the
output, keyed by the run's key, the piece's frames and the piece plan); (3) the driver encodes the
frames in order from the checkpoints, crossfading the overlaps, and the output appears atomically
as in a sequential run. Pieces split at scene cuts give exactly the sequential run's frames.

Resumable: a rerun of the same command sends only the pieces not checkpointed yet (or unreadable)
to the executor and writes the same frames as an uninterrupted run; the checkpoints are removed
once the output is complete.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxdream.dream.engine import DreamOptions
from onnxdream.dream.objectives import LayerSpec
from onnxdream.dream.video.checkpoint import PieceCheckpoints, checkpoint_folder, run_key
from onnxdream.dream.video.coherence import Coherence
from onnxdream.dream.video.decode import FolderSource, SourceFrame, VideoSource, open_source, select
from onnxdream.dream.video.flow import FlowEstimator
from onnxdream.dream.video.progress import FrameProgress
from onnxdream.dream.video.run import (
    FrameDreamer,
    FrameReport,
    VideoSettings,
    VideoSummary,
    expected_frames,
    frame_settings,
    open_sink,
    source_files,
    summarize,
)
from onnxdream.dream.video.segments import Segment, crossfade, plan_segments
from onnxdream.errors import OnnxDreamError
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


@dataclass
class _Scan:
    """What pass 1 learnt: scene cuts, every selected frame's (pts, time), the frame shape."""

    cuts: list[int]
    stamps: list[tuple[int, float]]
    shape: tuple[int, ...]


def _scan(source: VideoSource | FolderSource, settings: VideoSettings, progress: bool) -> _Scan:
    """Pass 1: decode the selected frames once (``source.stats`` counts what decoding skipped)."""
    flow = FlowEstimator()
    scan = _Scan([], [], ())
    previous: np.ndarray | None = None
    total = expected_frames(source.info.frames, settings.selection)
    with FrameProgress(progress, total, "scan") as bar:
        for position, frame in enumerate(select(source.frames(), settings.selection)):
            began = time.perf_counter()
            motion = flow.motion(previous, frame.image) if previous is not None else None
            if position > 0 and settings.coherence.is_cut(motion):
                scan.cuts.append(position)
            scan.stamps.append((frame.pts, frame.time))
            scan.shape = frame.image.shape
            previous = frame.image
            bar(time.perf_counter() - began)
    return scan


def _pieces(
    source_path: str | os.PathLike[str], settings: VideoSettings, segments: list[Segment], todo: set[int]
) -> Iterator[tuple[int, list[SourceFrame]]]:
    """Pass 2: the frames of each segment in ``todo``, read as the decoder reaches them (overlaps
    read once); decoding stops after the last one."""
    if not todo:
        return
    frames = select(open_source(source_path).frames(), settings.selection)
    buffer: list[SourceFrame] = []
    first = 0  # position of buffer[0]
    for number, segment in enumerate(segments[: max(todo) + 1]):
        while first + len(buffer) < segment.stop:
            buffer.append(next(frames))
        if number in todo:
            yield number, buffer[segment.start - first : segment.stop - first]
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
    *,
    model_files: Sequence[Path] = (),
    progress: bool = False,
) -> VideoSummary:
    """Dream ``source_path`` into ``out`` as :func:`~onnxdream.dream.video.run.dream_video` does, in
    pieces on ``executor`` (split at scene cuts, and every ``pieces.seconds`` within a shot),
    reusing the pieces an interrupted run of the same command checkpointed. ``progress``: a bar
    with ETA on stderr over the scan, then over the frames as their pieces come back.

    Raises:
        OnnxDreamError: as :func:`~onnxdream.dream.video.run.dream_video`.
    """
    began = time.perf_counter()
    out = Path(out)
    dreamer.net.validate([s.layer for s in specs])
    source = open_source(source_path)
    info = source.info
    key = run_key([*source_files(source), *model_files], frame_settings(dreamer, specs, options, settings))
    scan = _scan(source, settings, progress)
    chunk = max(pieces.overlap + 1, round(pieces.seconds * float(info.rate) / settings.selection.every))
    segments = plan_segments(len(scan.stamps), scan.cuts, chunk, pieces.overlap)
    # A piece's frames depend only on its bounds; the plan is in the key too, so that pieces of a
    # run with other --piece-seconds / --piece-overlap are never mixed into this one.
    names = [
        {"chunk": chunk, "overlap": pieces.overlap, "piece": [s.start, s.stop, s.lead]} for s in segments
    ]
    store = PieceCheckpoints(checkpoint_folder(out), key)
    reports: dict[int, FrameReport] = {}
    todo: set[int] = set()
    for number, segment in enumerate(segments):
        stored = _stored_reports(store, names[number], segment, scan.shape)
        if stored is None:
            todo.add(number)
        else:
            _keep(reports, segment, stored)
    with FrameProgress(progress, len(scan.stamps)) as bar:
        for _ in reports:
            bar(0.0)
        if todo:
            job = SegmentJob(
                recipe, specs, options, settings.coherence, None if recipe is not None else dreamer
            )
            results = executor.map_unordered(job, _pieces(source_path, settings, segments, todo))
            last = time.perf_counter()
            try:
                for _item, (number, dreamed) in results:
                    frames = [pixels for pixels, _report in dreamed]
                    store.save(names[number], frames, [asdict(report) for _pixels, report in dreamed])
                    new = _keep(reports, segments[number], [report for _pixels, report in dreamed])
                    now = time.perf_counter()
                    for _ in range(new):  # the wall time since the last piece, over its frames
                        bar((now - last) / new)
                    last = now
            finally:
                results.close()
    with staged() as staging:
        sink = open_sink(out, source, settings, staging)
        _encode(sink, store, names, segments, scan)
        end = None if settings.selection.end is None else _end(settings, scan.stamps, float(1 / info.rate))
        sink.close(end)
    store.remove()
    ordered = [reports[p] for p in sorted(reports)]
    return summarize(out, sink, source, settings, options, ordered, time.perf_counter() - began)


def _stored_reports(
    store: PieceCheckpoints, name: object, segment: Segment, shape: tuple[int, ...]
) -> list[FrameReport] | None:
    """The reports of a checkpointed piece (marked resumed), or ``None`` when it must be dreamed."""
    saved = store.reports(name, shape)
    if saved is None or len(saved) != segment.stop - segment.start:
        return None
    try:
        return [FrameReport(**{**report, "resumed": True}) for report in saved]
    except TypeError:  # not a report: a hand-edited or foreign file
        return None


def _keep(reports: dict[int, FrameReport], segment: Segment, piece: list[FrameReport]) -> int:
    """File a piece's reports by position (its lead frames are reported by the previous piece);
    returns how many it filed."""
    for offset, report in enumerate(piece[segment.lead :], start=segment.lead):
        reports[segment.start + offset] = report
    return len(piece) - segment.lead


def _encode(
    sink: Any, store: PieceCheckpoints, names: list[object], segments: list[Segment], scan: _Scan
) -> None:
    """Pass 3: every frame in order, overlaps crossfaded from the previous piece to the next."""

    def load(number: int, offset: int) -> np.ndarray:
        pixels = store.frame(names[number], offset, scan.shape)
        if pixels is None:
            raise OnnxDreamError(
                f"{store.folder}: a checkpointed frame went missing during the run; run it again"
            )
        return pixels

    for number, segment in enumerate(segments):
        next_lead = segments[number + 1].lead if number + 1 < len(segments) else 0
        tail = segment.stop - segment.start - next_lead
        for offset in range(segment.lead, segment.stop - segment.start):
            pixels = load(number, offset)
            if offset >= tail:  # this frame is also the next piece's head: crossfade into it
                pixels = crossfade(pixels, load(number + 1, offset - tail), offset - tail, next_lead)
            sink.write(pixels, *scan.stamps[segment.start + offset])


def _end(settings: VideoSettings, stamps: list[tuple[int, float]], frame_seconds: float) -> float | None:
    assert settings.selection.end is not None
    if settings.selection.end.seconds is not None:
        return settings.selection.end.seconds
    return (stamps[-1][1] if stamps else 0.0) + frame_seconds
