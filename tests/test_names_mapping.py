"""Explicit renames: strip prefix, JSON map, regex rules, and the errors they can cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from onnxdream.errors import OnnxDreamError
from onnxdream.names.mapping import Explicit, Rule, apply_explicit, load_map

NAMES = ["0._conv_stem", "0._blocks.0._depthwise_conv", "1.fc", "Relu_0"]
ORIGINALS = ["node_Conv_1", "node_Conv_2", "node_Gemm_3", ""]


def test_strip_prefix_map_and_rules_apply_in_that_order() -> None:
    explicit = Explicit(
        strip_prefix="0.",
        mapping={"1.fc": "head.fc", "": "ignored-empty-key", "node_Conv_2": "dw"},
        rules=(Rule.parse(r"^_conv_(\w+)$=>conv.\1"),),
    )
    changed, warnings = apply_explicit(NAMES, ORIGINALS, explicit)
    assert changed == {0: "conv.stem", 1: "dw", 2: "head.fc"}
    assert warnings == ["map entry '' matches no node name"]


def test_things_that_match_nothing_warn() -> None:
    explicit = Explicit(strip_prefix="backbone.", rules=(Rule.parse("^zzz=>y"),))
    changed, warnings = apply_explicit(NAMES, ORIGINALS, explicit)
    assert changed == {}
    assert warnings == [
        "prefix 'backbone.' to strip matches no node name",
        "rule '^zzz=>y' matches no node name",
    ]


@pytest.mark.parametrize(
    ("explicit", "message"),
    [
        (
            Explicit(mapping={"1.fc": "Relu_0"}),
            "explicit renames give '1.fc' the name 'Relu_0', which node 'Relu_0' already has",
        ),
        (
            Explicit(mapping={"1.fc": "x", "Relu_0": "x"}),
            "explicit renames give both '1.fc' and 'Relu_0' the name 'x'",
        ),
        (Explicit(rules=(Rule.parse("^1\\.fc$=>"),)), "explicit renames give node '1.fc' an empty name"),
    ],
    ids=["collides-with-kept", "duplicate", "empty"],
)
def test_duplicates_and_empty_names_are_refused(explicit: Explicit, message: str) -> None:
    with pytest.raises(OnnxDreamError) as caught:
        apply_explicit(NAMES, ORIGINALS, explicit)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no-arrow", "rule 'no-arrow': expected 'REGEX=>REPLACEMENT'"),
        ("([=>x", "rule '([=>x': bad regular expression"),
    ],
)
def test_bad_rules(text: str, message: str) -> None:
    with pytest.raises(OnnxDreamError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Rule.parse(text)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "map file not found"),
        ("{not json", "map file is not valid JSON"),
        ('["a", "b"]', "map file must be a JSON object of strings"),
        ('{"a": 1}', "map file must be a JSON object of strings"),
    ],
    ids=["missing", "invalid-json", "list", "non-string"],
)
def test_bad_map_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "map.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(OnnxDreamError) as caught:
        load_map(path)
    assert str(caught.value).startswith(f"{path}: {message}")
