"""Tiny generated clips for the video tests: a smooth pattern panning right, a tone as audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.dream_helpers import pattern


def panning_frames(count: int, height: int = 48, width: int = 64, speed: int = 2) -> list[np.ndarray]:
    """``count`` RGB uint8 frames of a seeded pattern moving ``speed`` pixels right per frame."""
    wide = (pattern(height, width + speed * count, seed=3) * 255).astype(np.uint8)
    return [
        np.ascontiguousarray(wide[:, speed * (count - i) : speed * (count - i) + width]) for i in range(count)
    ]


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    rate: int = 12,
    audio: bool = True,
    rotation: int | None = None,
    codec: str = "libx264",
    pts: list[int] | None = None,
    blank_packet: int | None = None,
) -> Path:
    """Write ``frames`` (and a 440 Hz AAC tone as long as the video) to ``path``.

    ``blank_packet``: the video packet of that number goes out with its bytes zeroed, which the
    decoder rejects (with ``codec="mjpeg"``, whose every packet is a whole picture).
    """
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height = width, height
        video.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        video.time_base = Fraction(1, rate * 10)
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=16000) if audio else None
        packets: list[av.Packet] = []
        for i, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = pts[i] if pts is not None else i * 10
            frame.time_base = video.time_base
            packets += video.encode(frame)
        packets += video.encode()
        for number, packet in enumerate(packets):
            container.mux(_blanked(packet) if number == blank_packet else packet)
        if sound is not None:
            samples = int(16000 * len(frames) / rate)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    tone[None, start : start + 1024], format="fltp", layout="mono"
                )
                chunk.sample_rate, chunk.pts = 16000, start
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def _blanked(packet: av.Packet) -> av.Packet:
    blank = av.Packet(bytes(packet.size))
    blank.pts, blank.dts, blank.stream, blank.time_base = (
        packet.pts,
        packet.dts,
        packet.stream,
        packet.time_base,
    )
    return blank


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video as RGB uint8."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
