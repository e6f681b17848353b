"""Identity, Dropout (inference: identity), Constant, ConstantOfShape, Cast, CastLike."""

from __future__ import annotations

import onnx
import torch

from onnxdream.mirror.ops._common import as_ints
from onnxdream.mirror.registry import Converted, NodeView, converter, torch_dtype


@converter("Identity", 1)
def identity(node: NodeView) -> Converted:
    return node.call(lambda x: x, 0)


def _drops(mode: torch.Tensor | None, ratio: torch.Tensor | None) -> bool:
    """Whether training mode is on with a ratio above 0 (a random mask would be drawn)."""
    return (
        mode is not None and bool(mode.reshape(-1)[0]) and (ratio is None or float(ratio.reshape(-1)[0]) > 0)
    )


@converter("Dropout", 1)
def dropout(node: NodeView) -> Converted:
    # Inference semantics whatever ratio says: the mirror is a deterministic model. Training
    # mode with a ratio above 0 draws a random mask, which the mirror cannot reproduce:
    # refused (when building, or when run if mode and ratio are only known then), not ignored.
    why = "training_mode draws a random mask; the mirror computes inference only"
    mask_type = None if node.opset < 10 else torch.bool  # the mask was float before opset 10

    def outputs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, torch.ones_like(x, dtype=mask_type)

    single = len(node.outputs) < 2
    if not node.has_input(2):
        return node.call((lambda x: x) if single else outputs, 0)
    if node.is_static(1) and node.is_static(2):
        if _drops(node.static(2), node.static(1)):
            raise node.unsupported(why)
        return node.call((lambda x: x) if single else outputs, 0)

    def checked(x: torch.Tensor, ratio: torch.Tensor | None, mode: torch.Tensor | None):
        if _drops(mode, ratio):
            raise node.unsupported(why)
        return x if single else outputs(x)

    return node.call(checked, 0, 1, 2)


@converter("Constant", 1)
def constant(node: NodeView) -> Converted:
    if node.has_attr("value"):
        value = node.attr("value")
    elif node.has_attr("value_float"):
        value = torch.tensor(node.attr("value_float"), dtype=torch.float32)
    elif node.has_attr("value_floats"):
        value = torch.tensor(node.attr("value_floats"), dtype=torch.float32)
    elif node.has_attr("value_int"):
        value = torch.tensor(node.attr("value_int"), dtype=torch.int64)
    elif node.has_attr("value_ints"):
        value = torch.tensor(node.attr("value_ints"), dtype=torch.int64)
    else:
        raise node.unsupported("only numeric dense constants are supported")
    return node.call(lambda: value)


@converter("ConstantOfShape", 9, shape_inputs=(0,))
def constant_of_shape(node: NodeView) -> Converted:
    value = node.attr("value")
    fill = value.reshape(-1) if value is not None else torch.zeros(1, dtype=torch.float32)
    return node.call(lambda s: fill.expand(as_ints(s)).clone(), 0)


def _dtype(node: NodeView, onnx_type: int) -> torch.dtype:
    dtype = torch_dtype(onnx_type)
    if dtype is None:
        name = onnx.TensorProto.DataType.Name(onnx_type)
        raise node.unsupported(f"cast to element type {name}, which torch lacks")
    return dtype


_FLOAT8 = (torch.float8_e4m3fn, torch.float8_e4m3fnuz, torch.float8_e5m2, torch.float8_e5m2fnuz)


def cast_to(dtype: torch.dtype, saturate: bool):
    """``x.to(dtype)`` with ONNX's rules for float8: saturate to the largest finite value, or
    overflow to NaN (infinity for float8e5m2) where ``saturate=0``."""
    if dtype not in _FLOAT8:
        return lambda x: x.to(dtype)
    big = torch.finfo(dtype).max

    def run(x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            return x.to(dtype)
        if saturate:
            return torch.where(torch.isnan(x), x, x.clamp(-big, big)).to(dtype)
        if dtype == torch.float8_e4m3fn:
            # torch saturates this type; without saturation ONNX overflows to NaN whatever
            # would not round to the largest value (448, next step of its grid 480).
            return torch.where(x.abs() > 464.0, torch.full_like(x, float("nan")), x).to(dtype)
        return x.to(dtype)

    return run


@converter("Cast", 1)
def cast(node: NodeView) -> Converted:
    to = node.attr("to")
    if isinstance(to, str):  # opset 1 spelled the type as a string
        to = getattr(torch, to.lower(), None)
        if not isinstance(to, torch.dtype):
            raise node.unsupported(f"cast to {node.attr('to')!r}")
        dtype = to
    else:
        dtype = _dtype(node, to)
    return node.call(cast_to(dtype, bool(node.attr("saturate", 1))), 0)


@converter("CastLike", 15)
def cast_like(node: NodeView) -> Converted:
    saturate = bool(node.attr("saturate", 1))
    return node.call(lambda x, like: cast_to(like.dtype, saturate)(x), 0, 1)
