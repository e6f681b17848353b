"""ONNX graph -> differentiable torch module (see :mod:`onnxdream.mirror.module`)."""

from __future__ import annotations

from onnxdream.mirror.module import Mirror, Unsupported, to_torch, unsupported_nodes
from onnxdream.mirror.node import NodeModule
from onnxdream.mirror.registry import converter, supported_ops

__all__ = [
    "Mirror",
    "NodeModule",
    "Unsupported",
    "converter",
    "supported_ops",
    "to_torch",
    "unsupported_nodes",
]
