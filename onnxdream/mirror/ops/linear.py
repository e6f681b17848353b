"""MatMul, Gemm and Einsum."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from onnxdream.mirror.registry import Converted, NodeView, converter


@converter("MatMul", 1)
def matmul(node: NodeView) -> Converted:
    return node.call(torch.matmul, 0, 1)


@converter("Gemm", 1)
def gemm(node: NodeView) -> Converted:
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    trans_a, trans_b = node.attr("transA", 0), node.attr("transB", 0)
    if alpha == 1.0 and beta == 1.0 and not trans_a and trans_b:
        # The layout of nn.Linear: one fused kernel, as the native module runs it.
        def linear(a, b, c=None):
            if c is None or c.dim() == 1:
                return F.linear(a, b, c)
            return F.linear(a, b) + c

        return node.call(linear, 0, 1, 2)

    def run(a, b, c=None):
        y = (a.t() if trans_a else a) @ (b.t() if trans_b else b)
        if alpha != 1.0:
            y = y * alpha
        if c is not None:
            y = y + (c * beta if beta != 1.0 else c)
        return y

    return node.call(run, 0, 1, 2)


@converter("Einsum", 12)
def einsum(node: NodeView) -> Converted:
    equation = node.attr("equation").replace(" ", "")
    return node.call(lambda *xs: torch.einsum(equation, *xs), *range(len(node.inputs)))
