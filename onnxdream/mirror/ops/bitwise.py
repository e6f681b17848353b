"""BitShift, BitwiseAnd/Or/Xor/Not and BitCast (unsigned types computed as in ``_unsigned``)."""

from __future__ import annotations

import onnx
import torch

from onnxdream.mirror.ops._unsigned import WIDE, widened
from onnxdream.mirror.registry import Converted, NodeView, converter, torch_dtype

_BITS = {
    "BitwiseAnd": torch.bitwise_and,
    "BitwiseOr": torch.bitwise_or,
    "BitwiseXor": torch.bitwise_xor,
}


def _register(op: str, fn) -> None:
    converter(op, 18)(lambda node: node.call(widened(fn), 0, 1))


for _op, _fn in _BITS.items():
    _register(_op, _fn)


@converter("BitwiseNot", 18)
def bitwise_not(node: NodeView) -> Converted:
    def run(x: torch.Tensor) -> torch.Tensor:
        if x.dtype in WIDE:  # ~x of the wide copy sets the high bits, which narrowing drops
            return widened(torch.bitwise_not)(x)
        return torch.bitwise_not(x)

    return node.call(run, 0)


def _width(dtype: torch.dtype) -> int:
    return torch.iinfo(dtype).bits


@converter("BitShift", 11)
def bit_shift(node: NodeView) -> Converted:
    left = node.attr("direction") == "LEFT"

    def shift(x: torch.Tensor, s: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
        s = s.to(torch.int64)
        big = (s >= bits) | (s < 0)  # the spec: only the sign fill remains
        s = s.clamp(0, bits - 1)
        if left:
            return torch.where(big, torch.zeros_like(x), x.to(torch.int64) << s).to(x.dtype)
        y = x.to(torch.int64) >> s
        if signed:  # past the width only the sign remains
            return torch.where(big, torch.where(x < 0, -1, 0).to(torch.int64), y).to(x.dtype)
        return torch.where(big, torch.zeros_like(y), y).to(x.dtype)

    def run(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        bits, signed = _width(x.dtype), x.dtype.is_signed
        if x.dtype in WIDE:
            kind = "wrap" if left else "exact"
            return widened(lambda a, b: shift(a, b, bits, False), kind)(x, s)
        return shift(x, s, bits, signed)

    return node.call(run, 0, 1)


@converter("BitCast", 26)
def bit_cast(node: NodeView) -> Converted:
    to = node.attr("to")
    dtype = torch_dtype(to)
    if dtype is None:
        raise node.unsupported(f"bit cast to {onnx.TensorProto.DataType.Name(to)}, which torch lacks")
    return node.call(lambda x: x.view(dtype), 0)
