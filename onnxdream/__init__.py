"""onnxdream: keep, rebuild and expose layer names in ONNX models; Deep Dream by layer name."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The public verbs, imported on first use so that ``import onnxdream`` stays fast.
_LAZY = {"rename": "onnxdream.names.apply"}

__all__ = ["rename"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'onnxdream' has no attribute {name!r}")
