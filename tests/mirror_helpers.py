"""Shared helpers for the mirror tests: build small models inline and compare with ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from onnxdream.mirror import to_torch


def parse(text: str) -> onnx.ModelProto:
    """A model from ONNX text, checked."""
    model = onnx.parser.parse_model(text)
    onnx.checker.check_model(model, full_check=True)
    return model


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def assert_matches_ort(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], atol: float = 1e-5, rtol: float = 1e-4
) -> None:
    """The mirror's graph outputs equal ONNX Runtime's: same shapes, dtypes, values within tolerance."""
    expected = ort_run(model, feeds)
    _assert_mirror_gives(model, feeds, expected, atol, rtol)


def _assert_mirror_gives(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], expected: list, atol: float, rtol: float
) -> None:
    """The mirror's graph outputs on ``feeds`` equal ``expected``: same shapes, dtypes, values within tolerance."""
    mirror = to_torch(model)
    with torch.no_grad():
        got = mirror.tensors({k: torch.from_numpy(v) for k, v in feeds.items()}, names=mirror.output_names)
    for name, want in zip(mirror.output_names, expected, strict=True):
        actual = got[name].numpy()
        assert actual.shape == want.shape, name
        assert actual.dtype == want.dtype, name
        np.testing.assert_allclose(actual, want, atol=atol, rtol=rtol, err_msg=name)


def rand(*shape: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def build(
    opset: int, nodes: list[str], feeds: dict, inits: dict | None = None, outputs=None
) -> onnx.ModelProto:
    """A model of ``nodes`` (ONNX text, one per line); outputs default to ``y`` as float."""
    graph_nodes = [onnx.parser.parse_node(line) for line in nodes]
    inputs = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        for k, v in feeds.items()
    ]
    outs = [
        helper.make_tensor_value_info(n, t, None) for n, t in (outputs or {"y": TensorProto.FLOAT}).items()
    ]
    initializers = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    graph = helper.make_graph(graph_nodes, "g", inputs, outs, initializers)
    # Outputs carry their element type only; ONNX Runtime infers the shapes.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def assert_matches_reference(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], atol: float = 1e-5, rtol: float = 1e-4
) -> None:
    """As :func:`assert_matches_ort`, against onnx's reference evaluator (for ops ONNX Runtime lacks)."""
    from onnx.reference import ReferenceEvaluator

    expected = ReferenceEvaluator(model).run(None, feeds)
    _assert_mirror_gives(model, feeds, expected, atol, rtol)
