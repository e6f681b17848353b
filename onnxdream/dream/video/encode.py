"""Write dreamed frames: a video (H.264/yuv420p by default, audio copied from the input without
re-encoding, time stamps, size and rotation kept) or a folder of numbered PNG frames.

Both sinks write into temp files through :func:`onnxdream.io.staged`: the output appears only
when every frame is written, and a failure or interrupt leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from onnxdream.dream.video.decode import VideoInfo
from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.io import Staging

CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".mpg": "mpeg",
    ".mpeg": "mpeg",
    ".ts": "mpegts",
    ".flv": "flv",
    ".wmv": "asf",
    ".ogv": "ogg",
    ".3gp": "3gp",
}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def default_codec(out: Path) -> str:
    """H.264 (libx264, plays everywhere) where the container takes it; VP9 for WebM, Theora for Ogg."""
    import av

    suffix = out.suffix.lower()
    preferred = {".webm": ["libvpx-vp9", "libvpx"], ".ogv": ["libtheora"]}.get(suffix, ["libx264", "h264"])
    for codec in [*preferred, "mpeg4"]:
        if codec in av.codecs_available:
            return codec
    raise OnnxDreamError(f"{out}: this ffmpeg build has no encoder for {suffix} files")


class VideoSink:
    """Encodes frames into ``out`` (staged), copying the input's audio streams packet by packet.

    Audio packets are interleaved with the video as frames arrive (memory stays bounded) and
    trimmed to the selected time range; their time stamps shift with the video's.
    """

    def __init__(
        self,
        out: Path,
        info: VideoInfo,
        staging: Staging,
        source: Path | None,
        *,
        crf: int = 18,
        preset: str = "medium",
    ) -> None:
        import av

        if not 0 <= crf <= 51:
            raise OptionError(f"{{crf}} must be between 0 and 51, got {crf}", "crf")
        if preset not in PRESETS:
            raise OptionError(f"unknown {{preset}} {preset!r}; choose one of {', '.join(PRESETS)}", "preset")
        self.out, self.info = out, info
        self.codec = default_codec(out)
        self.container = av.open(str(staging.path(out)), "w", format=CONTAINERS[out.suffix.lower()])
        self.stream = self.container.add_stream(self.codec, rate=info.rate)
        self.stream.width, self.stream.height = info.width, info.height
        even = info.width % 2 == 0 and info.height % 2 == 0
        self.stream.pix_fmt = "yuv420p" if even or self.codec == "mpeg4" else "yuv444p"
        self.stream.time_base = info.time_base
        self.stream.codec_context.time_base = info.time_base
        self.stream.options = _quality(self.codec, crf, preset)
        if info.display_matrix is not None:
            self.stream.set_display_matrix(list(info.display_matrix))
        self.audio = _AudioCopy(source, self.container) if source is not None and info.audio_streams else None
        self.first_pts: int | None = None
        self.last_time = 0.0
        self.frames = 0

    def write(self, pixels: np.ndarray, pts: int, time: float) -> None:
        """Encode one RGB uint8 frame shown at ``pts`` (input stream time base)."""
        import av

        if self.first_pts is None:
            self.first_pts = pts
            if self.audio is not None:
                self.audio.start(time)
        if self.audio is not None:
            self.audio.copy_until(time)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = pts - self.first_pts
        frame.time_base = self.info.time_base
        self._mux(self.stream.encode(frame))
        self.last_time = time
        self.frames += 1

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self.container.mux(packet)

    def close(self, end: float | None) -> None:
        """Flush the encoder, copy the audio up to ``end`` seconds of input time (or all), close."""
        self._mux(self.stream.encode())
        if self.audio is not None:
            self.audio.copy_until(end if end is not None else float("inf"))
            self.audio.close()
        self.container.close()


def _quality(codec: str, crf: int, preset: str) -> dict[str, str]:
    if codec == "libx264":
        # x264's macroblock-tree rate control gives different bytes from run to run (measured on
        # PyAV 18's x264, with one thread or many); without it the same frames always give the
        # same video, so a resumed run's output is identical to an uninterrupted one's.
        return {"crf": str(crf), "preset": preset, "x264-params": "mbtree=0"}
    if codec.startswith("libvpx"):
        return {"crf": str(min(crf + 12, 63)), "b": "0"}
    return {"qscale": str(max(1, min(31, crf // 6)))} if codec == "mpeg4" else {}


class _AudioCopy:
    """The input's audio streams, copied into the output from a second reader of the input."""

    def __init__(self, source: Path, container: Any) -> None:
        import av

        self.reader = av.open(str(source))
        self.streams = {}
        for stream in self.reader.streams.audio:
            if stream.codec_context.name not in container.supported_codecs:
                continue  # e.g. AAC into WebM: left out, and the summary says so
            try:
                self.streams[stream.index] = container.add_stream_from_template(stream)
            except (ValueError, av.FFmpegError):
                continue  # a codec this container cannot hold: left out, and the summary says so
        self.packets: Iterator[Any] = iter(self.reader.demux(*self.reader.streams.audio))
        self.container = container
        self.offset = 0.0
        self.pending: Any = None

    def start(self, time: float) -> None:
        """The output starts at input time ``time``: earlier audio is dropped, later shifted."""
        self.offset = time

    def copy_until(self, time: float) -> None:
        """Copy the audio packets that start before input time ``time``."""
        while True:
            packet = self.pending if self.pending is not None else next(self.packets, None)
            self.pending = None
            if packet is None:
                return
            if packet.pts is None or packet.stream.index not in self.streams:
                continue
            start = float(packet.pts * packet.time_base)
            if start >= time:
                self.pending = packet
                return
            if start < self.offset:
                continue
            shift = round(self.offset / packet.time_base)
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self.streams[packet.stream.index]
            self.container.mux(packet)

    def close(self) -> None:
        self.reader.close()


class FolderSink:
    """Numbered PNG frames (``frame_000001.png``...) in a folder, staged until complete."""

    def __init__(self, out: Path, staging: Staging) -> None:
        if out.exists() and not out.is_dir():
            raise OnnxDreamError(f"{out}: exists and is not a folder")
        self.out, self.staging = out, staging
        self.frames = 0
        self.codec = "png"

    def write(self, pixels: np.ndarray, pts: int, time: float) -> None:
        from PIL import Image

        self.frames += 1
        Image.fromarray(pixels).save(
            self.staging.path(self.out / f"frame_{self.frames:06d}.png"), format="PNG"
        )

    def close(self, end: float | None) -> None:
        """Nothing to flush: the staging commits the frames."""


def is_folder_output(out: str | os.PathLike[str]) -> bool:
    """Whether ``out`` names a folder of frames (an existing folder, a trailing slash, or no suffix)."""
    text = os.fspath(out)
    return text.endswith(("/", os.sep)) or Path(text).is_dir() or Path(text).suffix == ""
