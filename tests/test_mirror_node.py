"""Every data set of the ONNX backend node tests, replayed on the mirror.

The cases are generated when the sweep runs, not when pytest collects this file, so collecting
the default (fast) suite does not pay for building ~1,900 node tests.
"""

from __future__ import annotations

import collections
import io

import numpy as np
import onnx
import onnx.parser
import pytest
import torch

from onnxdream.mirror import conformance
from onnxdream.mirror.module import Mirror

MIN_PASS_RATE = 0.91
"""Passed / all data sets must stay at or above this (53.7% before the op coverage work, 91.9% after)."""

MAX_WRONG = 4
"""Silent wrong values (6 before the op coverage work, 4 after, each in ``KNOWN_WRONG``); never more."""

MIN_CASES = 1884
"""onnx 1.23 ships 1,884 node test data sets; fewer means the loader lost some."""


@pytest.mark.slow
def test_node_sweep(capsys: pytest.CaptureFixture[str]):
    results = conformance.sweep()
    with capsys.disabled():
        print("\n" + conformance.report(results))
    counts = collections.Counter(r.status for r in results)
    wrong = {r.name: r.reason for r in results if r.status == "wrong"}
    assert len(results) >= MIN_CASES
    assert set(wrong) <= set(conformance.KNOWN_WRONG), f"new silent wrong values: {wrong}"
    assert counts["wrong"] <= MAX_WRONG
    assert set(conformance.KNOWN_WRONG) <= {r.name for r in results}
    assert counts["pass"] / len(results) >= MIN_PASS_RATE, conformance.report(results)


def _saved_and_loaded(model: onnx.ModelProto, source: str) -> Mirror:
    buffer = io.BytesIO()
    torch.save(Mirror(model, source=source), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.slow
def test_every_passing_case_survives_torch_save_and_load(monkeypatch: pytest.MonkeyPatch):
    # Node modules pickle their definitions and rebuild their converters after loading: every
    # op family (control flow, function bodies, sequences) must come back computing the same.
    cases = list(conformance.cases())
    passing = [c for c, r in zip(cases, conformance.sweep(cases), strict=True) if r.status == "pass"]
    monkeypatch.setattr(conformance, "Mirror", _saved_and_loaded)
    failed = {r.name: r.reason for r in conformance.sweep(passing) if r.status != "pass"}
    assert len(passing) / len(cases) >= MIN_PASS_RATE
    assert not failed


def _case(name: str, text: str, inputs: tuple, outputs: tuple) -> conformance.Case:
    return conformance.Case(name, onnx.parser.parse_model(text), inputs, outputs, 1e-3, 1e-7)


_RELU = '<ir_version: 8, opset_import: ["" : 13]> g (float[2] x) => (float[2] y) { y = Relu(x) }'
_X = np.array([-1.0, 2.0], np.float32)


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        (_case("test_relu", _RELU, (_X,), (np.array([0.0, 2.0], np.float32),)), "pass", ""),
        (
            _case("test_relu_wrong", _RELU, (_X,), (np.array([1.0, 2.0], np.float32),)),
            "wrong",
            "y: Mismatched elements: 1 / 2",
        ),
        (
            _case("test_relu_dtype", _RELU, (_X,), (np.array([0, 2], np.int64),)),
            "wrong",
            "y: dtype float32, expected int64",
        ),
        (
            _case("test_strings", _RELU.replace("Relu", "StringNormalizer"), (_X,), (_X,)),
            "refused",
            "StringNormalizer, opset 13): no converter",
        ),
        (
            _case("test_relu_seq", _RELU, ([_X],), (np.array(["a"]),)),
            "refused",
            "values torch cannot hold (element type <U1)",
        ),
    ],
    ids=["pass", "wrong-values", "wrong-dtype", "refused-op", "refused-values"],
)
def test_sweep_classifies_each_case(case: conformance.Case, status: str, reason: str):
    result = conformance.run(case)
    assert (result.op, result.status) == (case.model.graph.node[0].op_type, status)
    assert reason in result.reason


def test_tested_op_of_an_expanded_case_is_the_function_op():
    model = onnx.parser.parse_model(
        '<ir_version: 8, opset_import: ["" : 13]> g (float[2] x) => (float[2] y) { z = Relu(x)\n y = Neg(z) }'
    )
    assert conformance.tested_op("test_softmax_axis_0_expanded", model) == "Softmax"
    assert conformance.tested_op("test_reduce_sum_keepdims", model) == "ReduceSum"
