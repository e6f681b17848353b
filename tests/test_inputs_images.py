"""Image I/O: every Pillow mode becomes RGB float, a pixel limit before decoding, formats by extension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from onnxdream.errors import OnnxDreamError, WriteError
from onnxdream.inputs.images import (
    MAX_PIXELS,
    fit_size,
    from_pil,
    limit_size,
    load_image,
    output_format,
    resize_array,
    save_image,
    to_pil,
)


def _save(image: Image.Image, path, **kw):
    image.save(path, **kw)
    return path


def test_rgba_is_composited_over_white(tmp_path):
    rgba = Image.new("RGBA", (4, 3), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black
    rgba.putpixel((1, 0), (0, 0, 255, 128))
    array = load_image(_save(rgba, tmp_path / "a.png"))
    assert array.shape == (3, 4, 3) and array.dtype == np.float32
    np.testing.assert_allclose(array[0, 0], [1, 1, 1])
    np.testing.assert_allclose(array[0, 1], [127 / 255, 127 / 255, 1.0], atol=1e-6)
    np.testing.assert_allclose(array[2, 3], [1, 0, 0])


def test_greyscale_becomes_three_equal_channels(tmp_path):
    grey = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)
    array = load_image(_save(grey, tmp_path / "g.png"))
    assert array.shape == (3, 4, 3)
    np.testing.assert_allclose(array[..., 0], np.arange(12).reshape(3, 4) * 20 / 255, atol=1e-6)
    np.testing.assert_array_equal(array[..., 0], array[..., 2])


def test_16bit_keeps_precision(tmp_path):
    values = np.array([[0, 1, 257, 65535]], dtype=np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "d.png")
    assert Image.open(path).mode.startswith("I")
    array = load_image(path)
    np.testing.assert_allclose(array[0, :, 1], values[0] / 65535, rtol=1e-6)
    assert 0 < array[0, 1, 0] < 1 / 255  # finer than 8 bits


def test_palette_with_transparency(tmp_path):
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 255, 0, 10, 20, 30] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    path = _save(pal, tmp_path / "p.png", transparency=1)
    array = load_image(path)
    np.testing.assert_allclose(array[0, 0], [0, 1, 0])
    np.testing.assert_allclose(array[0, 1], [1, 1, 1])


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (32, 16), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 16, 16))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the left half becomes the top half
    path = tmp_path / "r.jpg"
    image.save(path, exif=exif, quality=100)
    array = load_image(path)
    assert array.shape[:2] == (32, 16)
    np.testing.assert_allclose(array[8, 8], [1, 0, 0], atol=0.05)
    np.testing.assert_allclose(array[24, 8], [0, 0, 1], atol=0.05)


def test_max_size_shrinks_longer_side(tmp_path):
    path = _save(Image.new("RGB", (300, 120), (10, 200, 30)), tmp_path / "big.png")
    array = load_image(path, max_size=100)
    assert array.shape == (40, 100, 3)
    np.testing.assert_allclose(array[20, 50], [10 / 255, 200 / 255, 30 / 255], atol=2e-3)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("o.png", "PNG"), ("o.JPG", "JPEG"), ("o.jpeg", "JPEG"), ("o.webp", "WEBP"), ("o.tif", "TIFF")],
)
def test_output_format_from_extension(tmp_path, name, fmt):
    assert output_format(name) == fmt
    path = save_image(to_pil(np.full((5, 6, 3), 0.5, np.float32)), tmp_path / name)
    with Image.open(path) as written:
        assert written.format == fmt and written.size == (6, 5) and written.mode == "RGB"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp file left behind


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(OnnxDreamError, match=r"o\.bmpx.*use one of \.jpeg, \.jpg, \.png"):
        output_format(tmp_path / "o.bmpx")


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(OnnxDreamError, match=r"broken\.png: not a readable image"):
        load_image(bad)
    with pytest.raises(OnnxDreamError, match=r"missing\.png: image not found"):
        load_image(tmp_path / "missing.png")


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    path = _save(Image.new("RGB", (40, 30), (0, 0, 255)), tmp_path / "p.png")
    with pytest.raises(OnnxDreamError) as info:
        load_image(path, max_pixels=1199)
    assert str(info.value) == (
        f"{path}: 40x30 is 1200 pixels, over the limit of 1199 (max_pixels raises it, 0 lifts it)"
    )
    assert load_image(path, max_pixels=1200).shape == (30, 40, 3)
    assert load_image(path, max_pixels=0).shape == (30, 40, 3)


def test_pillow_bomb_limit_is_replaced_and_restored(tmp_path, monkeypatch):
    """Pillow's own limit would refuse 1200 pixels; ours (the default) reads them and puts it back."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = _save(Image.new("RGB", (40, 30), (0, 0, 255)), tmp_path / "p.png")
    assert MAX_PIXELS == 100_000_000
    np.testing.assert_allclose(load_image(path)[0, 0], [0, 0, 1])
    assert Image.MAX_IMAGE_PIXELS == 100


@pytest.mark.parametrize(
    ("size", "max_size", "expected"),
    [
        ((300, 120), 100, (100, 40)),
        ((120, 300), 100, (40, 100)),
        ((50, 20), 100, (50, 20)),
        ((1000, 1), 10, (10, 1)),
    ],
    ids=["wide", "tall", "never-enlarged", "thin-keeps-one"],
)
def test_fit_size(size, max_size, expected):
    assert fit_size(*size, max_size) == expected


def test_limit_size_refuses_below_one():
    array = np.zeros((4, 4, 3), np.float32)
    assert limit_size(array, None) is array
    with pytest.raises(OnnxDreamError, match=r"^max_size must be at least 1, got 0$"):
        limit_size(array, 0)


def test_resize_array_keeps_a_constant_image_and_range():
    constant = np.full((9, 13, 3), [0.2, 0.5, 0.9], np.float32)
    out = resize_array(constant, (4, 6))
    assert out.shape == (4, 6, 3)
    np.testing.assert_allclose(out, np.broadcast_to([0.2, 0.5, 0.9], (4, 6, 3)), atol=1e-5)
    edges = np.zeros((8, 8, 3), np.float32)
    edges[:, 4:] = 1.0
    grown = resize_array(edges, (16, 16))
    assert grown.min() >= 0.0 and grown.max() <= 1.0  # bicubic overshoot is clipped
    assert resize_array(edges, (8, 8)) is edges


def test_to_pil_rounds_and_from_pil_reads_back():
    array = np.array([[[0.0, 0.5, 1.0], [1.2, -0.1, 0.998]]], np.float32)
    image = to_pil(array)
    assert image.mode == "RGB" and image.size == (2, 1)
    np.testing.assert_array_equal(np.asarray(image), [[[0, 128, 255], [255, 0, 254]]])
    np.testing.assert_allclose(from_pil(image), [[[0, 128 / 255, 1], [1, 0, 254 / 255]]], atol=1e-7)


def test_save_failure_leaves_no_file(tmp_path, monkeypatch):
    def broken(self, fp, format=None, **params):
        Path(fp).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(WriteError) as info:
        save_image(to_pil(np.zeros((2, 2, 3), np.float32)), tmp_path / "o.png")
    assert str(info.value) == f"{tmp_path / 'o.png'}: cannot write (disk full)"
    assert list(tmp_path.iterdir()) == []
