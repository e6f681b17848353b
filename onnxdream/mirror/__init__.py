"""ONNX graph -> differentiable torch module (see :mod:`onnxdream.mirror.module`)."""

from __future__ import annotations

from onnxdream.mirror.module import Mirror, NodeCall, Unsupported, to_torch, unsupported_nodes
from onnxdream.mirror.registry import converter, supported_ops

__all__ = ["Mirror", "NodeCall", "Unsupported", "converter", "supported_ops", "to_torch", "unsupported_nodes"]
