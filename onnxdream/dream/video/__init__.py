"""Video Deep Dream: decode, optical flow, temporally coherent dreams, checkpoints, encode.

``dream clip.mp4 out.mp4`` streams frames one at a time: decode (:mod:`.decode`), estimate flow
between consecutive input frames and mask where it cannot be trusted (:mod:`.flow`), start each
dream from the previous output warped along the flow (:mod:`.coherence`), checkpoint the dreamed
frame losslessly (:mod:`.checkpoint`) and encode it (:mod:`.encode`); :mod:`.run` ties them together.
PyAV and OpenCV come from the optional extra ``onnxdream[video]``.
"""

from __future__ import annotations

import os
from pathlib import Path

from onnxdream.errors import OnnxDreamError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".ogv", ".3gp"}
)
"""Inputs with these suffixes are read as videos, and outputs with them are written as videos."""


def is_video(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` names a video file by its suffix."""
    return path is not None and Path(path).suffix.lower() in VIDEO_SUFFIXES


def require_video_extra() -> None:
    """Import-check PyAV and OpenCV, the ``video`` extra.

    Raises:
        OnnxDreamError: one line saying what to install.
    """
    try:
        import av  # noqa: F401
        import cv2  # noqa: F401
    except ImportError as exc:
        raise OnnxDreamError(
            f"video needs the optional dependencies PyAV and OpenCV ({exc.name} is missing): "
            "pip install 'onnxdream[video]'"
        ) from None
