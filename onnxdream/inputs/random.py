"""Seeded random inputs of a model's declared shapes, for runs that need no real data."""

from __future__ import annotations

import numpy as np
import onnx

from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.feeds import check_size
from onnxdream.layout import in_layout, input_layout
from onnxdream.shapes import input_dims

DEFAULT_SIDE = 224
"""Height and width of the default input where the model leaves them free."""


def random_inputs(
    model: onnx.ModelProto,
    seed: int = 0,
    size: tuple[int, int] = (DEFAULT_SIDE, DEFAULT_SIDE),
    source: str = "<model>",
    layout: str | None = None,
) -> dict[str, np.ndarray]:
    """Seeded inputs of the model's declared shapes (``source`` names the model in errors).

    Dims the model leaves free (symbolic, missing, ``-1`` or ``0``) are 1 for the batch, 3 for
    the channels and ``size`` for the sides of a rank-4 image input (NCHW, or NHWC when
    ``layout`` says so or the model shows it: see :mod:`onnxdream.layout`), 1 elsewhere; declared dims are
    used as they are (a recogniser of height 48 gets height 48). Float inputs are standard
    normal; other types are zeros.

    Raises:
        OnnxDreamError: an input declares no shape (its rank is unknown), or more elements than
            can be made.
    """
    rng = np.random.default_rng(seed)
    image = in_layout((1, 3, *size), input_layout(model, layout).layout)
    weights = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in weights:
            continue
        dims = input_dims(vi)
        if dims is None:
            raise OnnxDreamError(
                f"{source}: input {vi.name!r} declares no shape, so no random input can be made; "
                "give an input of the size the model needs"
            )
        free = image if len(dims) == 4 else (1,) * len(dims)
        shape = [d if d is not None else free[i] for i, d in enumerate(dims)]
        try:
            check_size(vi.name, shape)
        except OnnxDreamError as exc:
            raise OnnxDreamError(f"{source}: {exc}") from None
        dtype = np.dtype(
            onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type or onnx.TensorProto.FLOAT)
        )
        if dtype.kind == "f" or "float" in dtype.name:
            feeds[vi.name] = rng.standard_normal(shape).astype(np.float32).astype(dtype)
        else:
            feeds[vi.name] = np.zeros(shape, dtype=dtype)
    return feeds
