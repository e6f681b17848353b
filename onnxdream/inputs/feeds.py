"""Model inputs from files: an image (RGB, resized, normalised) or a ``.npy`` array, in the
model's layout (NCHW, or NHWC for channels-last models: see :mod:`onnxdream.layout`).

The normalisation comes from the model's ``onnxdream.preprocess`` metadata when present, else
ImageNet statistics on [0, 1] RGB (see :func:`onnxdream.inputs.normalize.preprocess_for`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper

from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.images import MAX_PIXELS, load_image, resize_array
from onnxdream.inputs.normalize import preprocess_for
from onnxdream.layout import image_axes, input_layout
from onnxdream.shapes import input_dims

MAX_ELEMENTS = 2**31 - 1
"""Largest input tensor made from a file or at random (ONNX Runtime and torch index with int32 here)."""


def check_size(name: str, shape: list[int]) -> None:
    """Refuse an input of more than :data:`MAX_ELEMENTS` elements before allocating it.

    Raises:
        OnnxDreamError: the declared shape is too large.
    """
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise OnnxDreamError(
            f"input {name!r} declares {'x'.join(map(str, shape))} = {count} elements, "
            f"more than the {MAX_ELEMENTS} supported"
        )


@dataclass(frozen=True)
class InputSpec:
    """The one data input of a model: name, element type and dims (``None`` where not fixed).

    ``dims`` is ``None`` when the model does not declare the input's rank.
    """

    name: str
    dtype: np.dtype
    dims: tuple[int | None, ...] | None


def input_spec(model: onnx.ModelProto) -> InputSpec:
    """Describe the model's single non-initializer input.

    Raises:
        OnnxDreamError: the model has no data input or several.
    """
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise OnnxDreamError(f"the model needs exactly one data input to run on a file (it has {names})")
    value = inputs[0]
    dims = input_dims(value)
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
    return InputSpec(value.name, dtype, dims)


def image_input(
    path: str | Path,
    size: tuple[int | None, int | None] | None,
    model: onnx.ModelProto,
    max_pixels: int = MAX_PIXELS,
    layout: str | None = None,
) -> np.ndarray:
    """Read an image as the model's 1x3xHxW (or, channels-last, 1xHxWx3) float32 input, resized
    to ``size`` (H, W) if given. ``layout`` overrides the layout found from the model.

    A side of ``size`` that is ``None`` follows the other one, keeping the aspect ratio (a text
    recogniser of height 48 takes a line image at height 48 and its proportional width).

    Decoding (EXIF, alpha, 16-bit, palette) and normalisation are the ones ``dream`` uses.

    Raises:
        OnnxDreamError: the file is missing or not an image, or the metadata is malformed.
    """
    rgb = load_image(path, max_pixels=max_pixels)
    if size is not None and size != (None, None):
        height, width = rgb.shape[:2]
        fixed_h, fixed_w = size
        rgb = resize_array(
            rgb,
            (
                fixed_h or max(1, round(height * fixed_w / width)),
                fixed_w or max(1, round(width * fixed_h / height)),
            ),
        )
    pixels = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    return preprocess_for(model, layout=layout).to_model(pixels).numpy().astype(np.float32)


def _fit(array: np.ndarray, spec: InputSpec, path: str | Path) -> np.ndarray:
    if spec.dims is None:
        return np.ascontiguousarray(array, dtype=spec.dtype)
    if array.ndim == len(spec.dims) - 1:
        array = array[None]
    fixed = all(d is None or d == a for a, d in zip(array.shape, spec.dims, strict=False))
    if array.ndim != len(spec.dims) or not fixed:
        want = "x".join("?" if d is None else str(d) for d in spec.dims)
        raise OnnxDreamError(
            f"{path}: array of shape {'x'.join(map(str, array.shape))} does not fit input "
            f"{spec.name!r} ({want})"
        )
    return np.ascontiguousarray(array, dtype=spec.dtype)


def load_input(
    path: str | Path,
    model: onnx.ModelProto,
    max_pixels: int = MAX_PIXELS,
    source: str = "<model>",
    layout: str | None = None,
) -> dict[str, np.ndarray]:
    """Feeds for ``model`` from a ``.npy`` file (fed as it is) or an image (resized to the fixed
    H and/or W, in the model's layout; ``layout`` overrides the one found from the model).

    Raises:
        OnnxDreamError: unreadable file, an image over ``max_pixels`` pixels (0: no limit), an
            input that declares more than :data:`MAX_ELEMENTS` elements (``source`` names the
            model), or an array that does not fit the input.
    """
    spec = input_spec(model)
    try:
        check_size(spec.name, [d or 1 for d in spec.dims or ()])
    except OnnxDreamError as exc:
        raise OnnxDreamError(f"{source}: {exc}") from None
    path = Path(path)
    if not path.is_file():
        raise OnnxDreamError(f"{path}: file not found")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise OnnxDreamError(f"{path}: cannot read array ({exc})") from None
        return {spec.name: _fit(array, spec, path)}
    dims = spec.dims if spec.dims is not None else (None,) * 4
    if len(dims) != 4:
        raise OnnxDreamError(
            f"{path}: an image needs an NCHW or NHWC input; {spec.name!r} has rank {len(dims)}"
        )
    found = input_layout(model, layout)
    _, height, width = image_axes(found.layout)
    array = image_input(path, (dims[height], dims[width]), model, max_pixels, found.layout)
    return {spec.name: _fit(array, spec, path)}
