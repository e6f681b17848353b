"""``onnxdream dream`` end to end: ONNX model -> torch mirror -> dream, checked by ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
from onnxdream.dream.atlas import label_height
from onnxdream.errors import MismatchError, OnnxDreamError, UnknownLayerError
from onnxdream.inputs.images import to_pil
from tests.dream_helpers import FAST, pattern

runner = CliRunner()


def _dream(*args: str):
    return runner.invoke(app, ["dream", *args])


def test_dream_writes_image_and_json(tiny, photo, tmp_path):
    out = tmp_path / "out.jpg"
    result = _dream(str(photo), str(out), "--model", str(tiny), "--layer", "block2", *FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["layers"] == ["block2"] and summary["size"] == [64, 48]
    assert summary["check"]["passed"] and summary["check"]["checks"] == 2
    assert summary["objective_after"] > summary["objective_before"]
    with Image.open(out) as written:
        assert written.format == "JPEG" and written.size == (64, 48)


def test_unknown_layer_exits_2_with_suggestion(tiny, photo, tmp_path):
    result = _dream(str(photo), str(tmp_path / "o.png"), "--model", str(tiny), "--layer", "blok2", *FAST)
    assert result.exit_code == 2
    assert "unknown layer 'blok2'; did you mean 'block2'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer", "block2:x"], "channels must be numbers"),
        (["--layer", "block2:99"], "layer 'block2' has 16 channels (0..15); channel 99 does not exist"),
        (["--layer", "block2", "--loss", "l1"], "unknown loss 'l1'"),
        (["--layer", "block2", "--device", "tpu"], "unknown device 'tpu'"),
        ([], "{model}: choose a layer with --layer for this model"),
    ],
    ids=["bad-channel", "channel-out-of-range", "bad-loss", "bad-device", "no-layer"],
)
def test_bad_input_exits_2(tiny, photo, tmp_path, args, message):
    result = _dream(str(photo), str(tmp_path / "o.png"), "--model", str(tiny), *FAST, *args)
    assert result.exit_code == 2, result.output
    assert message.replace("{model}", str(tiny)) in " ".join(result.output.split())


def test_no_layer_on_a_model_with_generated_names_suggests_rename(zoo, photo, tmp_path):
    from onnxdream.io import save_model

    model = save_model(zoo("squeezenet"), tmp_path / "squeezenet.onnx")
    result = _dream(str(photo), str(tmp_path / "o.png"), "--model", str(model), *FAST)
    assert result.exit_code == 2
    assert "its names look generated: `onnxdream rename MODEL OUT`" in " ".join(result.output.split())


def test_image_too_small_exits_2(tiny, tmp_path):
    small = tmp_path / "small.png"
    to_pil(pattern(8, 8)).save(small)
    result = _dream(str(small), str(tmp_path / "o.png"), "--model", str(tiny), "--layer", "block2", *FAST)
    assert result.exit_code == 2
    assert "image is 8x8, too small for the target layers" in " ".join(result.output.split())


def test_frames_write_numbered_frames_and_gif(tiny, photo, tmp_path):
    out = tmp_path / "anim.gif"
    result = _dream(str(photo), str(out), "--model", str(tiny), "--layer", "block1", "--frames", "3", *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("anim_*.png")) == [
        "anim_0001.png",
        "anim_0002.png",
        "anim_0003.png",
    ]
    with Image.open(out) as gif:
        assert gif.n_frames == 3 and gif.size == (64, 48)


def test_atlas_writes_labelled_grid(tiny, photo, tmp_path):
    out = tmp_path / "atlas.png"
    result = _dream(
        str(photo), str(out), "--model", str(tiny), "--atlas", "--depth", "1", "--match", "block*", *FAST
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as grid:
        assert grid.size == (2 * 64, 48 + label_height())  # block1, block2 side by side


def test_folder_mode_skips_unreadable_files(tiny, tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    to_pil(pattern(48, 64, seed=1)).save(src / "a.png")
    to_pil(pattern(40, 40, seed=2)).save(src / "b.webp")
    (src / "notes.txt").write_text("not an image")
    to_pil(pattern(8, 8, seed=3)).save(src / "tiny.png")  # too small for block2
    result = _dream(str(src), str(dst), "--model", str(tiny), "--layer", "block2", *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in dst.iterdir()) == ["a.png", "b.webp"]
    output = " ".join(result.output.split())
    assert "skipping" in output and "notes.txt: not a readable image" in output
    assert "tiny.png: image is 8x8, too small for the target layers" in output


@pytest.mark.parametrize(
    ("source", "out", "extra", "message"),
    [
        ("missing/", "dreamed/", [], "missing/: input folder not found"),
        ("missing/", "dreamed/", ["--ray", "127.0.0.1:1"], "missing/: input folder not found"),
        ("missing", "dreamed", ["--ray", "127.0.0.1:1"], "missing: no such image, folder or video"),
        ("missing.png", "dreamed.png", [], "missing.png: image not found"),
    ],
    ids=["folder", "folder-ray", "no-suffix-ray", "image"],
)
def test_missing_input_is_named_before_the_output_or_a_cluster(tiny, tmp_path, source, out, extra, message):
    # No cluster answers at 127.0.0.1:1: the missing input must be reported before it is tried.
    args = [f"{tmp_path}/{source}", f"{tmp_path}/{out}", "--model", str(tiny), "--layer", "block2"]
    result = _dream(*args, *FAST, *extra)
    assert result.exit_code == 2, result.output
    assert " ".join(result.output.split()) == f"error: {tmp_path}/{message}"
    assert list(tmp_path.iterdir()) == []


def test_same_seed_same_bytes(tiny, photo, tmp_path):
    outs = []
    for name, seed in (("a.png", "5"), ("b.png", "5"), ("c.png", "6")):
        out = tmp_path / name
        assert (
            _dream(
                str(photo), str(out), "--model", str(tiny), "--layer", "block2", "--seed", seed, *FAST
            ).exit_code
            == 0
        )
        outs.append(np.asarray(Image.open(out)))
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])


def test_refuses_to_overwrite_input(tiny, photo):
    result = _dream(str(photo), str(photo), "--model", str(tiny), "--layer", "block2", *FAST)
    assert result.exit_code == 2 and "refusing to write over the input" in result.output


def test_forward_check_catches_corrupted_mirror(tiny):
    dreamer = open_dreamer(str(tiny), "cpu")
    options = DreamOptions(octaves=1, steps=2, lr=0.05)
    _, result = dreamer.run(pattern(), [parse_spec("block2")], options)
    assert result.checks.passed
    weight = next(p for name, p in dreamer.net.mirror.named_parameters() if p.dim() == 4)
    with torch.no_grad():
        weight.view(-1)[5] += 0.5  # one weight of the first conv changed
    with pytest.raises(MismatchError, match=r"forward check failed at octave 1"):
        dreamer.run(pattern(), [parse_spec("block2")], options)


def test_python_api(tiny):
    import onnxdream

    image = onnxdream.dream(pattern(), model=str(tiny), layers="block2:1,2*2", octaves=1, steps=2, lr=0.05)
    assert isinstance(image, Image.Image) and image.size == (64, 48)
    with pytest.raises(
        OnnxDreamError, match=r"^unknown dream option\(s\): size, tiles; valid: check, .*, steps, tile$"
    ):
        onnxdream.dream(pattern(), model=str(tiny), tiles=2, size=3)


@pytest.mark.slow
def test_demo_on_builtin_model(tmp_path):
    out = tmp_path / "demo.png"
    result = _dream(
        "--demo",
        str(out),
        "--max-size",
        "128",
        "--octaves",
        "2",
        "--steps",
        "3",
        "--quiet",
        "--json",
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["layers"] == ["_blocks.10"] and summary["check"]["passed"]
    assert summary["objective_after"] > 1.5 * summary["objective_before"]
    with Image.open(out) as written:
        assert written.size == (128, 128)


@pytest.mark.slow
def test_builtin_tiled_equals_untiled_and_unknown_layer():
    dreamer = open_dreamer(None, "cpu")
    options = DreamOptions(octaves=1, steps=3, lr=0.03)
    whole, result = dreamer.run(pattern(96, 112), [parse_spec("_blocks.8")], options)
    tiled, _ = dreamer.run(
        pattern(96, 112), [parse_spec("_blocks.8")], DreamOptions(octaves=1, steps=3, lr=0.03, tile=112)
    )
    assert np.array_equal(np.asarray(whole), np.asarray(tiled))
    assert result.gain > 1.1 and result.checks.passed
    with pytest.raises(UnknownLayerError, match=r"unknown layer '_blocks\.88'; did you mean '_blocks\.8'"):
        dreamer.run(pattern(), [parse_spec("_blocks.88")], options)


def test_googlenet_zoo_file_after_rename(zoo, tmp_path):
    from onnxdream import rename

    photo = tmp_path / "big.png"
    to_pil(pattern(150, 200)).save(photo)
    model = tmp_path / "googlenet.onnx"
    onnx.save(rename(zoo("googlenet")).model, model)
    out = tmp_path / "g.png"
    caffe = ["--range", "0,255", "--channels", "BGR", "--mean", "104,117,123", "--std", "1"]
    args = [
        str(photo),
        str(out),
        "--model",
        str(model),
        "--layer",
        "inception_4c",
        *caffe,
        "--max-size",
        "96",
    ]
    result = _dream(*args, *FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["layers"] == ["inception_4c"] and summary["check"]["passed"]
    assert summary["objective_after"] > summary["objective_before"]
    with Image.open(out) as written:
        assert written.size == (96, 72)  # --max-size 96 on a 200x150 input
