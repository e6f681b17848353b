"""Scopes of names: the parent of a name, the scope several names share, a helper's owner.

Scopes end at a separator: ``.`` or ``/`` (as in :mod:`onnxdream.graph`); for names from
model zoos (``gpu_0/res2_0_branch1_bn``) ``_`` also separates words, so the scope shared by
``gpu_0/res2_0_branch1_bn`` and ``gpu_0/res2_0_branch2c_bn`` is ``gpu_0/res2_0``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SEPARATORS = "./_"
_SCOPE_SEPARATORS = "./"


def _boundaries(name: str) -> list[int]:
    """Positions where a word ends: a separator that follows a non-separator character."""
    return [i for i in range(1, len(name)) if name[i] in _SEPARATORS and name[i - 1] not in _SEPARATORS] + [
        len(name)
    ]


def common_scope(names: Sequence[str]) -> str:
    """The longest word-aligned prefix that all ``names`` share ('' when they share none)."""
    if not names:
        return ""
    first = names[0]
    shared = len(first)
    for other in names[1:]:
        limit = min(shared, len(other))
        k = 0
        while k < limit and first[k] == other[k]:
            k += 1
        shared = k
    for cut in reversed(_boundaries(first)):
        if cut <= shared and all(len(n) == cut or n[cut] in _SEPARATORS for n in names):
            return first[:cut]
    return ""


def extend_scope(name: str, scope: str) -> str:
    """``scope`` extended by the next word of ``name`` (``name`` starts with ``scope``)."""
    for cut in _boundaries(name):
        if cut > len(scope):
            return name[:cut]
    return name


def parent_scope(name: str) -> str:
    """``a.b/c`` -> ``a.b``; '' for a top-level name."""
    cut = max(name.rfind("."), name.rfind("/"))
    return name[:cut] if cut > 0 else ""


def owner(name: str, op_type: str) -> str:
    """The layer a node belongs to: ``X`` for a helper named ``X/<OpType>`` or ``X/<OpType>_k``,
    else the node's own name (a layer owns itself)."""
    match = re.fullmatch(rf"(.+)/{re.escape(op_type)}(?:_\d+)?", name)
    return match.group(1) if match else name
