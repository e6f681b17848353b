"""Dense optical flow between consecutive input frames, the pixels where it can be trusted, warping.

Flow is OpenCV's DIS (dense inverse search) on grey frames, shrunk so the longer side is at most
:data:`FLOW_SIDE` pixels (flow is smooth; this bounds its cost on 1080p and 4K frames). A pixel of
frame t is *reliable* when the backward flow (t -> t-1) and the forward flow (t-1 -> t) agree, it
is not on a motion boundary (the consistency tests of Sundaram et al. 2010 as used by Ruder et al.
2016 for style transfer on videos), it lands inside frame t-1, and the input pixels it links look
alike. Everything else is occluded or disoccluded: there the dream starts from the new frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FLOW_SIDE = 640
"""Flow is estimated at this longer side at most, then scaled up."""

PHOTO_TOLERANCE = 0.12
"""A linked pair of input pixels whose mean |RGB difference| (in [0, 1]) exceeds this is unreliable."""


@dataclass
class Motion:
    """How frame t relates to frame t-1: backward flow, reliable pixels and the share of them."""

    backward: np.ndarray  # HxWx2 float32: pixel (x, y) of frame t came from (x, y) + backward
    reliable: np.ndarray  # HxW bool
    fraction: float


def _grey(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA) if grey.shape[::-1] != size else grey


class FlowEstimator:
    """DIS optical flow (``preset`` fast or medium), with forward-backward consistency."""

    def __init__(self, preset: str = "medium") -> None:
        presets = {"fast": cv2.DISOPTICAL_FLOW_PRESET_FAST, "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        self._dis = cv2.DISOpticalFlow_create(presets[preset])

    def flow(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from grey ``source`` to grey ``target`` (HxWx2, in pixels of the images given)."""
        return self._dis.calc(source, target, None)

    def motion(self, previous: np.ndarray, current: np.ndarray) -> Motion:
        """The backward flow of ``current`` (RGB uint8) onto ``previous`` and its reliable pixels."""
        height, width = current.shape[:2]
        shrink = min(1.0, FLOW_SIDE / max(height, width))
        size = (max(8, round(width * shrink)), max(8, round(height * shrink)))
        prev_grey, cur_grey = _grey(previous, size), _grey(current, size)
        backward = self.flow(cur_grey, prev_grey)
        forward = self.flow(prev_grey, cur_grey)
        consistent = consistency(backward, forward)
        if size != (width, height):
            backward = upscale_flow(backward, width, height)
            consistent = (
                cv2.resize(consistent.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
            )
        reliable = consistent & inside(backward) & _alike(previous, current, backward)
        return Motion(backward, reliable, float(reliable.mean()))


def upscale_flow(flow: np.ndarray, width: int, height: int) -> np.ndarray:
    """A flow field resized to ``width`` x ``height``, its vectors scaled with it."""
    scaled = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    scaled[..., 0] *= width / flow.shape[1]
    scaled[..., 1] *= height / flow.shape[0]
    return scaled


def _grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """``image`` (frame t-1) moved along ``backward`` onto frame t: ``out(p) = image(p + backward(p))``."""
    map_x, map_y = _grid(backward)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def inside(backward: np.ndarray) -> np.ndarray:
    """Pixels whose source lies inside the previous frame."""
    map_x, map_y = _grid(backward)
    height, width = backward.shape[:2]
    return (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)


def consistency(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels where backward and forward flow cancel out and that are off motion boundaries."""
    forward_back = warp(forward, backward)
    total = forward_back + backward
    disagree = (total**2).sum(-1) > 0.01 * ((forward_back**2).sum(-1) + (backward**2).sum(-1)) + 0.5
    du_y, du_x = np.gradient(backward[..., 0])
    dv_y, dv_x = np.gradient(backward[..., 1])
    boundary = du_x**2 + du_y**2 + dv_x**2 + dv_y**2 > 0.01 * (backward**2).sum(-1) + 0.002
    return ~(disagree | boundary)


def _alike(previous: np.ndarray, current: np.ndarray, backward: np.ndarray) -> np.ndarray:
    moved = warp(previous, backward).astype(np.int16)
    return np.abs(moved - current.astype(np.int16)).mean(-1) <= PHOTO_TOLERANCE * 255


def warping_error(previous_out: np.ndarray, current_out: np.ndarray, motion: Motion) -> float | None:
    """Temporal warping error (Lai et al. 2018): mean |warp(out[t-1]) - out[t]| over reliable pixels.

    Images are uint8 RGB; the error is in [0, 1] units. ``None`` when no pixel is reliable.
    """
    if not motion.reliable.any():
        return None
    moved = warp(previous_out, motion.backward).astype(np.float32)
    diff = np.abs(moved - current_out.astype(np.float32)).mean(-1) / 255.0
    return float(diff[motion.reliable].mean())
