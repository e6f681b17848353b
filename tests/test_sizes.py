"""Stride-constrained graphs and other exporters' input dims: check, expose --run and dream."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
from onnxdream.dream.octaves import pad_to_multiple
from onnxdream.inputs.feeds import load_input
from onnxdream.inputs.images import to_pil
from onnxdream.inputs.random import random_inputs
from onnxdream.mirror import to_torch
from onnxdream.mirror_check import check
from onnxdream.shapes import input_dims, value_type
from onnxdream.sizes import (
    InputSizeError,
    nearest_multiples,
    ort_probe,
    required_multiple,
    round_to_multiple,
    valid_sizes,
)
from tests.dream_helpers import pattern
from tests.realworld_helpers import fpn_model, line_recogniser

runner = CliRunner()
DYNAMIC_BATCH = {"minus-one": [-1, 3, "H", "W"], "zero": [0, 3, "H", "W"], "missing": [None, 3, None, None]}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("realworld")
    onnx.save(fpn_model(), folder / "fpn.onnx")
    onnx.save(fpn_model(stem_stride=16), folder / "fpn64.onnx")
    for key, dims in DYNAMIC_BATCH.items():
        onnx.save(fpn_model(dims), folder / f"batch-{key}.onnx")
    onnx.save(line_recogniser(), folder / "rec.onnx")
    onnx.save(line_recogniser(width=120), folder / "rec-fixed.onnx")
    np.save(folder / "odd.npy", np.random.default_rng(0).standard_normal((1, 3, 60, 76)).astype(np.float32))
    np.save(folder / "good.npy", np.random.default_rng(0).standard_normal((1, 3, 64, 72)).astype(np.float32))
    to_pil(pattern(60, 76)).save(folder / "odd.png")
    to_pil(pattern(30, 200)).save(folder / "line.png")
    return folder


def _cli(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


# --- finding the multiple ---------------------------------------------------------------------


@pytest.mark.parametrize(("stem_stride", "multiple"), [(2, 8), (16, 64)], ids=["stride8", "stride64"])
def test_required_multiple_is_the_total_stride_by_ort_and_by_the_mirror(stem_stride: int, multiple: int):
    model = fpn_model(stem_stride=stem_stride)
    assert required_multiple(ort_probe(model, "x", (1, 3, 0, 0), np.dtype(np.float32))) == multiple
    mirror = to_torch(model)

    @torch.no_grad()
    def probe(height: int, width: int) -> None:
        mirror(torch.zeros(1, 3, height, width))

    assert required_multiple(probe) == multiple


def test_a_network_without_a_neck_takes_any_size():
    model = line_recogniser()
    assert required_multiple(ort_probe(model, "x", (1, 3, 48, 0), np.dtype(np.float32)), (48, None)) == 1


def test_sizes_around_a_side():
    assert nearest_multiples(60, 8) == (56, 64)
    assert nearest_multiples(5, 8) == (8, 8)
    assert round_to_multiple(224, 64) == 256 and round_to_multiple(200, 64) == 192
    # 60x76 = 4560 pixels: 64x72 (4608) is nearer than 56x80 (4480), 56x72, 64x80.
    assert valid_sizes(60, 76, 8) == [(64, 72), (56, 80), (56, 72), (64, 80)]
    assert valid_sizes(48, 75, 8, fixed=(48, None)) == [(48, 72), (48, 80)]


def test_padding_is_undone_by_cropping_and_keeps_gradients():
    x = torch.rand(1, 3, 60, 76, requires_grad=True)
    padded = pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (64, 80)
    assert torch.equal(padded[..., :60, :76], x)
    padded.sum().backward()
    assert x.grad is not None and x.grad.sum() == pytest.approx(64 * 80 * 3)
    assert pad_to_multiple(x, 4) is x


# --- check and expose --run at sizes the stride does not allow ----------------------------------

ODD = "cannot run {what} (input 'x' of shape 1x3x60x76): its height and width must be multiples of 8"
NEAREST = "nearest sizes that work: 1x3x64x72 or 1x3x56x80"


@pytest.mark.parametrize("input_file", ["odd.npy", "odd.png"])
def test_check_at_an_odd_size_exits_2_naming_valid_sizes(models, input_file):
    out = _cli("check", models / "fpn.onnx", "--input", models / input_file, "--device", "cpu")
    assert out.exit_code == 2, out.output
    assert ODD.format(what=models / input_file) in out.output and NEAREST in out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1


def test_check_at_a_valid_size_passes(models):
    out = _cli("check", models / "fpn.onnx", "--input", models / "good.npy", "--device", "cpu", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["layers"][-1]["shape"] == [1, 8, 32, 36]


def test_expose_run_at_an_odd_size_exits_2_and_writes_nothing(models, tmp_path):
    out_path = tmp_path / "out.onnx"
    out = _cli("expose-layers", models / "fpn.onnx", out_path, "-l", "neck.cat2", "--run", models / "odd.png")
    assert out.exit_code == 2, out.output
    assert ODD.format(what=models / "odd.png") in out.output and NEAREST in out.output
    assert "Traceback" not in out.output and not out_path.exists()


def test_check_api_raises_input_size_error_with_the_sizes(models):
    feeds = load_input(models / "odd.npy", fpn_model())
    with pytest.raises(InputSizeError) as info:
        check(fpn_model(), feeds, device="cpu")
    assert (info.value.multiple, info.value.sizes[0]) == (8, (64, 72))


def test_default_input_moves_to_the_stride_a_deep_neck_needs(models):
    # 224 is not a multiple of 64: the default input takes 256, the nearest multiple.
    result = check(models / "fpn64.onnx", device="cpu")
    assert result.ok and result.layers[-1].shape == [1, 8, 16, 16]


# --- dynamic batch written as -1, 0 or nothing ----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "declared", "dims"),
    [
        ("minus-one", (None, 3, "H", "W"), (None, 3, None, None)),
        ("zero", (0, 3, "H", "W"), (None, 3, None, None)),
        ("missing", (None, 3, None, None), (None, 3, None, None)),
    ],
)
def test_dynamic_dims_are_read_as_unknown(key, declared, dims):
    value = fpn_model(DYNAMIC_BATCH[key]).graph.input[0]
    assert value_type(value).shape == declared
    assert input_dims(value) == dims


@pytest.mark.parametrize("key", DYNAMIC_BATCH)
def test_dynamic_batch_everywhere(models, key, tmp_path):
    model_path = models / f"batch-{key}.onnx"
    feeds = random_inputs(onnx.load(model_path))
    assert feeds["x"].shape == (1, 3, 224, 224)

    table = _cli("check", model_path, "--device", "cpu")
    assert table.exit_code == 0 and "14 layers match" in table.output, table.output
    doc = _cli("check", model_path, "--device", "cpu", "--json")
    assert doc.exit_code == 0, doc.output
    assert json.loads(doc.stdout)["layers"][-1]["shape"] == [1, 8, 112, 112]
    npy = _cli("check", model_path, "--input", models / "good.npy", "--device", "cpu", "--json")
    assert npy.exit_code == 0 and json.loads(npy.stdout)["ok"], npy.output

    saved = tmp_path / "acts.npz"
    exposed = _cli(
        "expose-layers", model_path, tmp_path / "o.onnx", "-l", "neck.cat2", "--run", models / "good.npy",
        "--save", saved,
    )  # fmt: skip
    assert exposed.exit_code == 0, exposed.output
    with np.load(saved) as acts:
        assert acts["neck.cat2"].shape == (1, 16, 16, 18)


# --- a fixed height, as text recognisers declare ---------------------------------------------------


def test_fixed_height_default_input_uses_the_declared_height(models):
    result = check(models / "rec.onnx", device="cpu")
    assert result.ok and [layer.shape for layer in result.layers][-1] == [1, 112, 5]


def test_fixed_height_image_is_resized_to_that_height_keeping_its_aspect(models):
    feeds = load_input(models / "line.png", line_recogniser())
    assert feeds["x"].shape == (1, 3, 48, 320)


def test_default_input_a_model_cannot_run_exits_2_with_the_reason(models):
    out = _cli("check", models / "rec-fixed.onnx", "--device", "cpu")
    assert out.exit_code == 2, out.output
    message = out.output.strip()
    assert message.startswith(f"error: {models / 'rec-fixed.onnx'}: cannot run the default input")
    assert "1x3x48x224" in message and "requested shape:{1,8,60}" in message
    assert message.endswith("give an input of the size the model needs (--input)")
    assert "Traceback" not in out.output


# --- dream at a size the stride does not allow --------------------------------------------------


@pytest.mark.parametrize("key", ["fpn", "batch-minus-one"])
def test_dream_at_an_odd_size_keeps_the_size_and_raises_the_objective(models, key):
    dreamer = open_dreamer(str(models / f"{key}.onnx"), device="cpu")
    image, result = dreamer.run(
        pattern(60, 76), [parse_spec("neck.out")], DreamOptions(octaves=2, steps=4, lr=0.05)
    )
    assert image.size == (76, 60) and result.sizes[-1] == (60, 76)
    assert dreamer.multiple(["neck.out"]) == 8
    assert result.objective_after > result.objective_before * 1.05
    assert result.checks.passed and len(result.checks.reports) == 2


def test_dream_cli_at_an_odd_size(models, tmp_path):
    out_path = tmp_path / "out.png"
    out = _cli(
        "dream", models / "odd.png", out_path, "--model", models / "batch-minus-one.onnx", "--layer",
        "neck.reduce", "--octaves", "1", "--steps", "2", "--device", "cpu", "--quiet",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    with Image.open(out_path) as written:
        assert written.size == (76, 60)
