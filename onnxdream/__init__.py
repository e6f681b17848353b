"""onnxdream: keep, rebuild and expose layer names in ONNX models; Deep Dream by layer name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["expose"]

if TYPE_CHECKING:
    from onnxdream.surgery import expose

_LAZY = {"expose": "onnxdream.surgery"}


def __getattr__(name: str) -> Any:
    # Lazy: `import onnxdream` stays fast; onnx/torch load only when a verb is used.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'onnxdream' has no attribute {name!r}")
