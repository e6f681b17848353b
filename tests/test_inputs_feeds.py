"""Files as a model's feeds: ``.npy`` arrays fitted to the input, images resized and normalised, limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from PIL import Image

from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.feeds import MAX_ELEMENTS, check_size, input_spec, load_input
from onnxdream.metadata import PREPROCESS_KEY, set_json


def _model(
    dims: list[int | str] | None, elem: int = onnx.TensorProto.FLOAT, extra_inputs: int = 0
) -> onnx.ModelProto:
    """``y = Identity(x)``, plus a weight ``w`` listed as a graph input (older exporters do that)."""
    x = helper.make_tensor_value_info("x", elem, dims)
    if dims is None:
        x = helper.make_tensor_value_info("x", elem, None)
    w = helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [1])
    others = [helper.make_tensor_value_info(f"z{i}", elem, [1]) for i in range(extra_inputs)]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [x, w, *others],
        [helper.make_tensor_value_info("y", elem, None)],
        initializer=[numpy_helper.from_array(np.ones(1, np.float32), "w")],
    )
    return helper.make_model(graph)


def _png(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def test_input_spec_skips_initializers_and_keeps_free_dims() -> None:
    spec = input_spec(_model(["N", 3, 224, "W"], onnx.TensorProto.FLOAT16))
    assert (spec.name, spec.dtype, spec.dims) == ("x", np.dtype(np.float16), (None, 3, 224, None))
    assert input_spec(_model(None)).dims is None


def test_input_spec_needs_exactly_one_data_input() -> None:
    with pytest.raises(OnnxDreamError) as info:
        input_spec(_model([1, 3, 4, 4], extra_inputs=2))
    assert (
        str(info.value) == "the model needs exactly one data input to run on a file (it has 'x', 'z0', 'z1')"
    )


def test_check_size_refuses_more_than_int32_elements() -> None:
    check_size("x", [1, 1, MAX_ELEMENTS])
    with pytest.raises(OnnxDreamError) as info:
        check_size("x", [1, 2, 65536, 16384])
    assert (
        str(info.value)
        == f"input 'x' declares 1x2x65536x16384 = {2**31} elements, more than the {MAX_ELEMENTS} supported"
    )


def test_huge_declared_input_is_refused_naming_the_model(tmp_path: Path) -> None:
    path = _png(tmp_path / "a.png", 4, 4)
    with pytest.raises(OnnxDreamError, match=r"^big\.onnx: input 'x' declares 1x3x65536x65536 = "):
        load_input(path, _model([1, 3, 65536, 65536]), source="big.onnx")


def test_npy_gets_a_batch_axis_and_the_input_dtype(tmp_path: Path) -> None:
    array = np.random.default_rng(0).normal(size=(3, 5, 7))
    np.save(tmp_path / "a.npy", array)
    feeds = load_input(tmp_path / "a.npy", _model([1, 3, "H", "W"]))
    assert list(feeds) == ["x"]
    assert feeds["x"].shape == (1, 3, 5, 7) and feeds["x"].dtype == np.float32
    assert feeds["x"].flags.c_contiguous
    np.testing.assert_allclose(feeds["x"][0], array.astype(np.float32))


def test_npy_is_fed_as_is_when_the_rank_is_unknown(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.int64).reshape(2, 3))
    feeds = load_input(tmp_path / "a.npy", _model(None))
    np.testing.assert_array_equal(feeds["x"], np.arange(6, dtype=np.float32).reshape(2, 3))


@pytest.mark.parametrize(
    ("shape", "want"),
    [((1, 4, 5, 7), "1x3x?x?"), ((5, 7), "1x3x?x?"), ((2, 1, 3, 5, 7), "1x3x?x?")],
    ids=["channels", "rank-2", "rank-5"],
)
def test_npy_that_does_not_fit_is_refused(tmp_path: Path, shape: tuple[int, ...], want: str) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(shape, np.float32))
    with pytest.raises(OnnxDreamError) as info:
        load_input(path, _model([1, 3, "H", "W"]))
    got = "x".join(map(str, shape if len(shape) != 3 else (1, *shape)))
    assert str(info.value) == f"{path}: array of shape {got} does not fit input 'x' ({want})"


def test_unreadable_npy_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    with pytest.raises(OnnxDreamError, match=r"bad\.npy: cannot read array \("):
        load_input(bad, _model([1, 3, 4, 4]))
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object))
    with pytest.raises(OnnxDreamError, match=r"obj\.npy: cannot read array \(.*allow_pickle"):
        load_input(pickled, _model([1, 3, 4, 4]))
    with pytest.raises(OnnxDreamError, match=r"^.*nope\.png: file not found$"):
        load_input(tmp_path / "nope.png", _model([1, 3, 4, 4]))


def _expected(path: Path, size: tuple[int, int], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Independent of the module: Pillow decode, torch bicubic antialiased resize, (x - mean) / std."""
    rgb = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    t = F.interpolate(t, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    return (t.numpy() - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1)


def test_image_is_resized_to_the_fixed_size_and_normalised(tmp_path: Path) -> None:
    path = _png(tmp_path / "a.png", 40, 30)
    feeds = load_input(path, _model([1, 3, 16, 24]))
    assert feeds["x"].shape == (1, 3, 16, 24) and feeds["x"].dtype == np.float32
    imagenet = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(feeds["x"], _expected(path, (16, 24), *imagenet), atol=1e-5)


def test_image_uses_the_models_preprocess_metadata(tmp_path: Path) -> None:
    path = _png(tmp_path / "a.png", 8, 6, seed=1)
    model = _model([1, 3, "H", "W"])
    set_json(model, PREPROCESS_KEY, {"mean": [0.5], "std": [0.25], "channels": "BGR"})
    feeds = load_input(path, model)
    rgb = np.asarray(Image.open(path), np.float32) / 255.0
    expected = (rgb[..., ::-1].transpose(2, 0, 1)[None] - 0.5) / 0.25
    np.testing.assert_allclose(feeds["x"], expected, atol=1e-5)


@pytest.mark.parametrize(
    ("dims", "shape"),
    [
        ([1, 3, 48, "W"], (1, 3, 48, 160)),
        ([1, 3, "H", 30], (1, 3, 9, 30)),
        (["N", 3, "H", "W"], (1, 3, 30, 100)),
    ],
    ids=["fixed-height", "fixed-width", "free"],
)
def test_a_free_side_follows_the_aspect_ratio(tmp_path: Path, dims: list, shape: tuple[int, ...]) -> None:
    path = _png(tmp_path / "line.png", 100, 30)
    assert load_input(path, _model(dims))["x"].shape == shape


def test_image_needs_an_nchw_input(tmp_path: Path) -> None:
    path = _png(tmp_path / "a.png", 4, 4)
    with pytest.raises(OnnxDreamError) as info:
        load_input(path, _model([1, 16]))
    assert str(info.value) == f"{path}: an image needs an NCHW or NHWC input; 'x' has rank 2"


def test_image_over_the_pixel_limit_is_refused(tmp_path: Path) -> None:
    path = _png(tmp_path / "a.png", 40, 30)
    with pytest.raises(OnnxDreamError, match=r"a\.png: 40x30 is 1200 pixels, over the limit of 1000"):
        load_input(path, _model([1, 3, 8, 8]), max_pixels=1000)
    assert load_input(path, _model([1, 3, 8, 8]), max_pixels=0)["x"].shape == (1, 3, 8, 8)
