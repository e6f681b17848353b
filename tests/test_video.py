"""``onnxdream dream clip.mp4 out.mp4``: decode, dream with temporal coherence, encode, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from onnxdream.cli import app  # noqa: E402
from onnxdream.dream.video.checkpoint import checkpoint_folder  # noqa: E402
from tests.video_helpers import panning_frames, read_frames, write_clip  # noqa: E402

runner = CliRunner()
FAST = ["--layer", "block2", "--octaves", "1", "--steps", "3", "--lr", "0.05", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """10 frames of 64x48 at 12 fps, panning 2 px per frame, an AAC tone, rotated 90 degrees."""
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", panning_frames(10), rotation=90)


def _dream(*args: str):
    return runner.invoke(app, ["dream", *args])


def _streams(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = list(container.decode(video=0))
        audio = container.streams.audio
        return {
            "frames": len(frames),
            "fps": float(video.average_rate),
            "size": (video.codec_context.width, video.codec_context.height),
            "rotation": frames[0].rotation,
            "pts": [f.pts for f in frames],
            "audio": [(a.codec_context.name, a.sample_rate) for a in audio],
            "audio_seconds": _audio_seconds(path),
            "pix_fmt": video.codec_context.pix_fmt,
            "codec": video.codec_context.name,
        }


def _audio_seconds(path: Path) -> float:
    """Span of the first audio stream's packets, from 0 to the end of the last one."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0.0
        packets = [p for p in container.demux(audio=0) if p.pts is not None]
        return max(float((p.pts + p.duration) * p.time_base) for p in packets)


def test_clip_dreams_end_to_end_keeping_fps_size_rotation_and_audio(tiny, clip, tmp_path):
    out = tmp_path / "out.mp4"
    result = _dream(str(clip), str(out), "--model", str(tiny), *FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] == 10 and summary["dreamed"] == 10 and summary["resumed"] == 0
    assert summary["size"] == [64, 48] and summary["fps"] == 12.0 and summary["audio_streams"] == 1
    assert summary["mode"] == "flow" and summary["scene_cuts"] == 0
    assert 0 < summary["temporal_error"] < 0.2 and summary["objective_gain"] > 1.0
    got, source = _streams(out), _streams(clip)
    assert got["frames"] == 10 and got["fps"] == 12.0 and got["size"] == (64, 48)
    assert got["rotation"] == 90 and got["codec"] == "h264" and got["pix_fmt"] == "yuv420p"
    assert got["pts"] == source["pts"]
    assert got["audio"] == [("aac", 16000)]
    assert got["audio_seconds"] == pytest.approx(source["audio_seconds"], abs=0.07)
    dreamed, original = read_frames(out), read_frames(clip)
    assert np.abs(dreamed[5].astype(int) - original[5]).mean() > 3  # the frames were dreamed
    assert not checkpoint_folder(out).exists()  # checkpoints removed once the output is complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_start_end_every_trim_video_and_audio(tiny, clip, tmp_path):
    out = tmp_path / "part.mkv"
    result = _dream(
        str(clip), str(out), "--model", str(tiny), *FAST, "--start", "2f", "--end", "0.75", "--every", "2"
    )
    assert result.exit_code == 0, result.output
    got = _streams(out)
    # frames 2..8 (0.75 s at 12 fps is frame 9), every second one: 2, 4, 6, 8, time stamps from 0
    assert got["frames"] == 4 and got["size"] == (64, 48)
    seconds = [p / 1000 for p in got["pts"]]  # Matroska counts milliseconds
    assert seconds[0] == 0 and np.diff(seconds) == pytest.approx([2 / 12] * 3, abs=0.002)
    assert got["audio"] == [("aac", 16000)]
    assert got["audio_seconds"] == pytest.approx(0.75 - 2 / 12, abs=0.07)  # trimmed to the frames' times


def test_folder_of_frames_to_video_and_video_to_folder(tiny, clip, tmp_path):
    frames_dir = tmp_path / "frames"
    result = _dream(str(clip), str(frames_dir) + "/", "--model", str(tiny), *FAST, "--end", "4f", "--no-flow")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in frames_dir.iterdir()) == [f"frame_{i:06d}.png" for i in range(1, 5)]
    out = tmp_path / "again.mp4"
    result = _dream(str(frames_dir), str(out), "--model", str(tiny), *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fps"] == 25.0
    got = _streams(out)
    assert got["frames"] == 4 and got["audio"] == []


def _frames_run(tiny: Path, clip: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "onnxdream", "dream", str(clip), str(out), "--model", str(tiny), *FAST]


@pytest.mark.slow
def test_killed_run_resumes_to_bit_identical_frames(tiny, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", panning_frames(12))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # torch's CPU results depend on the thread count
    whole = tmp_path / "whole.mp4"
    subprocess.run(_frames_run(tiny, clip, whole), env=env, check=True, capture_output=True)

    out = tmp_path / "out" / "resumed.mp4"
    out.parent.mkdir()
    store = checkpoint_folder(out)
    process = subprocess.Popen(_frames_run(tiny, clip, out), env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(store.rglob("*.png"))) >= 4:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list(store.rglob("*.png")))
    assert 4 <= finished < 12 and not out.exists()

    rerun = subprocess.run([*_frames_run(tiny, clip, out), "--json"], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["resumed"] == finished and summary["dreamed"] == 12 - finished
    resumed, uninterrupted = read_frames(out), read_frames(whole)
    assert len(resumed) == len(uninterrupted) == 12
    for a, b in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_array_equal(a, b)
    assert out.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["resumed.mp4"]  # no temp files, no checkpoints


def _mux_silence(container) -> None:
    """An AAC stream of 1024 silent mono samples at 16 kHz, written to ``container``."""
    sound = container.add_stream("aac", rate=16000)
    chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    chunk.sample_rate, chunk.pts = 16000, 0
    for packet in [*sound.encode(chunk), *sound.encode()]:
        container.mux(packet)


def _zero_frames(path: Path) -> Path:
    """A Matroska file whose video stream has no frames (only audio packets)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        _mux_silence(container)
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        _mux_silence(container)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda d: (d / "junk.mp4").write_bytes(b"not a video") and d / "junk.mp4",
                     r"junk\.mp4: not a video file ffmpeg can read", id="not-a-video"),
        pytest.param(lambda d: _audio_only(d / "sound.mp4"), r"sound\.mp4: no video stream \(streams: audio\)",
                     id="no-video-stream"),
        pytest.param(lambda d: _zero_frames(d / "empty.mkv"), r"empty\.mkv: the video stream has no frames",
                     id="zero-frames"),
        pytest.param(lambda d: d / "missing.mp4", r"missing\.mp4: no such video file", id="missing"),
    ],
)  # fmt: skip
def test_bad_inputs_exit_2_with_one_line(tiny, tmp_path, make, message):
    source = make(tmp_path)
    out = tmp_path / "out.mp4"
    result = _dream(str(source), str(out), "--model", str(tiny), *FAST)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert pytest.importorskip("re").search(message, result.output)
    assert not out.exists() and not checkpoint_folder(out).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flow-blend", "1.5"], "--flow-blend must be between 0 and 1, got 1.5"),
        (["--every", "0"], "--every must be at least 1, got 0"),
        (
            ["--start", "soon"],
            "--start must be seconds (12.5), a clock time (1:02.5) or a frame index (120f)",
        ),
        (["--preset", "quick"], "unknown --preset 'quick'"),
        (["--blend", "0.5", "--no-flow"], "--blend and --no-flow cannot be combined"),
        (["--max-size", "32"], "do not apply to videos"),
    ],
    ids=["flow-blend", "every", "start", "preset", "blend-no-flow", "max-size"],
)
def test_bad_video_options_exit_2(tiny, clip, tmp_path, args, message):
    out = tmp_path / "out.mp4"
    result = _dream(str(clip), str(out), "--model", str(tiny), *FAST, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_writing_over_the_input_or_to_an_unknown_suffix_is_refused(tiny, clip, tmp_path):
    before = clip.read_bytes()
    result = _dream(str(clip), str(clip), "--model", str(tiny), *FAST)
    assert result.exit_code == 2 and "refusing to write over the input" in result.output
    assert clip.read_bytes() == before
    result = _dream(str(clip), str(tmp_path / "out.xyz"), "--model", str(tiny), *FAST)
    assert result.exit_code == 2 and "a video output must end in one of" in result.output


def test_corrupt_packets_mid_stream_are_skipped_cleanly(tiny, tmp_path):
    clip = write_clip(tmp_path / "clip.ts", panning_frames(12), audio=False)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    clip.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    result = _dream(str(clip), str(out), "--model", str(tiny), *FAST, "--json")
    assert result.exit_code == 0, result.output
    frames = json.loads(result.stdout)["frames"]
    assert 1 <= frames < 12 and _streams(out)["frames"] == frames


def test_audio_a_container_cannot_hold_is_left_out_with_a_warning(tiny, clip, tmp_path):
    out = tmp_path / "out.webm"
    result = _dream(str(clip), str(out), "--model", str(tiny), *FAST, "--end", "3f", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["audio_streams"] == 0 and summary["codec"] == "libvpx-vp9"
    assert summary["warnings"] == ["1 audio stream(s) left out: .webm cannot hold them"]
    got = _streams(out)
    assert got["frames"] == 3 and got["audio"] == [] and got["codec"] == "vp9"


def test_variable_frame_rate_keeps_every_time_stamp(tiny, tmp_path):
    pts = [0, 10, 30, 35, 60, 100]  # in 1/120 s: gaps of 1, 2, 0.5, 2.5 and 4 frames at 12 fps
    clip = write_clip(tmp_path / "vfr.mkv", panning_frames(6), pts=pts, audio=False)
    out = tmp_path / "out.mp4"
    result = _dream(str(clip), str(out), "--model", str(tiny), *FAST)
    assert result.exit_code == 0, result.output
    times = {}
    for path in (clip, out):
        with av.open(str(path)) as container:
            times[path] = [float(f.time) for f in container.decode(video=0)]
    assert len(set(np.diff(times[clip]).round(3))) >= 3  # the input's rate does vary
    assert times[out] == pytest.approx(times[clip], abs=1e-3)


def test_a_scene_cut_is_detected_and_dreamed_fresh(tiny, tmp_path):
    first = panning_frames(4)
    second = [np.ascontiguousarray(f[::-1, ::-1, ::-1]) for f in panning_frames(4, speed=3)]
    clip = write_clip(tmp_path / "cut.mp4", first + second, audio=False)
    result = _dream(str(clip), str(tmp_path / "out.mp4"), "--model", str(tiny), *FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] == 8 and summary["scene_cuts"] == 1
