"""Read frames one at a time from a video file (PyAV) or a folder of frame images.

Decoding policy: a packet the decoder rejects (a corrupt or truncated packet mid-stream) is
skipped and counted, and decoding goes on with the next packet; a file ffmpeg cannot open, with no
video stream, or from which no frame decodes at all is refused (exit 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from onnxdream.errors import OnnxDreamError, OptionError

FOLDER_RATE = Fraction(25)
"""Frame rate given to a folder of frames (it has none of its own)."""


@dataclass(frozen=True)
class Bound:
    """A ``--start`` / ``--end`` value: a time in seconds, or a frame index (``120f``)."""

    seconds: float | None = None
    frame: int | None = None

    def reached(self, index: int, time: float) -> bool:
        """Whether the frame ``index`` shown at ``time`` is at or past this bound."""
        if self.frame is not None:
            return index >= self.frame
        return self.seconds is not None and time >= self.seconds - 1e-9


_CLOCK = re.compile(r"^(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?)s?$")


def parse_bound(text: str | None, option: str) -> Bound | None:
    """``12.5`` or ``12.5s`` (seconds), ``1:02.5``, ``0:01:02`` (clock time) or ``120f`` (frame index).

    Raises:
        OptionError: anything else, naming the option.
    """
    if text is None:
        return None
    value = text.strip().lower()
    if value.endswith("f") and value[:-1].isdigit():
        return Bound(frame=int(value[:-1]))
    match = _CLOCK.match(value)
    if match is None:
        raise OptionError(
            f"{{{option}}} must be seconds (12.5), a clock time (1:02.5) or a frame index (120f), "
            f"got {text!r}",
            option,
        )
    hours, minutes, seconds = match.groups()
    if minutes is None and hours is not None:
        hours, minutes = None, hours
    return Bound(seconds=int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds))


@dataclass(frozen=True)
class Selection:
    """Which frames to dream: from ``start`` (included) to ``end`` (excluded), every ``every``-th."""

    start: Bound | None = None
    end: Bound | None = None
    every: int = 1

    def __post_init__(self) -> None:
        if self.every < 1:
            raise OptionError(f"{{every}} must be at least 1, got {self.every}", "every")

    def describe(self) -> dict[str, object]:
        """The selection as JSON (part of the checkpoint key)."""
        return {"start": _bound_json(self.start), "end": _bound_json(self.end), "every": self.every}


def _bound_json(bound: Bound | None) -> object:
    return None if bound is None else {"seconds": bound.seconds, "frame": bound.frame}


@dataclass(frozen=True)
class VideoInfo:
    """What the output keeps of the input: size, timing, rotation, audio."""

    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    frames: int | None
    display_matrix: tuple[int, ...] | None = None
    audio_streams: int = 0


@dataclass
class SourceFrame:
    """One decoded frame: its index in the stream, presentation time stamp and RGB pixels (uint8)."""

    index: int
    pts: int
    time: float
    image: np.ndarray


@dataclass
class DecodeStats:
    """What decoding skipped: packets the decoder rejected."""

    skipped_packets: int = 0
    messages: list[str] = field(default_factory=list)


def _av_error(path: Path, exc: Exception, what: str) -> OnnxDreamError:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return OnnxDreamError(f"{path}: {what} ({reason})")


class VideoSource:
    """A video file opened with PyAV; :meth:`frames` decodes it from the start, one frame at a time.

    Raises (on construction):
        OnnxDreamError: not a file ffmpeg can open, or no video stream.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import av

        self.path = Path(path)
        self.stats = DecodeStats()
        if not self.path.is_file():
            raise OnnxDreamError(f"{self.path}: no such video file")
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise OnnxDreamError(
                        f"{self.path}: no video stream (streams: {_stream_types(container)})"
                    )
                stream = container.streams.video[0]
                self.info = VideoInfo(
                    width=stream.codec_context.width,
                    height=stream.codec_context.height,
                    rate=Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or 25),
                    time_base=Fraction(stream.time_base or Fraction(1, 90000)),
                    frames=stream.frames or None,
                    display_matrix=_display_matrix(container),
                    audio_streams=len(container.streams.audio),
                )
        except av.FFmpegError as exc:
            raise _av_error(self.path, exc, "not a video file ffmpeg can read") from None
        if self.info.width <= 0 or self.info.height <= 0:
            raise OnnxDreamError(f"{self.path}: the video stream has no frame size")

    def frames(self) -> Iterator[SourceFrame]:
        """Every decodable frame in presentation order, as RGB uint8.

        Raises:
            OnnxDreamError: a pixel format that cannot be converted to RGB, or no frame at all.
        """
        import av

        index = 0
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            time_base = stream.time_base or Fraction(1, 90000)
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.FFmpegError as exc:
                    self._skip(packet, exc)
                    continue
                for frame in decoded:
                    pts = frame.pts if frame.pts is not None else index
                    yield SourceFrame(index, pts, float(pts * time_base), self._rgb(frame))
                    index += 1
        if index == 0:
            raise OnnxDreamError(f"{self.path}: the video stream has no frames that decode")

    def _skip(self, packet: object, exc: Exception) -> None:
        self.stats.skipped_packets += 1
        if len(self.stats.messages) < 5:
            self.stats.messages.append(
                f"{self.path}: skipped a packet that does not decode (pts {packet.pts}: {exc})"
            )  # type: ignore[attr-defined]

    def _rgb(self, frame: object) -> np.ndarray:
        import av

        try:
            return frame.to_ndarray(format="rgb24")  # type: ignore[attr-defined]
        except (ValueError, OSError, av.FFmpegError) as exc:
            name = getattr(getattr(frame, "format", None), "name", "?")
            raise OnnxDreamError(
                f"{self.path}: unsupported pixel format {name!r} (cannot be converted to RGB: {exc})"
            ) from None


def _stream_types(container: object) -> str:
    types = [s.type for s in container.streams]  # type: ignore[attr-defined]
    return ", ".join(types) if types else "none"


def _display_matrix(container: object) -> tuple[int, ...] | None:
    """The first frame's display matrix (rotation/flip metadata), as FFmpeg's 9 int32 values."""
    import av

    try:
        for frame in container.decode(video=0):  # type: ignore[attr-defined]
            for side in frame.side_data:
                if side.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
                    values = tuple(int(v) for v in np.frombuffer(bytes(side), dtype="<i4")[:9])
                    return None if values == IDENTITY_MATRIX else values
            return None
    except av.FFmpegError:
        return None
    return None


IDENTITY_MATRIX = (1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)


class FolderSource:
    """A folder of frame images (sorted by name, hidden files left out), at :data:`FOLDER_RATE`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from onnxdream.dream.batch import images_in

        self.path = Path(path)
        self.stats = DecodeStats()
        self.files = images_in(self.path)
        if not self.files:
            raise OnnxDreamError(f"{self.path}: the folder has no frame images")
        first = self._load(self.files[0])
        self.info = VideoInfo(
            width=first.shape[1],
            height=first.shape[0],
            rate=FOLDER_RATE,
            time_base=1 / FOLDER_RATE,
            frames=len(self.files),
        )

    def _load(self, file: Path) -> np.ndarray:
        from onnxdream.inputs.images import load_image

        pixels = load_image(file)
        return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)

    def frames(self) -> Iterator[SourceFrame]:
        """Each image as a frame; every one must have the first one's size.

        Raises:
            OnnxDreamError: an unreadable image or one of another size.
        """
        for index, file in enumerate(self.files):
            image = self._load(file)
            if image.shape != (self.info.height, self.info.width, 3):
                raise OnnxDreamError(
                    f"{file}: frame is {image.shape[1]}x{image.shape[0]}, the first frame is "
                    f"{self.info.width}x{self.info.height}"
                )
            yield SourceFrame(index, index, float(index / FOLDER_RATE), image)


def select(frames: Iterator[SourceFrame], selection: Selection) -> Iterator[SourceFrame]:
    """The frames ``selection`` keeps; stops decoding at ``end``."""
    kept = 0
    for frame in frames:
        if selection.end is not None and selection.end.reached(frame.index, frame.time):
            return
        if selection.start is not None and not selection.start.reached(frame.index, frame.time):
            continue
        if kept % selection.every == 0:
            yield frame
        kept += 1


def open_source(path: str | os.PathLike[str]) -> VideoSource | FolderSource:
    """A folder of frames or a video file."""
    return FolderSource(path) if Path(path).is_dir() else VideoSource(path)
