"""uint16/32/64 arithmetic, comparisons and bit ops, computed in wider signed types."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto

from onnxdream.errors import UnsupportedOpError
from onnxdream.mirror import to_torch
from tests.mirror_helpers import assert_matches_reference, build

U16, U32, U64, BOOL = TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64, TensorProto.BOOL
BIG = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1, 12345], np.uint64)
SMALL = np.array([5, 2**63 + 7, 2**63, 1, 2, 2**64 - 2], np.uint64)

CASES = {
    # id: (opset, nodes, feeds, output types)
    "add-u64-wraps": (14, ["y = Add(a, b)"], {"a": BIG, "b": SMALL}, {"y": U64}),
    "sub-u32-wraps": (
        14,
        ["y = Sub(a, b)"],
        {"a": np.array([2, 7], np.uint32), "b": np.array([5, 7], np.uint32)},
        {"y": U32},
    ),
    "mul-u16-wraps": (
        14,
        ["y = Mul(a, b)"],
        {"a": np.array([300, 9], np.uint16), "b": np.array([300, 9], np.uint16)},
        {"y": U16},
    ),
    "less-u64-top-bit": (13, ["y = Less(a, b)"], {"a": BIG, "b": SMALL}, {"y": BOOL}),
    "greater-equal-u32": (
        16,
        ["y = GreaterOrEqual(a, b)"],
        {"a": np.array([2**32 - 1, 0], np.uint32), "b": np.array([1, 0], np.uint32)},
        {"y": BOOL},
    ),
    "max-u64-top-bit": (13, ["y = Max(a, b)"], {"a": BIG, "b": SMALL}, {"y": U64}),
    "min-u16": (
        13,
        ["y = Min(a, b)"],
        {"a": np.array([65535, 3], np.uint16), "b": np.array([1, 4], np.uint16)},
        {"y": U16},
    ),
    "div-u32": (
        14,
        ["y = Div(a, b)"],
        {"a": np.array([4294967295, 7], np.uint32), "b": np.array([2, 3], np.uint32)},
        {"y": U32},
    ),
    "mod-u16": (
        13,
        ["y = Mod(a, b)"],
        {"a": np.array([65535, 7], np.uint16), "b": np.array([10, 3], np.uint16)},
        {"y": U16},
    ),
    "shift-left-u64": (
        11,
        ['y = BitShift<direction="LEFT">(a, s)'],
        {"a": BIG, "s": np.array([1, 63, 1, 1, 4, 0], np.uint64)},
        {"y": U64},
    ),
    "shift-right-u32": (
        11,
        ['y = BitShift<direction="RIGHT">(a, s)'],
        {"a": np.array([2**32 - 1, 8], np.uint32), "s": np.array([31, 2], np.uint32)},
        {"y": U32},
    ),
    "bitwise-not-u32": (18, ["y = BitwiseNot(a)"], {"a": np.array([0, 2**32 - 1, 5], np.uint32)}, {"y": U32}),
    "bitwise-xor-u64": (18, ["y = BitwiseXor(a, b)"], {"a": BIG, "b": SMALL}, {"y": U64}),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_unsigned_matches_reference(case_id: str):
    opset, nodes, feeds, outputs = CASES[case_id]
    assert_matches_reference(build(opset, nodes, feeds, None, outputs), feeds, atol=0, rtol=0)


def test_bit_shift_negative_amount_leaves_the_sign_fill():
    feeds = {"a": np.array([-8, 4, -1], np.int8), "s": np.array([-1, 9, 2], np.int8)}
    model = build(11, ['y = BitShift<direction="RIGHT">(a, s)'], feeds, None, {"y": TensorProto.INT8})
    got = to_torch(model)(*(torch.from_numpy(v) for v in feeds.values()))
    assert got.tolist() == [-1, 0, -1]


def test_uint64_division_from_2_to_the_63_is_refused():
    feeds = {"a": BIG, "b": SMALL}

    mirror = to_torch(build(14, ["y = Div(a, b)"], feeds, None, {"y": U64}))
    with pytest.raises(UnsupportedOpError, match="uint64 values from 2\\*\\*63 up"):
        mirror(*(torch.from_numpy(v) for v in feeds.values()))
