"""Every data set of the ONNX backend node tests, replayed on the mirror.

The cases are generated when the sweep runs, not when pytest collects this file, so collecting
the default (fast) suite does not pay for building ~1,900 node tests.
"""

from __future__ import annotations

import collections

import pytest

from onnxdream.mirror import conformance

MIN_PASS_RATE = 0.91
"""Passed / all data sets must stay at or above this (53.7% before the op coverage work)."""

MAX_WRONG = 6
"""Silent wrong values measured before the op coverage work; the count must never grow."""

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
