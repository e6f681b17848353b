"""Channels-last (NHWC) models: the layout found from the model or given, in every verb."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.dream import DreamOptions, LayerSpec, open_dreamer
from onnxdream.dream.channels import channel_count
from onnxdream.dream.visualize import run as visualize_run
from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.graph import GraphIndex
from onnxdream.inputs.feeds import load_input
from onnxdream.inputs.images import load_image, to_pil
from onnxdream.inputs.normalize import Preprocess, preprocess_for
from onnxdream.inputs.random import random_inputs
from onnxdream.layers import list_layers
from onnxdream.layout import NCHW, NHWC, InputLayout, input_layout, tensor_layouts
from onnxdream.metadata import PREPROCESS_KEY, set_json
from onnxdream.mirror_check import check
from onnxdream.runtime import RunError, make_session
from onnxdream.sizes import InputSizeError, ort_probe
from onnxdream.surgery import expose
from tests.dream_helpers import pattern, tiny_onnx
from tests.layout_models import (
    channels_last,
    hidden_layout,
    keras_torch_like,
    stride_two_skip,
    tf2onnx_like,
    torch_nhwc_onnx,
)

runner = CliRunner()
FAST = ["--octaves", "2", "--steps", "3", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("layout")
    paths = {
        "tf": folder / "tf.onnx",
        "tf48": folder / "tf48.onnx",
        "torch": folder / "torch.onnx",
        "hidden": folder / "hidden.onnx",
        "photo": folder / "photo.png",
    }
    onnx.save(tf2onnx_like(), paths["tf"])
    onnx.save(tf2onnx_like(48), paths["tf48"])
    onnx.save(torch_nhwc_onnx(), paths["torch"])
    onnx.save(hidden_layout(), paths["hidden"])
    to_pil(pattern(40, 56)).save(paths["photo"])
    return paths


def _recorded(model: onnx.ModelProto, layout: str) -> onnx.ModelProto:
    set_json(model, PREPROCESS_KEY, {"layout": layout})
    return model


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (tf2onnx_like, InputLayout(NHWC, "transpose")),
        (lambda: tf2onnx_like(48), InputLayout(NHWC, "transpose")),
        (torch_nhwc_onnx, InputLayout(NHWC, "transpose")),
        (hidden_layout, InputLayout(NCHW, "default")),
        (lambda: _recorded(hidden_layout(), "nhwc"), InputLayout(NHWC, "metadata")),
        (tiny_onnx, InputLayout(NCHW, "default")),
    ],
    ids=["tf2onnx", "tf2onnx-fixed", "torch-permute", "hidden", "recorded", "nchw"],
)
def test_layout_found_from_the_model(make, expected: InputLayout) -> None:
    assert input_layout(make()) == expected


def test_option_overrides_and_is_checked() -> None:
    assert input_layout(tf2onnx_like(), "nchw") == InputLayout(NCHW, "option")
    assert input_layout(hidden_layout(), "NHWC") == InputLayout(NHWC, "option")
    with pytest.raises(OptionError) as info:
        input_layout(tiny_onnx(), "chw")
    assert str(info.value) == "layout must be nchw or nhwc, got 'chw'"


def test_malformed_recorded_layout() -> None:
    with pytest.raises(OnnxDreamError, match="layout must be NCHW or NHWC, got 'HWC'"):
        input_layout(_recorded(hidden_layout(), "HWC"))


def test_wide_last_axis_is_not_an_image() -> None:
    # (1, 8, 8, 16) transposed to NCHW: 16 channels is no image's last axis, so no guess.
    model = tf2onnx_like()
    model.graph.input[0].type.tensor_type.shape.dim[3].dim_value = 16
    assert input_layout(model) == InputLayout()


def test_tensor_layouts_follow_transposes() -> None:
    layouts = tensor_layouts(GraphIndex(tf2onnx_like().graph), NHWC)
    assert layouts == {
        "input_1": NHWC,
        "input_nchw": NCHW,
        "e1": NCHW,
        "r1": NCHW,
        "p1": NCHW,
        "e2": NCHW,
        "r2": NCHW,
        "r2_nhwc": NHWC,
        "head_out": NHWC,
    }  # 'logits' (after a reduction) is not followed


def test_preprocess_in_model_layout() -> None:
    pixels = torch.rand(1, 3, 5, 7)
    nchw = preprocess_for(tiny_onnx())
    nhwc = preprocess_for(tf2onnx_like())
    assert nhwc.layout == InputLayout(NHWC, "transpose")
    assert torch.equal(nhwc.to_model(pixels), nchw.to_model(pixels).permute(0, 2, 3, 1))
    torch.testing.assert_close(nhwc.to_pixels(nhwc.to_model(pixels)), pixels)
    assert Preprocess().layout == InputLayout()


def test_default_and_file_inputs_in_model_layout(files: dict[str, Path]) -> None:
    model = onnx.load(files["tf"])
    assert random_inputs(model)["input_1"].shape == (1, 224, 224, 3)
    assert random_inputs(model, size=(64, 32))["input_1"].shape == (1, 64, 32, 3)
    assert random_inputs(model, layout="nchw")["input_1"].shape == (1, 3, 224, 3)  # free dims read as NCHW
    fixed = onnx.load(files["tf48"])
    feeds = load_input(files["photo"], fixed)
    assert feeds["input_1"].shape == (1, 48, 48, 3)
    # the same pixels as the NCHW path, transposed: normalisation is the model's, only the layout differs
    rgb = torch.from_numpy(load_image(files["photo"])).permute(2, 0, 1)[None]
    free = load_input(files["photo"], model)["input_1"]
    np.testing.assert_allclose(
        free, preprocess_for(None).to_model(rgb).permute(0, 2, 3, 1).numpy(), atol=1e-6
    )


def test_size_probe_in_model_layout(files: dict[str, Path]) -> None:
    model = onnx.load(files["tf"])
    ort_probe(model, "input_1", (1, 32, 32, 3), np.dtype(np.float32), NHWC)(40, 24)
    with pytest.raises(RunError):  # read as NCHW, the 40x24 'image' has 24 channels on the last axis
        ort_probe(model, "input_1", (1, 32, 32, 3), np.dtype(np.float32), NCHW)(40, 24)


def test_activations_turned_to_nchw_and_checked_in_model_layout(files: dict[str, Path]) -> None:
    dreamer = open_dreamer(files["tf"], device="cpu")
    pixels = torch.from_numpy(pattern(24, 32)).permute(2, 0, 1)[None]
    model_input = dreamer.preprocess.to_model(pixels)
    assert tuple(model_input.shape) == (1, 24, 32, 3)
    acts = dreamer.net(model_input, ["head", "block_2_expand"])
    assert tuple(acts["head"].shape) == (1, 12, 12, 16)  # NCHW, though the graph keeps it NHWC
    reference = make_session(expose(onnx.load(files["tf"]), ["head"]).model, device="cpu").run(
        {"input_1": model_input.numpy()}, ["head_out"]
    )["head_out"]
    np.testing.assert_allclose(acts["head"].permute(0, 2, 3, 1).numpy(), reference, atol=1e-5)
    checker = dreamer.checker(["head", "block_2_expand"])
    assert checker.check(model_input, acts).passed
    bad = dict(acts, head=acts["head"] + torch.where(torch.arange(12) == 5, 1.0, 0.0).view(1, 12, 1, 1))
    report = checker.check(model_input, bad)
    assert report.failed == 12 * 16 and report.worst_layer == "head"  # exactly channel 5 differs


def test_dream_on_tf2onnx_nhwc(files: dict[str, Path]) -> None:
    dreamer = open_dreamer(files["tf"], device="cpu")
    options = DreamOptions(octaves=2, steps=4, seed=0)
    _, whole = dreamer.run(pattern(40, 56), [LayerSpec("block_2_expand_relu")], options)
    assert whole.gain > 1.2 and whole.checks.passed and whole.checks.max_abs < 1e-4
    image, channel = dreamer.run(pattern(40, 56), [LayerSpec("head", (3,))], options)
    assert channel.gain > 1.2 and channel.checks.passed
    assert image.size == (56, 40)


def test_channel_count_is_on_the_channel_axis(files: dict[str, Path]) -> None:
    dreamer = open_dreamer(files["tf"], device="cpu")
    assert channel_count(dreamer, LayerSpec("head"), 40) == 12  # not 20 (H of the NHWC tensor)


@pytest.mark.parametrize("spec", ["1.conv2:3", "layer1.0"])
def test_visualize_on_nhwc(files: dict[str, Path], spec: str) -> None:
    dreamer = open_dreamer(files["torch"], device="cpu")
    start = visualize_run(dreamer, spec, size=32, steps=1, check=False)[1].objectives[0]
    images, result = visualize_run(dreamer, spec, size=32, steps=10)
    assert images[0].size == (32, 32)
    assert result.objectives[0] > start + 1e-3 and result.checks.passed


def test_hidden_layout_needs_the_option(files: dict[str, Path]) -> None:
    with pytest.raises(OptionError) as info:
        open_dreamer(files["hidden"], device="cpu")
    assert str(info.value) == (
        f"{files['hidden']}: input 'image' of shape ?x?x?x3 looks channels-last, but the model does not say "
        "so (no Transpose to NCHW after it, no recorded layout); give layout nhwc, or layout nchw if it "
        "really is channels-first"
    )
    dreamer = open_dreamer(files["hidden"], device="cpu", layout="nhwc")
    _, result = dreamer.run(pattern(24, 32), [LayerSpec("conv")], DreamOptions(octaves=1, steps=4))
    assert result.gain > 1.0 and result.checks.passed


def test_check_default_input_in_model_layout(files: dict[str, Path]) -> None:
    result = check(files["tf"], device="cpu")
    assert result.ok
    shapes = {c.name: c.shape for c in result.layers}
    assert shapes["Transpose__12"] == [1, 3, 224, 224]
    assert shapes["model/head/Mul"] == [1, 112, 112, 12]  # compared in the model's own layout
    assert max(c.max_abs for c in result.layers) < 1e-4
    forced = check(files["hidden"], device="cpu", layout="nhwc")
    assert forced.ok and {c.name: c.shape for c in forced.layers}["model/conv/Conv2D"] == [1, 8, 224, 224]


def test_layers_rows_carry_layouts(files: dict[str, Path]) -> None:
    rows = {r.name: r for r in list_layers(files["tf"])}
    assert rows["model/block_1_expand/Conv2D"].layouts == [NCHW]
    assert rows["model/head/Mul"].layouts == [NHWC]
    assert rows["model/pool/Mean"].layouts == [None]


def test_cli_on_nhwc(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "dream.png"
    result = runner.invoke(
        app,
        [
            "dream",
            str(files["photo"]),
            str(out),
            "-m",
            str(files["tf"]),
            "-l",
            "block_2_expand:3",
            *FAST,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        out.exists()
        and json.loads(result.stdout)["objective_after"] > json.loads(result.stdout)["objective_before"]
    )
    result = runner.invoke(
        app,
        [
            "visualize",
            str(files["tf"]),
            "-l",
            "head:2",
            "-o",
            str(tmp_path / "v.png"),
            "--size",
            "32",
            "--steps",
            "4",
            "-q",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["check", str(files["tf48"]), "--input", str(files["photo"]), "--device", "cpu", "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["ok"]
    npz = tmp_path / "acts.npz"
    result = runner.invoke(
        app,
        [
            "expose-layers",
            str(files["tf"]),
            str(tmp_path / "e.onnx"),
            "-l",
            "head",
            "--run",
            str(files["photo"]),
            "--save",
            str(npz),
        ],
    )
    assert result.exit_code == 0, result.output
    assert np.load(npz)["model/head"].shape == (1, 20, 28, 12)
    result = runner.invoke(app, ["layers", str(files["tf"])])
    assert result.exit_code == 0 and "input NHWC (its input is transposed to NCHW)" in " ".join(
        result.output.split()
    )


@pytest.mark.parametrize("verb", ["dream", "visualize", "check", "expose-layers", "layers"])
def test_cli_bad_layout_exits_2(verb: str, files: dict[str, Path], tmp_path: Path) -> None:
    model = str(files["tf"])
    args = {
        "dream": [str(files["photo"]), str(tmp_path / "d.png"), "-m", model, "-l", "head", *FAST],
        "visualize": [model, "-l", "head", "-o", str(tmp_path / "v.png")],
        "check": [model],
        "expose-layers": [model, str(tmp_path / "e.onnx"), "-l", "head"],
        "layers": [model],
    }[verb]
    result = runner.invoke(app, [verb, *args, "--layout", "chw"])
    assert result.exit_code == 2
    assert result.output.strip().endswith("error: --layout must be nchw or nhwc, got 'chw'")
    assert list(tmp_path.iterdir()) == []


def test_cli_hidden_layout_names_the_flag(files: dict[str, Path], tmp_path: Path) -> None:
    dream = ["dream", str(files["photo"]), str(tmp_path / "d.png"), "-m", str(files["hidden"]), "-l", "conv"]
    result = runner.invoke(app, [*dream, *FAST])
    assert result.exit_code == 2
    assert "looks channels-last" in result.output and "give --layout nhwc" in result.output
    result = runner.invoke(app, [*dream, *FAST, "--layout", "nhwc"])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def twins() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The tiny NCHW CNN and the same network behind an NHWC input (an independent reference)."""
    nchw = tiny_onnx()
    return nchw, channels_last(nchw)


def test_nhwc_dream_equals_nchw_dream(twins) -> None:
    options = DreamOptions(octaves=2, steps=4, seed=3)
    specs = [LayerSpec("block2", (5,)), LayerSpec("block1.0", None, 0.5)]
    images, results = [], []
    for model in twins:
        image, result = open_dreamer(model, device="cpu").run(pattern(40, 48), specs, options)
        images.append(np.asarray(image, dtype=np.int16))
        results.append(result)
    assert results[1].checks.passed and len(results[1].checks.reports) == 2
    assert results[1].objective_after == pytest.approx(results[0].objective_after, rel=1e-4)
    assert results[1].gain > 1.2
    assert np.abs(images[1] - images[0]).max() <= 1


def test_nhwc_visualize_and_check_equal_nchw(twins) -> None:
    found = [visualize_run(m, "block2:3", size=32, steps=6, device="cpu")[1].objectives[0] for m in twins]
    assert found[1] == pytest.approx(found[0], rel=1e-4)
    checks = [check(m, device="cpu") for m in twins]
    assert checks[1].ok and [c.name for c in checks[1].layers][1:] == [c.name for c in checks[0].layers]
    assert checks[1].layers[0].name == "Transpose__nhwc"


def test_size_error_names_sizes_in_model_layout() -> None:
    model = stride_two_skip()
    odd = {"image": np.zeros((1, 41, 56, 3), np.float32)}
    with pytest.raises(InputSizeError) as info:
        check(model, odd, device="cpu", input_source="odd.npy")
    assert info.value.multiple == 2
    assert str(info.value).endswith(
        "cannot run odd.npy (input 'image' of shape 1x41x56x3): its height and width must be multiples "
        "of 2 (the network's stride); nearest sizes that work: 1x40x56x3 or 1x42x56x3"
    )
    assert check(model, {"image": np.zeros((1, 40, 56, 3), np.float32)}, device="cpu").ok


def test_keras_on_torch_style_layer_outputs_stay_nhwc(tmp_path: Path) -> None:
    path = tmp_path / "keras_torch.onnx"
    onnx.save(keras_torch_like(), path)
    index = GraphIndex(onnx.load(path).graph)
    assert input_layout(onnx.load(path)) == InputLayout(NHWC, "transpose")
    assert {t: v for t, v in tensor_layouts(index, NHWC).items() if t in ("c0", "b0", "r0", "r1")} == {
        "c0": NCHW,
        "b0": NHWC,
        "r0": NHWC,
        "r1": NHWC,
    }
    dreamer = open_dreamer(path, device="cpu")
    assert channel_count(dreamer, LayerSpec("Conv1_relu"), 32) == 8
    assert channel_count(dreamer, LayerSpec("block_1_expand_relu"), 32) == 6
    _, result = dreamer.run(
        pattern(32, 40), [LayerSpec("block_1_expand_relu", (4,))], DreamOptions(octaves=1, steps=4)
    )
    assert result.gain > 1.0 and result.checks.passed and result.checks.max_abs < 1e-4


def test_shape_of_the_input_does_not_hide_the_transpose() -> None:
    model = tf2onnx_like()
    model.graph.node.append(onnx.helper.make_node("Shape", ["input_1"], ["input_shape"], name="Shape__2"))
    model.graph.output.append(onnx.helper.make_tensor_value_info("input_shape", onnx.TensorProto.INT64, [4]))
    assert input_layout(model) == InputLayout(NHWC, "transpose")
    model.graph.node.append(onnx.helper.make_node("Flatten", ["input_1"], ["flat"], name="Flatten__3"))
    assert input_layout(model) == InputLayout()  # the input is also read as it is: no guess
