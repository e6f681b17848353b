"""onnxdream: keep, rebuild and expose layer names in ONNX models; Deep Dream by layer name."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["check", "to_torch"]


def __getattr__(name: str):
    # Lazy: ``import onnxdream`` stays fast; torch loads only when the mirror is used.
    if name == "to_torch":
        from onnxdream.mirror import to_torch

        return to_torch
    if name == "check":
        from onnxdream.check import check

        return check
    raise AttributeError(f"module 'onnxdream' has no attribute {name!r}")
