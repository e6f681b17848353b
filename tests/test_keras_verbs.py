"""dream, visualize and check, through the CLI, on each Keras path to ONNX after ``rename``, with the
layer given by its Keras own name: the tf2onnx fixture (channels-last, tf2onnx names) renamed alone
and against the pretrained tf2onnx export, and Keras-on-torch ``model.export(format="onnx")``
(flat ``/Conv_3`` names) renamed against the pretrained and the fine-tuned ``.h5``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.compare import ATOL
from onnxdream.graph import GraphIndex

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keras"
CPU = ["--device", "cpu"]


def _invoke(*args: str) -> dict:
    done = CliRunner().invoke(app, [*args, *CPU, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout[done.stdout.index("{") :])


def _photo(path: Path, size: int) -> Path:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    pixels = np.stack([np.sin(x / 5), np.cos(y / 3), np.sin((x + y) / 7)], axis=-1) * 0.5 + 0.5
    Image.fromarray((pixels * 255).astype(np.uint8)).save(path)
    return path


def _dream(model: Path, photo: Path, layer: str, out: Path) -> dict:
    summary = _invoke(
        "dream", str(photo), str(out), "-m", str(model), "-l", layer, "--octaves", "1", "--steps", "3"
    )
    assert summary["check"]["passed"] and summary["check"]["checks"] >= 1
    assert out.exists()
    return summary


def _gain(summary: dict) -> float:
    return summary["objective_after"] / summary["objective_before"]


def _visualize_and_check(model: Path, layer: str, size: int, out: Path) -> None:
    shown = _invoke(
        "visualize", str(model), "-l", f"{layer}:0", "--size", str(size), "--steps", "3", "-o", str(out)
    )
    assert [image["target"] for image in shown["images"]] == [f"{layer}:0"]
    assert np.isfinite(shown["images"][0]["objective"]) and shown["check"]["passed"]
    with Image.open(out) as picture:
        assert np.asarray(picture, np.float32).std() > 1.0  # a picture, not a flat field
    checked = _invoke("check", str(model))
    assert checked["ok"] and checked["unsupported"] == [] and len(checked["layers"]) > 50
    assert all(layer["ok"] for layer in checked["layers"])
    assert max(layer["max_abs"] for layer in checked["layers"]) <= ATOL  # activations here are O(1)


def _resolves_to(model: Path, layer: str) -> str:
    """The full name the layer argument ``layer`` selects: a convolution, or the layer's output node
    (Keras-on-torch's Transpose back to channels-last) whose scope holds it."""
    index = GraphIndex(onnx.load(str(model)).graph)
    found = index.resolve(layer)
    members = [*found.nodes, *index.scopes.get(found.name, [])]
    assert "Conv" in {index.nodes[i].op_type for i in members}
    return found.name


# tf2onnx (Keras on TensorFlow) -------------------------------------------------------------------


@pytest.fixture(scope="module", params=["rename", "rename-reference"])
def tf2onnx_renamed(request, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tf2onnx") / f"{request.param}.onnx"
    args = ["rename", str(FIXTURES / "fine_tuned_tf2onnx.onnx"), str(out)]
    if request.param == "rename-reference":
        args += ["--reference", str(FIXTURES / "pretrained_tf2onnx.onnx")]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    return out


def test_tf2onnx_dream_visualize_check_by_keras_name(tf2onnx_renamed: Path, tmp_path: Path) -> None:
    full = _resolves_to(tf2onnx_renamed, "block_13_expand")
    assert full in {"block_13_expand", "mobilenetv2_0.10_96/block_13_expand"}
    photo = _photo(tmp_path / "photo.png", 48)
    deep = _dream(tf2onnx_renamed, photo, "block_13_expand", tmp_path / "deep.png")
    # The fixture is MobileNetV2 with weights=None and BatchNorm's default statistics: the input's
    # signal has all but vanished by block 13 (its output moves ~1e-5 of its size between random
    # inputs), so the objective there is flat: it neither grows nor falls. A shallow layer shows the gain.
    assert abs(_gain(deep) - 1) < 1e-4
    shallow = _dream(tf2onnx_renamed, photo, "Conv1", tmp_path / "shallow.png")
    assert _gain(shallow) > 1.01
    _visualize_and_check(tf2onnx_renamed, "block_13_expand", 48, tmp_path / "v.png")


# Keras 3 on torch: model.export(format="onnx") ---------------------------------------------------


@pytest.fixture(scope="module")
def keras_on_torch(tmp_path_factory) -> Path:
    """The small fine-tuned model (BatchNorm statistics randomised), its .h5 files and its own export."""
    from tests.keras_helpers import save_fine_tuning_example, skip_without_keras

    skip_without_keras()
    folder = tmp_path_factory.mktemp("keras_torch")
    save_fine_tuning_example(folder, "exported.onnx", np.zeros((1, 16, 16, 3), np.float32))
    return folder


@pytest.mark.parametrize("reference", ["pretrained_model.h5", "fine_tuned_model.h5"])
def test_keras_on_torch_dream_visualize_check_by_keras_name(
    keras_on_torch: Path, tmp_path: Path, reference: str
) -> None:
    model = tmp_path / "named.onnx"
    args = ["rename", str(keras_on_torch / "exported.onnx"), str(model), "--reference"]
    done = CliRunner().invoke(app, [*args, str(keras_on_torch / reference)])
    assert done.exit_code == 0, done.output
    full = _resolves_to(model, "block_13_expand")
    assert full in {"block_13_expand", "tinynet_1.00_16/block_13_expand"}
    dreamed = _dream(model, _photo(tmp_path / "photo.png", 24), "block_13_expand", tmp_path / "d.png")
    assert _gain(dreamed) > 1.01
    _visualize_and_check(model, "block_13_expand", 24, tmp_path / "v.png")
