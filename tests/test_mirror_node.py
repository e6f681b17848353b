"""The ONNX backend node tests, replayed on the mirror for every op it claims."""

from __future__ import annotations

import pytest

from onnxdream.mirror import conformance

_CASES = list(conformance.cases())
_CLAIMED = [c for c in _CASES if conformance.claimed(c)]


def test_node_suite_is_substantial():
    # Guards against the suite silently shrinking (a loader change, a wheel without the data).
    assert len(_CLAIMED) > 900


def test_skip_list_names_real_claimed_cases():
    claimed = {c.name for c in _CLAIMED}
    assert set(conformance.SKIP) <= claimed


@pytest.mark.slow
@pytest.mark.parametrize("case", _CLAIMED, ids=[c.name for c in _CLAIMED])
def test_node(case: conformance.Case):
    if case.name in conformance.SKIP:
        pytest.skip(conformance.SKIP[case.name])
    result = conformance.run(case)
    assert result.status == "pass", result.reason
