"""Deep Dream on any ONNX CNN by layer name: ``onnxdream.dream(image, model, layers, **options)``.

The package itself is callable (``onnxdream.dream(...)`` is :func:`dream`), so the facade works
whether or not a submodule such as ``onnxdream.dream.engine`` was imported first.
"""

from __future__ import annotations

import sys
import types

from onnxdream.dream.api import dream, run
from onnxdream.dream.engine import Dreamer, DreamOptions, DreamResult
from onnxdream.dream.objectives import LayerSpec, parse_spec
from onnxdream.dream.source import open_dreamer

__all__ = [
    "DreamOptions",
    "DreamResult",
    "Dreamer",
    "LayerSpec",
    "dream",
    "open_dreamer",
    "parse_spec",
    "run",
]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: object, **kwargs: object) -> object:
        return dream(*args, **kwargs)  # type: ignore[arg-type]


sys.modules[__name__].__class__ = _CallablePackage
