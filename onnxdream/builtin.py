"""The built-in EfficientNet-Lite0 as ONNX: exported once per torch and onnx version, then cached."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from onnxdream.io import save_model
from onnxdream.torch_export import export_model, require_match
from onnxdream.zoo import BUILTIN, EFFICIENTNET


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/onnxdream`` (``~/.cache/onnxdream`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "onnxdream"


def builtin_model_path(legacy: bool = False) -> Path:
    """The cached export of the built-in model (made on first use; ``legacy``: the TorchScript exporter)."""
    import torch

    exporter = "legacy" if legacy else "dynamo"
    path = cache_dir() / f"{EFFICIENTNET}-{exporter}-torch{torch.__version__}-onnx{onnx.__version__}.onnx"
    if not path.exists():
        result = export_model(BUILTIN, legacy=legacy)
        require_match(result, BUILTIN)
        save_model(result.model, path)
    return path
