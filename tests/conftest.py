"""Shared fixtures: light model-zoo graphs with seeded weights, the built-in model's exports, the
tiny CNN of the dream tests as an ONNX file and a photo for it."""

from __future__ import annotations

import ctypes
import gc
import os
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


_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
_TRIM_ABOVE = 1 << 30
"""Resident bytes past which a finished test's garbage is collected and returned to the system."""


def _resident_bytes() -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


@pytest.fixture(autouse=True)
def _free_memory() -> None:
    """After each test: drop cached ONNX Runtime sessions (each holds its model's weights) and,
    past 1 GiB resident, collect garbage and hand freed heap back (glibc keeps it otherwise, and
    the next big model then stacks on top: the suite must stay under 4 GB)."""
    yield
    runtime = sys.modules.get("onnxdream.runtime")
    if runtime is not None:
        runtime.clear_cache()
    if _LIBC is not None and _resident_bytes() > _TRIM_ABOVE:
        gc.collect()
        _LIBC.malloc_trim(0)


@pytest.fixture(scope="module", autouse=True)
def _forget_zoo_model() -> None:
    """A test file's last zoo model is not kept for the next file (vgg19 is 550 MB)."""
    yield
    _zoo_original.cache_clear()


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


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dream tests' tiny CNN (tests.dream_helpers.tiny_onnx) saved as an ONNX file."""
    from tests.dream_helpers import tiny_onnx

    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    onnx.save(tiny_onnx(), path)
    return path


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 64x48 PNG of a smooth seeded pattern (tests.dream_helpers.pattern)."""
    from onnxdream.inputs.images import to_pil
    from tests.dream_helpers import pattern

    path = tmp_path / "photo.png"
    to_pil(pattern(48, 64)).save(path)
    return path
