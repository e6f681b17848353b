"""Element-wise arithmetic, comparison and logic ops (numpy-style broadcasting)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import torch

from onnxdream.mirror.ops._unsigned import widened
from onnxdream.mirror.registry import Converted, NodeView, converter


def _legacy_broadcast(node: NodeView, fn: Callable) -> Converted:
    """Opset < 7 ``broadcast``/``axis`` attributes: align B with A starting at ``axis``."""
    if node.opset >= 7 or not node.attr("broadcast", 0) or not node.has_attr("axis"):
        return node.call(fn, 0, 1)
    axis = node.attr("axis")

    def aligned(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        start = axis + a.dim() if axis < 0 else axis
        return fn(a, b.reshape(*b.shape, *([1] * (a.dim() - start - b.dim()))))

    return node.call(aligned, 0, 1)


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype.is_floating_point or b.dtype.is_floating_point:
        return torch.div(a, b)
    return torch.div(a, b, rounding_mode="trunc")


def _pow(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out = torch.pow(a, b)
    return out if out.dtype == a.dtype else out.to(a.dtype)


_BINARY: dict[str, tuple[int, Callable]] = {
    "Add": (1, widened(torch.add)),
    "Sub": (1, widened(torch.sub)),
    "Mul": (1, widened(torch.mul)),
    "Div": (1, widened(_div, "exact")),
    "Pow": (1, _pow),
    "Equal": (1, widened(torch.eq)),
    "Less": (1, widened(torch.lt, "order")),
    "Greater": (1, widened(torch.gt, "order")),
    "LessOrEqual": (12, widened(torch.le, "order")),
    "GreaterOrEqual": (12, widened(torch.ge, "order")),
    "And": (1, torch.logical_and),
    "Or": (1, torch.logical_or),
    "Xor": (1, torch.logical_xor),
}


def _register_binary(op: str, since: int, fn: Callable) -> None:
    converter(op, since)(lambda node: _legacy_broadcast(node, fn))


for _op, (_since, _fn) in _BINARY.items():
    _register_binary(_op, _since, _fn)


@converter("Mod", 10)
def mod(node: NodeView) -> Converted:
    return node.call(widened(torch.fmod if node.attr("fmod", 0) else torch.remainder, "exact"), 0, 1)


_VARIADIC: dict[str, Callable] = {
    "Sum": widened(torch.add),
    "Max": widened(torch.maximum, "order"),
    "Min": widened(torch.minimum, "order"),
}


def _register_variadic(op: str, fn: Callable) -> None:
    @converter(op, 1)
    def variadic(node: NodeView) -> Converted:
        return node.call(lambda *xs: functools.reduce(fn, xs), *range(len(node.inputs)))


for _op, _fn in _VARIADIC.items():
    _register_variadic(_op, _fn)


@converter("Mean", 1)
def mean(node: NodeView) -> Converted:
    count = len(node.inputs)
    return node.call(lambda *xs: functools.reduce(operator.add, xs) / count, *range(count))


_UNARY: dict[str, tuple[int, Callable]] = {
    "Abs": (1, torch.abs),
    "Neg": (1, torch.neg),
    "Sqrt": (1, torch.sqrt),
    "Exp": (1, torch.exp),
    "Log": (1, torch.log),
    "Reciprocal": (1, torch.reciprocal),
    "Floor": (1, torch.floor),
    "Ceil": (1, torch.ceil),
    "Round": (11, torch.round),
    "Sign": (9, torch.sign),
    "Sin": (7, torch.sin),
    "Cos": (7, torch.cos),
    "Tan": (7, torch.tan),
    "Asin": (7, torch.asin),
    "Acos": (7, torch.acos),
    "Atan": (7, torch.atan),
    "Sinh": (9, torch.sinh),
    "Cosh": (9, torch.cosh),
    "Asinh": (9, torch.asinh),
    "Acosh": (9, torch.acosh),
    "Atanh": (9, torch.atanh),
    "Erf": (9, torch.erf),
    "Not": (1, torch.logical_not),
    "IsNaN": (9, torch.isnan),
}


def _register_unary(op: str, since: int, fn: Callable) -> None:
    converter(op, since)(lambda node: node.call(fn, 0))


for _op, (_since, _fn) in _UNARY.items():
    _register_unary(_op, _since, _fn)


@converter("IsInf", 10)
def is_inf(node: NodeView) -> Converted:
    pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    if pos and neg:
        return node.call(torch.isinf, 0)
    if pos:
        return node.call(torch.isposinf, 0)
    if neg:
        return node.call(torch.isneginf, 0)
    return node.call(lambda x: torch.zeros_like(x, dtype=torch.bool), 0)


@converter("Where", 9)
def where(node: NodeView) -> Converted:
    return node.call(torch.where, 0, 1, 2)
