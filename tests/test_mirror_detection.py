"""NonMaxSuppression and RoiAlign against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.mirror_helpers import assert_matches_ort, build

rng = np.random.default_rng(0)
CORNERS = rng.uniform(0, 10, (2, 30, 4)).astype(np.float32)  # unordered corners: both diagonals
CENTERS = np.concatenate([rng.uniform(2, 8, (2, 30, 2)), rng.uniform(0.5, 4, (2, 30, 2))], -1).astype(
    np.float32
)
SCORES = rng.uniform(0, 1, (2, 3, 30)).astype(np.float32)
LIMITS = {"m": np.array([5], np.int64), "iou": np.array([0.4], np.float32), "st": np.array([0.3], np.float32)}


@pytest.mark.parametrize("center", [0, 1], ids=["corners", "centers"])
def test_nms_matches_onnxruntime(center: int):
    feeds = {"boxes": CENTERS if center else CORNERS, "scores": SCORES}
    model = build(
        11,
        [f"y = NonMaxSuppression<center_point_box={center}>(boxes, scores, m, iou, st)"],
        feeds,
        LIMITS,
        {"y": 7},
    )
    assert_matches_ort(model, feeds, atol=0, rtol=0)


def test_nms_without_limits_selects_nothing():
    # max_output_boxes_per_class defaults to 0: no box is selected.
    feeds = {"boxes": CORNERS, "scores": SCORES}
    assert_matches_ort(build(11, ["y = NonMaxSuppression(boxes, scores)"], feeds, None, {"y": 7}), feeds)


ROIS = {"rois": np.array([[0.5, 1.0, 6.3, 7.9], [2.0, 2.0, 3.0, 3.0], [-2.0, 4.0, 12.0, 11.0]], np.float32)}


@pytest.mark.parametrize(
    "attrs",
    [
        'mode="avg", output_height=3, output_width=4, sampling_ratio=2, spatial_scale=0.5',
        'mode="max", output_height=2, output_width=2',
        'coordinate_transformation_mode="output_half_pixel", output_height=3, output_width=3',
    ],
    ids=["avg-ratio2", "max-adaptive", "output-half-pixel"],
)
def test_roi_align_matches_onnxruntime(attrs: str):
    feeds = {"x": np.random.default_rng(2).standard_normal((2, 3, 10, 12)).astype(np.float32)}
    inits = {**ROIS, "b": np.array([0, 1, 1], np.int64)}
    assert_matches_ort(
        build(16, [f"y = RoiAlign<{attrs}>(x, rois, b)"], feeds, inits), feeds, atol=1e-5, rtol=1e-4
    )
