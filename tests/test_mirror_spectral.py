"""DFT, STFT, MelWeightMatrix and training-mode BatchNormalization against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.mirror_helpers import assert_matches_ort, build, rand

i64 = np.int64
SIGNAL = {"x": rand(2, 16, 1)}
COMPLEX = {"x": rand(2, 16, 2)}

CASES = {
    # id: (opset, nodes, feeds, initializers, outputs)
    "dft-real": (20, ["y = DFT(x)"], SIGNAL, None, None),
    "dft-onesided-length": (20, ["y = DFT<onesided=1>(x, n)"], SIGNAL, {"n": np.array(12, i64)}, None),
    "dft-inverse-complex": (20, ["y = DFT<inverse=1>(x)"], COMPLEX, None, None),
    "dft-17-axis": (17, ["y = DFT<axis=1>(x)"], COMPLEX, None, None),
    "stft-window": (
        17,
        ["y = STFT(x, s, w)"],
        SIGNAL,
        {"s": np.array(4, i64), "w": np.hanning(8).astype(np.float32)},
        None,
    ),
    "mel-weight-matrix": (
        17,
        ["y = MelWeightMatrix(nb, n, sr, lo, hi)"],
        {},
        {
            "nb": np.array(8, i64),
            "n": np.array(64, i64),
            "sr": np.array(8000, i64),
            "lo": np.array(100.0, np.float32),
            "hi": np.array(3800.0, np.float32),
        },
        None,
    ),
    "batchnorm-training": (
        15,
        ["y, m, v = BatchNormalization<training_mode=1, momentum=0.8>(b, s, o, m0, v0)"],
        {"b": rand(4, 3, 5, 5)},
        {
            "s": rand(3, seed=1),
            "o": rand(3, seed=2),
            "m0": rand(3, seed=3),
            "v0": np.abs(rand(3, seed=4)) + 0.5,
        },
        {"y": 1, "m": 1, "v": 1},
    ),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_spectral_and_training_norm_match_onnxruntime(case_id: str):
    opset, nodes, feeds, inits, outputs = CASES[case_id]
    assert_matches_ort(build(opset, nodes, feeds, inits, outputs), feeds, atol=2e-5, rtol=1e-4)
