"""Image I/O for dreams: every Pillow mode becomes RGB float, formats follow the extension."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from onnxdream.dream.image import load_image, output_format, save_image, to_pil
from onnxdream.errors import OnnxDreamError


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
