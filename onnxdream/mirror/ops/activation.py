"""Activations, Clip and the softmax family."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from onnxdream.mirror.ops._common import norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter


@converter("Relu", 1)
def relu(node: NodeView) -> Converted:
    return node.call(torch.relu, 0)


@converter("Sigmoid", 1)
def sigmoid(node: NodeView) -> Converted:
    return node.call(torch.sigmoid, 0)


@converter("Tanh", 1)
def tanh(node: NodeView) -> Converted:
    return node.call(torch.tanh, 0)


@converter("LeakyRelu", 1)
def leaky_relu(node: NodeView) -> Converted:
    alpha = node.attr("alpha", 0.01)
    return node.call(lambda x: F.leaky_relu(x, alpha), 0)


@converter("PRelu", 1)
def prelu(node: NodeView) -> Converted:
    # The slope broadcasts unidirectionally to X (not only per channel as F.prelu wants).
    return node.call(lambda x, slope: torch.where(x >= 0, x, x * slope), 0, 1)


@converter("Elu", 1)
def elu(node: NodeView) -> Converted:
    alpha = node.attr("alpha", 1.0)
    return node.call(lambda x: F.elu(x, alpha), 0)


@converter("Celu", 12)
def celu(node: NodeView) -> Converted:
    alpha = node.attr("alpha", 1.0)
    return node.call(lambda x: F.celu(x, alpha), 0)


@converter("Selu", 1)
def selu(node: NodeView) -> Converted:
    alpha = node.attr("alpha", 1.67326319217681884765625)
    gamma = node.attr("gamma", 1.05070102214813232421875)
    return node.call(lambda x: gamma * F.elu(x, alpha), 0)


@converter("ThresholdedRelu", 10)
def thresholded_relu(node: NodeView) -> Converted:
    alpha = node.attr("alpha", 1.0)
    return node.call(lambda x: torch.where(x > alpha, x, torch.zeros_like(x)), 0)


@converter("HardSigmoid", 1)
def hard_sigmoid(node: NodeView) -> Converted:
    alpha, beta = node.attr("alpha", 0.2), node.attr("beta", 0.5)
    return node.call(lambda x: torch.clamp(x * alpha + beta, 0.0, 1.0), 0)


@converter("HardSwish", 14)
def hard_swish(node: NodeView) -> Converted:
    return node.call(F.hardswish, 0)


@converter("Softplus", 1)
def softplus(node: NodeView) -> Converted:
    return node.call(F.softplus, 0)


@converter("Softsign", 1)
def softsign(node: NodeView) -> Converted:
    return node.call(F.softsign, 0)


@converter("Mish", 18)
def mish(node: NodeView) -> Converted:
    return node.call(F.mish, 0)


@converter("Gelu", 20)
def gelu(node: NodeView) -> Converted:
    approximate = node.attr("approximate", "none")
    return node.call(lambda x: F.gelu(x, approximate=approximate), 0)


def _clamp(lo: float | None, hi: float | None):
    if lo == 0.0 and hi is not None:
        # ReLU6 and friends: the same kernel native torch modules use.
        return lambda x: F.hardtanh(x, 0.0, hi) if x.dtype.is_floating_point else torch.clamp(x, lo, hi)
    return lambda x: torch.clamp(x, lo, hi)


@converter("Clip", 1)
def clip_attr(node: NodeView) -> Converted:
    lo, hi = node.attr("min", -math.inf), node.attr("max", math.inf)
    return node.call(_clamp(None if lo == -math.inf else lo, None if hi == math.inf else hi), 0)


@converter("Clip", 11)
def clip_input(node: NodeView) -> Converted:
    if node.is_static(1) and node.is_static(2):
        bounds = [node.static(i) for i in (1, 2)]
        lo, hi = (None if b is None else b.item() for b in bounds)
        if lo is None and hi is None:
            return node.call(lambda x: x, 0)
        return node.call(_clamp(lo, hi), 0)
    return node.call(lambda x, lo, hi: torch.clamp(x, lo, hi), 0, 1, 2)


def _softmax(node: NodeView, fn) -> Converted:
    if node.opset >= 13:
        axis = node.attr("axis", -1)
        return node.call(lambda x: fn(x, dim=axis), 0)
    # Before opset 13 the input is coerced to 2-D at ``axis`` and normalised over the second dim.
    axis = node.attr("axis", 1)

    def coerced(x: torch.Tensor) -> torch.Tensor:
        a = norm_axis(axis, x.dim())
        rows = math.prod(x.shape[:a])
        return fn(x.reshape(rows, math.prod(x.shape[a:])), dim=1).reshape(x.shape)

    return node.call(coerced, 0)


@converter("Softmax", 1)
def softmax(node: NodeView) -> Converted:
    return _softmax(node, torch.softmax)


@converter("LogSoftmax", 1)
def log_softmax(node: NodeView) -> Converted:
    return _softmax(node, torch.log_softmax)


def _hardmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    index = torch.argmax(x, dim=dim, keepdim=True)
    return torch.zeros_like(x).scatter_(dim, index, 1.0)


@converter("Hardmax", 1)
def hardmax(node: NodeView) -> Converted:
    return _softmax(node, _hardmax)
