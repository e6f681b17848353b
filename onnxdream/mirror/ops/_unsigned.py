"""Unsigned integers torch stores but cannot compute with: run ops in a wider signed type.

torch holds uint16, uint32 and uint64 tensors but has (almost) no kernels for them. These ops
compute on int32/int64 copies and return results in the input's type: uint16 and uint32 fit
int32/int64 exactly; uint64 is reinterpreted as int64 (the same bits), which wraps exactly as
uint64 does for addition, subtraction, multiplication and bit operations, and is ordered by
flipping the sign bit. Division of uint64 values from 2**63 up has no exact int64 form and is
refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from onnxdream.errors import UnsupportedOpError

WIDE = {torch.uint16: torch.int32, torch.uint32: torch.int64, torch.uint64: torch.int64}
_TOP = -(2**63)


def _narrow(y: Any, dtype: torch.dtype) -> Any:
    if not isinstance(y, torch.Tensor) or y.dtype == torch.bool or y.is_floating_point():
        return y
    return y.view(dtype) if dtype == torch.uint64 else y.to(dtype)


def widened(fn: Callable, kind: str = "wrap") -> Callable:
    """``fn`` made to accept uint16/32/64 tensors; ``kind`` says how uint64 is handled.

    ``wrap``: the same bits (add, sub, mul, bit ops); ``order``: compared by value (Less, Max,
    ...); ``exact``: values from 2**63 up are refused (Div, Mod, right shifts).
    """

    def run(*xs: Any) -> Any:
        dtype = next((x.dtype for x in xs if isinstance(x, torch.Tensor) and x.dtype in WIDE), None)
        if dtype is None:
            return fn(*xs)
        wide = WIDE[dtype]
        ys = [x.view(torch.int64) if dtype == torch.uint64 and x.dtype == dtype else x for x in xs]
        ys = [y.to(wide) if isinstance(y, torch.Tensor) and y.dtype in WIDE else y for y in ys]
        if dtype != torch.uint64:
            return _narrow(fn(*ys), dtype)
        if kind == "order":
            flipped = [y ^ _TOP if isinstance(y, torch.Tensor) else y for y in ys]
            out = fn(*flipped)
            return out if out.dtype == torch.bool else (out ^ _TOP).view(torch.uint64)
        if kind == "exact" and any(isinstance(y, torch.Tensor) and bool((y < 0).any()) for y in ys):
            raise UnsupportedOpError("uint64 values from 2**63 up have no exact signed form for this op")
        return _narrow(fn(*ys), dtype)

    return run
