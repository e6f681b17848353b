"""Ops without a converter that their schema defines as a function run as that function body."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from onnxdream.errors import UnsupportedOpError
from onnxdream.mirror import to_torch
from tests.mirror_helpers import assert_matches_ort, build, rand

Q = {"q": rand(2, 3, 4, 8), "k": rand(2, 3, 6, 8, seed=1), "v": rand(2, 3, 6, 8, seed=2)}

CASES = {
    # id: (opset, nodes, feeds, initializers)
    "mvn-default-axes": (13, ["y = MeanVarianceNormalization(x)"], {"x": rand(2, 3, 4, 5)}, None),
    "mvn-axes": (13, ["y = MeanVarianceNormalization<axes=[1]>(x)"], {"x": rand(2, 3, 4, 5)}, None),
    "rmsnorm": (23, ["y = RMSNormalization<axis=-1>(x, s)"], {"x": rand(2, 3, 8)}, {"s": rand(8, seed=1)}),
    "attention-4d": (23, ["y = Attention(q, k, v)"], Q, None),
    "attention-causal-scale": (23, ["y = Attention<is_causal=1, scale=0.3>(q, k, v)"], Q, None),
    "shrink": (13, ["y = Shrink<lambd=0.5, bias=0.2>(x)"], {"x": rand(3, 7)}, None),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_function_op_matches_onnxruntime(case_id: str):
    opset, nodes, feeds, inits = CASES[case_id]
    assert_matches_ort(build(opset, nodes, feeds, inits), feeds, atol=1e-5, rtol=1e-4)


def test_function_op_passes_gradients():
    model = build(23, ["y = RMSNormalization<axis=-1>(x, s)"], {"x": rand(2, 8)}, {"s": rand(8, seed=1)})
    x = torch.from_numpy(rand(2, 8)).requires_grad_(True)
    to_torch(model)(x).sum().backward()
    # d/dx of sum(s * x / rms(x)) through the expanded body, against torch's own formula.
    x2 = x.detach().clone().requires_grad_(True)
    s = torch.from_numpy(rand(8, seed=1))
    (s * x2 / torch.sqrt((x2 * x2).mean(-1, keepdim=True) + 1e-5)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), atol=1e-5, rtol=1e-4)


def test_half_inputs_run_the_body_in_float32():
    feeds = {k: v.astype(np.float16) for k, v in Q.items()}
    got = to_torch(build(23, ["y = Attention(q, k, v)"], feeds, None, {"y": 10}))(
        *(torch.from_numpy(v) for v in feeds.values())
    )
    exact = to_torch(build(23, ["y = Attention(q, k, v)"], Q))(*(torch.from_numpy(v) for v in Q.values()))
    assert got.dtype == torch.float16
    np.testing.assert_allclose(got.float().numpy(), exact.half().float().numpy(), atol=1e-3)


def test_random_function_op_is_refused_when_building():
    # Bernoulli is a function whose body draws random numbers: refused up front, naming the node.
    model = build(15, ["y = Bernoulli(x)"], {"x": rand(3)})
    with pytest.raises(UnsupportedOpError, match=r"Bernoulli.*draws random numbers"):
        to_torch(model)


def test_training_dropout_is_refused():
    model = build(
        13, ["y = Dropout(x, r, t)"], {"x": rand(3)}, {"r": np.array(0.5, np.float32), "t": np.array(True)}
    )
    with pytest.raises(UnsupportedOpError, match="training_mode draws a random mask"):
        to_torch(model)


def test_training_dropout_known_only_at_run_time_is_refused_then():
    feeds = {"x": rand(3), "r": np.array(0.5, np.float32), "t": np.array(True)}
    mirror = to_torch(build(13, ["y = Dropout(x, r, t)"], feeds))
    with pytest.raises(UnsupportedOpError, match="training_mode draws a random mask"):
        mirror(*(torch.from_numpy(v) for v in feeds.values()))
    # Ratio 0 drops nothing: the output is the input.
    x = torch.from_numpy(feeds["x"])
    assert torch.equal(mirror(x, torch.tensor(0.0), torch.tensor(True)), x)
