"""Sequences and optionals against ONNX Runtime (graphs with tensor inputs and outputs)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.mirror_helpers import assert_matches_ort, build, rand

i64 = np.int64
X = {"x": rand(6, 3)}

CASES = {
    # id: (opset, nodes, feeds, initializers, outputs)
    "split-insert-concat": (
        17,
        [
            "s = SplitToSequence<axis=0>(x, sz)",
            "t = SequenceInsert(s, x, p)",
            "y = ConcatFromSequence<axis=0>(t)",
        ],
        X,
        {"sz": np.array([2, 4], i64), "p": np.array(-1, i64)},
        None,
    ),
    "construct-erase-at-stack": (
        17,
        [
            "n = Neg(x)",
            "s = SequenceConstruct(x, n, x)",
            "e = SequenceErase(s, z)",
            "a = SequenceAt(e, o)",
            "c = ConcatFromSequence<axis=1, new_axis=1>(e)",
            "a2 = Unsqueeze(a, o)",
            "y = Add(c, a2)",
        ],
        X,
        {"z": np.array(0, i64), "o": np.array(1, i64)},
        None,
    ),
    "sequence-length": (
        17,
        ["s = SplitToSequence<keepdims=0>(x)", "y = SequenceLength(s)"],
        X,
        None,
        {"y": 7},
    ),
    "optional-has-element": (18, ["o = Optional(x)", "y = OptionalHasElement(o)"], X, None, {"y": 9}),
    "optional-get-element": (18, ["o = Optional(x)", "y = OptionalGetElement(o)"], X, None, None),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_sequence_ops_match_onnxruntime(case_id: str):
    opset, nodes, feeds, inits, outputs = CASES[case_id]
    assert_matches_ort(build(opset, nodes, feeds, inits, outputs), feeds)
