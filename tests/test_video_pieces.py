"""A video dreamed in pieces: the plan, the crossfade, the frames against the sequential run, resuming."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

from PIL import Image

from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
from onnxdream.dream.video.checkpoint import checkpoint_folder
from onnxdream.dream.video.flow import FlowEstimator, warping_error
from onnxdream.dream.video.parallel import Pieces, dream_video_parallel
from onnxdream.dream.video.run import VideoSettings, dream_video
from onnxdream.dream.video.segments import Segment, crossfade, plan_segments
from onnxdream.executors import InProcessExecutor
from onnxdream.model import Model
from tests.dream_helpers import tiny_onnx
from tests.video_helpers import panning_frames, read_frames, write_clip

OPTIONS = DreamOptions(octaves=1, steps=3, lr=0.05)


def test_pieces_split_at_cuts_and_every_chunk_frames_within_a_shot():
    assert plan_segments(20, [5], chunk=6, overlap=2) == [
        Segment(0, 5),
        Segment(5, 11),
        Segment(9, 17, 2),
        Segment(15, 20, 2),
    ]
    assert plan_segments(4, [], chunk=6, overlap=2) == [Segment(0, 4)]
    assert plan_segments(0, [], chunk=6, overlap=2) == []
    with pytest.raises(ValueError, match="overlap < chunk"):
        plan_segments(10, [], chunk=3, overlap=3)


def test_crossfade_ramps_from_the_previous_piece_to_the_next():
    old, new = np.zeros((1, 1, 3), np.uint8), np.full((1, 1, 3), 200, np.uint8)
    assert [int(crossfade(old, new, k, 3)[0, 0, 0]) for k in range(3)] == [50, 100, 150]


@pytest.fixture(scope="module")
def dreamer():
    return open_dreamer(Model(tiny_onnx(), "tiny"), "cpu")


def _frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.iterdir())]


def _both(dreamer, clip: Path, tmp_path: Path, pieces: Pieces) -> tuple[list[np.ndarray], list[np.ndarray]]:
    specs = [parse_spec("block2", lambda _n: True)]
    dream_video(dreamer, specs, OPTIONS, clip, tmp_path / "seq", VideoSettings())
    summary = dream_video_parallel(
        dreamer, specs, OPTIONS, clip, tmp_path / "par", VideoSettings(), InProcessExecutor(), None, pieces
    )
    assert summary.frames == len(read_frames(clip))
    return _frames(tmp_path / "seq"), _frames(tmp_path / "par")


def test_pieces_split_at_a_scene_cut_give_the_sequential_frames_bit_for_bit(dreamer, tmp_path):
    first = panning_frames(4)
    second = [np.ascontiguousarray(f[::-1, ::-1, ::-1]) for f in panning_frames(4, speed=3)]
    clip = write_clip(tmp_path / "cut.mp4", first + second, audio=False)
    sequential, pieces = _both(dreamer, clip, tmp_path, Pieces(seconds=100.0, overlap=2))
    assert len(pieces) == 8
    assert all(np.array_equal(a, b) for a, b in zip(sequential, pieces, strict=True))


def test_a_shot_cut_at_keyframes_keeps_the_warping_error_across_joins_within_1_2x(dreamer, tmp_path):
    frames = panning_frames(16, 64, 80)
    clip = write_clip(tmp_path / "pan.mp4", frames, audio=False)
    sequential, pieces = _both(dreamer, clip, tmp_path, Pieces(seconds=8 / 12, overlap=3))  # 8 frames
    inputs = read_frames(clip)
    flow = FlowEstimator()
    joins = range(5, 9)  # frames 5-7 crossfade, 8 is the second piece's first own frame
    errors = {
        name: [warping_error(out[i - 1], out[i], flow.motion(inputs[i - 1], inputs[i])) for i in joins]
        for name, out in (("sequential", sequential), ("pieces", pieces))
    }
    ratio = np.mean(errors["pieces"]) / np.mean(errors["sequential"])
    assert ratio <= 1.2, f"warping error across the join: {ratio:.3f}x the sequential run's"
    assert all(np.array_equal(a, b) for a, b in zip(sequential[:5], pieces[:5], strict=True))
    assert not np.array_equal(sequential[8], pieces[8])  # the second piece really started afresh


def test_the_summary_is_the_sequential_runs_audio_warning_included(dreamer, tmp_path):
    clip = write_clip(tmp_path / "tone.mp4", panning_frames(4))  # with an AAC tone
    specs = [parse_spec("block2", lambda _n: True)]
    sequential = dream_video(dreamer, specs, OPTIONS, clip, tmp_path / "seq.webm", VideoSettings())
    pieces = dream_video_parallel(
        dreamer, specs, OPTIONS, clip, tmp_path / "par.webm", VideoSettings(), InProcessExecutor(), None
    )
    timed = {"output", "seconds", "flow_seconds", "dream_seconds"}
    assert {k: v for k, v in pieces.as_json().items() if k not in timed} == {
        k: v for k, v in sequential.as_json().items() if k not in timed
    }
    assert pieces.warnings == ["1 audio stream(s) left out: .webm cannot hold them"]


class _Counting(InProcessExecutor):
    """Runs pieces here and records each one's first frame; raises ``KeyboardInterrupt`` (as Ctrl-C
    would) instead of handing over a result once ``stop_after`` results have been handed over."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.stop_after = stop_after
        self.ran: list[int] = []

    def map_unordered(self, job, items):
        for item, result in super().map_unordered(job, items):
            self.ran.append(item[1][0].index)
            if self.stop_after is not None and len(self.ran) > self.stop_after:
                raise KeyboardInterrupt
            yield item, result


SPECS = [parse_spec("block2", lambda _n: True)]
THIRDS = Pieces(seconds=4 / 12, overlap=1)  # 12 frames at 12 fps: pieces [0, 4), [3, 8), [7, 12)


@pytest.fixture(scope="module")
def pan(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("pan") / "pan.mp4", panning_frames(12), audio=False)


@pytest.fixture(scope="module")
def whole(dreamer, pan, tmp_path_factory) -> list[np.ndarray]:
    """The frames of an uninterrupted run in thirds."""
    out = tmp_path_factory.mktemp("whole") / "frames"
    executor = _Counting()
    dream_video_parallel(dreamer, SPECS, OPTIONS, pan, out, VideoSettings(), executor, None, THIRDS)
    assert executor.ran == [0, 3, 7]
    return _frames(out)


def _interrupted(dreamer, clip: Path, out: Path, stop_after: int) -> None:
    with pytest.raises(KeyboardInterrupt):
        executor = _Counting(stop_after)
        dream_video_parallel(dreamer, SPECS, OPTIONS, clip, out, VideoSettings(), executor, None, THIRDS)
    assert not out.exists()


def _stored(out: Path) -> tuple[int, int]:
    """How many pieces (reports) and frames are checkpointed for ``out``."""
    folder = checkpoint_folder(out)
    return len(list(folder.rglob("*.json"))), len(list(folder.rglob("*.png")))


def test_an_interrupted_run_resumes_dreaming_only_the_missing_pieces(dreamer, pan, whole, tmp_path):
    out = tmp_path / "frames"
    _interrupted(dreamer, pan, out, stop_after=2)
    assert _stored(out) == (2, 4 + 5)  # the two finished pieces, every frame of each
    rerun = _Counting()
    summary = dream_video_parallel(dreamer, SPECS, OPTIONS, pan, out, VideoSettings(), rerun, None, THIRDS)
    assert rerun.ran == [7]
    assert (summary.frames, summary.resumed, summary.dreamed) == (12, 8, 4)
    assert all(np.array_equal(a, b) for a, b in zip(_frames(out), whole, strict=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # checkpoints removed, no temp files


class _Bars:
    """Stands in for FrameProgress: records each bar's label, total and the seconds it was given."""

    def __init__(self) -> None:
        self.bars: list[tuple[str, int | None, list[float]]] = []

    def __call__(self, enabled: bool, total: int | None, label: str = "frame"):
        assert enabled
        ticks: list[float] = []
        self.bars.append((label, total, ticks))
        return contextlib.nullcontext(ticks.append)


def test_progress_counts_the_scan_then_every_frame_resumed_or_dreamed(dreamer, pan, tmp_path, monkeypatch):
    import onnxdream.dream.video.parallel as parallel

    out = tmp_path / "frames"
    _interrupted(dreamer, pan, out, stop_after=2)
    bars = _Bars()
    monkeypatch.setattr(parallel, "FrameProgress", bars)
    dream_video_parallel(
        dreamer, SPECS, OPTIONS, pan, out, VideoSettings(), _Counting(), None, THIRDS, progress=True
    )
    (scan, scan_total, scan_ticks), (frame, frame_total, frame_ticks) = bars.bars
    assert (scan, scan_total, len(scan_ticks)) == ("scan", 12, 12)
    assert (frame, frame_total, len(frame_ticks)) == ("frame", 12, 12)
    assert frame_ticks[:8] == [0.0] * 8, "the resumed pieces' frames count at once"
    assert all(t > 0 for t in frame_ticks[8:]), "the dreamed piece's frames share its wall time"


@pytest.mark.parametrize(
    ("options", "pieces", "ran"),
    [
        pytest.param(replace(OPTIONS, steps=2), THIRDS, [0, 3, 7], id="steps"),
        pytest.param(OPTIONS, Pieces(seconds=4 / 12, overlap=2), [0, 2, 6], id="piece-overlap"),
    ],
)
def test_pieces_of_other_settings_are_not_reused(dreamer, pan, tmp_path, options, pieces, ran):
    out = tmp_path / "frames"
    _interrupted(dreamer, pan, out, stop_after=2)  # piece [0, 4) is stored, as the changed runs have it
    rerun = _Counting()
    summary = dream_video_parallel(dreamer, SPECS, options, pan, out, VideoSettings(), rerun, None, pieces)
    assert rerun.ran == ran and summary.resumed == 0
    assert not checkpoint_folder(out).exists()


def _truncate_a_frame(folder: Path) -> None:
    frame = sorted(folder.rglob("*.png"))[0]
    frame.write_bytes(frame.read_bytes()[:100])


def _garble_a_report(folder: Path) -> None:
    sorted(folder.rglob("*.json"))[0].write_text('[{"index": 0}]')


def _shorten_a_report(folder: Path) -> None:
    report = sorted(folder.rglob("*.json"))[0]
    report.write_text(json.dumps(json.loads(report.read_text())[:-1]))


@pytest.mark.parametrize(
    "damage",
    [_truncate_a_frame, _garble_a_report, _shorten_a_report],
    ids=["truncated-frame", "garbled-report", "short-report"],
)
def test_a_damaged_stored_piece_is_dreamed_again(dreamer, pan, whole, tmp_path, damage):
    out = tmp_path / "frames"
    _interrupted(dreamer, pan, out, stop_after=2)
    damage(checkpoint_folder(out))
    rerun = _Counting()
    summary = dream_video_parallel(dreamer, SPECS, OPTIONS, pan, out, VideoSettings(), rerun, None, THIRDS)
    assert len(rerun.ran) == 2 and rerun.ran[-1] == 7  # the damaged piece and the missing one
    assert summary.resumed == 4  # the other stored piece's own frames: [0, 4) or [4, 8)
    assert all(np.array_equal(a, b) for a, b in zip(_frames(out), whole, strict=True))


def test_packets_skipped_while_decoding_are_reported_as_the_sequential_run_does(dreamer, tmp_path):
    clip = write_clip(
        tmp_path / "damaged.mkv", panning_frames(12), audio=False, codec="mjpeg", blank_packet=5
    )
    sequential = dream_video(dreamer, SPECS, OPTIONS, clip, tmp_path / "seq", VideoSettings())
    pieces = dream_video_parallel(
        dreamer, SPECS, OPTIONS, clip, tmp_path / "par", VideoSettings(), InProcessExecutor(), None, THIRDS
    )
    assert (sequential.skipped_packets, sequential.frames, pieces.frames) == (1, 11, 11)
    assert (pieces.skipped_packets, pieces.warnings) == (sequential.skipped_packets, sequential.warnings)
