"""Pairwise evidence between two skeletons, and their order-preserving alignment."""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from onnxdream.names.reference_units import INPUT, Skeleton

_CHUNK = 1 << 24
"""Most per-channel products held at once while comparing kernels (64 MiB of float32)."""


@dataclass
class Evidence:
    """Pairwise evidence, indexed by (target unit id, reference unit id).

    Attributes:
        compatible: same signature (kind, attributes, weight shape).
        cosine: mean over output channels of |cos| between kernels; NaN where either lacks weights.
        weight: cosine rescaled so that unrelated kernels score ~0 and equal ones 1 (NaN: none).
        context: 0.5 each for equal signatures of the predecessors and of the successors.
    """

    compatible: np.ndarray
    cosine: np.ndarray
    weight: np.ndarray
    context: np.ndarray


def chance_cosine(fan_in: int) -> float:
    """Expected |cos| between two random vectors of ``fan_in`` dimensions (1 for a scalar)."""
    return 1.0 if fan_in <= 1 else min(1.0, float(np.sqrt(2.0 / (np.pi * fan_in))))


def evidence(target: Skeleton, reference: Skeleton) -> Evidence:
    """Compare every target unit with every reference unit of the same signature.

    Per-output-channel cosines ignore a per-channel scale, so a kernel with BatchNormalization
    fused into it (W * gamma / sqrt(var + eps)) still matches the unfused kernel; the absolute
    value covers negative gammas.
    """
    shape = (len(target.units), len(reference.units))
    compatible = np.zeros(shape, dtype=bool)
    cosine = np.full(shape, np.nan, dtype=np.float64)
    weight = np.full(shape, np.nan, dtype=np.float64)
    groups: dict[tuple, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for unit in target.units:
        groups[unit.signature][0].append(unit.index)
    for unit in reference.units:
        if unit.signature in groups:
            groups[unit.signature][1].append(unit.index)
    for t_ids, r_ids in groups.values():
        if not r_ids:
            continue
        compatible[np.ix_(t_ids, r_ids)] = True
        t_w = [i for i in t_ids if target.units[i].weight is not None]
        r_w = [j for j in r_ids if reference.units[j].weight is not None]
        if not t_w or not r_w:
            continue
        a = np.stack([target.units[i].weight for i in t_w]).transpose(1, 0, 2)  # (out, a, fan_in)
        b = np.stack([reference.units[j].weight for j in r_w]).transpose(1, 2, 0)  # (out, fan_in, b)
        # Per output channel, every target kernel against every reference one, in chunks of
        # target kernels so that the (out, chunk, b) products stay small.
        step = max(1, _CHUNK // (a.shape[0] * b.shape[2]))
        cos = np.concatenate(
            [np.abs(np.matmul(a[:, s : s + step], b)).mean(axis=0) for s in range(0, a.shape[1], step)]
        )
        chance = chance_cosine(a.shape[-1])
        cosine[np.ix_(t_w, r_w)] = cos
        if chance < 1.0:
            weight[np.ix_(t_w, r_w)] = np.clip((cos - chance) / (1.0 - chance), 0.0, 1.0)
    t_pred, t_succ = _neighbour_hashes(target)
    r_pred, r_succ = _neighbour_hashes(reference)
    context = 0.5 * (t_pred[:, None] == r_pred[None, :]) + 0.5 * (t_succ[:, None] == r_succ[None, :])
    return Evidence(compatible, cosine, weight, np.where(compatible, context, 0.0))


def _neighbour_hashes(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, stable hashes of the multisets of its predecessors' and successors' signatures."""

    def digest(ids: list[int]) -> int:
        sigs = sorted("input" if i == INPUT else repr(skeleton.units[i].signature) for i in ids)
        return zlib.crc32(repr(sigs).encode())

    preds = np.array([digest(u.preds) for u in skeleton.units], dtype=np.int64)
    succs = np.array([digest(u.succs) for u in skeleton.units], dtype=np.int64)
    return preds, succs


def align(
    t_order: list[int], r_order: list[int], ev: Evidence, extra: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """Order-preserving one-to-one pairing of compatible units that maximises total evidence.

    A global alignment of two unit orders with free gaps: each compatible pair earns 1, plus its
    weight evidence and its context (neighbours of the same kinds), so among repeated identical
    blocks the kernels decide, and among identical activations their surroundings. Rows are
    computed with a running maximum, so the cost is O(N * M) in numpy, not in Python.

    Args:
        t_order: target unit ids in order.
        r_order: reference unit ids in order.
        ev: pairwise evidence.
        extra: more bonus per pair, shape (len(t_order), len(r_order)).

    Returns:
        (target unit id, reference unit id) pairs.
    """
    t_order, r_order = np.array(t_order, dtype=int), np.array(r_order, dtype=int)
    n, m = len(t_order), len(r_order)
    if n == 0 or m == 0:
        return []
    comp = ev.compatible[np.ix_(t_order, r_order)]
    bonus = np.nan_to_num(ev.weight[np.ix_(t_order, r_order)], nan=0.0)
    bonus = bonus + ev.context[np.ix_(t_order, r_order)] + (0.0 if extra is None else extra)
    score = np.where(comp, 1.0 + bonus, -np.inf)
    table = np.zeros((n + 1, m + 1))
    for i in range(1, n + 1):
        best = np.maximum(table[i - 1, :-1] + score[i - 1], table[i - 1, 1:])
        table[i, 1:] = np.maximum.accumulate(best)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        here = table[i, j]
        if comp[i - 1, j - 1] and here == table[i - 1, j - 1] + score[i - 1, j - 1]:
            pairs.append((int(t_order[i - 1]), int(r_order[j - 1])))
            i, j = i - 1, j - 1
        elif here == table[i - 1, j]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]
