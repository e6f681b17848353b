"""Graph surgery on ONNX protos, in one place.

- :mod:`~onnxdream.surgery.select`: which layers a request names (with did-you-mean errors);
- :mod:`~onnxdream.surgery.outputs`: tensors as extra graph outputs (``expose``, and
  :func:`outputs_added` in place for one block);
- :mod:`~onnxdream.surgery.cut`: the part of a model that computes some tensors.
"""

from __future__ import annotations

from onnxdream.surgery.cut import cut_model
from onnxdream.surgery.outputs import ExposeResult, expose, outputs_added
from onnxdream.surgery.select import node_layers, select

__all__ = ["ExposeResult", "cut_model", "expose", "node_layers", "outputs_added", "select"]
