"""Cast to and from float8 follows ONNX's saturation rules (compared with ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pytest

from onnxdream.errors import UnsupportedOpError
from onnxdream.mirror import to_torch
from tests.mirror_helpers import assert_matches_ort, build

# Values inside, at and past each float8 type's range, infinities and NaN.
X = {"x": np.array([0.3, -1.7, 200.0, 300.0, 460.0, 470.0, 6e4, -1e5, np.inf, -np.inf, np.nan], np.float32)}
FLOAT8 = {"e4m3fn": 17, "e4m3fnuz": 18, "e5m2": 19, "e5m2fnuz": 20}


@pytest.mark.parametrize("saturate", [1, 0], ids=["saturate", "no-saturate"])
@pytest.mark.parametrize("kind", list(FLOAT8))
def test_cast_float8_round_trip_matches_onnxruntime(kind: str, saturate: int):
    nodes = [f"f8 = Cast<to={FLOAT8[kind]}, saturate={saturate}>(x)", "y = Cast<to=1>(f8)"]
    assert_matches_ort(build(19, nodes, X), X, atol=0.0, rtol=0.0)


def test_castlike_float8_matches_onnxruntime():
    like = {"like": np.zeros(1, np.float32)}
    nodes = ["l8 = Cast<to=19>(like)", "f8 = CastLike<saturate=0>(x, l8)", "y = Cast<to=1>(f8)"]
    assert_matches_ort(build(19, nodes, X, like), X, atol=0.0, rtol=0.0)


def test_cast_to_int4_is_refused_by_name():
    with pytest.raises(UnsupportedOpError, match="cast to element type INT4, which torch lacks"):
        to_torch(build(21, ["y = Cast<to=22>(x)"], X))
