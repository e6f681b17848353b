"""Random ops, refused with the reason: the mirror is a deterministic function of its input.

Bernoulli is defined by a function, so without this entry it would be expanded (and fail only
when run); registering the refusal here makes every random op fail when the mirror is built.
"""

from __future__ import annotations

from onnxdream.mirror.registry import Converted, NodeView, converter

_RANDOM = {
    "Bernoulli": 15,
    "Multinomial": 7,
    "RandomNormal": 1,
    "RandomNormalLike": 1,
    "RandomUniform": 1,
    "RandomUniformLike": 1,
}


def _refuse(node: NodeView) -> Converted:
    raise node.unsupported("draws random numbers; the mirror is deterministic, so it cannot match them")


for _op, _since in _RANDOM.items():
    converter(_op, _since)(_refuse)
