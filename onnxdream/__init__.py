"""onnxdream: keep, rebuild and expose layer names in ONNX models; Deep Dream by layer name."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from onnxdream.dream import dream
    from onnxdream.dream.visualize import visualize
    from onnxdream.mirror import to_torch
    from onnxdream.mirror_check import check
    from onnxdream.model import Model, open_model
    from onnxdream.names.apply import rename
    from onnxdream.surgery import expose
    from onnxdream.torch_export import export_model as export

# The public verbs, imported on first use so that ``import onnxdream`` stays fast.
_LAZY = {
    "export": ("onnxdream.torch_export", "export_model"),
    "rename": ("onnxdream.names.apply", "rename"),
    "expose": ("onnxdream.surgery", "expose"),
    "to_torch": ("onnxdream.mirror", "to_torch"),
    "open_model": ("onnxdream.model", "open_model"),
    "Model": ("onnxdream.model", "Model"),
    "check": ("onnxdream.mirror_check", "check"),
    "dream": ("onnxdream.dream", "dream"),
    "visualize": ("onnxdream.dream.visualize", "visualize"),
}

__all__ = ["Model", "check", "dream", "export", "expose", "open_model", "rename", "to_torch", "visualize"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'onnxdream' has no attribute {name!r}")
