"""``check``: the mirror against ONNX Runtime on real architectures, and the ``check`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import pytest
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.compare import compare
from onnxdream.mirror import registry
from onnxdream.mirror_check import check

FIXTURES = Path(__file__).parent.parent / "fixtures"
TINY = FIXTURES / "tiny_cnn.onnx"
runner = CliRunner()

FAST_ZOO = ["googlenet", "squeezenet", "inception-v2", "shufflenet"]
SLOW_ZOO = ["resnet50", "densenet121", "alexnet", "vgg19", "zfnet512"]


@pytest.mark.parametrize("name", FAST_ZOO + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW_ZOO])
def test_zoo_model_passes_every_layer(zoo, name):
    result = check(zoo(name, copy=False), device="cpu")  # check leaves its model as it was
    assert result.unsupported == []
    assert len(result.layers) > 20
    assert result.ok, result.first_diverging


def test_check_leaves_the_model_unchanged():
    model = onnx.load(TINY)
    before = model.SerializeToString()
    assert check(model, device="cpu").ok
    assert model.SerializeToString() == before


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_builtin_export_passes_every_layer(builtin_exports, exporter):
    result = check(builtin_exports[exporter], device="cpu")
    assert result.ok, result.first_diverging
    assert len(result.layers) >= 90


def test_compare_fails_an_element_only_when_it_exceeds_both_tolerances():
    expected = np.array([1000.0, 1.0, 0.0], np.float32)
    # Layer scale 1000: atol becomes 0.1. 0.05 off 1000 and 2e-5 off 1 pass; 0.2 off 0 exceeds
    # both 0.1 and rtol * 0, so it fails.
    assert compare(expected + np.array([0.05, 2e-5, 0.0], np.float32), expected, 1e-4, 1e-3).ok
    found = compare(expected + np.array([0.0, 0.0, 0.2], np.float32), expected, 1e-4, 1e-3)
    assert (found.ok, found.failed, found.size) == (False, 1, 3)
    found = compare(np.array([np.nan]), np.array([np.nan]), 1e-4, 1e-3)
    assert (found.max_abs, found.max_rel, found.ok) == (0.0, 0.0, True)


def test_json_schema_and_exit_0():
    out = runner.invoke(app, ["check", str(TINY), "--device", "cpu", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert set(doc) == {"ok", "device", "layers", "unsupported"}
    assert doc["ok"] is True and doc["device"] == "cpu" and doc["unsupported"] == []
    assert [layer["name"] for layer in doc["layers"]] == [
        "stem.0",
        "stem.1",
        "block.0",
        "block.2",
        "Add",
        "pool",
        "Flatten",
        "fc",
    ]
    for layer in doc["layers"]:
        assert set(layer) == {"name", "shape", "max_abs", "max_rel", "ok"}
        assert layer["ok"] is True and layer["max_abs"] < 1e-4
    assert doc["layers"][0]["shape"] == [1, 8, 224, 224]


def test_layer_and_match_select_rows():
    out = runner.invoke(
        app, ["check", str(TINY), "--device", "cpu", "--json", "--layer", "fc", "--match", "stem.*"]
    )
    assert out.exit_code == 0, out.output
    assert [layer["name"] for layer in json.loads(out.stdout)["layers"]] == ["stem.0", "stem.1", "fc"]


def test_mismatch_exits_1_and_names_the_first_diverging_layer(monkeypatch):
    relu = registry.lookup("Relu", 17)
    wrong = registry.Entry("Relu", relu.since, lambda node: node.call(lambda x: x.relu() * 1.01, 0), ())
    monkeypatch.setitem(registry._REGISTRY["Relu"], relu.since, wrong)
    out = runner.invoke(app, ["check", str(TINY), "--device", "cpu", "--json"])
    assert out.exit_code == 1
    layers = json.loads(out.stdout)["layers"]
    assert next(layer["name"] for layer in layers if not layer["ok"]) == "stem.1"
    table = runner.invoke(app, ["check", str(TINY), "--device", "cpu"])
    assert table.exit_code == 1
    assert "first: 'stem.1'" in table.stdout


def test_unsupported_ops_are_all_listed_with_exit_1(tmp_path):
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13, "acme" : 1]>
    g (float[1,3] x) => (float[1,3] y) { a = acme.Sparkle (x)
      b = Relu (a)
      y = acme.Glitter (b) }
    """)
    model.graph.node[0].name = "fx/sparkle"
    path = tmp_path / "odd.onnx"
    onnx.save(model, path)
    out = runner.invoke(app, ["check", str(path), "--device", "cpu", "--json"])
    assert out.exit_code == 1
    doc = json.loads(out.stdout)
    assert doc["ok"] is False
    assert doc["unsupported"] == [
        {"node": "fx/sparkle", "op_type": "Sparkle"},
        {"node": "node_Glitter_0", "op_type": "Glitter"},
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["missing.onnx"], "missing.onnx: file not found", id="missing-model"),
        pytest.param(
            [str(TINY), "--layer", "stem.9"], "unknown layer 'stem.9'; did you mean", id="bad-layer"
        ),
        pytest.param([str(TINY), "--match", "nothing*"], "no layer matches 'nothing*'", id="bad-glob"),
        pytest.param(
            [str(TINY), "--match", "stem.cnv*"],
            "tiny_cnn.onnx: no layer matches 'stem.cnv*'; did you mean 'stem.1', 'stem.0', 'stem'?",
            id="glob-did-you-mean",
        ),
        pytest.param(
            [str(TINY), "--layer", "nosuch"], "tiny_cnn.onnx: unknown layer 'nosuch'", id="unknown-layer"
        ),
        pytest.param([str(TINY), "--input", "nope.npy"], "nope.npy: file not found", id="missing-input"),
        pytest.param([str(TINY), "--ort-opt", "max"], "unknown --ort-opt 'max'", id="bad-ort-opt"),
        pytest.param([str(TINY), "--device", "tpu"], "unknown device 'tpu'", id="bad-device"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    out = runner.invoke(app, ["check", *args])
    assert out.exit_code == 2
    assert message in out.stderr
    assert "Traceback" not in out.output


def test_npy_input_of_the_wrong_shape_exits_2(tmp_path):
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((1, 4, 32, 32), np.float32))
    out = runner.invoke(app, ["check", str(TINY), "--input", str(bad)])
    assert out.exit_code == 2
    assert "does not fit input 'input'" in out.stderr


def test_npy_and_image_inputs_run(tmp_path):
    good = tmp_path / "x.npy"
    np.save(good, np.random.default_rng(0).standard_normal((2, 3, 40, 56)).astype(np.float32))
    out = runner.invoke(app, ["check", str(TINY), "--input", str(good), "--device", "cpu", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["layers"][0]["shape"] == [2, 8, 40, 56]
    image = runner.invoke(
        app, ["check", str(TINY), "--input", str(FIXTURES / "pattern.png"), "--device", "cpu", "--json"]
    )
    assert image.exit_code == 0, image.output
