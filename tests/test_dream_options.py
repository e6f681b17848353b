"""Dream quality options on a tiny CNN: parameterisations, transforms and optimisers each raise the
objective, keep octaves, tiles, guides and channels working, and reproduce from a seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
from onnxdream.dream.optim import Optimizer
from onnxdream.dream.param import ImageParam, color_matrix, spectrum_scale
from onnxdream.dream.transforms import Transforms
from onnxdream.errors import OnnxDreamError
from tests.dream_helpers import pattern, tiny_cnn

FAST = {"octaves": 2, "steps": 4, "lr": 0.05, "check": False}
PLAIN = {"param": "pixels", "decorrelate": False, "optimizer": "ascent", "scale": 0.0, "rotate": 0.0}


@pytest.fixture(scope="module")
def dreamer():
    return open_dreamer(tiny_cnn(), "cpu")


OPTIONS = {
    "pixels-ascent": PLAIN,
    "fft": {**PLAIN, "param": "fft"},
    "decorrelate": {**PLAIN, "decorrelate": True},
    "fft-decorrelate": {**PLAIN, "param": "fft", "decorrelate": True},
    "adam": {**PLAIN, "optimizer": "adam"},
    "scale": {**PLAIN, "scale": 0.2},
    "rotate": {**PLAIN, "rotate": 20.0},
    "pad": {**PLAIN, "pad": 8},
    "lap": {**PLAIN, "grad_norm": "lap"},
    "default": {},
}


@pytest.mark.parametrize("options", list(OPTIONS.values()), ids=list(OPTIONS))
def test_each_option_raises_the_objective(dreamer, options):
    _, result = dreamer.run(pattern(), [parse_spec("block2")], DreamOptions(**FAST, **options))
    assert result.objective_after > 1.2 * result.objective_before


@pytest.mark.parametrize(
    "extra",
    [
        {"tile": 32},
        {"guide": pattern(40, 40, seed=7)[::-1].copy()},
        {"octaves": 3, "octave_scale": 1.3},
    ],
    ids=["tiles", "guide", "three-octaves"],
)
def test_default_options_with_tiles_guide_and_octaves(dreamer, extra):
    options = DreamOptions(**{**FAST, **extra})
    specs = [parse_spec("block1:2,5*0.5"), parse_spec("block2:3")]
    image, result = dreamer.run(pattern(80, 96), specs, options)
    assert image.size == (96, 80)
    assert result.objective_after > result.objective_before


def test_default_options_same_seed_same_image(dreamer):
    specs = [parse_spec("block2")]
    first, _ = dreamer.run(pattern(), specs, DreamOptions(seed=3, pad=4, **FAST))
    again, _ = dreamer.run(pattern(), specs, DreamOptions(seed=3, pad=4, **FAST))
    other, _ = dreamer.run(pattern(), specs, DreamOptions(seed=4, pad=4, **FAST))
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


@pytest.mark.parametrize(
    ("kind", "decorrelate", "squash"),
    [("pixels", True, "clip"), ("fft", False, "clip"), ("fft", True, "clip"), ("fft", True, "sigmoid")],
    ids=["decorrelate", "fft", "fft-decorrelate", "fft-sigmoid"],
)
def test_param_represents_an_image_exactly(kind, decorrelate, squash):
    pixels = torch.from_numpy(pattern(37, 50)).permute(2, 0, 1)[None].clamp(0.01, 0.99)
    param = ImageParam.from_pixels(pixels, kind, decorrelate, squash)
    torch.testing.assert_close(param.pixels(), pixels, atol=2e-5, rtol=0)
    assert param.latent.requires_grad and not param.identity


def test_fft_scale_is_one_over_frequency():
    scale = spectrum_scale(64, 64, torch.zeros(1))
    assert scale.shape == (64, 33)
    assert float(scale.square().mean()) == pytest.approx(1.0, rel=1e-5)
    # Halving the frequency doubles the scale; DC is floored at one cycle per image.
    assert float(scale[0, 4] / scale[0, 8]) == pytest.approx(2.0, rel=1e-5)
    assert float(scale[0, 0] / scale[0, 1]) == pytest.approx(1.0, rel=1e-5)


def test_color_matrix_is_invertible_and_mixes_channels():
    matrix = color_matrix(torch.zeros(1))
    assert float(matrix.norm(dim=0).max()) == pytest.approx(1.0, rel=1e-6)
    assert abs(float(torch.linalg.det(matrix))) > 1e-3
    assert (matrix[:, 0] > 0).all()  # the first component is luminance: all of R, G, B together


def test_clip_projection_keeps_fft_images_in_range():
    pixels = torch.full((1, 3, 16, 16), 0.5)
    param = ImageParam.from_pixels(pixels, "fft", True)
    with torch.no_grad():
        param.latent[..., 0, 0, 0] += 100.0  # a huge DC step
    param.project()
    image = param.pixels().detach()
    assert float(image.min()) >= -1e-5 and float(image.max()) <= 1 + 1e-5


def test_ascent_step_moves_pixels_by_lr_on_average():
    pixels = torch.full((1, 3, 24, 24), 0.5)
    param = ImageParam.from_pixels(pixels, "fft", True)
    optimizer = Optimizer(param, "ascent", lr=0.01)
    view = param.pixels()
    optimizer.apply(view, torch.randn(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)))
    assert float((param.pixels().detach() - pixels).abs().mean()) == pytest.approx(0.01, rel=1e-3)


def test_transforms_identity_and_shapes():
    rng = np.random.default_rng(0)
    x = torch.rand(2, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    assert Transforms()(x, rng) is x
    assert Transforms(pad=5)(x, rng).shape == (2, 3, 30, 40)
    turned = Transforms(scale=0.2, rotate=30)(x, rng)
    assert turned.shape == x.shape and not torch.equal(turned, x)
    # An affine of angle 0 and zoom 1 resamples at the pixel centres: the identity.
    same = Transforms(scale=1e-9)(x, rng)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"param": "wavelet"}, r"unknown parameterisation 'wavelet'; choose one of pixels, fft"),
        ({"optimizer": "sgd"}, r"unknown optimizer 'sgd'; choose one of ascent, adam"),
        ({"scale": 0.9}, r"^scale must be between 0 and 0.5, got 0.9$"),
        ({"rotate": -1.0}, r"^rotate must be between 0 and 45 degrees, got -1.0$"),
        ({"pad": -2}, r"^pad must be 0 or more, got -2$"),
        ({"jitter": -1}, r"^jitter must be 0 or more, got -1$"),
        ({"lr": -0.1}, r"^lr must be positive, got -0.1$"),
    ],
    ids=["param", "optimizer", "scale", "rotate", "pad", "jitter", "lr"],
)
def test_bad_options(option, message):
    with pytest.raises(OnnxDreamError, match=message):
        DreamOptions(**option)
