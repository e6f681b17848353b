"""``onnxdream rename`` on the command line: outputs, report, dry run, undo and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.io import load_model, save_model
from onnxdream.metadata import RENAMES_KEY, get_json

runner = CliRunner()


@pytest.fixture
def squeezenet(zoo, tmp_path: Path) -> Path:
    return save_model(zoo("squeezenet"), tmp_path / "squeezenet.onnx")


def _rename(*args: str | Path):
    return runner.invoke(app, ["rename", *map(str, args)])


def test_rename_writes_the_model_the_report_and_a_summary(squeezenet: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "named.onnx", tmp_path / "report.json"
    result = _rename(squeezenet, out, "--report", report)
    assert result.exit_code == 0, result.output
    assert "weights" in result.stdout and "structure" in result.stdout
    model = load_model(out)
    data = json.loads(report.read_text())
    assert data["counts"] == {"weights": 26, "tensor": 1, "structure": 39}
    assert [n["new"] for n in data["nodes"]] == [n.name for n in model.graph.node]
    assert data["nodes"][0] == {"old": "n0", "new": "conv1", "origin": "weights"}
    assert get_json(model, RENAMES_KEY)["conv1"] == "n0"


def test_json_prints_one_document(squeezenet: Path, tmp_path: Path) -> None:
    result = _rename(squeezenet, tmp_path / "named.onnx", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["counts"]["weights"] == 26


def test_dry_run_prints_the_plan_and_writes_nothing(squeezenet: Path, tmp_path: Path) -> None:
    out = tmp_path / "named.onnx"
    result = _rename(squeezenet, out, "--dry-run", "--report", tmp_path / "r.json")
    assert result.exit_code == 0
    assert "fire9/expand3x3" in result.stdout and "dry run" in result.stdout
    assert not out.exists() and not (tmp_path / "r.json").exists()


def test_undo_round_trip_is_byte_identical(squeezenet: Path, tmp_path: Path) -> None:
    named, restored = tmp_path / "named.onnx", tmp_path / "restored.onnx"
    assert _rename(squeezenet, named).exit_code == 0
    assert _rename(named, restored, "--undo").exit_code == 0
    assert restored.read_bytes() == squeezenet.read_bytes()


def test_in_place(squeezenet: Path) -> None:
    assert _rename(squeezenet, "--in-place").exit_code == 0
    assert load_model(squeezenet).graph.node[0].name == "conv1"


def test_zoo_model_and_torch_spec_are_renamed_to_an_output_but_never_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _rename("zoo:squeezenet", "--in-place")
    assert result.exit_code == 2
    assert result.output == (
        "error: zoo:squeezenet: --in-place rewrites an ONNX file; give OUT.onnx for a zoo model\n"
    )
    assert list(tmp_path.iterdir()) == []
    assert _rename("zoo:squeezenet", "sq.onnx").exit_code == 0
    assert load_model(tmp_path / "sq.onnx").graph.node[0].name == "conv1"


def test_map_rule_and_strip_prefix(squeezenet: Path, tmp_path: Path) -> None:
    # Order: strip prefix, then the map (planned or original names), then rules.
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"conv10": "classifier", "n1": "stem_relu"}))
    out = tmp_path / "named.onnx"
    result = _rename(squeezenet, out, "--map", mapping, "--rule", "^fire=>block", "--strip-prefix", "fire2/")
    assert result.exit_code == 0, result.output
    names = {n.name for n in load_model(out).graph.node}
    assert {"classifier", "stem_relu", "block3/squeeze1x1", "squeeze1x1"} <= names
    assert "conv10" not in names


def test_rule_that_matches_nothing_warns(squeezenet: Path, tmp_path: Path) -> None:
    out = tmp_path / "named.onnx"
    result = _rename(squeezenet, out, "--rule", "^nothing$=>x")
    assert result.exit_code == 0
    assert "warning: rule '^nothing$=>x' matches no node name" in result.stderr
    assert out.exists()


BAD = [
    (["--strategy", "wieghts"], "unknown strategy 'wieghts'; did you mean 'weights'?"),
    (["--map", "{tmp}/missing.json"], "{tmp}/missing.json: map file not found"),
    (["--map", "{tmp}/dup.json"], "explicit renames give both 'conv1' and 'conv10' the name 'x'"),
    (
        ["--map", "{tmp}/clash.json"],
        "explicit renames give 'conv1' the name 'conv10', which node 'conv10' already has",
    ),
    (["--rule", "[=>x"], "rule '[=>x': bad regular expression"),
    (["--undo"], "no renames recorded"),
    (["--undo", "--overwrite-names"], "--undo restores recorded names"),
]


@pytest.mark.parametrize(
    ("args", "message"),
    BAD,
    ids=["strategy", "map-missing", "map-dup", "map-clash", "rule", "undo", "undo-all"],
)
def test_bad_input_exits_2_with_one_line_and_no_output(
    squeezenet: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "dup.json").write_text(json.dumps({"conv1": "x", "conv10": "x"}))
    (tmp_path / "clash.json").write_text(json.dumps({"conv1": "conv10"}))
    out = tmp_path / "out.onnx"
    result = _rename(squeezenet, out, *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert message.format(tmp=tmp_path) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_refuses_to_write_over_the_input(squeezenet: Path) -> None:
    before = squeezenet.read_bytes()
    result = _rename(squeezenet, squeezenet)
    assert result.exit_code == 2 and "refusing to write over the input" in result.stderr
    assert squeezenet.read_bytes() == before


def test_missing_output(squeezenet: Path) -> None:
    result = _rename(squeezenet)
    assert result.exit_code == 2 and "missing OUT.onnx" in result.stderr


def test_external_data_stays_external(zoo, tmp_path: Path) -> None:
    source = save_model(zoo("squeezenet"), tmp_path / "in" / "m.onnx", external_data=True)
    out = tmp_path / "out" / "named.onnx"
    assert _rename(source, out).exit_code == 0
    assert (tmp_path / "out" / "named.onnx.data").exists()
    model = onnx.load(str(out), load_external_data=False)
    # Weights go external; tensors under 1 KiB (biases, shapes) stay inline, as ONNX Runtime needs.
    external = {t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    big = {t.name for t in model.graph.initializer if np.prod(t.dims) * 4 >= 1024}
    assert external == big and len(big) >= 26


def test_reference_file_is_loaded_and_its_matches_reported(
    squeezenet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Match:
        node: int
        name: str
        score: float
        why: str

    seen = []

    def match_reference(target, reference, *, min_score=0.5):
        seen.append((len(reference.graph.node), min_score))
        return [Match(0, "features.0", 0.875, "weights")]

    fake = types.ModuleType("onnxdream.names.reference")
    fake.match_reference = match_reference
    monkeypatch.setitem(sys.modules, "onnxdream.names.reference", fake)
    out, report = tmp_path / "named.onnx", tmp_path / "report.json"
    result = _rename(squeezenet, out, "--reference", squeezenet, "--min-score", "0.8", "--report", report)
    assert result.exit_code == 0, result.output
    assert seen == [(66, 0.8)]
    data = json.loads(report.read_text())
    assert data["nodes"][0] == {
        "old": "n0",
        "new": "features.0",
        "origin": "reference",
        "score": 0.875,
        "why": "weights",
    }
    assert data["counts"]["reference"] == 1
