"""Dream a video: frames streamed one at a time from decoder to encoder, each dream started from
the previous one (see :mod:`.coherence`), every finished frame checkpointed so that a rerun of the
same command resumes.

Output policy: the encoder writes into a temp file while frames are dreamed (nothing is held in
memory but the previous frame); the output appears atomically when the last frame is written. A
resumed run re-encodes from the start, reading finished frames back from the checkpoints (fast)
and dreaming the rest, so its video is identical to an uninterrupted run's. Checkpoints are
deleted once the output is complete.

A frame depends on the frames before it only back to the last scene cut: segments between cuts
are independent, so a :class:`FrameDreamer` per worker (after :meth:`FrameDreamer.reset`) could
dream them in parallel, the driver encoding them in order from the checkpoints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from onnxdream.dream.engine import Dreamer, DreamOptions
from onnxdream.dream.objectives import LayerSpec
from onnxdream.dream.video.checkpoint import FrameCheckpoints, checkpoint_folder, run_key
from onnxdream.dream.video.coherence import Coherence, frame_seed
from onnxdream.dream.video.decode import (
    FolderSource,
    Selection,
    SourceFrame,
    VideoSource,
    open_source,
    select,
)
from onnxdream.dream.video.encode import FolderSink, VideoSink, is_folder_output
from onnxdream.dream.video.flow import FlowEstimator, Motion, warping_error
from onnxdream.dream.video.progress import FrameProgress
from onnxdream.io import Staging, staged
from onnxdream.itemstore import content_key


@dataclass(frozen=True)
class VideoSettings:
    """Video-only settings: coherence between frames, which frames, encoder quality."""

    coherence: Coherence = field(default_factory=Coherence)
    selection: Selection = field(default_factory=Selection)
    crf: int = 18
    preset: str = "medium"


@dataclass
class FrameReport:
    """One output frame: where it came from and what it cost."""

    index: int
    resumed: bool
    scene_cut: bool
    temporal_error: float | None
    flow_seconds: float
    dream_seconds: float
    objective_gain: float | None


@dataclass
class VideoSummary:
    """The ``--json`` summary of a video dream."""

    output: str
    frames: int
    dreamed: int
    resumed: int
    scene_cuts: int
    size: list[int]
    fps: float
    codec: str
    audio_streams: int
    mode: str
    seed: int
    seconds: float
    flow_seconds: float
    dream_seconds: float
    temporal_error: float | None
    objective_gain: float | None
    skipped_packets: int
    warnings: list[str]

    def as_json(self) -> dict[str, object]:
        return asdict(self)


class FrameDreamer:
    """Turns input frames into dreamed frames, each started from the previous output.

    Holds only the previous input and output frame; :meth:`reset` starts a new segment.
    """

    def __init__(
        self,
        dreamer: Dreamer,
        specs: Sequence[LayerSpec],
        options: DreamOptions,
        coherence: Coherence,
        checkpoints: FrameCheckpoints | None = None,
    ) -> None:
        self.dreamer, self.specs, self.options = dreamer, list(specs), options
        self.coherence = coherence
        self.checkpoints = checkpoints
        self.flow = FlowEstimator()
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next frame starts a new segment."""
        self.previous_in: np.ndarray | None = None
        self.previous_out: np.ndarray | None = None

    def __call__(self, frame: SourceFrame) -> tuple[np.ndarray, FrameReport]:
        """The dream of ``frame`` (uint8 RGB) and its report."""
        began = time.perf_counter()
        motion: Motion | None = None
        if self.previous_in is not None:
            motion = self.flow.motion(self.previous_in, frame.image)
        flow_seconds = time.perf_counter() - began
        cut = self.coherence.is_cut(motion)
        out = self.checkpoints.load(frame.index, frame.image.shape) if self.checkpoints else None
        resumed, gain = out is not None, None
        began = time.perf_counter()
        if out is None:
            start = self.coherence.start(frame.image, self.previous_out, motion)
            options = replace(self.options, seed=frame_seed(self.options.seed, frame.index), progress=False)
            picture, result = self.dreamer.run(start, self.specs, options)
            dreamed = np.asarray(picture, dtype=np.uint8)
            out, gain = self.coherence.finish(dreamed, self.previous_out, motion), result.gain
            if self.checkpoints is not None:
                self.checkpoints.save(frame.index, out)
        dream_seconds = time.perf_counter() - began
        error = None
        if motion is not None and not cut and self.previous_out is not None:
            error = warping_error(self.previous_out, out, motion)
        self.previous_in, self.previous_out = frame.image, out
        report = FrameReport(frame.index, resumed, cut, error, flow_seconds, dream_seconds, gain)
        return out, report


def frame_settings(
    dreamer: Dreamer, specs: Sequence[LayerSpec], options: DreamOptions, settings: VideoSettings
) -> dict[str, object]:
    """Everything besides the files read that the dreamed frames depend on (the checkpoint key)."""
    dream = {
        name: value
        for name, value in asdict(options).items()
        if name not in ("guide", "progress", "check", "check_every", "on_mismatch")
    }
    guide = None if options.guide is None else content_key(options.guide)
    return {
        "dream": dream,
        "guide": guide,
        "layers": [str(s) for s in specs],
        "preprocess": repr(dreamer.preprocess),
        "device": str(dreamer.device),
        "coherence": settings.coherence.describe(),
        "selection": settings.selection.describe(),
    }


def source_files(source: VideoSource | FolderSource) -> list[Path]:
    """The files a run reads from ``source`` (part of the checkpoint key)."""
    return list(source.files) if isinstance(source, FolderSource) else [source.path]


def dream_video(
    dreamer: Dreamer,
    specs: Sequence[LayerSpec],
    options: DreamOptions,
    source_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    settings: VideoSettings,
    *,
    model_files: Sequence[Path] = (),
    progress: bool = False,
    on_frame: Callable[[FrameReport], None] | None = None,
) -> VideoSummary:
    """Dream every selected frame of ``source_path`` into ``out`` (a video file or a folder).

    Raises:
        OnnxDreamError: a bad input (not a video, no video stream, no frames, a pixel format that
            cannot be read), bad settings, or an output that cannot be written.
    """
    began = time.perf_counter()
    source = open_source(source_path)
    info = source.info
    out = Path(out)
    dreamer.net.validate([s.layer for s in specs])
    key = run_key([*source_files(source), *model_files], frame_settings(dreamer, specs, options, settings))
    checkpoints = FrameCheckpoints(checkpoint_folder(out), key)
    frame_dreamer = FrameDreamer(dreamer, specs, options, settings.coherence, checkpoints)
    reports: list[FrameReport] = []
    total = expected_frames(info.frames, settings.selection)
    with staged() as staging:
        sink = open_sink(out, source, settings, staging)
        last_time = 0.0
        with FrameProgress(progress, total) as bar:
            frames = select(source.frames(), settings.selection)
            for frame in frames:
                pixels, report = frame_dreamer(frame)
                sink.write(pixels, frame.pts, frame.time)
                last_time = frame.time
                reports.append(report)
                bar(report.dream_seconds + report.flow_seconds)
                if on_frame is not None:
                    on_frame(report)
        end = _end_time(settings.selection, last_time, float(1 / info.rate))
        sink.close(end)
    checkpoints.remove()
    return summarize(out, sink, source, settings, options, reports, time.perf_counter() - began)


def open_sink(
    out: Path, source: VideoSource | FolderSource, settings: VideoSettings, staging: Staging
) -> FolderSink | VideoSink:
    """Where the dreamed frames go: numbered PNGs in the folder ``out``, or the video ``out``
    (encoded as ``settings`` say, with the audio of a video ``source`` copied)."""
    if is_folder_output(out):
        return FolderSink(out, staging)
    audio_from = source.path if isinstance(source, VideoSource) else None
    return VideoSink(out, source.info, staging, audio_from, crf=settings.crf, preset=settings.preset)


def expected_frames(frames: int | None, selection: Selection) -> int | None:
    if frames is None or (selection.start is not None and selection.start.frame is None):
        return None
    first = selection.start.frame if selection.start is not None and selection.start.frame else 0
    last = frames
    if selection.end is not None:
        if selection.end.frame is None:
            return None
        last = min(frames, selection.end.frame)
    return max(0, -(-(last - first) // selection.every))


def _end_time(selection: Selection, last_time: float, frame_seconds: float) -> float | None:
    """Input time where the output ends (audio is copied up to there); ``None``: the input's end."""
    if selection.end is None:
        return None
    if selection.end.seconds is not None:
        return selection.end.seconds
    return last_time + frame_seconds


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarize(
    out: Path,
    sink: FolderSink | VideoSink,
    source: VideoSource | FolderSource,
    settings: VideoSettings,
    options: DreamOptions,
    reports: list[FrameReport],
    seconds: float,
) -> VideoSummary:
    """The summary of a finished run: ``reports`` in frame order, the source's decoding warnings
    and one for the audio streams the output's container could not hold."""
    info = source.info
    warnings = list(source.stats.messages)
    copied = len(sink.audio.streams) if isinstance(sink, VideoSink) and sink.audio is not None else 0
    if isinstance(sink, VideoSink) and copied < info.audio_streams:
        warnings.append(
            f"{info.audio_streams - copied} audio stream(s) left out: {out.suffix} cannot hold them"
        )
    return VideoSummary(
        output=str(out),
        frames=len(reports),
        dreamed=sum(not r.resumed for r in reports),
        resumed=sum(r.resumed for r in reports),
        scene_cuts=sum(r.scene_cut for r in reports[1:]),
        size=[info.width, info.height],
        fps=round(float(info.rate), 6),
        codec=sink.codec,
        audio_streams=copied,
        mode=settings.coherence.mode,
        seed=options.seed,
        seconds=round(seconds, 3),
        flow_seconds=round(sum(r.flow_seconds for r in reports), 3),
        dream_seconds=round(sum(r.dream_seconds for r in reports if not r.resumed), 3),
        temporal_error=_mean(r.temporal_error for r in reports),
        objective_gain=_mean(r.objective_gain for r in reports),
        skipped_packets=source.stats.skipped_packets,
        warnings=warnings,
    )
