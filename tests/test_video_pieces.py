"""A video dreamed in pieces: the plan, the crossfade, and the frames against the sequential run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

from PIL import Image

from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
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
