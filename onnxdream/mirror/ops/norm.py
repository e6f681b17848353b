"""Normalisations: BatchNormalization (inference), Instance/Layer/Group/Lp normalisation, LRN."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from onnxdream.mirror.ops._common import norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter


@converter("BatchNormalization", 1)
def batch_norm(node: NodeView) -> Converted:
    if node.opset < 7 and not node.attr("is_test", 0) and len(node.outputs) > 1:
        raise node.unsupported("training mode before opset 7 (the mirror computes inference)")
    eps = node.attr("epsilon", 1e-5)
    if node.attr("training_mode", 0):
        return _batch_norm_training(node, eps)
    extra = len(node.outputs) - 1

    def run(x, scale, bias, mean, var):
        if scale.dim() == 1:
            y = F.batch_norm(x, mean, var, scale, bias, False, 0.0, eps)
        else:
            # Opset < 9 with spatial=0: statistics per (C, H, W) element.
            y = (x - mean) / torch.sqrt(var + eps) * scale + bias
        return (y, *([mean, var] * extra)[:extra]) if extra else y

    return node.call(run, 0, 1, 2, 3, 4)


@converter("InstanceNormalization", 1)
def instance_norm(node: NodeView) -> Converted:
    eps = node.attr("epsilon", 1e-5)
    return node.call(lambda x, s, b: F.instance_norm(x, weight=s, bias=b, eps=eps), 0, 1, 2)


@converter("LayerNormalization", 17)
def layer_norm(node: NodeView) -> Converted:
    axis, eps = node.attr("axis", -1), node.attr("epsilon", 1e-5)
    want_stats = len(node.outputs) > 1

    def run(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None):
        a = norm_axis(axis, x.dim())
        dims = tuple(range(a, x.dim()))
        if (
            not want_stats
            and tuple(scale.shape) == tuple(x.shape[a:])
            and (bias is None or tuple(bias.shape) == tuple(x.shape[a:]))
        ):
            return F.layer_norm(x, x.shape[a:], scale, bias, eps)
        mean = x.mean(dim=dims, keepdim=True)
        inv_std = torch.rsqrt(((x - mean) ** 2).mean(dim=dims, keepdim=True) + eps)
        y = (x - mean) * inv_std * scale
        if bias is not None:
            y = y + bias
        return (y, mean, inv_std)[: len(node.outputs)] if want_stats else y

    return node.call(run, 0, 1, 2)


def _group_norm(node: NodeView, per_group: bool) -> Converted:
    groups, eps = node.attr("num_groups"), node.attr("epsilon", 1e-5)

    def run(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if per_group:
            repeat = x.shape[1] // groups
            scale, bias = scale.repeat_interleave(repeat), bias.repeat_interleave(repeat)
        return F.group_norm(x, groups, scale, bias, eps)

    return node.call(run, 0, 1, 2)


@converter("GroupNormalization", 18)
def group_norm_18(node: NodeView) -> Converted:
    # Opset 18 has one scale and bias per group; opset 21 fixed that to one per channel.
    return _group_norm(node, per_group=True)


@converter("GroupNormalization", 21)
def group_norm_21(node: NodeView) -> Converted:
    return _group_norm(node, per_group=False)


@converter("LRN", 1)
def lrn(node: NodeView) -> Converted:
    size = node.attr("size")
    alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)
    # ONNX sums squares over channels [c - floor((size-1)/2), c + ceil((size-1)/2)];
    # F.local_response_norm centres the window the other way for even sizes.
    front, back = (size - 1) // 2, size - 1 - (size - 1) // 2

    def run(x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        sq = (x * x).reshape(n, 1, c, -1)
        window = F.avg_pool2d(F.pad(sq, (0, 0, front, back)), (size, 1), stride=1)
        return x / (bias + alpha * window.reshape(x.shape)) ** beta

    return node.call(run, 0)


def _batch_norm_training(node: NodeView, eps: float) -> Converted:
    """training_mode=1, as the graph says: batch statistics, and the updated running ones."""
    momentum = node.attr("momentum", 0.9)
    extra = len(node.outputs) - 1

    def run(x, scale, bias, mean, var):
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        batch_mean = x.mean(dim=dims)
        batch_var = x.var(dim=dims, unbiased=False)
        y = (x - batch_mean.reshape(shape)) / torch.sqrt(batch_var.reshape(shape) + eps)
        y = y * scale.reshape(shape) + bias.reshape(shape)
        running = [mean * momentum + batch_mean * (1 - momentum), var * momentum + batch_var * (1 - momentum)]
        return (y, *running[:extra]) if extra else y

    return node.call(run, 0, 1, 2, 3, 4)


@converter("LpNormalization", 1)
def lp_normalization(node: NodeView) -> Converted:
    axis, p = node.attr("axis", -1), node.attr("p", 2)
    if p not in (1, 2):
        raise node.unsupported(f"p={p} (ONNX allows 1 or 2)")

    def run(x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, p, dim=axis, keepdim=True)
        return x / torch.where(norm == 0, torch.ones_like(norm), norm)  # an all-zero slice stays 0

    return node.call(run, 0)
