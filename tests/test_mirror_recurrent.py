"""RNN, GRU and LSTM against ONNX Runtime: directions, sequence lengths, layout, peepholes, clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from onnxdream.mirror import to_torch
from tests.mirror_helpers import assert_matches_ort, assert_matches_reference, build, rand

F, I32 = 1, 6
SEQ, BATCH, IN, H = 5, 3, 4, 6
X = {"x": rand(SEQ, BATCH, IN)}
LENS = np.array([5, 2, 4], np.int32)


def _weights(gates: int, dirs: int) -> dict[str, np.ndarray]:
    return {
        "w": rand(dirs, gates * H, IN, seed=1) * 0.5,
        "r": rand(dirs, gates * H, H, seed=2) * 0.5,
        "b": rand(dirs, 2 * gates * H, seed=3) * 0.5,
        "h0": rand(dirs, BATCH, H, seed=4),
        "n": LENS,
    }


OUT = {"y": F, "yh": F}
CASES = {
    # id: (opset, nodes, feeds, initializers, outputs)
    "rnn-relu-seqlens": (
        14,
        [f'y, yh = RNN<hidden_size={H}, activations=["Relu"]>(x, w, r, b, n, h0)'],
        X,
        _weights(1, 1),
        OUT,
    ),
    "gru-reverse-lbr": (
        14,
        [f'y, yh = GRU<hidden_size={H}, direction="reverse", linear_before_reset=1>(x, w, r, b, n, h0)'],
        X,
        _weights(3, 1),
        OUT,
    ),
    "gru-bidirectional-clip": (
        14,
        [f'y, yh = GRU<hidden_size={H}, direction="bidirectional", clip=0.7>(x, w, r, b, n, h0)'],
        X,
        _weights(3, 2),
        OUT,
    ),
    "lstm-bidirectional-peephole": (
        14,
        [f'y, yh, yc = LSTM<hidden_size={H}, direction="bidirectional">(x, w, r, b, n, h0, c0, p)'],
        X,
        {**_weights(4, 2), "c0": rand(2, BATCH, H, seed=5), "p": rand(2, 3 * H, seed=6)},
        {"y": F, "yh": F, "yc": F},
    ),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_recurrent_matches_onnxruntime(case_id: str):
    opset, nodes, feeds, inits, outputs = CASES[case_id]
    assert_matches_ort(build(opset, nodes, feeds, inits, outputs), feeds, atol=1e-5, rtol=1e-4)


def test_rnn_batch_first_layout_matches_reference():
    # ONNX Runtime does not implement layout=1; onnx's reference evaluator does.
    nodes = [f"y, yh = RNN<hidden_size={H}, layout=1>(xb, w, r, b)"]
    feeds = {"xb": rand(BATCH, SEQ, IN)}
    inits = {k: v for k, v in _weights(1, 1).items() if k in ("w", "r", "b")}
    assert_matches_reference(build(14, nodes, feeds, inits, OUT), feeds, atol=1e-5, rtol=1e-4)


def test_lstm_passes_gradients_to_the_input():
    opset, nodes, feeds, inits, outputs = CASES["lstm-bidirectional-peephole"]
    x = torch.from_numpy(feeds["x"]).requires_grad_(True)
    y, _, _ = to_torch(build(opset, nodes, feeds, inits, outputs))(x)
    y[:2].sum().backward()
    # Every step feeds the backward direction's outputs, so every step gets a gradient.
    assert bool((x.grad.abs().sum(dim=(1, 2)) > 0).all())
