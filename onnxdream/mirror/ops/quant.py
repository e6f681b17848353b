"""Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearConv,
QLinearMatMul, ConvInteger, MatMulInteger.

Quantized values are integers (or float8), so no gradient flows through them in torch. So that
quantized (QDQ) models can be dreamed, QuantizeLinear tags its integer output with its float
input and DequantizeLinear passes the gradient straight through to it (the straight-through
estimator): the values are exactly ONNX's, the gradient of ``DQ(Q(x))`` is the identity. The tag
lives on the tensor object, so it reaches a DequantizeLinear fed directly by the QuantizeLinear.
"""

from __future__ import annotations

import onnx
import torch

from onnxdream.mirror.ops._common import norm_axis
from onnxdream.mirror.ops.conv import _CONV, _conv
from onnxdream.mirror.ops.misc import cast_to
from onnxdream.mirror.registry import Converted, NodeView, converter, torch_dtype

_SOURCE = "_onnxdream_quantized_from"


def _spread(p: torch.Tensor | None, x: torch.Tensor, axis: int, block: int) -> torch.Tensor | None:
    """A scale or zero point shaped to broadcast against ``x`` (per tensor, per axis or per block)."""
    if p is None or p.dim() == 0 or (p.numel() == 1 and block == 0):
        return p if p is None else p.reshape(())
    a = norm_axis(axis, x.dim())
    if block:
        return p.repeat_interleave(block, dim=a).narrow(a, 0, x.shape[a])
    return p.reshape([-1 if i == a else 1 for i in range(x.dim())])


def _work_type(*ts: torch.Tensor | None) -> torch.dtype:
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in ts) else torch.float32


def _saturate(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round half to even, clamp to ``dtype``'s range and convert (integers only)."""
    info = torch.iinfo(dtype)
    return torch.round(y).clamp(info.min, info.max).to(dtype)


def _target(node: NodeView, zero_point: torch.Tensor | None) -> torch.dtype | None:
    code = node.attr("output_dtype", 0)
    if code:
        dtype = torch_dtype(code)
        if dtype is None:
            raise node.unsupported(f"output type {onnx.TensorProto.DataType.Name(code)}, which torch lacks")
        return dtype
    return None if zero_point is None else zero_point.dtype


def quantize(
    x: torch.Tensor,
    scale: torch.Tensor,
    zp: torch.Tensor | None,
    dtype: torch.dtype,
    axis: int,
    block: int,
    saturate: bool,
) -> torch.Tensor:
    """ONNX QuantizeLinear of ``x`` into ``dtype``."""
    work = _work_type(x, scale)
    s = _spread(scale, x, axis, block).to(work)
    z = _spread(zp, x, axis, block)
    y = x.to(work) / s
    if dtype.is_floating_point:
        if z is not None:
            y = y + z.to(work)
        return cast_to(dtype, saturate)(y)
    if z is not None:
        y = torch.round(y) + z.to(work)
    return _saturate(y, dtype)


def dequantize(
    x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor | None, axis: int, block: int, dtype: torch.dtype
) -> torch.Tensor:
    """ONNX DequantizeLinear of ``x`` into ``dtype``."""
    work = _work_type(scale)
    s = _spread(scale, x, axis, block)
    z = _spread(zp, x, axis, block)
    y = x.to(work)
    if z is not None:
        y = y - z.to(work)
    return (y * s.to(work)).to(dtype)


@converter("QuantizeLinear", 10)
def quantize_linear(node: NodeView) -> Converted:
    axis, block = node.attr("axis", 1), node.attr("block_size", 0)
    saturate = bool(node.attr("saturate", 1))
    static_zp = node.static(2)
    if node.has_input(2) and static_zp is None and not node.has_attr("output_dtype"):
        target = None  # the zero point's type is known at run time
    else:
        target = _target(node, static_zp) or torch.uint8

    def run(x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor | None = None) -> torch.Tensor:
        y = quantize(x, scale, zp, target or zp.dtype, axis, block, saturate)
        if x.requires_grad:
            setattr(y, _SOURCE, x)
        return y

    return node.call(run, 0, 1, 2)


@converter("DequantizeLinear", 10)
def dequantize_linear(node: NodeView) -> Converted:
    axis, block = node.attr("axis", 1), node.attr("block_size", 0)
    code = node.attr("output_dtype", 0)
    out = torch_dtype(code) if code else None
    if code and out is None:
        raise node.unsupported(f"output type {onnx.TensorProto.DataType.Name(code)}, which torch lacks")

    def run(x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor | None = None) -> torch.Tensor:
        y = dequantize(x, scale, zp, axis, block, out or scale.dtype)
        source = getattr(x, _SOURCE, None)
        if source is not None and source.shape == y.shape:
            y = y + (source - source.detach()).to(y.dtype)  # straight through: value + 0, gradient 1
        return y

    return node.call(run, 0, 1, 2)


@converter("DynamicQuantizeLinear", 11)
def dynamic_quantize_linear(node: NodeView) -> Converted:
    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lo = torch.clamp(x.min(), max=0.0)
        hi = torch.clamp(x.max(), min=0.0)
        scale = (hi - lo) / 255.0
        zp = _saturate(-lo / scale, torch.uint8)
        y = _saturate(torch.round(x / scale) + zp.to(x.dtype), torch.uint8)
        return y, scale, zp

    return node.call(run, 0)


def _centered(x: torch.Tensor, zp: torch.Tensor | None, axis: int = 0) -> torch.Tensor:
    """``x - zero_point`` in float64 (exact for 8-bit products summed over realistic sizes)."""
    y = x.to(torch.float64)
    if zp is None:
        return y
    z = zp.to(torch.float64)
    if z.dim() == 1 and z.numel() > 1:
        z = z.reshape([-1 if i == axis else 1 for i in range(x.dim())])
    return y - z


def _conv_call(node: NodeView, weight: int):
    """The float conv of ``node``'s attributes, for the weight at input ``weight`` (any rank)."""
    static = node.static(weight)
    if static is not None and static.dim() - 2 not in _CONV:
        raise node.unsupported(f"{static.dim() - 2}-D kernel")
    built: dict[int, object] = {}

    def run(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        rank = w.dim() - 2
        if rank not in built:
            if rank not in _CONV:
                raise ValueError(f"node {node.key!r}: {rank}-D kernel is not supported")
            built[rank] = _conv(node, rank)
        return built[rank](x, w)

    return run


@converter("ConvInteger", 10)
def conv_integer(node: NodeView) -> Converted:
    conv = _conv_call(node, 1)

    def run(x, w, x_zp=None, w_zp=None):
        return torch.round(conv(_centered(x, x_zp), _centered(w, w_zp))).to(torch.int32)

    return node.call(run, 0, 1, 2, 3)


@converter("MatMulInteger", 10)
def matmul_integer(node: NodeView) -> Converted:
    def run(a, b, a_zp=None, b_zp=None):
        a_c = _centered(a, None) - (0 if a_zp is None else _row(a_zp, a))
        b_c = _centered(b, b_zp)
        return torch.round(a_c @ b_c).to(torch.int32)

    return node.call(run, 0, 1, 2, 3)


def _row(zp: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """A per-row zero point of A (shape [M]) as a column; a scalar as is."""
    z = zp.to(torch.float64)
    return z.reshape(-1, 1) if z.dim() == 1 and z.numel() > 1 else z


@converter("QLinearConv", 10)
def qlinear_conv(node: NodeView) -> Converted:
    conv = _conv_call(node, 3)

    def run(x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp, b=None):
        acc = conv(_centered(x, x_zp), _centered(w, w_zp))
        if b is not None:
            acc = acc + b.to(torch.float64).reshape(1, -1, *([1] * (acc.dim() - 2)))
        ws = w_s.to(torch.float64)
        ws = ws.reshape(1, -1, *([1] * (acc.dim() - 2))) if ws.numel() > 1 else ws.reshape(())
        y = acc * (x_s.to(torch.float64) * ws / y_s.to(torch.float64))
        return _saturate(y + y_zp.to(torch.float64), y_zp.dtype)

    return node.call(run, *range(9))


@converter("QLinearMatMul", 10)
def qlinear_matmul(node: NodeView) -> Converted:
    def run(a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp):
        acc = (_centered(a, None) - _row(a_zp, a)) @ _centered(b, b_zp)
        scale = _row(a_s, a) * b_s.to(torch.float64).reshape(-1) / y_s.to(torch.float64)
        return _saturate(acc * scale + y_zp.to(torch.float64), y_zp.dtype)

    return node.call(run, *range(8))
