"""Keras-born ONNX named as Keras names it: tf2onnx exports (committed fixtures, made by
tools/make_keras_fixtures.py with TensorFlow), Keras-on-torch exports, and ``rename --reference``
across the issue's fine-tuning wrap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.names.apply import rename
from onnxdream.names.lost import is_generated
from onnxdream.runtime import make_session

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keras"
FINE_TUNED = FIXTURES / "fine_tuned_tf2onnx.onnx"
PRETRAINED = FIXTURES / "pretrained_tf2onnx.onnx"
LAYERS = json.loads((FIXTURES / "layers.json").read_text())
BACKBONE = "mobilenetv2_0.10_96"


def _names(model: onnx.ModelProto) -> set[str]:
    return {node.name for node in model.graph.node}


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = make_session(model, device="cpu")
    return session.run({session.input_names[0]: x})[session.output_names[0]]


@pytest.fixture(scope="module")
def renamed_tf2onnx() -> onnx.ModelProto:
    return rename(str(FINE_TUNED)).model


def test_fixture_layer_list_is_keras_own() -> None:
    fine_tuned = LAYERS["fine_tuned_tf2onnx.onnx"]
    assert len(fine_tuned) == 53 and fine_tuned[-1] == "fine_tune_conv1"
    assert f"{BACKBONE}/block_13_expand" in fine_tuned
    assert [f"{BACKBONE}/{name}" for name in LAYERS["pretrained_tf2onnx.onnx"]] == fine_tuned[:-1]


def test_tf2onnx_names_are_tensorflow_op_paths() -> None:
    names = _names(onnx.load(str(FINE_TUNED)))
    assert f"sequential_1/{BACKBONE}_1/block_13_depthwise_1/depthwise" in names
    assert sum(name.startswith("Conv__") for name in names) > 30
    assert not any(layer in names for layer in LAYERS["fine_tuned_tf2onnx.onnx"])


def test_rename_gives_every_keras_conv_layer_its_path(renamed_tf2onnx) -> None:
    names = _names(renamed_tf2onnx)
    missing = [layer for layer in LAYERS["fine_tuned_tf2onnx.onnx"] if layer not in names]
    assert missing == []
    assert not any("sequential_1" in name or name.startswith("Conv__") or ":" in name for name in names)


@pytest.mark.parametrize(
    ("layer", "op_type"),
    [
        (f"{BACKBONE}/Conv1", "Conv"),  # tf2onnx built it with bn_Conv1 folded in: the conv layer's name
        (f"{BACKBONE}/block_13_expand", "Conv"),
        (f"{BACKBONE}/block_13_depthwise", "Conv"),
        (f"{BACKBONE}/block_13_depthwise_BN", "Add"),  # batchnorm/add_1 computes the layer's output
        (f"{BACKBONE}/block_13_depthwise_BN/Mul", "Mul"),  # batchnorm/mul_1 is inside it
        (f"{BACKBONE}/block_13_expand_relu", "Clip"),
        (f"{BACKBONE}/block_14_add", "Add"),
        ("fine_tune_conv1/Conv", "Conv"),
        ("fine_tune_conv1", "Reshape"),  # the graph output, back to channels-last
    ],
    ids=lambda v: v.rsplit("/", 1)[-1] if "/" in v else v,
)
def test_rename_folds_op_leaves_into_their_layer(renamed_tf2onnx, layer: str, op_type: str) -> None:
    by_name = {node.name: node for node in renamed_tf2onnx.graph.node}
    assert by_name[layer].op_type == op_type


def test_renamed_tf2onnx_model_still_computes_keras_output(renamed_tf2onnx) -> None:
    io = np.load(FIXTURES / "fine_tuned_tf2onnx_io.npz")
    expected = io["output"]
    assert np.abs(expected).max() > 0.01
    np.testing.assert_allclose(
        _run(renamed_tf2onnx, io["input"]), expected, atol=1e-4 * np.abs(expected).max()
    )


def test_reference_across_fine_tuning_gives_backbone_names_back() -> None:
    result = rename(str(FINE_TUNED), reference=str(PRETRAINED))
    names = _names(result.model)
    backbone = LAYERS["pretrained_tf2onnx.onnx"]
    back = [layer for layer in backbone if layer in names]
    assert len(back) / len(backbone) >= 0.99
    origins = {e.new: e.origin for e in result.plan.entries}
    assert origins["block_13_expand"] == "reference"
    assert origins["fine_tune_conv1"] == "keras"  # the new head: its own name
    head = {e.new for e in result.plan.entries if e.new.startswith("fine_tune_conv1")}
    assert head == {"fine_tune_conv1", "fine_tune_conv1/Conv", "fine_tune_conv1/Relu"}


def test_cli_rename_and_layers_on_tf2onnx(tmp_path: Path) -> None:
    out = tmp_path / "named.onnx"
    runner = CliRunner()
    done = runner.invoke(app, ["rename", str(FINE_TUNED), str(out), "--reference", str(PRETRAINED)])
    assert done.exit_code == 0, done.output
    listed = runner.invoke(app, ["layers", str(out), "--json", "--op-type", "Conv"])
    assert listed.exit_code == 0, listed.output
    names = {layer["name"] for layer in json.loads(listed.stdout)}
    assert {"block_13_expand", "Conv1", "fine_tune_conv1/Conv"} <= names


@pytest.mark.parametrize(
    ("name", "lost"),
    [
        ("/Conv_3", True),
        ("/Cast_2", True),
        ("/Conv", True),
        ("/layer1/Conv", False),
        ("/fine_tune_conv1", False),
    ],
)
def test_torchscript_root_scope_names_are_lost(name: str, lost: bool) -> None:
    assert is_generated(name, name.rsplit("/", 1)[-1].split("_")[0]) is lost


# Keras 3 on torch: model.export(format="onnx") -------------------------------------------------


@pytest.fixture(scope="module")
def keras_on_torch(tmp_path_factory):
    """The small fine-tuned model's own Keras export (flat '/Conv_3' names), its .h5 files, and Keras's layer list."""
    from tests.keras_helpers import conv_layers, save_fine_tuning_example, skip_without_keras

    skip_without_keras()
    folder = tmp_path_factory.mktemp("keras_torch")
    x = np.random.default_rng(5).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    model, expected = save_fine_tuning_example(folder, "exported.onnx", x)
    return folder, conv_layers(model), x, expected


def test_keras_on_torch_export_has_no_names_and_rename_rebuilds_them(keras_on_torch) -> None:
    folder, _, x, expected = keras_on_torch
    exported = onnx.load(str(folder / "exported.onnx"))
    assert all(is_generated(node.name, node.op_type) for node in exported.graph.node)
    assert sum(node.name.startswith("/Conv") for node in exported.graph.node) == len(keras_on_torch[1])
    result = rename(str(folder / "exported.onnx"))
    assert not any(e.new.startswith("/") for e in result.plan.entries)
    np.testing.assert_allclose(_run(result.model, x), expected, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("reference", ["pretrained_model.h5", "fine_tuned_model.h5"])
def test_keras_on_torch_reference_gives_keras_names_back(keras_on_torch, reference: str) -> None:
    folder, layers, x, expected = keras_on_torch
    result = rename(str(folder / "exported.onnx"), reference=str(folder / reference))
    scopes = {name.rsplit("/", 1)[0] for name in _names(result.model)} | _names(result.model)
    backbone = [layer.split("/", 1)[1] for layer in layers if layer != "fine_tune_conv1"]
    if reference == "fine_tuned_model.h5":  # the fine-tuned file itself: every layer, nested path and all
        assert [layer for layer in layers if layer not in scopes] == []
    else:  # the pretrained one: its own (flat) names for the backbone, none for the new head
        assert [layer for layer in backbone if layer not in scopes] == []
        head_conv = f"/Conv_{len(layers) - 1}"  # the last convolution: fine_tune_conv1
        head = [e for e in result.plan.entries if e.old in {head_conv, "/Relu"}]
        assert head and all(e.origin != "reference" for e in head)
    np.testing.assert_allclose(_run(result.model, x), expected, atol=1e-4 * np.abs(expected).max())
