"""GridSample, AffineGrid, Col2Im, MaxUnpool, LpPool and LpNormalization against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.mirror_helpers import assert_matches_ort, build, rand

i64 = np.int64
X = {"x": rand(2, 3, 6, 7)}
GRID = {"g": np.clip(rand(2, 5, 4, 2, seed=1) * 0.8, -1.3, 1.3)}

CASES = {
    # id: (opset, nodes, feeds, initializers)
    "gridsample-bilinear": (16, ["y = GridSample(x, g)"], X, GRID),
    "gridsample-nearest-border": (
        16,
        ['y = GridSample<mode="nearest", padding_mode="border">(x, g)'],
        X,
        GRID,
    ),
    "gridsample-bicubic-align": (16, ['y = GridSample<mode="bicubic", align_corners=1>(x, g)'], X, GRID),
    "gridsample-reflection": (16, ['y = GridSample<padding_mode="reflection">(x, g)'], X, GRID),
    "affinegrid": (
        20,
        ["y = AffineGrid(t, s)"],
        {"t": rand(2, 2, 3)},
        {"s": np.array([2, 3, 4, 5], i64)},
    ),
    "col2im-strided-padded": (
        18,
        ["y = Col2Im<strides=[2,2], pads=[1,0,1,0]>(c, i, b)"],
        {"c": rand(1, 12, 8)},
        {"i": np.array([6, 5], i64), "b": np.array([2, 3], i64)},
    ),
    "lppool-p3-pads-s2": (
        18,
        ["y = LpPool<kernel_shape=[3,3], p=3, strides=[2,2], pads=[1,1,1,1]>(x)"],
        X,
        None,
    ),
    "lppool-ceil-dilated": (
        18,
        ["y = LpPool<kernel_shape=[2,2], dilations=[2,1], ceil_mode=1, strides=[2,2]>(x)"],
        X,
        None,
    ),
    "lpnorm-l1-axis1": (13, ["y = LpNormalization<axis=1, p=1>(x)"], X, None),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_grid_and_lp_ops_match_onnxruntime(case_id: str):
    opset, nodes, feeds, inits = CASES[case_id]
    assert_matches_ort(build(opset, nodes, feeds, inits), feeds, atol=1e-5, rtol=1e-4)


def test_maxunpool_inverts_maxpool_indices():
    nodes = [
        "p, i = MaxPool<kernel_shape=[2,2], strides=[2,2]>(x)",
        "y = MaxUnpool<kernel_shape=[2,2], strides=[2,2]>(p, i)",
    ]
    feeds = {"x": rand(2, 3, 6, 6)}
    assert_matches_ort(build(11, nodes, feeds), feeds)


@pytest.mark.parametrize("with_mask", [False, True], ids=["offsets", "offsets-mask"])
def test_deform_conv_matches_reference(with_mask: bool):
    from tests.mirror_helpers import assert_matches_reference

    feeds = {"x": rand(1, 4, 7, 6), "off": rand(1, 2 * 2 * 9, 4, 2, seed=1) * 1.5}
    inits = {"w": rand(6, 2, 3, 3, seed=2), "b": rand(6, seed=3)}
    mask = ", m" if with_mask else ""
    if with_mask:
        inits["m"] = np.abs(rand(1, 2 * 9, 4, 2, seed=4))
    node = f"y = DeformConv<group=2, offset_group=2, strides=[2,2], pads=[1,0,1,0]>(x, w, off, b{mask})"
    assert_matches_reference(build(19, [node], feeds, inits), feeds, atol=1e-5, rtol=1e-4)
