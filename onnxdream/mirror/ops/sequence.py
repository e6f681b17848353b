"""Sequences (Python lists of tensors) and optionals (a value or ``None``).

SequenceConstruct/Empty/Insert/At/Erase/Length, SplitToSequence, ConcatFromSequence,
Optional, OptionalHasElement, OptionalGetElement.
"""

from __future__ import annotations

from typing import Any

import torch

from onnxdream.mirror.ops._common import norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter


def _position(pos: torch.Tensor | None, size: int, default: int) -> int:
    p = default if pos is None else int(pos.reshape(-1)[0])
    return p + size if p < 0 else p


@converter("SequenceConstruct", 11)
def sequence_construct(node: NodeView) -> Converted:
    return node.call(lambda *xs: list(xs), *range(len(node.inputs)))


@converter("SequenceEmpty", 11)
def sequence_empty(node: NodeView) -> Converted:
    return node.call(lambda: [])


@converter("SequenceInsert", 11)
def sequence_insert(node: NodeView) -> Converted:
    def run(seq: list, x: torch.Tensor, pos: torch.Tensor | None = None) -> list:
        out = list(seq)
        out.insert(_position(pos, len(seq), len(seq)), x)
        return out

    return node.call(run, 0, 1, 2)


@converter("SequenceAt", 11)
def sequence_at(node: NodeView) -> Converted:
    return node.call(lambda seq, pos: seq[_position(pos, len(seq), 0)], 0, 1)


@converter("SequenceErase", 11)
def sequence_erase(node: NodeView) -> Converted:
    def run(seq: list, pos: torch.Tensor | None = None) -> list:
        out = list(seq)
        del out[_position(pos, len(seq), len(seq) - 1)]
        return out

    return node.call(run, 0, 1)


@converter("SequenceLength", 11)
def sequence_length(node: NodeView) -> Converted:
    return node.call(lambda seq: torch.tensor(len(seq), dtype=torch.int64), 0)


@converter("SplitToSequence", 11)
def split_to_sequence(node: NodeView) -> Converted:
    axis, keepdims = node.attr("axis", 0), bool(node.attr("keepdims", 1))

    def run(x: torch.Tensor, split: torch.Tensor | None = None) -> list:
        a = norm_axis(axis, x.dim())
        if split is None:
            parts = list(torch.split(x, 1, dim=a))
            return parts if keepdims else [p.squeeze(a) for p in parts]
        sizes = [int(v) for v in split.reshape(-1).tolist()]
        return list(torch.split(x, sizes[0] if split.dim() == 0 else sizes, dim=a))

    return node.call(run, 0, 1)


@converter("ConcatFromSequence", 11)
def concat_from_sequence(node: NodeView) -> Converted:
    axis, new_axis = node.attr("axis"), bool(node.attr("new_axis", 0))

    def run(seq: list) -> torch.Tensor:
        return torch.stack(seq, dim=axis) if new_axis else torch.cat(seq, dim=axis)

    return node.call(run, 0)


@converter("Optional", 15)
def optional(node: NodeView) -> Converted:
    return node.call(lambda x=None: x, 0)


@converter("OptionalHasElement", 15)
def optional_has_element(node: NodeView) -> Converted:
    return node.call(lambda x=None: torch.tensor(x is not None), 0)


@converter("OptionalGetElement", 15)
def optional_get_element(node: NodeView) -> Converted:
    def run(x: Any) -> Any:
        if x is None:
            raise ValueError(f"node {node.key!r}: OptionalGetElement of an empty optional")
        return x

    return node.call(run, 0)
