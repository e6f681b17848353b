"""``onnxdream visualize``: images grown from noise raise their objective; channel atlases, the
diversity term, seeds, bad input and the Python API, on a tiny CNN, zoo graphs and the built-in model."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.dream import open_dreamer, parse_spec
from onnxdream.dream.atlas import label_height
from onnxdream.dream.channels import parse_channels
from onnxdream.dream.visualize import VisualizeOptions, gram_similarity, visualize_batch
from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.images import to_pil
from onnxdream.zoo import LIGHT_ZOO
from tests.dream_helpers import pattern, tiny_cnn

runner = CliRunner()
QUICK = {"size": 32, "check": False}
CLI_QUICK = ["--size", "32", "--steps", "4", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def dreamer():
    return open_dreamer(tiny_cnn(), "cpu")


def _objective(dreamer, specs: list[str], steps: int, **options) -> list[float]:
    targets = [[parse_spec(s) for s in specs]] * options.pop("batch", 1)
    _, result = visualize_batch(dreamer, targets, VisualizeOptions(steps=steps, **QUICK, **options))
    return result.objectives


# block2.0 is the conv before block2's ReLU: it has a gradient from a grey start for every channel.
OBJECTIVES = {
    "channel": ["block2.0:3"],
    "neuron": ["block2.0:3@center"],
    "layer": ["block2"],
    "weighted-sum": ["block1.0:2*0.5", "block2.0:5*2"],
    "layer-l2": ["block1"],
}


@pytest.mark.parametrize("specs", list(OBJECTIVES.values()), ids=list(OBJECTIVES))
def test_each_objective_rises(dreamer, specs):
    loss = "l2" if specs == ["block1"] else "mean"
    start = _objective(dreamer, specs, 1, loss=loss)[0]
    grown = _objective(dreamer, specs, 12, loss=loss)[0]
    assert grown > start + 0.05 * abs(start) + 1e-4


OPTIONS = {
    "pixels": {"param": "pixels"},
    "no-decorrelate": {"decorrelate": False},
    "ascent": {"optimizer": "ascent", "lr": 0.05},
    "lap": {"grad_norm": "lap"},
    "no-transforms": {"pad": 0, "scale": 0.0, "rotate": 0.0, "jitter": 0},
}


@pytest.mark.parametrize("options", list(OPTIONS.values()), ids=list(OPTIONS))
def test_each_option_rises(dreamer, options):
    start = _objective(dreamer, ["block2.0:3"], 1, **options)[0]
    assert _objective(dreamer, ["block2.0:3"], 12, **options)[0] > start + 1e-3


def test_diversity_makes_a_batch_less_alike(dreamer):
    targets = [[parse_spec("block2.0:3")]] * 3
    _, alike = visualize_batch(dreamer, targets, VisualizeOptions(steps=12, **QUICK))
    _, diverse = visualize_batch(dreamer, targets, VisualizeOptions(steps=12, diversity=5.0, **QUICK))
    assert alike.similarity is not None and diverse.similarity is not None
    assert diverse.similarity < alike.similarity - 0.01


def _passes(monkeypatch, pixels_per_pass: int) -> list[int]:
    """Cap the CPU's pixels per pass; returns the batch size of every pass that then runs."""
    import onnxdream.dream.visualize as visualize

    sizes: list[int] = []
    real = visualize.compute_gradient

    def recording(evaluate, pixels, *args):
        sizes.append(pixels.shape[0])
        return real(evaluate, pixels, *args)

    monkeypatch.setattr(visualize, "CPU_PIXELS_PER_PASS", pixels_per_pass)
    monkeypatch.setattr(visualize, "compute_gradient", recording)
    return sizes


def test_a_batch_split_into_passes_grows_the_same_images(dreamer, monkeypatch):
    """On the CPU a batch goes through the network a few images at a time; each image's objective
    is its own, so the images and objectives are those of one pass over the whole batch."""
    targets = [[parse_spec(f"block2.0:{c}")] for c in range(5)]
    options = VisualizeOptions(steps=6, **QUICK)
    import onnxdream.dream.visualize as visualize

    sizes = _passes(monkeypatch, 10**9)
    one_pass, expected = visualize_batch(dreamer, targets, options)
    assert sizes == [5] * 6
    side = QUICK["size"] + 2 * options.pad
    monkeypatch.setattr(visualize, "CPU_PIXELS_PER_PASS", 2 * side * side)
    sizes.clear()
    images, found = visualize_batch(dreamer, targets, options)
    assert sizes == [2, 2, 1] * 6
    np.testing.assert_allclose(found.objectives, expected.objectives, rtol=1e-4, atol=1e-6)
    for a, b in zip(images, one_pass, strict=True):
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1


def test_diversity_keeps_the_batch_in_one_pass(dreamer, monkeypatch):
    """The diversity term compares the images with each other: its batch is never split."""
    sizes = _passes(monkeypatch, 1)
    targets = [[parse_spec("block2.0:3")]] * 3
    visualize_batch(dreamer, targets, VisualizeOptions(steps=2, diversity=1.0, **QUICK))
    assert sizes == [3, 3]


def test_gram_similarity_of_identical_and_different_images():
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 5)).astype(np.float32)
    import torch

    same = torch.from_numpy(np.concatenate([x, x]))
    assert float(gram_similarity(same)) == pytest.approx(1.0, rel=1e-5)
    apart = torch.zeros(2, 2, 3, 3)
    apart[0, 0] = 1.0
    apart[1, 1] = 1.0
    assert float(gram_similarity(apart)) == pytest.approx(0.0, abs=1e-7)


def test_same_seed_same_images_other_seed_differs(dreamer):
    targets = [[parse_spec("block2.0:3")]]
    first, _ = visualize_batch(dreamer, targets, VisualizeOptions(steps=4, seed=2, **QUICK))
    again, _ = visualize_batch(dreamer, targets, VisualizeOptions(steps=4, seed=2, **QUICK))
    other, _ = visualize_batch(dreamer, targets, VisualizeOptions(steps=4, seed=3, **QUICK))
    assert np.array_equal(np.asarray(first[0]), np.asarray(again[0]))
    assert not np.array_equal(np.asarray(first[0]), np.asarray(other[0]))


def test_parse_channels():
    assert parse_channels("0-3,8,2") == [0, 1, 2, 3, 8]
    with pytest.raises(OnnxDreamError, match=r"'a-b' is not a channel or a range like '0-15'"):
        parse_channels("a-b")
    with pytest.raises(OnnxDreamError, match=r"range '5-2' goes down"):
        parse_channels("5-2")


def test_cli_single_image_json_is_one_document(tiny, tmp_path):
    out = tmp_path / "v.png"
    result = runner.invoke(
        app, ["visualize", str(tiny), "--layer", "block2.0:3", "-o", str(out), *CLI_QUICK, "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["outputs"] == [str(out)] and summary["size"] == [32, 32]
    assert [i["target"] for i in summary["images"]] == ["block2.0:3"]
    assert isinstance(summary["images"][0]["objective"], float)
    assert summary["check"] == {"passed": True, "checks": 1, "max_abs_diff": summary["check"]["max_abs_diff"]}
    assert summary["check"]["max_abs_diff"] < 1e-4
    with Image.open(out) as written:
        assert written.size == (32, 32) and written.mode == "RGB"


def test_cli_batch_writes_numbered_images(tiny, tmp_path):
    out = tmp_path / "b.png"
    args = ["visualize", str(tiny), "-l", "block2.0:3", "-o", str(out), "--batch", "3", "--diversity", "2"]
    result = runner.invoke(app, [*args, *CLI_QUICK, "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b_1.png", "b_2.png", "b_3.png"]
    assert 0.0 < json.loads(result.stdout)["gram_similarity"] <= 1.0


def test_cli_channel_grid_has_one_labelled_cell_per_channel(tiny, tmp_path):
    out = tmp_path / "grid.png"
    result = runner.invoke(
        app,
        ["visualize", str(tiny), "-l", "block2", "--channels", "0-2,7", "-o", str(out), *CLI_QUICK, "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [i["target"] for i in summary["images"]] == ["block2:0", "block2:1", "block2:2", "block2:7"]
    with Image.open(out) as grid:
        assert grid.size == (2 * 32, 2 * (32 + label_height()))  # 4 cells, 2 x 2


def test_cli_top_channels_on_an_image(tiny, tmp_path):
    photo = tmp_path / "photo.png"
    to_pil(pattern(48, 64)).save(photo)
    out = tmp_path / "top.png"
    args = ["visualize", str(tiny), "-l", "block1", "--top", "3", "--image", str(photo), "-o", str(out)]
    result = runner.invoke(app, [*args, *CLI_QUICK, "--json"])
    assert result.exit_code == 0, result.output
    targets = [i["target"] for i in json.loads(result.stdout)["images"]]
    dreamer = open_dreamer(str(tiny), "cpu")
    import torch

    from onnxdream.inputs.images import load_image

    pixels = torch.from_numpy(load_image(photo, 32)).permute(2, 0, 1)[None]  # --top sees it at --size
    acts = dreamer.net(dreamer.preprocess.to_model(pixels), ["block1"])["block1"][0].flatten(1).mean(1)
    assert targets == [f"block1:{int(c)}" for c in torch.topk(acts, 3).indices]
    with Image.open(out) as grid:
        assert grid.size == (2 * 32, 2 * (32 + label_height()))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-l", "blok2"], "unknown layer 'blok2'; did you mean 'block2'"),
        (["-l", "block2:x"], "channels must be numbers like ':3'"),
        (["-l", "block2:3@top"], "position must be '@center', got '@top'"),
        (["-l", "block2:99"], "layer 'block2' has 16 channels (0..15); channel 99 does not exist"),
        (
            ["-l", "block2", "--channels", "0-99"],
            "layer 'block2' has 16 channels (0..15); channel 16 does not exist",
        ),
        (["-l", "block2", "--channels", "x"], "--channels 'x': 'x' is not a channel or a range"),
        (["-l", "block2:3", "--channels", "0-3"], "--channels/--top take one --layer NAME without channels"),
        (["-l", "block2", "--top", "3"], "--top K needs --image"),
        (["-l", "block2", "--size", "8"], "--size 8 is too small for the target layers"),
        (["-l", "block2", "--param", "wavelet"], "unknown parameterisation 'wavelet'"),
        (["-l", "block2", "--batch", "0"], "--batch must be at least 1"),
        (["-l", "block2", "-o", "out.bmp"], "cannot tell the image format from '.bmp'"),
        ([], "choose a layer with --layer for this model"),
    ],
    ids=[
        "unknown-layer",
        "bad-channel-spec",
        "bad-position",
        "channel-out-of-range",
        "grid-channel-out-of-range",
        "bad-channel-list",
        "grid-with-channel-spec",
        "top-without-image",
        "size-too-small",
        "bad-param",
        "bad-batch",
        "bad-extension",
        "no-layer",
    ],
)
def test_cli_bad_input_exits_2(tiny, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["visualize", str(tiny), *CLI_QUICK, *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


def test_cli_refuses_to_write_over_its_image(tiny, tmp_path):
    photo = tmp_path / "photo.png"
    to_pil(pattern(48, 64)).save(photo)
    before = photo.read_bytes()
    args = ["visualize", str(tiny), "-l", "block1", "--top", "2", "--image", str(photo), "-o", str(photo)]
    result = runner.invoke(app, [*args, *CLI_QUICK])
    assert result.exit_code == 2 and "refusing to write over the input" in result.output
    assert photo.read_bytes() == before


def test_python_api(tiny):
    import onnxdream

    images = onnxdream.visualize(str(tiny), "block2.0:3", size=40, steps=3, batch=2, device="cpu")
    assert [im.size for im in images] == [(40, 40), (40, 40)]
    grid = onnxdream.visualize(str(tiny), "block2", channels=[1, 4], size=32, steps=2, device="cpu")
    assert len(grid) == 2
    with pytest.raises(OnnxDreamError, match=r"unknown visualize option\(s\): octaves"):
        onnxdream.visualize(str(tiny), "block2", octaves=2)


def _convs(dreamer) -> list[str]:
    index = dreamer.net.index
    return [n for n in dreamer.layer_names() if index.nodes[index.resolve(n).nodes[0]].op_type == "Conv"]


def _middle_conv(dreamer) -> str:
    convs = _convs(dreamer)
    return convs[len(convs) // 2]


def _responsive_conv(dreamer, size: int) -> str:
    """The middle conv, or the nearest one before it whose output responds to the image: with
    random weights, inception-v2's middle layers are saturated (input gradients ~1e-10)."""
    import torch

    convs = _convs(dreamer)
    for layer in reversed(convs[: len(convs) // 2 + 1]):
        x = torch.full((1, 3, size, size), 0.5, requires_grad=True)
        dreamer.net(dreamer.preprocess.to_model(x), [layer])[layer].mean().backward()
        if float(x.grad.abs().max()) > 1e-6:
            return layer
    raise AssertionError("no conv layer responds to the input")


def _live_channel(dreamer, layer: str, size: int) -> int:
    """The most active channel on grey among those that respond to the image: random-weight nets
    have dead channels, and channels whose value is their bias whatever the input (no gradient)."""
    import torch

    x = torch.full((1, 3, size, size), 0.5, requires_grad=True)
    means = dreamer.net(dreamer.preprocess.to_model(x), [layer])[layer][0].flatten(1).mean(1)
    gradients = torch.stack([torch.autograd.grad(m, x, retain_graph=True)[0].abs().sum() for m in means])
    responsive = gradients > 1e-3 * gradients.max()
    return int(torch.where(responsive, means.detach(), -torch.inf).argmax())


FIXED_SIZE = {
    "shufflenet": "a Reshape with a constant shape (channel shuffle) takes 224x224 only",
    "inception-v2": "its Concat of ceil- and floor-pooled branches agrees only at some sizes",
}


def _rises_on_zoo(model: onnx.ModelProto, name: str, steps: int) -> None:
    dreamer = open_dreamer(model, "cpu")
    size = 224 if name in FIXED_SIZE else max(64, dreamer.minimum_size([_middle_conv(dreamer)]))
    layer = _responsive_conv(dreamer, size)
    spec = [[parse_spec(f"{layer}:{_live_channel(dreamer, layer, size)}")]]
    start = visualize_batch(dreamer, spec, VisualizeOptions(size=size, steps=1))[1]
    images, grown = visualize_batch(dreamer, spec, VisualizeOptions(size=size, steps=steps))
    assert grown.checks.passed and grown.checks.max_abs < 1e-2
    assert grown.objectives[0] > start.objectives[0]
    assert images[0].size == (size, size)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LIGHT_ZOO))
def test_every_light_zoo_model(zoo, name):
    _rises_on_zoo(zoo(name, copy=False), name, steps=12)  # visualize leaves its model as it was


def test_size_that_does_not_fit_the_graph(zoo):
    dreamer = open_dreamer(zoo("shufflenet"), "cpu")
    with pytest.raises(
        OnnxDreamError, match=r"size 96 does not fit the graph up to .*try the size the model"
    ):
        visualize_batch(dreamer, [[parse_spec(_middle_conv(dreamer))]], VisualizeOptions(size=96, steps=1))


@pytest.mark.slow
def test_renamed_googlenet_inception_4c_channel(zoo, tmp_path):
    from onnxdream import rename

    model = tmp_path / "googlenet.onnx"
    onnx.save(rename(zoo("googlenet")).model, model)
    caffe = ["--range", "0,255", "--channel-order", "BGR", "--mean", "104,117,123", "--std", "1"]
    dreamer = open_dreamer(str(model), "cpu", [104, 117, 123], [1], [0, 255], "BGR")
    channel = _live_channel(dreamer, "inception_4c", 96)
    out = tmp_path / "g.png"
    base = ["visualize", str(model), "-l", f"inception_4c:{channel}", "-o", str(out), *caffe, "--size", "96"]
    first = json.loads(runner.invoke(app, [*base, "--steps", "1", "--json", "-q", "--device", "cpu"]).stdout)
    result = runner.invoke(app, [*base, "--steps", "12", "--json", "-q", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["check"]["passed"] and summary["images"][0]["target"] == f"inception_4c:{channel}"
    assert summary["images"][0]["objective"] > first["images"][0]["objective"]


@pytest.mark.slow
def test_builtin_model_channel_neuron_and_layer(tmp_path):
    dreamer = open_dreamer(None, "cpu")
    for spec in ("_blocks.10:7", "_blocks.10:7@center", "_blocks.8"):
        start = visualize_batch(dreamer, [[parse_spec(spec)]], VisualizeOptions(size=96, steps=1))[1]
        _, grown = visualize_batch(dreamer, [[parse_spec(spec)]], VisualizeOptions(size=96, steps=10))
        assert grown.checks.passed, spec
        assert grown.objectives[0] > start.objectives[0], spec
    out = tmp_path / "builtin.png"
    args = ["visualize", "zoo:efficientnet-lite0", "-l", "_blocks.10", "--channels", "0-3", "-o", str(out)]
    result = runner.invoke(app, [*args, "--size", "64", "--steps", "3", "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as grid:
        assert grid.size == (2 * 64, 2 * (64 + label_height()))
