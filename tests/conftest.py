"""Shared fixtures: light model-zoo graphs with seeded weights, the built-in model's exports."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import onnx
import pytest

from onnxdream.zoo import light_zoo_model


@lru_cache(maxsize=1)  # the last one only: vgg19 alone is 550 MB of weights
def _zoo_original(name: str) -> onnx.ModelProto:
    return light_zoo_model(name, seed=0)


def zoo_model(name: str, copy: bool = True) -> onnx.ModelProto:
    """A light zoo model with seeded random weights: a fresh copy, or (``copy=False``) the cached
    original, for callers that leave it as it is (saves a copy of the weights: 0.55 GB for vgg19)."""
    if not copy:
        return _zoo_original(name)
    fresh = onnx.ModelProto()
    fresh.CopyFrom(_zoo_original(name))
    return fresh


@pytest.fixture(autouse=True)
def _free_sessions() -> None:
    """Drop cached ONNX Runtime sessions after each test: each one holds its model's weights."""
    yield
    runtime = sys.modules.get("onnxdream.runtime")
    if runtime is not None:
        runtime.clear_cache()


@pytest.fixture
def zoo():
    """Factory fixture: ``zoo("googlenet")`` returns a fresh copy of that model."""
    return zoo_model


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the built-in model cache out of the user's home during tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def builtin_exports(_private_cache: None) -> dict[str, Path]:
    """The built-in EfficientNet-Lite0 exported by both torch exporters (cached per session)."""
    from onnxdream.builtin import builtin_model_path

    return {"dynamo": builtin_model_path(legacy=False), "legacy": builtin_model_path(legacy=True)}
