"""Quantization ops against ONNX Runtime, and straight-through gradients for QDQ models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from onnxdream.mirror import to_torch
from tests.mirror_helpers import assert_matches_ort, build, rand

U8, I8, I32 = 2, 3, 6
X = {"x": rand(1, 4, 6, 6) * 3}
f32 = np.float32


def _u8(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def _i8(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)


QDQ_CONV = {
    "s": np.array(0.05, f32),
    "z": np.array(128, np.uint8),
    "w": _i8(3, 4, 3, 3, seed=1),
    "ws": np.array([0.01, 0.02, 0.03], f32),
    "wz": np.zeros(3, np.int8),
}

CASES = {
    # id: (opset, nodes, feeds, initializers, outputs)
    "quantize-u8": (
        13,
        ["y = QuantizeLinear(x, s, z)"],
        X,
        {"s": np.array(0.05, f32), "z": np.array(128, np.uint8)},
        {"y": U8},
    ),
    "quantize-i8-axis": (
        13,
        ["y = QuantizeLinear<axis=1>(x, s, z)"],
        X,
        {"s": np.array([0.1, 0.2, 0.05, 0.3], f32), "z": np.array([0, 3, -2, 5], np.int8)},
        {"y": I8},
    ),
    "quantize-blocked": (
        21,
        ["y = QuantizeLinear<axis=3, block_size=4>(x, s, z)"],
        X,
        {"s": np.abs(rand(1, 4, 6, 2, seed=3)) + 0.05, "z": _i8(1, 4, 6, 2, seed=4) // 8},
        {"y": I8},
    ),
    "quantize-e4m3fn": (
        21,
        ["q = QuantizeLinear<output_dtype=17>(x, s)", "y = Cast<to=1>(q)"],
        X,
        {"s": np.array(0.01, f32)},
        None,
    ),
    "dequantize-axis": (
        13,
        ["y = DequantizeLinear<axis=0>(w, ws, wz)"],
        {},
        {k: QDQ_CONV[k] for k in ("w", "ws", "wz")},
        None,
    ),
    "qdq-conv": (
        13,
        [
            "q = QuantizeLinear(x, s, z)",
            "d = DequantizeLinear(q, s, z)",
            "wd = DequantizeLinear<axis=0>(w, ws, wz)",
            "y = Conv(d, wd)",
        ],
        X,
        QDQ_CONV,
        None,
    ),
    "dynamic-quantize": (
        11,
        ["q, qs, qz = DynamicQuantizeLinear(x)", "y = DequantizeLinear(q, qs, qz)"],
        X,
        None,
        None,
    ),
    # uint8 weights: ONNX Runtime's uint8 x int8 kernel saturates 16-bit pair sums on x86.
    "qlinear-conv": (
        10,
        ["y = QLinearConv<pads=[1,1,1,1]>(xq, s, z, w, ws, wz, ys, yz, b)"],
        {"xq": _u8(1, 4, 6, 6)},
        {
            "s": np.array(0.05, f32),
            "z": np.array(128, np.uint8),
            "w": _u8(3, 4, 3, 3, seed=1),
            "ws": np.array([0.01, 0.02, 0.03], f32),
            "wz": np.array([128, 120, 130], np.uint8),
            "ys": np.array(0.2, f32),
            "yz": np.array(120, np.uint8),
            "b": np.array([100, -50, 7], np.int32),
        },
        {"y": U8},
    ),
    "qlinear-matmul": (
        10,
        ["y = QLinearMatMul(a, as, az, b, bs, bz, ys, yz)"],
        {"a": _u8(2, 3, 5)},
        {
            "as": np.array(0.02, f32),
            "az": np.array(113, np.uint8),
            "b": _u8(5, 4, seed=1),
            "bs": np.array(0.03, f32),
            "bz": np.array(114, np.uint8),
            "ys": np.array(0.1, f32),
            "yz": np.array(118, np.uint8),
        },
        {"y": U8},
    ),
    "conv-integer": (
        10,
        ["y = ConvInteger(xq, w, z)"],
        {"xq": _u8(1, 2, 5, 5)},
        {"w": _u8(3, 2, 2, 2, seed=1), "z": np.array(100, np.uint8)},
        {"y": I32},
    ),
    "matmul-integer": (
        10,
        ["y = MatMulInteger(a, b, az, bz)"],
        {"a": _u8(4, 3)},
        {"b": _u8(3, 2, seed=1), "az": np.array(12, np.uint8), "bz": np.array(0, np.uint8)},
        {"y": I32},
    ),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_quantization_matches_onnxruntime(case_id: str):
    opset, nodes, feeds, inits, outputs = CASES[case_id]
    assert_matches_ort(build(opset, nodes, feeds, inits, outputs), feeds, atol=1e-6, rtol=1e-5)


def test_qdq_gradient_is_straight_through():
    opset, nodes, feeds, inits, _ = CASES["qdq-conv"]
    mirror = to_torch(build(opset, nodes, feeds, inits))
    x = torch.from_numpy(X["x"]).requires_grad_(True)
    mirror(x).square().sum().backward()
    # The reference: the same conv on the float input, weights dequantized, output value
    # taken from the quantized path (the identity gradient through Q/DQ).
    w = torch.from_numpy(QDQ_CONV["w"].astype(f32)) * torch.from_numpy(QDQ_CONV["ws"]).reshape(-1, 1, 1, 1)
    x2 = torch.from_numpy(X["x"]).requires_grad_(True)
    with torch.no_grad():
        y_q = mirror(torch.from_numpy(X["x"]))
    y = F.conv2d(x2, w)
    (2 * y_q * y).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), atol=1e-5, rtol=1e-4)
