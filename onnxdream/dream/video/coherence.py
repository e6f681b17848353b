"""Where each frame's dream starts: the new frame alone, mixed with the previous dream, or mixed
with the previous dream warped along the optical flow where the flow can be trusted."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from onnxdream.dream.video.flow import Motion, warp
from onnxdream.errors import OptionError

MODES = ("flow", "blend", "none")


@dataclass(frozen=True)
class Coherence:
    """How consecutive dreams are tied together.

    ``flow``: start from ``(1 - flow_blend) * frame + flow_blend * warp(previous dream)`` on
    reliable pixels and from the frame elsewhere; ``blend``: ``(1 - blend) * frame + blend *
    previous dream`` (DeepDreamVideo's mix, no motion); ``none``: independent frames. In ``flow``
    mode, ``flow_smooth`` of the warped previous dream is mixed back into the finished dream on
    reliable pixels: each dream's own random steps then average out along the motion instead of
    flickering. A frame whose reliable share is below ``scene_cut`` starts a new scene, dreamed fresh.
    """

    mode: str = "flow"
    flow_blend: float = 0.7
    flow_smooth: float = 0.5
    blend: float = 0.5
    scene_cut: float = 0.3

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise OptionError(f"unknown coherence mode {self.mode!r}; choose one of {', '.join(MODES)}")
        for name in ("flow_blend", "flow_smooth", "blend", "scene_cut"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise OptionError(f"{{{name}}} must be between 0 and 1, got {value}", name)

    def describe(self) -> dict[str, object]:
        """The settings that change the frames (part of the checkpoint key)."""
        return {
            "mode": self.mode,
            "flow_blend": self.flow_blend,
            "flow_smooth": self.flow_smooth,
            "blend": self.blend,
            "cut": self.scene_cut,
        }

    def is_cut(self, motion: Motion | None) -> bool:
        """Whether a frame starts a new scene (the first frame always does)."""
        return motion is None or motion.fraction < self.scene_cut

    def start(self, frame: np.ndarray, previous_out: np.ndarray | None, motion: Motion | None) -> np.ndarray:
        """The float32 image in [0, 1] the dream of ``frame`` (uint8 RGB) starts from."""
        current = frame.astype(np.float32) / 255.0
        if previous_out is None or self.mode == "none" or self.is_cut(motion):
            return current
        previous = previous_out.astype(np.float32) / 255.0
        if self.mode == "blend":
            return (1.0 - self.blend) * current + self.blend * previous
        assert motion is not None
        weight = self.flow_blend * _soft(motion.reliable)
        return (1.0 - weight) * current + weight * warp(previous, motion.backward)

    def finish(
        self, dreamed: np.ndarray, previous_out: np.ndarray | None, motion: Motion | None
    ) -> np.ndarray:
        """The output frame (uint8): the dream, smoothed along the motion in ``flow`` mode."""
        if previous_out is None or self.mode != "flow" or self.flow_smooth == 0 or self.is_cut(motion):
            return dreamed
        assert motion is not None
        weight = self.flow_smooth * _soft(motion.reliable)
        moved = warp(previous_out.astype(np.float32), motion.backward)
        mixed = (1.0 - weight) * dreamed.astype(np.float32) + weight * moved
        return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def _soft(mask: np.ndarray) -> np.ndarray:
    """A 0/1 mask with its edges blurred over a few pixels, so occlusion borders leave no seam."""
    soft = cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0)
    return np.minimum(soft, mask.astype(np.float32))[..., None]


def frame_seed(seed: int, index: int) -> int:
    """The dream seed of frame ``index``: independent streams per frame, reproducible from ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
