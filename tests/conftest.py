"""Shared fixtures: light model-zoo graphs with seeded weights, built once per session."""

from __future__ import annotations

import onnx
import pytest

from onnxdream.zoo import light_zoo_model

_zoo_cache: dict[str, onnx.ModelProto] = {}


def zoo_model(name: str) -> onnx.ModelProto:
    """A light zoo model with seeded random weights (a fresh copy each call)."""
    if name not in _zoo_cache:
        _zoo_cache[name] = light_zoo_model(name, seed=0)
    copy = onnx.ModelProto()
    copy.CopyFrom(_zoo_cache[name])
    return copy


@pytest.fixture
def zoo():
    """Factory fixture: ``zoo("googlenet")`` returns a fresh copy of that model."""
    return zoo_model
