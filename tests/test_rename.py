"""``rename`` on real graphs: the nine model-zoo files and both torch exports of the built-in model."""

from __future__ import annotations

import hashlib
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest

from onnxdream.graph import GraphIndex
from onnxdream.io import load_model, save_model
from onnxdream.metadata import ORIGIN_KEY, RENAMES_KEY, SCORE_KEY, get_json, get_prop
from onnxdream.names.apply import rename, undo
from onnxdream.runtime import clear_cache, make_session
from onnxdream.zoo import LIGHT_ZOO

BIG = {"vgg19", "alexnet", "zfnet512"}
ZOO = [pytest.param(name, marks=pytest.mark.slow) if name in BIG else name for name in LIGHT_ZOO]
LAYER_OPS = ("Conv", "Gemm", "BatchNormalization")
ROLE = re.compile(r"_(?:w|b|s|rm|riv|scale|bias|mean|var)_0$")


def _expected_stem(node: onnx.NodeProto, initializers: set[str]) -> str:
    """Caffe2 zoo weights: the first named parameter without its role suffix (``_w_0``, ``_s_0``)."""
    parameter = next(x for x in node.input[1:] if x in initializers and ROLE.search(x))
    return ROLE.sub("", parameter)


def _strip_renames(renamed: onnx.ModelProto, original: onnx.ModelProto) -> onnx.ModelProto:
    """``renamed`` (edited in place) with the original names back and rename's own metadata removed."""
    for node, before in zip(renamed.graph.node, original.graph.node, strict=True):
        node.name = before.name
        kept = [p for p in node.metadata_props if p.key not in (ORIGIN_KEY, SCORE_KEY)]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    kept = [p for p in renamed.metadata_props if p.key != RENAMES_KEY]
    del renamed.metadata_props[:]
    renamed.metadata_props.extend(kept)
    return renamed


def _digest(model: onnx.ModelProto) -> str:
    """One serialisation at a time: two of vgg19 side by side are 1.1 GB."""
    return hashlib.sha256(model.SerializeToString()).hexdigest()


def _run(model: onnx.ModelProto | Path) -> dict[str, np.ndarray]:
    session = make_session(model, device="cpu")
    rng = np.random.default_rng(0)
    feeds = {}
    for value in session.session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in value.shape]
        feeds[value.name] = rng.standard_normal(shape).astype(np.float32)
    return session.run(feeds)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_gets_weight_stems_and_scoped_names_and_nothing_else_changes(
    zoo, name: str, tmp_path: Path
) -> None:
    # Memory (vgg19 is 550 MB of weights): the cached original, never copied; one ONNX Runtime
    # session at a time, the renamed one read from its file; one serialisation at a time.
    original = zoo(name, copy=False)
    before = _run(original)
    clear_cache()
    result = rename(original)
    renamed = result.model
    initializers = {t.name for t in original.graph.initializer}

    names = [n.name for n in renamed.graph.node]
    assert all(names) and len(set(names)) == len(names)
    for node, entry in zip(renamed.graph.node, result.plan.entries, strict=True):
        if node.op_type in LAYER_OPS:
            assert (node.name, entry.origin) == (_expected_stem(node, initializers), "weights")
        elif entry.origin == "structure":
            # Scope-derived: '<scope>/<OpType>[_k]', never a bare counter.
            assert re.fullmatch(rf".+/{node.op_type}(_\d+)?", node.name), node.name
        assert get_prop(node, ORIGIN_KEY) == entry.origin

    assert get_json(renamed, RENAMES_KEY) == {
        n.name: o.name for n, o in zip(renamed.graph.node, original.graph.node, strict=True)
    }
    onnx.checker.check_model(renamed)
    path = save_model(renamed, tmp_path / "renamed.onnx")
    assert _digest(_strip_renames(renamed, original)) == _digest(original)
    del result, renamed
    after = _run(path)
    clear_cache()
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


@pytest.mark.parametrize(
    "block", ["inception_3a", "inception_3b", "inception_4a", "inception_4c", "inception_4e", "inception_5b"]
)
def test_googlenet_blocks_are_scopes_whose_output_is_their_concat(zoo, block: str) -> None:
    renamed = rename(zoo("googlenet")).model
    index = GraphIndex(renamed.graph)
    layer = index.resolve(block)
    assert layer.kind == "scope"
    assert [index.nodes[index.producer[t]].name for t in layer.outputs] == [f"{block}/Concat"]


def test_same_input_gives_byte_identical_output(zoo) -> None:
    first = rename(zoo("inception-v2")).model.SerializeToString()
    second = rename(zoo("inception-v2")).model.SerializeToString()
    assert first == second


def test_second_rename_changes_nothing(zoo) -> None:
    once = rename(zoo("resnet50")).model
    twice = rename(once)
    assert twice.renamed == []
    assert twice.model.SerializeToString() == once.SerializeToString()


def test_undo_restores_the_original_model_exactly(zoo) -> None:
    original = zoo("squeezenet")
    restored = undo(rename(original).model).model
    assert restored.SerializeToString() == original.SerializeToString()


def test_chained_renames_undo_in_one_step(zoo) -> None:
    original = zoo("squeezenet")
    first = rename(original).model
    second = rename(first, rules=[r"^fire(\d)/=>fire_\1/"], mapping={"conv10": "classifier"}).model
    assert "classifier" in {n.name for n in second.graph.node}
    history = get_json(second, RENAMES_KEY)
    conv10 = next(i for i, n in enumerate(first.graph.node) if n.name == "conv10")
    assert history["classifier"] == original.graph.node[conv10].name and "conv10" not in history
    assert undo(second).model.SerializeToString() == original.SerializeToString()


def test_kept_names_stay_and_generated_ones_go(zoo) -> None:
    model = zoo("googlenet")
    model.graph.node[0].name = "stem"  # a person's name: kept
    model.graph.node[1].name = "node_Relu_1"  # generated: replaced
    result = rename(model)
    assert [n.name for n in result.model.graph.node[:2]] == ["stem", "stem/Relu"]
    assert get_prop(result.model.graph.node[0], ORIGIN_KEY) is None
    assert result.plan.entries[0].origin == "kept"


def test_all_renames_kept_names_too(zoo) -> None:
    model = zoo("googlenet")
    model.graph.node[0].name = "stem"
    assert rename(model, rename_all=True).model.graph.node[0].name == "conv1/7x7_s2"


def test_strip_prefix_applies_to_kept_names(zoo) -> None:
    model = zoo("squeezenet")
    named = rename(model, rules=["^=>0."]).model
    assert all(n.name.startswith("0.") for n in named.graph.node)
    stripped = rename(named, strip_prefix="0.")
    assert [n.name for n in stripped.model.graph.node] == [n.name for n in rename(model).model.graph.node]
    assert {e.origin for e in stripped.renamed} == {"map"}


@dataclass(frozen=True)
class FakeMatch:
    node: int
    name: str
    score: float
    why: str


def test_reference_matches_come_first_and_the_rest_falls_back(zoo, monkeypatch) -> None:
    calls = []

    def match_reference(target, reference, *, min_score=0.5):
        calls.append(min_score)
        return [
            FakeMatch(0, "features.0", 0.93, "conv shape + weights"),
            FakeMatch(2, "features.3", 0.71, "shape"),
        ]

    fake = types.ModuleType("onnxdream.names.reference")
    fake.match_reference = match_reference
    monkeypatch.setitem(sys.modules, "onnxdream.names.reference", fake)

    model = zoo("googlenet")
    model.graph.node[2].name = "kept_pool"  # a good name: the reference still wins
    result = rename(model, reference=zoo("googlenet"), min_score=0.6)
    assert calls == [0.6]
    nodes = result.model.graph.node
    assert [n.name for n in nodes[:4]] == ["features.0", "features.0/Relu", "features.3", "features.3/LRN"]
    assert [get_prop(n, ORIGIN_KEY) for n in nodes[:4]] == [
        "reference",
        "structure",
        "reference",
        "structure",
    ]
    assert [get_prop(n, SCORE_KEY) for n in nodes[:4]] == ["0.9300", None, "0.7100", None]
    assert result.report()["nodes"][0] == {
        "old": "n0",
        "new": "features.0",
        "origin": "reference",
        "score": 0.93,
        "why": "conv shape + weights",
    }


STRIPS = {
    "empty": lambda i, node: "",
    "generated": lambda i, node: f"node_{node.op_type}_{i}",
}


@pytest.mark.parametrize("strip_metadata", [False, True], ids=["with-metadata", "no-metadata"])
@pytest.mark.parametrize("style", STRIPS)
@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_stripped_torch_exports_get_the_export_names_back(
    builtin_exports: dict[str, Path], exporter: str, style: str, strip_metadata: bool
) -> None:
    exported = load_model(builtin_exports[exporter])
    truth = {i: n.name for i, n in enumerate(exported.graph.node) if n.op_type in ("Conv", "Gemm")}
    stripped = onnx.ModelProto()
    stripped.CopyFrom(exported)
    for i, node in enumerate(stripped.graph.node):
        node.name = STRIPS[style](i, node)
        if strip_metadata:
            del node.metadata_props[:]
    renamed = rename(stripped).model
    assert {i: renamed.graph.node[i].name for i in truth} == truth
    names = [n.name for n in renamed.graph.node]
    assert all(names) and len(set(names)) == len(names)
