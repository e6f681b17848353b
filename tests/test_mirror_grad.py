"""Gradients through the mirror: torch.autograd.gradcheck in float64, one small graph per op family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto

from onnxdream.mirror import to_torch
from tests.test_mirror_ops import build

D = np.float64
X = {"x": np.random.default_rng(0).standard_normal((1, 2, 6, 6))}
Wc = {"w": np.random.default_rng(1).standard_normal((3, 2, 3, 3)), "b": np.zeros(3)}
I64 = np.int64

FAMILIES = {
    "conv": (13, ["y = Conv<strides=[2,2], pads=[1,0,1,1]>(x, w, b)"], Wc),
    "convtranspose": (13, ["y = ConvTranspose<strides=[2,2]>(x, w)"], {"w": np.ones((2, 1, 2, 2))}),
    "pool": (
        13,
        ["m = MaxPool<kernel_shape=[2,2], strides=[2,2]>(x)", "y = AveragePool<kernel_shape=[2,2]>(m)"],
        {},
    ),
    "norm": (
        13,
        ["n = BatchNormalization(x, s, b, m, v)", "y = LRN<size=3>(n)"],
        {"s": np.ones(2) * 1.5, "b": np.ones(2), "m": np.zeros(2), "v": np.ones(2) * 2},
    ),
    "activation": (
        13,
        ["a = Sigmoid(x)", "t = Tanh(x)", "e = Elu(t)", "c = Clip(e, lo)", "y = Mul(a, c)"],
        {"lo": np.array(-0.3)},
    ),
    "elementwise": (
        13,
        ["a = Add(x, x)", "d = Div(a, c)", "y = Pow(d, two)"],
        {"c": np.full(6, 3.0), "two": np.array(2.0)},
    ),
    "linear": (
        13,
        ["f = Flatten(x)", "y = Gemm<transB=1>(f, w, b)"],
        {"w": np.ones((4, 72)) * 0.1, "b": np.zeros(4)},
    ),
    "shape": (
        13,
        ["t = Transpose<perm=[0,1,3,2]>(x)", "s = Slice(t, st, en)", "p = Pad(s, pads)", "y = Reshape(p, r)"],
        {
            "st": np.array([1], I64),
            "en": np.array([4], I64),
            "pads": np.array([0, 0, 1, 0, 0, 0, 0, 1], I64),
            "r": np.array([1, -1], I64),
        },
    ),
    "resize": (13, ['y = Resize<mode="linear">(x, , sc)'], {"sc": np.array([1, 1, 1.5, 0.7])}),
    "reduce-softmax": (13, ["r = ReduceMean<axes=[3]>(x)", "y = Softmax<axis=2>(r)"], {}),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_gradcheck(family: str):
    opset, nodes, inits = FAMILIES[family]
    inits = {k: (v.astype(D) if v.dtype.kind == "f" else v) for k, v in inits.items()}
    model = build(opset, nodes, X, inits, {"y": TensorProto.DOUBLE})
    mirror = to_torch(model)
    x = torch.from_numpy(X["x"]).requires_grad_(True)
    assert torch.autograd.gradcheck(mirror, (x,), eps=1e-6, atol=1e-5)


def test_gradient_reaches_input_through_a_layer_of_the_builtin_export(builtin_exports):
    mirror = to_torch(builtin_exports["legacy"])
    x = torch.randn(1, 3, 96, 128, requires_grad=True)
    act = mirror(x, layers=["_blocks.3"])["_blocks.3"]
    act.pow(2).mean().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert float(x.grad.abs().sum()) > 0
    assert all(not p.requires_grad for p in mirror.parameters())
