"""The ``layers`` listing on exported and zoo models."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.io import save_model
from onnxdream.layers import list_layers

runner = CliRunner()


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_depth_two_shows_the_familiar_torch_names(builtin_exports: dict[str, Path], exporter: str) -> None:
    result = runner.invoke(app, ["layers", str(builtin_exports[exporter]), "--depth", "2", "--json"])
    assert result.exit_code == 0, result.output
    names = [row["name"] for row in json.loads(result.stdout)]
    expected = ["_conv_stem", *[f"_blocks.{i}" for i in range(16)], "_conv_head", "_fc"]
    assert [n for n in names if n in expected] == expected
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["_blocks.8"]["op_type"] == "scope"
    assert rows["_blocks.8"]["shapes"] == [[1, 112, 14, 14]]
    assert rows["_fc"]["shapes"] == [[1, 1000]]


def test_json_rows_have_the_documented_keys(builtin_exports: dict[str, Path]) -> None:
    result = runner.invoke(app, ["layers", str(builtin_exports["dynamo"]), "--op-type", "Conv", "--json"])
    rows = json.loads(result.stdout)
    assert len(rows) == 49
    assert {"name", "op_type", "outputs", "shapes", "origin"} <= set(rows[0])
    assert all(row["op_type"] == "Conv" and row["origin"] == "export" for row in rows)


def test_match_filters_by_glob(builtin_exports: dict[str, Path]) -> None:
    result = runner.invoke(
        app, ["layers", str(builtin_exports["dynamo"]), "--match", "_blocks.8.*", "--json"]
    )
    names = [row["name"] for row in json.loads(result.stdout)]
    assert names == [
        "_blocks.8._expand_conv",
        "_blocks.8._swish",
        "_blocks.8._depthwise_conv",
        "_blocks.8._swish_1",
        "_blocks.8._project_conv",
    ]


def test_table_output_names_the_layers(builtin_exports: dict[str, Path]) -> None:
    result = runner.invoke(app, ["layers", str(builtin_exports["dynamo"]), "--depth", "1"])
    assert result.exit_code == 0
    assert "_blocks" in result.stdout and "_conv_stem" in result.stdout and "Conv" in result.stdout


def test_zoo_model_shapes_are_inferred(zoo) -> None:
    rows = list_layers(zoo("googlenet"))
    assert all(row.shapes and row.shapes[0] is not None for row in rows)
    assert rows[-1].op_type == "Softmax" and rows[-1].shapes == [[1, 1000]]
    assert {row.origin for row in rows} == {"kept"}


def test_symbolic_dimensions_are_shown_by_name(tmp_path: Path) -> None:
    model = onnx.parser.parse_model(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[N, 3, H, W] x) => (float[N, 3, H, W] y) {
            y = Relu(x)
        }
        """
    )
    model.graph.node[0].name = "act"
    path = save_model(model, tmp_path / "dyn.onnx")
    result = runner.invoke(app, ["layers", str(path), "--json"])
    assert json.loads(result.stdout)[0]["shapes"] == [["N", 3, "H", "W"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "file not found"), (b"garbage", "not an ONNX model")],
    ids=["missing", "garbage"],
)
def test_bad_model_files_exit_2(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["layers", str(path)])
    assert result.exit_code == 2
    assert message in result.output and str(path) in result.output.replace("\n", "")
    assert "Traceback" not in result.output
