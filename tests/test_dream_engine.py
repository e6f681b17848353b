"""The dream loop on a tiny CNN: objective rises, seeds reproduce, tiles agree, sizes are guarded."""

from __future__ import annotations

import errno

import numpy as np
import pytest
import torch
from PIL import Image

from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
from onnxdream.dream.activations import TorchActivations
from onnxdream.dream.animate import animate, save_animation, zoom_in
from onnxdream.dream.atlas import atlas_layers, label_height, make_grid
from onnxdream.dream.octaves import octave_sizes
from onnxdream.dream.step import lap_normalize, normalize_gradient
from onnxdream.dream.tiling import compute_gradient
from onnxdream.errors import OnnxDreamError, UnknownLayerError, WriteError
from tests.dream_helpers import pattern, tiny_cnn

FAST = {"octaves": 2, "steps": 4, "lr": 0.05, "check": False}


@pytest.fixture
def dreamer():
    return open_dreamer(tiny_cnn(), "cpu")


@pytest.mark.parametrize("grad_norm", ["mean", "lap"])
@pytest.mark.parametrize("loss", ["l2", "mean"])
def test_objective_rises(dreamer, loss, grad_norm):
    _, result = dreamer.run(
        pattern(), [parse_spec("block2")], DreamOptions(loss=loss, grad_norm=grad_norm, **FAST)
    )
    assert result.objective_after > result.objective_before * 1.2


def test_weighted_channels_objective_rises(dreamer):
    specs = [parse_spec("block1:2,5*0.5"), parse_spec("block2:3")]
    _, result = dreamer.run(pattern(), specs, DreamOptions(**FAST))
    assert result.layers == ["block1:2,5*0.5", "block2:3"]
    assert result.objective_after > result.objective_before * 1.2


def test_same_seed_same_output_other_seed_differs(dreamer):
    specs = [parse_spec("block2")]
    first, _ = dreamer.run(pattern(), specs, DreamOptions(seed=3, **FAST))
    again, _ = dreamer.run(pattern(), specs, DreamOptions(seed=3, **FAST))
    other, _ = dreamer.run(pattern(), specs, DreamOptions(seed=4, **FAST))
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_tiled_equals_untiled_when_tile_covers_image(dreamer):
    specs = [parse_spec("block2")]
    whole, _ = dreamer.run(pattern(48, 64), specs, DreamOptions(seed=1, **FAST))
    tiled, _ = dreamer.run(pattern(48, 64), specs, DreamOptions(seed=1, tile=64, **FAST))
    assert np.array_equal(np.asarray(whole), np.asarray(tiled))


def test_tiles_cover_every_pixel_and_approximate_the_gradient():
    net = TorchActivations(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1)).eval().requires_grad_(False))

    def evaluate(x):
        acts = net(x, ["0"])
        return acts["0"].square().mean(), acts, x

    x = torch.rand(1, 3, 50, 70, generator=torch.Generator().manual_seed(0))
    whole = compute_gradient(evaluate, x, None, np.random.default_rng(0))
    tiled = compute_gradient(evaluate, x, 16, np.random.default_rng(0))
    # A 1x1 conv has no spatial context: tiling with area weights gives the exact gradient.
    torch.testing.assert_close(tiled.grad, whole.grad, rtol=1e-5, atol=1e-9)
    assert tiled.objective == pytest.approx(whole.objective, rel=1e-5)


def test_tiled_dream_runs_and_rises(dreamer):
    _, result = dreamer.run(pattern(80, 96), [parse_spec("block2")], DreamOptions(tile=32, **FAST))
    assert result.objective_after > result.objective_before * 1.2


def test_guided_dream_rises(dreamer):
    guide = pattern(40, 40, seed=7)[::-1].copy()
    options = DreamOptions(guide=guide, **FAST)
    _, result = dreamer.run(pattern(), [parse_spec("block2")], options)
    assert result.objective_after > result.objective_before


def test_unknown_layer_suggests_nearest(dreamer):
    with pytest.raises(UnknownLayerError, match=r"unknown layer 'block_2'; did you mean 'block2'") as info:
        dreamer.run(pattern(), [parse_spec("block_2")], DreamOptions(**FAST))
    assert info.value.exit_code == 2


def test_octave_sizes_never_go_below_minimum():
    assert octave_sizes(100, 140, 4, 1.4, 30) == [(36, 51), (51, 71), (71, 100), (100, 140)]
    assert octave_sizes(100, 140, 6, 2.0, 30) == [(50, 70), (100, 140)]
    with pytest.raises(OnnxDreamError, match=r"image is 20x10, too small .* at least 30x30 pixels"):
        octave_sizes(10, 20, 4, 1.4, 30)


def test_image_too_small_for_layer(dreamer):
    minimum = dreamer.minimum_size(["block2"])
    assert minimum >= 12  # block2 downsamples by 4 and needs 3 cells a side
    with pytest.raises(OnnxDreamError, match=r"too small for the target layers") as info:
        dreamer.run(pattern(minimum - 1, 64), [parse_spec("block2")], DreamOptions(**FAST))
    assert info.value.exit_code == 2


def test_gradient_normalisation():
    g = torch.randn(1, 3, 37, 53, generator=torch.Generator().manual_seed(0))
    for mode in ("mean", "lap"):
        assert float(normalize_gradient(g, mode).abs().mean()) == pytest.approx(1.0, rel=1e-5)
    # Laplacian normalisation boosts low frequencies relative to pixel noise.
    smooth = torch.nn.functional.avg_pool2d(g, 9, 1, 4) * 0.01
    mixed = smooth + g
    lapped = lap_normalize(mixed)
    low_share = torch.nn.functional.avg_pool2d(lapped, 9, 1, 4).abs().mean() / lapped.abs().mean()
    plain_share = torch.nn.functional.avg_pool2d(mixed, 9, 1, 4).abs().mean() / mixed.abs().mean()
    assert low_share > plain_share


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"steps": 0}, r"^steps must be at least 1, got 0$"),
        ({"lr": 0}, r"^lr must be positive, got 0$"),
        ({"grad_norm": "max"}, r"unknown gradient normalisation 'max'"),
        ({"on_mismatch": "ignore"}, r"^on_mismatch must be 'error' or 'warn', got 'ignore'$"),
        ({"octaves": 0}, r"^octaves must be at least 1, got 0$"),
        ({"octave_scale": 1.0}, r"^octave_scale must be greater than 1, got 1.0$"),
    ],
    ids=["steps", "lr", "grad-norm", "on-mismatch", "octaves", "octave-scale"],
)
def test_bad_options(dreamer, option, message):
    with pytest.raises(OnnxDreamError, match=message):
        dreamer.run(pattern(), [parse_spec("block2")], DreamOptions(**{**FAST, **option}))


def test_animation_writes_frames_and_gif(dreamer, tmp_path):
    frames = animate(dreamer, pattern(), [parse_spec("block1")], DreamOptions(**FAST), frames=3, zoom=1.1)
    paths, gif = save_animation(frames, tmp_path / "anim.gif")
    assert [p.name for p in paths] == ["anim_0001.png", "anim_0002.png", "anim_0003.png"]
    assert gif == tmp_path / "anim.gif"
    with Image.open(gif) as animation:
        assert animation.n_frames == 3 and animation.size == (64, 48)
    assert not np.array_equal(np.asarray(frames[0]), np.asarray(frames[1]))


def test_animation_lands_all_or_none(tmp_path, monkeypatch):
    """A full disk while the GIF is written leaves no frame behind either (and no temp file)."""
    frames = [Image.new("RGB", (8, 8), (i * 60, 0, 0)) for i in range(3)]
    save = Image.Image.save

    def full_disk_for_gifs(self, fp, format=None, **params):
        if format == "GIF":
            raise OSError(errno.ENOSPC, "No space left on device", str(fp))
        return save(self, fp, format=format, **params)

    monkeypatch.setattr(Image.Image, "save", full_disk_for_gifs)
    with pytest.raises(WriteError, match=r"anim\.gif: cannot write \(No space left on device\)"):
        save_animation(frames, tmp_path / "anim.gif")
    assert list(tmp_path.iterdir()) == []


def test_zoom_in_takes_the_centre():
    image = np.zeros((40, 40, 3), np.float32)
    image[10:30, 10:30] = 1.0
    zoomed = zoom_in(image, 2.0)
    assert zoomed.shape == (40, 40, 3)
    assert zoomed[5:35, 5:35].min() > 0.95


def test_atlas_layers_and_grid(dreamer):
    names = dreamer.layer_names()
    assert atlas_layers(names, match="block*") == [
        "block1",
        "block1.0",
        "block1.1",
        "block2",
        "block2.0",
        "block2.1",
    ]
    assert atlas_layers(names, depth=1) == ["stem", "block1", "block2", "head"]
    assert atlas_layers(names, match="b*", depth=1) == ["block1", "block2"]
    with pytest.raises(OnnxDreamError, match=r"no layer names match 'nope\*'"):
        atlas_layers(names, match="nope*")
    cells = [dreamer.run(pattern(), [parse_spec(n)], DreamOptions(**FAST))[0] for n in ("block1", "block2")]
    cells.append(cells[0])
    grid = make_grid(cells, ["block1", "block2", "block1 again"])
    assert grid.size == (2 * 64, 2 * (48 + label_height()))


def test_torch_adapter_stops_after_the_deepest_layer():
    net = tiny_cnn()
    calls = []
    net.head.register_forward_pre_hook(lambda *_: calls.append("head"))
    acts = TorchActivations(net)(torch.zeros(1, 3, 16, 16), ["block1", "stem.0"])
    assert list(acts) == ["block1", "stem.0"]
    assert tuple(acts["block1"].shape) == (1, 12, 8, 8) and tuple(acts["stem.0"].shape) == (1, 8, 16, 16)
    assert calls == []  # nothing after block1 ran
    with pytest.raises(UnknownLayerError, match=r"unknown layer 'blockk1'; did you mean 'block1'"):
        TorchActivations(net)(torch.zeros(1, 3, 16, 16), ["blockk1"])
