"""The converter registry: registration checks (duplicates, real ``since`` versions) and lookup."""

from __future__ import annotations

import pytest
from onnx import defs

from onnxdream.mirror import registry
from onnxdream.mirror.registry import converter, lookup, supported_ops


def _identity(node: registry.NodeView) -> registry.Converted:
    return node.call(lambda x: x, 0)


@pytest.fixture
def empty_registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    """An empty registry in place of the real one for the duration of a test."""
    table: dict = {}
    monkeypatch.setattr(registry, "_REGISTRY", table)
    return table


def test_registration_returns_the_function_and_records_it(empty_registry: dict):
    assert converter("Relu", 6, shape_inputs=[1])(_identity) is _identity
    entry = empty_registry["Relu"][6]
    assert (entry.op_type, entry.since, entry.func, entry.shape_inputs) == ("Relu", 6, _identity, (1,))


def test_duplicate_registration_is_rejected(empty_registry: dict):
    converter("Relu", 6)(_identity)
    with pytest.raises(ValueError, match=r"^duplicate converter for 'Relu' since version 6$"):
        converter("Relu", 6)(_identity)


@pytest.mark.parametrize(
    ("op", "since", "message"),
    [
        ("Relu", 7, r"^'Relu' has no schema version 7 \(version 7 is 6\)$"),
        ("Conv", 13, r"^'Conv' has no schema version 13 \(version 13 is 11\)$"),
        ("NoSuchOp", 1, r"^'NoSuchOp' has no schema at version 1$"),
    ],
    ids=["relu-7", "conv-13", "unknown-op"],
)
def test_since_must_be_a_real_schema_version(empty_registry: dict, op: str, since: int, message: str):
    with pytest.raises(ValueError, match=message):
        converter(op, since)(_identity)
    assert empty_registry.get(op, {}) == {}


@pytest.mark.parametrize(
    ("opset", "expected"),
    [(5, 1), (12, 1), (13, 13), (14, 13), (21, 13)],
    ids=["opset5", "opset12", "opset13", "opset14", "opset21"],
)
def test_lookup_takes_the_greatest_since_not_above_the_schema_version(
    empty_registry: dict, opset: int, expected: int
):
    converter("Relu", 1)(_identity)
    converter("Relu", 13)(_identity)
    entry = lookup("Relu", opset)
    assert entry is not None and entry.since == expected


def test_lookup_misses_return_none(empty_registry: dict):
    converter("Relu", 13)(_identity)
    assert lookup("Relu", 12) is None  # only newer converters
    assert lookup("Relu", 13, domain="com.microsoft") is None
    assert lookup("Relu", 13, domain="ai.onnx") is not None
    assert lookup("Sigmoid", 13) is None


def test_every_real_converter_is_registered_at_a_real_schema_version():
    table = supported_ops()
    assert table["Reshape"] == [1, 5]
    assert list(table) == sorted(table)
    for op, versions in table.items():
        for since in versions:
            assert defs.get_schema(op, since).since_version == since, (op, since)
