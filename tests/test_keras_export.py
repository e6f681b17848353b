"""Keras files as models: export with Keras layer paths, verified against Keras; no code from the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.errors import BadModelError, OnnxDreamError
from onnxdream.keras_models import import_keras

try:  # Keras imported here through onnxdream, which picks its backend
    import_keras()
    import h5py  # noqa: F401
except (OnnxDreamError, ImportError):
    pytest.skip("needs the keras extra: pip install 'onnxdream[keras]'", allow_module_level=True)


from onnxdream.keras_export import export_keras_model
from onnxdream.keras_models import (
    UntrustedKerasError,
    application_preprocess,
    code_in_config,
    load_keras_model,
)
from onnxdream.metadata import ORIGIN_KEY, PREPROCESS_KEY, get_json, get_prop
from onnxdream.model import open_model
from onnxdream.runtime import make_session
from tests.keras_helpers import BACKBONE, INPUT, backbone, conv_layers, fine_tuned

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fine_tuned_files(tmp_path_factory) -> dict[str, Path]:
    """The issue's example, small: the fine-tuned Sequential saved as .h5 and .keras."""
    folder = tmp_path_factory.mktemp("keras")
    model = fine_tuned()
    files = {"h5": folder / "fine_tuned_model.h5", "keras": folder / "fine_tuned_model.keras"}
    model.save(files["h5"])
    model.save(files["keras"])
    return files


@pytest.fixture(scope="module")
def exported(fine_tuned_files) -> dict[str, onnx.ModelProto]:
    return {kind: open_model(str(path)).proto for kind, path in fine_tuned_files.items()}


@pytest.mark.parametrize("kind", ["h5", "keras"])
def test_export_names_nodes_by_keras_layer_path(exported, kind: str) -> None:
    names = {node.name for node in exported[kind].graph.node}
    expected = conv_layers(fine_tuned())
    assert expected == [
        f"{BACKBONE}/Conv1",
        f"{BACKBONE}/block_1_depthwise",
        f"{BACKBONE}/block_1_project",
        f"{BACKBONE}/block_13_expand",
        f"{BACKBONE}/Conv_1",
        "fine_tune_conv1",
    ]
    for layer in expected:  # the layer's output node, and its convolution inside it
        assert layer in names
        assert f"{layer}/Conv" in names
    for layer in ("bn_Conv1", "Conv1_relu", "block_1_add", "out_relu"):
        assert f"{BACKBONE}/{layer}" in names
    assert all(get_prop(n, ORIGIN_KEY) == "export" for n in exported[kind].graph.node)


def test_h5_and_keras_files_export_alike(exported) -> None:
    assert [n.name for n in exported["h5"].graph.node] == [n.name for n in exported["keras"].graph.node]


def test_export_matches_keras_predict(fine_tuned_files, exported) -> None:
    model = load_keras_model(str(fine_tuned_files["h5"]))
    onnx_model = exported["h5"]
    x = np.random.default_rng(3).uniform(-1, 1, (2, *INPUT)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    session = make_session(onnx_model, device="cpu")
    got = np.concatenate(
        [session.run({session.input_names[0]: x[i : i + 1]})[session.output_names[0]] for i in range(2)]
    )
    assert got.shape == expected.shape == (2, 6, 6, 4)  # channels-last, as Keras gives it
    assert np.abs(expected).max() > 0.1  # a real signal, not zeros
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max(), rtol=0)


def test_application_preprocessing_is_recorded() -> None:
    keras = import_keras()
    mobilenet = keras.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(32, 32, 3), include_top=False
    )
    wrapped = keras.Sequential([mobilenet, keras.layers.Conv2D(2, 1, name="fine_tune_conv1")])
    expected = {"range": [-1.0, 1.0], "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "channels": "RGB"}
    assert application_preprocess(mobilenet) == expected
    assert application_preprocess(wrapped) == expected
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert application_preprocess(vgg)["channels"] == "BGR"
    assert application_preprocess(backbone()) is None


def test_export_records_application_range_and_user_mean_std() -> None:
    keras = import_keras()
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="Conv1")(inputs), name="mobilenetv2_0.35_8")
    recorded = get_json(export_keras_model(model).model, PREPROCESS_KEY)
    assert recorded["range"] == [-1.0, 1.0] and recorded["mean"] == [0.0, 0.0, 0.0]
    override = get_json(export_keras_model(model, mean=[0.5] * 3, std=[0.25] * 3).model, PREPROCESS_KEY)
    assert (
        override["mean"] == [0.5] * 3 and override["std"] == [0.25] * 3 and override["range"] == [-1.0, 1.0]
    )


def _lambda_model():
    keras = import_keras()
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    return keras.Model(inputs, x, name="with_lambda")


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_lambda_layer_is_refused_without_trust(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"lambda{suffix}"
    _lambda_model().save(path)
    with pytest.raises(UntrustedKerasError, match=r"Lambda layer 'double'.*trust_pickle=True"):
        load_keras_model(str(path))
    with pytest.raises(UntrustedKerasError):
        open_model(str(path))


def test_lambda_layer_loads_with_trust(tmp_path: Path) -> None:
    path = tmp_path / "lambda.h5"
    _lambda_model().save(path)
    model = load_keras_model(str(path), trust_pickle=True)
    x = np.ones((1, 8, 8, 3), np.float32)
    assert np.allclose(model.predict(x, verbose=0), 2.0 * _conv_only(model)(x))


def _conv_only(model):
    keras = import_keras()
    return lambda x: keras.ops.convert_to_numpy(model.get_layer("conv")(x))


def test_custom_objects_are_refused() -> None:
    keras = import_keras()
    config = json.loads(json.dumps({"class_name": "Functional", "config": {"layers": []}}))
    assert code_in_config(config, keras) is None
    custom = {
        "class_name": "Functional",
        "config": {"layers": [{"class_name": "MyBlock", "config": {"name": "b"}}]},
    }
    assert code_in_config(custom, keras) == "a custom object 'MyBlock' 'b'"
    module = {"class_name": "Dense", "module": "evil.layers", "config": {"name": "d"}}
    assert "from module 'evil.layers'" in code_in_config(module, keras)
    registered = {
        "class_name": "Dense",
        "module": "keras.layers",
        "registered_name": "Custom>Dense",
        "config": {},
    }
    assert code_in_config(registered, keras) == "a custom object 'Custom>Dense'"
    activation = {"class_name": "function", "module": "builtins", "config": "exec"}
    assert code_in_config(activation, keras) is not None


def test_custom_layer_file_is_refused(tmp_path: Path) -> None:
    keras = import_keras()

    @keras.saving.register_keras_serializable(package="Tests")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 3.0

    inputs = keras.Input((4, 4, 1))
    path = tmp_path / "custom.keras"
    keras.Model(inputs, Scale(name="scale")(inputs)).save(path)
    with pytest.raises(UntrustedKerasError, match="custom object 'Scale' 'scale' from module"):
        load_keras_model(str(path))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("junk.h5", b"not hdf5 at all", "not a Keras file"),
        ("empty.keras", b"", "not a Keras file"),
        ("missing.keras", None, "not found"),
    ],
    ids=["junk-h5", "empty-keras", "missing"],
)
def test_bad_keras_files_are_refused(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadModelError, match=message):
        open_model(str(path))


def test_zip_without_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(BadModelError, match=r"no config\.json"):
        open_model(str(path))


def test_h5_weights_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "only.weights.h5"
    backbone().save_weights(path)
    with pytest.raises(BadModelError, match="no Keras model in it"):
        open_model(str(path))


def test_torch_backend_is_chosen_without_tensorflow() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    code = (
        "import importlib.util, sys\n"
        "from onnxdream.keras_models import import_keras\n"
        "assert importlib.util.find_spec('tensorflow') is None\n"
        "print(import_keras().backend.backend())"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "torch"


def test_cli_export_of_a_keras_file(tmp_path: Path, fine_tuned_files) -> None:
    out = tmp_path / "fine_tuned.onnx"
    done = CliRunner().invoke(app, ["export", str(fine_tuned_files["h5"]), str(out), "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["ok"] and summary["max_abs_diff"] <= summary["limit"]
    onnx.checker.check_model(onnx.load(str(out)))
    assert "fine_tune_conv1" in {node.name for node in onnx.load(str(out)).graph.node}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--legacy"], "--legacy is the TorchScript exporter"),
        (["--input-shape", "1,3,16,16"], "does not fit the model's input (N,16,16,3, channels last)"),
    ],
    ids=["legacy", "bad-shape"],
)
def test_cli_export_bad_options(tmp_path: Path, fine_tuned_files, args: list[str], message: str) -> None:
    out = tmp_path / "out.onnx"
    done = CliRunner().invoke(app, ["export", str(fine_tuned_files["keras"]), str(out), *args])
    assert done.exit_code == 2
    assert message in done.output and len(done.output.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_export_refuses_lambda_without_trust(tmp_path: Path) -> None:
    path, out = tmp_path / "lambda.h5", tmp_path / "out.onnx"
    _lambda_model().save(path)
    done = CliRunner().invoke(app, ["export", str(path), str(out)])
    assert done.exit_code == 2
    assert "Lambda layer 'double'" in done.output and "--trust-pickle" in done.output
    assert not out.exists()
    trusted = CliRunner().invoke(app, ["export", str(path), str(out), "--trust-pickle"])
    assert trusted.exit_code == 0, trusted.output


def test_keras_flow_dream_visualize_check_by_layer_name(tmp_path: Path, exported) -> None:
    """The issue's flow on the exported (channels-last) model, the layer given by its own name."""
    from onnxdream.io import save_model

    model = tmp_path / "fine_tuned.onnx"
    save_model(exported["h5"], model)
    image = tmp_path / "photo.png"
    y, x = np.mgrid[0:40, 0:48].astype(np.float32)
    pixels = np.stack([np.sin(x / 5), np.cos(y / 3), np.sin((x + y) / 7)], axis=-1) * 0.5 + 0.5
    Image.fromarray((pixels * 255).astype(np.uint8)).save(image)
    runner = CliRunner()
    steps = ["--device", "cpu", "--steps", "2"]
    dreamed = runner.invoke(
        app,
        [
            "dream",
            str(image),
            str(tmp_path / "d.png"),
            "-m",
            str(model),
            "-l",
            "block_13_expand",
            "--octaves",
            "1",
            *steps,
        ],
    )
    assert dreamed.exit_code == 0, dreamed.output
    with Image.open(tmp_path / "d.png") as out:
        assert out.size == (48, 40)
        assert np.abs(np.asarray(out, np.float32) / 255 - pixels).max() > 1 / 255  # the dream changed it
    shown = runner.invoke(
        app,
        [
            "visualize",
            str(model),
            "-l",
            "fine_tune_conv1:1",
            "--size",
            "32",
            "-o",
            str(tmp_path / "v.png"),
            *steps,
        ],
    )
    assert shown.exit_code == 0, shown.output
    checked = runner.invoke(app, ["check", str(model), "--device", "cpu", "--json"])
    assert checked.exit_code == 0, checked.output
