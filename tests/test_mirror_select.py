"""Scatter/gather, selection and cumulative ops against ONNX Runtime (TensorScatter: the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.mirror_helpers import assert_matches_ort, build, rand

F, I64, I32, B = 1, 7, 6, 9
i64 = np.int64
D = {"d": rand(3, 4, 5)}

CASES = {
    # id: (opset, nodes, feeds, initializers, outputs)
    "scatter-elements-add": (
        18,
        ['y = ScatterElements<axis=1, reduction="add">(d, i, u)'],
        D,
        {"i": np.array([[[0, 1, 0, 3, -1]]] * 3, i64), "u": rand(3, 1, 5, seed=1)},
        None,
    ),
    "scatter-nd-mul": (
        18,
        ['y = ScatterND<reduction="mul">(d, i, u)'],
        D,
        {"i": np.array([[0, 1], [2, -1], [0, 1]], i64), "u": rand(3, 5, seed=1)},
        None,
    ),
    "scatter-nd-slices": (
        13,
        ["y = ScatterND(d, i, u)"],
        D,
        {"i": np.array([[2], [0]], i64), "u": rand(2, 4, 5, seed=1)},
        None,
    ),
    "gather-nd-batch": (
        13,
        ["y = GatherND<batch_dims=1>(d, i)"],
        D,
        {"i": np.array([[[1, 2]], [[0, -1]], [[3, 4]]], i64)},
        None,
    ),
    "topk-smallest-ties": (
        11,
        ["y, j = TopK<axis=1, largest=0>(t, k)"],
        {"t": np.array([[3, 1, 1, 2, 1], [0, 0, 5, 5, 4]], np.float32)},
        {"k": np.array([3], i64)},
        {"y": F, "j": I64},
    ),
    "nonzero": (
        13,
        ["y = NonZero(t)"],
        {"t": np.array([[1, 0, 2], [0, 0, 3]], np.float32)},
        None,
        {"y": I64},
    ),
    "compress-axis": (11, ["y = Compress<axis=1>(d, c)"], D, {"c": np.array([1, 0, 1], bool)}, None),
    "compress-flat": (11, ["y = Compress(d, c)"], D, {"c": np.array([0, 1, 1, 0, 1], bool)}, None),
    "unique-unsorted": (
        11,
        ["y, first, inverse, counts = Unique<sorted=0>(t)"],
        {"t": np.array([2, 1, 1, 3, 4, 3], np.float32)},
        None,
        {"y": F, "first": I64, "inverse": I64, "counts": I64},
    ),
    "unique-axis": (
        11,
        ["y, first, inverse, counts = Unique<axis=0>(t)"],
        {"t": np.array([[1, 0], [1, 0], [2, 3], [0, 1]], np.float32)},
        None,
        {"y": F, "first": I64, "inverse": I64, "counts": I64},
    ),
    "onehot-axis": (
        11,
        ["y = OneHot<axis=1>(t, n, v)"],
        {"t": np.array([[0, 3, -1], [5, 1, 2]], i64)},
        {"n": np.array(4, i64), "v": np.array([-2.0, 7.0], np.float32)},
        None,
    ),
    "eyelike-k1": (9, ["y = EyeLike<k=1>(t)"], {"t": rand(3, 5)}, None, None),
    "reverse-sequence": (
        10,
        ["y = ReverseSequence<batch_axis=0, time_axis=1>(t, n)"],
        {"t": rand(3, 4, 2)},
        {"n": np.array([4, 1, 3], i64)},
        None,
    ),
    "cumsum-exclusive-reverse": (
        14,
        ["y = CumSum<exclusive=1, reverse=1>(d, a)"],
        D,
        {"a": np.array(1, i64)},
        None,
    ),
    "cumsum-int32": (
        14,
        ["y = CumSum(t, a)"],
        {"t": np.arange(12, dtype=np.int32).reshape(3, 4)},
        {"a": np.array(-1, i64)},
        {"y": I32},
    ),
    "det": (11, ["y = Det(t)"], {"t": rand(2, 3, 3)}, None, None),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_selection_matches_onnxruntime(case_id: str):
    opset, nodes, feeds, inits, outputs = CASES[case_id]
    assert_matches_ort(build(opset, nodes, feeds, inits, outputs), feeds, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("mode", "writes"), [("linear", [1, 3]), ("circular", [1, 5])], ids=["linear", "circular-wraps"]
)
def test_tensor_scatter_matches_reference(mode: str, writes: list[int]):
    from tests.mirror_helpers import assert_matches_reference

    feeds = {"past": rand(2, 3, 6, 4), "update": rand(2, 3, 3, 4, seed=1)}
    inits = {"w": np.array(writes, i64)}
    model = build(24, [f'y = TensorScatter<mode="{mode}">(past, update, w)'], feeds, inits)
    assert_matches_reference(model, feeds, atol=0, rtol=0)
