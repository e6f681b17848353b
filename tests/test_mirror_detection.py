"""NonMaxSuppression against ONNX Runtime on overlapping random boxes."""

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
