"""onnxdream: keep, rebuild and expose layer names in ONNX models; Deep Dream by layer name."""

from __future__ import annotations

__version__ = "0.1.0"
