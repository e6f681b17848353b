"""The video pieces on their own: flow and occlusion on known motion, scene cuts, coherence, bounds."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest

pytest.importorskip("cv2")

from onnxdream.dream.video import is_video, require_video_extra
from onnxdream.dream.video.coherence import Coherence, frame_seed
from onnxdream.dream.video.decode import Bound, Selection, SourceFrame, parse_bound, select
from onnxdream.dream.video.flow import FlowEstimator, warp, warping_error
from onnxdream.errors import OnnxDreamError, OptionError
from tests.dream_helpers import pattern


def _scene(shift: int, box_at: int | None = None) -> np.ndarray:
    """A textured 96x128 background moved ``shift`` px right, optionally with a flat box."""
    wide = (pattern(96, 160, seed=5) * 255).astype(np.uint8)
    rng = np.random.default_rng(1)
    wide = np.clip(wide.astype(int) + rng.integers(-40, 40, wide.shape), 0, 255).astype(np.uint8)
    wide = np.ascontiguousarray(cv2_blur(wide))
    frame = np.ascontiguousarray(wide[:, 16 - shift : 16 - shift + 128])
    if box_at is not None:
        frame[30:60, box_at : box_at + 30] = (250, 20, 20)
    return frame


def cv2_blur(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (5, 5), 0)


def test_flow_recovers_a_known_pan_and_masks_the_strip_that_enters():
    previous, current = _scene(0), _scene(3)
    motion = FlowEstimator().motion(previous, current)
    inner = motion.backward[10:-10, 20:-20]
    assert np.median(inner[..., 0]) == pytest.approx(-3.0, abs=0.3)
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.3)
    assert not motion.reliable[:, :2].any()  # pixels that came from outside the previous frame
    assert motion.reliable[:, 20:-20].mean() > 0.9
    assert 0.85 < motion.fraction < 0.99
    moved = warp(previous, motion.backward)
    assert np.abs(moved[:, 20:-20].astype(int) - current[:, 20:-20]).mean() < 3


def test_occlusion_mask_marks_what_a_moving_box_covers_and_uncovers():
    previous, current = _scene(0, box_at=40), _scene(0, box_at=52)
    motion = FlowEstimator().motion(previous, current)
    # the background the box uncovered (x 40..52) has no source in the previous frame
    assert motion.reliable[35:55, 42:50].mean() < 0.3
    assert motion.reliable[:, 100:].mean() > 0.9  # static background far from the box


def test_scene_cut_between_unrelated_frames_and_not_within_a_pan():
    coherence = Coherence()
    estimator = FlowEstimator()
    other = (pattern(96, 128, seed=9)[::-1] * 255).astype(np.uint8)
    assert coherence.is_cut(estimator.motion(_scene(0), np.ascontiguousarray(other)))
    assert not coherence.is_cut(estimator.motion(_scene(0), _scene(2)))
    assert coherence.is_cut(None)  # the first frame starts a scene


def test_warping_error_is_zero_for_outputs_that_follow_the_motion_and_grows_with_flicker():
    previous, current = _scene(0), _scene(3)
    motion = FlowEstimator().motion(previous, current)
    steady = warping_error(previous, warp(previous, motion.backward), motion)
    flicker = np.clip(current.astype(int) + np.random.default_rng(0).integers(-30, 30, current.shape), 0, 255)
    assert steady == pytest.approx(0.0, abs=1e-6)
    assert warping_error(previous, flicker.astype(np.uint8), motion) > 0.03


def test_coherence_start_images():
    previous, current = _scene(0), _scene(3)
    motion = FlowEstimator().motion(previous, current)
    dreamed = np.full_like(previous, 200)
    as_float = current.astype(np.float32) / 255
    np.testing.assert_array_equal(Coherence(mode="none").start(current, dreamed, motion), as_float)
    blend = Coherence(mode="blend", blend=0.5).start(current, dreamed, motion)
    np.testing.assert_allclose(blend, 0.5 * as_float + 0.5 * 200 / 255, atol=1e-6)
    flow = Coherence(flow_blend=0.7).start(current, dreamed, motion)
    inner = motion.reliable.copy()
    inner[:, :8] = inner[:, -8:] = False
    np.testing.assert_allclose(
        flow[motion.reliable & _eroded(inner)],
        (0.3 * as_float + 0.7 * 200 / 255)[motion.reliable & _eroded(inner)],
        atol=2e-3,
    )
    np.testing.assert_array_equal(flow[~motion.reliable], as_float[~motion.reliable])
    np.testing.assert_array_equal(Coherence().start(current, None, motion), as_float)  # first frame


def _eroded(mask: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def test_frame_seeds_are_reproducible_and_distinct():
    seeds = [frame_seed(7, i) for i in range(100)]
    assert seeds == [frame_seed(7, i) for i in range(100)] and len(set(seeds)) == 100
    assert frame_seed(8, 0) != frame_seed(7, 0) and all(0 <= s < 2**32 for s in seeds)


@pytest.mark.parametrize(
    ("text", "bound"),
    [("12.5", Bound(seconds=12.5)), ("3s", Bound(seconds=3.0)), ("1:02.5", Bound(seconds=62.5)),
     ("1:00:02", Bound(seconds=3602.0)), ("120f", Bound(frame=120))],
)  # fmt: skip
def test_parse_bound(text, bound):
    assert parse_bound(text, "start") == bound


def test_parse_bound_refuses_junk_naming_the_option():
    with pytest.raises(OptionError, match=r"^end must be seconds"):
        parse_bound("-3", "end")


def test_select_start_end_every():
    frames = (SourceFrame(i, i, i / 10, np.zeros((1, 1, 3), np.uint8)) for i in range(20))
    chosen = select(frames, Selection(Bound(seconds=0.3), Bound(frame=12), every=3))
    assert [f.index for f in chosen] == [3, 6, 9]


def test_is_video_by_suffix():
    assert is_video("a/clip.MP4") and is_video("x.mkv") and not is_video("photo.png") and not is_video(None)


def test_missing_extra_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("No module named 'av'", name="av")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "av", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(OnnxDreamError, match=r"\(av is missing\): pip install 'onnxdream\[video\]'$"):
        require_video_extra()


def test_finish_smooths_only_trackable_pixels_in_flow_mode():
    previous, current = _scene(0), _scene(3)
    motion = FlowEstimator().motion(previous, current)
    dreamed, before = np.full_like(current, 100), np.full_like(previous, 200)
    assert Coherence(mode="none").finish(dreamed, before, motion) is dreamed
    assert Coherence(mode="blend").finish(dreamed, before, motion) is dreamed
    assert Coherence().finish(dreamed, None, None) is dreamed  # a new scene
    out = Coherence(flow_smooth=0.5).finish(dreamed, before, motion)
    inner = motion.reliable & _eroded(motion.reliable)
    assert out.dtype == np.uint8 and (out[inner] == 150).all()
    assert (out[~motion.reliable] == 100).all()
