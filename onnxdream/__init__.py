"""onnxdream: keep, rebuild and expose layer names in ONNX models; Deep Dream by layer name."""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy, so `import onnxdream` stays light; torch loads only when a verb is used.
    if name == "dream":
        import importlib

        return importlib.import_module("onnxdream.dream")
    raise AttributeError(f"module 'onnxdream' has no attribute {name!r}")
