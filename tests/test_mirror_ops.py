"""Converters against ONNX Runtime: one small graph per op form, across opsets 7-21."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto

from tests.mirror_helpers import assert_matches_ort, build, rand

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


X = {"x": rand(2, 4, 9, 9)}
W = {"w": rand(6, 4, 3, 3, seed=1), "b": rand(6, seed=2)}
I64_ = np.int64

CASES = {
    # id: (opset, nodes, feeds, initializers, outputs)
    "conv-k3": (13, ["y = Conv(x, w, b)"], X, W, None),
    "conv-s2-p1": (13, ["y = Conv<strides=[2,2], pads=[1,1,1,1]>(x, w, b)"], X, W, None),
    "conv-asym-pads": (13, ["y = Conv<pads=[0,1,2,1]>(x, w)"], X, W, None),
    "conv-dil2": (13, ["y = Conv<dilations=[2,2]>(x, w, b)"], X, W, None),
    "conv-g2": (13, ["y = Conv<group=2>(x, w2)"], X, {"w2": rand(6, 2, 3, 3)}, None),
    "conv-depthwise": (13, ["y = Conv<group=4>(x, w4)"], X, {"w4": rand(4, 1, 3, 3)}, None),
    "conv-same-upper-s2": (11, ['y = Conv<auto_pad="SAME_UPPER", strides=[2,2]>(x, w)'], X, W, None),
    "conv-same-lower": (11, ['y = Conv<auto_pad="SAME_LOWER", kernel_shape=[3,3]>(x, w)'], X, W, None),
    "conv-1d": (13, ["y = Conv<pads=[1,1]>(x1, w1)"], {"x1": rand(2, 4, 9)}, {"w1": rand(3, 4, 3)}, None),
    "convtranspose-s2": (
        13,
        ["y = ConvTranspose<strides=[2,2], pads=[1,1,1,1], output_padding=[1,1]>(x, wt, bt)"],
        X,
        {"wt": rand(4, 3, 3, 3), "bt": rand(3)},
        None,
    ),
    "convtranspose-g2-same": (
        13,
        ['y = ConvTranspose<group=2, strides=[2,2], auto_pad="SAME_UPPER">(x, wt)'],
        X,
        {"wt": rand(4, 2, 3, 3)},
        None,
    ),
    "batchnorm-9": (
        9,
        ["y = BatchNormalization<epsilon=0.001>(x, s, b, m, v)"],
        X,
        {"s": rand(4), "b": rand(4, seed=1), "m": rand(4, seed=2), "v": np.abs(rand(4, seed=3)) + 0.5},
        None,
    ),
    "batchnorm-15": (
        15,
        ["y = BatchNormalization(x, s, b, m, v)"],
        X,
        {"s": rand(4), "b": rand(4, seed=1), "m": rand(4, seed=2), "v": np.abs(rand(4, seed=3)) + 0.5},
        None,
    ),
    "instancenorm": (
        13,
        ["y = InstanceNormalization(x, s, b)"],
        X,
        {"s": rand(4), "b": rand(4, seed=1)},
        None,
    ),
    "layernorm-axis-1": (
        17,
        ["y = LayerNormalization<axis=-1>(x, s, b)"],
        X,
        {"s": rand(9), "b": rand(9)},
        None,
    ),
    "layernorm-axis1": (
        17,
        ["y = LayerNormalization<axis=1>(x, s, b)"],
        X,
        {"s": rand(4, 9, 9), "b": rand(4, 9, 9)},
        None,
    ),
    "groupnorm-21": (
        21,
        ["y = GroupNormalization<num_groups=2>(x, s, b)"],
        X,
        {"s": rand(4), "b": rand(4)},
        None,
    ),
    "lrn-size5": (13, ["y = LRN<size=5, alpha=0.001, beta=0.75, bias=2.0>(x)"], X, {}, None),
    "relu": (14, ["y = Relu(x)"], X, {}, None),
    "leakyrelu": (16, ["y = LeakyRelu<alpha=0.2>(x)"], X, {}, None),
    "prelu-channel": (16, ["y = PRelu(x, slope)"], X, {"slope": rand(4, 1, 1)}, None),
    "elu": (13, ["y = Elu<alpha=0.5>(x)"], X, {}, None),
    "selu": (13, ["y = Selu(x)"], X, {}, None),
    "sigmoid": (13, ["y = Sigmoid(x)"], X, {}, None),
    "hardsigmoid": (13, ["y = HardSigmoid<alpha=0.3, beta=0.4>(x)"], X, {}, None),
    "hardswish": (14, ["y = HardSwish(x)"], X, {}, None),
    "tanh": (13, ["y = Tanh(x)"], X, {}, None),
    "softplus": (13, ["y = Softplus(x)"], X, {}, None),
    "gelu-tanh": (20, ['y = Gelu<approximate="tanh">(x)'], X, {}, None),
    "erf": (13, ["y = Erf(x)"], X, {}, None),
    "clip-attr-6": (7, ["y = Clip<min=-0.5, max=0.7>(x)"], X, {}, None),
    "clip-input-13": (13, ["y = Clip(x, lo, hi)"], X, {"lo": np.float32(0), "hi": np.float32(6)}, None),
    "clip-min-only-13": (13, ["y = Clip(x, lo)"], X, {"lo": np.float32(-0.1)}, None),
    "clip-dynamic-bounds": (
        13,
        ["y = Clip(x, lo, hi)"],
        {**X, "lo": np.array(-1, np.float32), "hi": np.array(0.5, np.float32)},
        {},
        None,
    ),
    "maxpool-k3-s2": (12, ["y = MaxPool<kernel_shape=[3,3], strides=[2,2]>(x)"], X, {}, None),
    "maxpool-ceil-pads": (
        12,
        ["y = MaxPool<kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1], ceil_mode=1>(x)"],
        X,
        {},
        None,
    ),
    "maxpool-dilated": (12, ["y = MaxPool<kernel_shape=[2,2], dilations=[2,2]>(x)"], X, {}, None),
    "maxpool-asym-pads": (12, ["y = MaxPool<kernel_shape=[3,3], pads=[0,0,2,2]>(x)"], X, {}, None),
    "maxpool-same-upper": (
        12,
        ['y = MaxPool<kernel_shape=[2,2], strides=[2,2], auto_pad="SAME_UPPER">(x)'],
        X,
        {},
        None,
    ),
    "avgpool-include-pad": (
        11,
        ["y = AveragePool<kernel_shape=[3,3], pads=[1,1,1,1], count_include_pad=1>(x)"],
        X,
        {},
        None,
    ),
    "avgpool-exclude-pad": (11, ["y = AveragePool<kernel_shape=[3,3], pads=[1,1,1,1]>(x)"], X, {}, None),
    "avgpool-ceil": (
        11,
        ["y = AveragePool<kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1], ceil_mode=1>(x)"],
        X,
        {},
        None,
    ),
    "avgpool-ceil-include-pad": (
        19,
        ["y = AveragePool<kernel_shape=[2,2], strides=[2,2], ceil_mode=1, count_include_pad=1>(x)"],
        X,
        {},
        None,
    ),
    "avgpool-7": (7, ["y = AveragePool<kernel_shape=[2,2], strides=[2,2]>(x)"], X, {}, None),
    "globalaveragepool": (13, ["y = GlobalAveragePool(x)"], X, {}, None),
    "globalmaxpool": (13, ["y = GlobalMaxPool(x)"], X, {}, None),
    "dropout-7": (7, ["y = Dropout<ratio=0.3>(x)"], X, {}, None),
    "dropout-12-mask": (12, ["y, m = Dropout(x)"], X, {}, {"y": F, "m": B}),
    "identity": (13, ["y = Identity(x)"], X, {}, None),
    "arith": (
        13,
        ["a = Add(x, c)", "s = Sub(a, x)", "m = Mul(s, x)", "d = Div(m, c)", "y = Pow(d, two)"],
        X,
        {"c": rand(9) + 3, "two": np.float32(2)},
        None,
    ),
    "unary": (
        13,
        ["a = Abs(x)", "s = Sqrt(a)", "e = Exp(s)", "l = Log(e)", "n = Neg(l)", "y = Reciprocal(n)"],
        X,
        {},
        None,
    ),
    "variadic-8": (
        8,
        ["y = Sum(x, x, c)", "z = Mean(x, c)", "u = Min(x, c)", "v = Max(x, c)"],
        X,
        {"c": rand(9)},
        {"y": F, "z": F, "u": F, "v": F},
    ),
    "matmul": (13, ["y = MatMul(x, m)"], X, {"m": rand(9, 5)}, None),
    "gemm-transB": (
        13,
        ["f = Flatten(x)", "y = Gemm<transB=1>(f, w, b)"],
        X,
        {"w": rand(7, 324), "b": rand(7)},
        None,
    ),
    "gemm-alpha-beta-transA": (
        13,
        ["f = Flatten<axis=3>(x)", "y = Gemm<alpha=0.5, beta=2.0, transA=1>(f, w, b)"],
        X,
        {"w": rand(72, 3), "b": rand(9, 3)},
        None,
    ),
    "flatten-0": (13, ["y = Flatten<axis=0>(x)"], X, {}, None),
    "reshape-zero-minus1": (14, ["y = Reshape(x, s)"], X, {"s": np.array([0, -1, 9], I64_)}, None),
    "reshape-from-live-shape": (
        13,
        ["s = Shape(x)", "h = Slice(s, z, o)", "n = Concat<axis=0>(h, m1)", "y = Reshape(x, n)"],
        X,
        {"z": np.array([0], I64_), "o": np.array([1], I64_), "m1": np.array([-1], I64_)},
        None,
    ),
    "transpose": (13, ["y = Transpose<perm=[0,2,3,1]>(x)"], X, {}, None),
    "concat": (13, ["y = Concat<axis=1>(x, x)"], X, {}, None),
    "split-11-attr": (11, ["a, b = Split<axis=1, split=[1,3]>(x)", "y = Add(a, a)"], X, {}, None),
    "split-13-input": (
        13,
        ["a, b = Split<axis=2>(x, s)", "y = Mul(b, b)"],
        X,
        {"s": np.array([4, 5], I64_)},
        None,
    ),
    "split-18-num-outputs": (18, ["a, b, c = Split<axis=2, num_outputs=3>(x)", "y = Sub(a, c)"], X, {}, None),
    "slice-9-attr": (9, ["y = Slice<starts=[1,2], ends=[3,100], axes=[1,3]>(x)"], X, {}, None),
    "slice-13-steps": (
        13,
        ["y = Slice(x, st, en, ax, sp)"],
        X,
        {
            "st": np.array([-1, 1], I64_),
            "en": np.array([-100, 8], I64_),
            "ax": np.array([2, 3], I64_),
            "sp": np.array([-2, 3], I64_),
        },
        None,
    ),
    "squeeze-11-attr": (11, ["g = GlobalAveragePool(x)", "y = Squeeze<axes=[2,3]>(g)"], X, {}, None),
    "squeeze-13-input": (
        13,
        ["g = GlobalAveragePool(x)", "y = Squeeze(g, a)"],
        X,
        {"a": np.array([-1, -2], I64_)},
        None,
    ),
    "unsqueeze-11-attr": (11, ["y = Unsqueeze<axes=[0,-1]>(x)"], X, {}, None),
    "unsqueeze-13-input": (13, ["y = Unsqueeze(x, a)"], X, {"a": np.array([1], I64_)}, None),
    "pad-2-reflect": (7, ['y = Pad<pads=[0,0,1,2,0,0,2,1], mode="reflect">(x)'], X, {}, None),
    "pad-11-constant": (
        11,
        ["y = Pad(x, p, v)"],
        X,
        {"p": np.array([0, 1, 1, 0, 0, 0, 2, -1], I64_), "v": np.float32(1.5)},
        None,
    ),
    "pad-13-edge": (
        13,
        ['y = Pad<mode="edge">(x, p)'],
        X,
        {"p": np.array([0, 0, 2, 1, 0, 0, 1, 2], I64_)},
        None,
    ),
    "pad-18-axes": (
        18,
        ["y = Pad(x, p, v, a)"],
        X,
        {"p": np.array([1, 2, 3, 4], I64_), "v": np.float32(0), "a": np.array([2, 3], I64_)},
        None,
    ),
    "resize-nearest-scales": (
        13,
        ["y = Resize(x, roi, sc)"],
        X,
        {"roi": np.array([], np.float32), "sc": np.array([1, 1, 2, 2], np.float32)},
        None,
    ),
    "resize-linear-half-pixel-sizes": (
        13,
        ['y = Resize<mode="linear">(x, roi, , sz)'],
        X,
        {"roi": np.array([], np.float32), "sz": np.array([2, 4, 13, 5], I64_)},
        None,
    ),
    "resize-linear-align-corners": (
        13,
        ['y = Resize<mode="linear", coordinate_transformation_mode="align_corners">(x, , sc)'],
        X,
        {"sc": np.array([1, 1, 1.5, 2], np.float32)},
        None,
    ),
    "resize-cubic-asymmetric": (
        13,
        ['y = Resize<mode="cubic", coordinate_transformation_mode="asymmetric">(x, , sc)'],
        X,
        {"sc": np.array([1, 1, 0.6, 1.7], np.float32)},
        None,
    ),
    "resize-nearest-round-prefer-ceil": (
        19,
        [
            'y = Resize<mode="nearest", nearest_mode="round_prefer_ceil", '
            'coordinate_transformation_mode="half_pixel">(x, , sc)'
        ],
        X,
        {"sc": np.array([1, 1, 0.7, 1.3], np.float32)},
        None,
    ),
    "resize-10": (10, ["y = Resize(x, sc)"], X, {"sc": np.array([1, 1, 2, 3], np.float32)}, None),
    "upsample-9": (9, ["y = Upsample(x, sc)"], X, {"sc": np.array([1, 1, 2, 2], np.float32)}, None),
    "upsample-7-attr": (7, ['y = Upsample<scales=[1.0,1.0,2.0,3.0], mode="nearest">(x)'], X, {}, None),
    "shape-15-start": (15, ["y = Shape<start=2>(x)"], X, {}, {"y": I64}),
    "gather-axis1": (13, ["y = Gather<axis=1>(x, i)"], X, {"i": np.array([[3, -1], [0, 2]], I64_)}, None),
    "constant": (
        13,
        ["c = Constant<value_floats=[1.0,2.0,3.0]>()", "y = Add(x, c)"],
        {"x": rand(2, 3)},
        {},
        None,
    ),
    "constantofshape": (
        13,
        ["s = Shape(x)", "c = ConstantOfShape<value=float[1] {0.5}>(s)", "y = Add(x, c)"],
        X,
        {},
        None,
    ),
    "cast": (13, ["i = Cast<to=7>(x)", "y = Cast<to=1>(i)"], X, {}, None),
    "softmax-11-coerced": (11, ["y = Softmax<axis=1>(x)"], X, {}, None),
    "softmax-13": (13, ["y = Softmax<axis=1>(x)"], X, {}, None),
    "logsoftmax-13": (13, ["y = LogSoftmax(x)"], X, {}, None),
    "reducemean-13-attr": (13, ["y = ReduceMean<axes=[2,3]>(x)"], X, {}, None),
    "reducemean-18-input": (
        18,
        ["y = ReduceMean<keepdims=0>(x, a)"],
        X,
        {"a": np.array([1, -1], I64_)},
        None,
    ),
    "reducesum-11-attr": (11, ["y = ReduceSum<axes=[1], keepdims=0>(x)"], X, {}, None),
    "reducesum-13-input": (13, ["y = ReduceSum(x, a)"], X, {"a": np.array([0, 2], I64_)}, None),
    "reducesum-13-noop": (
        13,
        ["y = ReduceSum<noop_with_empty_axes=1>(x, a)"],
        X,
        {"a": np.array([], I64_)},
        None,
    ),
    "reducemax-18": (18, ["y = ReduceMax(x, a)"], X, {"a": np.array([3], I64_)}, None),
    "expand": (13, ["y = Expand(x, s)"], {"x": rand(3, 1)}, {"s": np.array([2, 1, 4], I64_)}, None),
    "tile": (13, ["y = Tile(x, r)"], X, {"r": np.array([1, 2, 1, 2], I64_)}, None),
    "where-compare": (
        16,
        ["g = Greater(x, z)", "l = Less(x, z)", "e = Equal(g, l)", "n = Not(e)", "y = Where(n, x, z)"],
        X,
        {"z": np.float32(0.1)},
        None,
    ),
    "range-from-shape": (
        13,
        ["s = Shape(x)", "d = Gather(s, i)", "r = Range(z, d, o)", "c = Cast<to=1>(r)", "y = Mul(x, c)"],
        X,
        {"i": np.array(3, I64_), "z": np.array(0, I64_), "o": np.array(1, I64_)},
        None,
    ),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_converter_matches_onnxruntime(case_id: str):
    opset, nodes, feeds, inits, outputs = CASES[case_id]
    assert_matches_ort(build(opset, nodes, feeds, inits, outputs), feeds)


def _lrn_spec(x: np.ndarray, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """The LRN formula as the ONNX spec writes it (window [c - floor((s-1)/2), c + ceil((s-1)/2)])."""
    out = np.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):
        lo, hi = max(0, c - (size - 1) // 2), min(channels - 1, c + size // 2)
        square_sum = (x[:, lo : hi + 1] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (bias + alpha / size * square_sum) ** beta
    return out


def test_lrn_even_size_follows_the_spec():
    # ONNX Runtime rejects even sizes and onnx's reference LRN loops over the batch axis, so the
    # spec's formula, written out above, is the reference here.
    from onnxdream.mirror import to_torch

    model = build(13, ["y = LRN<size=4, alpha=0.01, beta=0.5, bias=1.5>(x)"], X)
    got = to_torch(model)(torch.from_numpy(X["x"]))
    np.testing.assert_allclose(got.numpy(), _lrn_spec(X["x"], 4, 0.01, 0.5, 1.5), atol=1e-6, rtol=1e-5)
