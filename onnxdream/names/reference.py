"""Names from a reference model: find, for each node of a target model, the node of a named
reference model that computes the same thing, despite fine-tuning, another exporter, fused or
unfused BatchNormalization, folded padding, another opset, shuffled nodes or a new head.

The graph structure is the skeleton (:mod:`onnxdream.names.reference_units`), weight similarity
and neighbour consistency are the evidence (:mod:`onnxdream.names.reference_align`):

1. both graphs are reduced to units in a canonical topological order;
2. units with weights are paired first, by an order-preserving alignment of equal signatures
   that prefers similar kernels and similar surroundings (repeated passes pair parallel
   branches that the two orders list crosswise);
3. units without weights follow their predecessors: the one compatible reference unit fed by
   exactly the images of a unit's predecessors is its counterpart; what is left is aligned;
4. pairs are kept only while their evidence holds: a parameter-less unit needs a matched
   predecessor (so a new head's pooling never takes the pretrained pooling's name), a unit with
   weights needs kernels clearly more alike than chance (so a re-initialised classifier of the
   same shape stays apart) or, where the two models do not share weights at all, a matched
   predecessor like any other unit;
5. transparent nodes (Reshape, Flatten, Pad, ...) and absorbed BatchNormalization / bias nodes
   take the reference's counterpart hanging off the same matched unit.

Scores: ``0.25 + 0.45 * kernel evidence + 0.3 * neighbour consistency`` for units with weights,
``0.4 + 0.6 * neighbour consistency`` otherwise; transparent nodes take their anchor's score.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx

from onnxdream.names.reference_align import Evidence, align, evidence
from onnxdream.names.reference_units import INPUT, Skeleton, Unit, build_skeleton

MIN_WEIGHT_EVIDENCE = 0.35
"""Kernels whose chance-corrected similarity is below this never match (a re-initialised layer).

Unrelated trained kernels score up to ~0.3 (depthwise kernels share a centre-heavy shape), the
same kernel after 100% relative noise ~0.6, after fine-tuning above 0.9.
"""
RELATED_WEIGHTS = 0.5
"""Evidence that at least a quarter of the aligned pairs reach for the models to share weights.

Otherwise (a reference with other weights: trained from scratch, random) weights are no evidence
and matching relies on structure alone.
"""


@dataclass(frozen=True)
class Match:
    """A target node and the reference name it corresponds to.

    Attributes:
        node: index into ``target.graph.node``.
        name: the reference node's name.
        score: confidence in [0, 1].
        why: the evidence, e.g. ``"conv 3x3/s2 3->32; weights cos 0.998; neighbours 2/2"``.
    """

    node: int
    name: str
    score: float
    why: str


def match_reference(
    target: onnx.ModelProto, reference: onnx.ModelProto, *, min_score: float = 0.5
) -> list[Match]:
    """Match nodes of ``target`` to the named nodes of ``reference``.

    Args:
        target: the model whose names are lost (fine-tuned, re-exported, stripped).
        reference: a model with good node names (the pretrained network).
        min_score: matches scoring below this are left out.

    Returns:
        Matches sorted by target node index; each reference name is used at most once (names
        the reference itself repeats, and empty names, are never given).
    """
    t_sk, r_sk = build_skeleton(target.graph), build_skeleton(reference.graph)
    ev = evidence(t_sk, r_sk)
    first = align(t_sk.order, r_sk.order, ev)
    aligned = [ev.weight[t, r] for t, r in first if not np.isnan(ev.weight[t, r])]
    if aligned and float(np.quantile(aligned, 0.75)) < RELATED_WEIGHTS:
        none = np.full_like(ev.weight, np.nan)
        ev = Evidence(ev.compatible, none, none, ev.context)
    else:
        # Unrelated kernels are no pair at all: left in, they would win an alignment by numbers.
        ev = Evidence(ev.compatible & ~(ev.weight < MIN_WEIGHT_EVIDENCE), ev.cosine, ev.weight, ev.context)
    mapping = _match_units(t_sk, r_sk, ev)

    counts = Counter(node.name for node in reference.graph.node)
    # A name the reference gives to several nodes names none of them: it would not be unique.
    names = [node.name if counts[node.name] == 1 else "" for node in reference.graph.node]
    matches: dict[int, Match] = {}
    for t_id, r_id in mapping.items():
        t_unit, r_unit = t_sk.units[t_id], r_sk.units[r_id]
        score, why = _unit_score(t_unit, r_unit, ev, mapping)
        for role, node in t_unit.roles.items():
            if role in r_unit.roles and names[r_unit.roles[role]]:
                detail = why if role == "main" else f"{role} of {names[r_unit.node] or r_unit.label}; {why}"
                matches[node] = Match(node, names[r_unit.roles[role]], score, detail)
    for node, match in _hanging(t_sk, r_sk, mapping, names, matches).items():
        matches[node] = match
    return [m for _, m in sorted(matches.items()) if m.score >= min_score]


def _match_units(target: Skeleton, reference: Skeleton, ev: Evidence) -> dict[int, int]:
    """Pair units: units with weights by alignment, the rest by propagation, then leftovers.

    Units with weights are the anchors: their signatures and kernels are specific. A unit
    without weights (an activation, an Add, a Concat, a standalone BatchNormalization) follows
    its predecessors: it takes the one compatible reference unit fed by exactly the images of
    its own predecessors. Whatever is still open is aligned as a whole, and checked again.
    """
    weighted_t = [u for u in target.order if target.units[u].weight is not None]
    weighted_r = [u for u in reference.order if reference.units[u].weight is not None]
    mapping = _align_passes(target, reference, ev, weighted_t, weighted_r, {})
    mapping = _propagate(target, reference, ev, mapping)
    mapping = _align_passes(target, reference, ev, target.order, reference.order, mapping)
    return _propagate(target, reference, ev, mapping)


def _align_passes(
    target: Skeleton,
    reference: Skeleton,
    ev: Evidence,
    t_units: list[int],
    r_units: list[int],
    mapping: dict[int, int],
    passes: int = 4,
) -> dict[int, int]:
    """Align the open units, drop pairs whose evidence fails, and repeat a few times.

    One alignment cannot pair units that the two canonical orders list crosswise (identical
    parallel branches tie in the order); a later pass over the leftovers can, now helped by the
    neighbours already matched.
    """
    for _ in range(passes):
        t_left = [u for u in t_units if u not in mapping]
        taken = set(mapping.values())
        r_left = [u for u in r_units if u not in taken]
        extra = None
        if mapping and t_left and r_left:
            extra = np.zeros((len(t_left), len(r_left)))
            for i, j in zip(*np.nonzero(ev.compatible[np.ix_(t_left, r_left)]), strict=True):
                t_unit, r_unit = target.units[t_left[i]], reference.units[r_left[j]]
                preds, succs, total = _consistent(t_unit, r_unit, mapping)
                extra[i, j] = (preds + succs) / total if total else 0.0
        found = align(t_left, r_left, ev, extra)
        if not found:
            break
        before = dict(mapping)
        mapping = _prune(target, reference, ev, {**mapping, **dict(found)})
        if mapping == before:
            break
    return mapping


def _propagate(
    target: Skeleton, reference: Skeleton, ev: Evidence, mapping: dict[int, int]
) -> dict[int, int]:
    """Match open units whose predecessors are all matched to the unique fitting reference unit."""
    mapping = dict(mapping)
    changed = True
    while changed:
        changed = False
        taken = set(mapping.values())
        for u in target.order:
            unit = target.units[u]
            if u in mapping or not unit.preds:
                continue
            images = [INPUT if p == INPUT else mapping.get(p) for p in unit.preds]
            if None in images:
                continue
            pool = reference.units[images[0]].succs if images[0] != INPUT else range(len(reference.units))
            fits = [
                r
                for r in pool
                if r not in taken
                and ev.compatible[u, r]
                and sorted(reference.units[r].preds) == sorted(images)
            ]
            if len(fits) == 1:
                mapping[u] = fits[0]
                taken.add(fits[0])
                changed = True
    return mapping


def _consistent(t_unit: Unit, r_unit: Unit, mapping: dict[int, int]) -> tuple[int, int, int]:
    """(matched predecessors, matched successors, neighbours counted) for a unit pair."""

    def hits(t_side: list[int], r_side: list[int]) -> int:
        pool = list(r_side)
        found = 0
        for t in t_side:
            r = INPUT if t == INPUT else mapping.get(t)
            if r is not None and r in pool:
                pool.remove(r)
                found += 1
        return found

    preds = hits(t_unit.preds, r_unit.preds)
    succs = hits(t_unit.succs, r_unit.succs)
    total = max(len(t_unit.preds), len(r_unit.preds)) + max(len(t_unit.succs), len(r_unit.succs))
    return preds, succs, total


def _weight_evidence(t_unit: Unit, r_unit: Unit, ev: Evidence) -> tuple[float, float]:
    """(chance-corrected evidence, raw cosine); NaN when either side lacks comparable weights."""
    return float(ev.weight[t_unit.index, r_unit.index]), float(ev.cosine[t_unit.index, r_unit.index])


def _holds(t_unit: Unit, r_unit: Unit, ev: Evidence, mapping: dict[int, int]) -> bool:
    weight, _ = _weight_evidence(t_unit, r_unit, ev)
    if not np.isnan(weight):
        return weight >= MIN_WEIGHT_EVIDENCE
    preds, _, _ = _consistent(t_unit, r_unit, mapping)
    return preds > 0


def _prune(target: Skeleton, reference: Skeleton, ev: Evidence, mapping: dict[int, int]) -> dict[int, int]:
    """Drop pairs whose evidence does not hold, until every remaining pair holds."""
    mapping = dict(mapping)
    changed = True
    while changed:
        weak = [t for t, r in mapping.items() if not _holds(target.units[t], reference.units[r], ev, mapping)]
        changed = bool(weak)
        for t in weak:
            del mapping[t]
    return mapping


def _unit_score(t_unit: Unit, r_unit: Unit, ev: Evidence, mapping: dict[int, int]) -> tuple[float, str]:
    preds, succs, total = _consistent(t_unit, r_unit, mapping)
    neighbours = (preds + succs) / total if total else 0.0
    weight, cosine = _weight_evidence(t_unit, r_unit, ev)
    parts = [t_unit.label]
    if np.isnan(weight):
        score = 0.4 + 0.6 * neighbours
    else:
        score = 0.25 + 0.45 * weight + 0.3 * neighbours
        parts.append(f"weights cos {cosine:.3f}")
    parts.append(f"neighbours {preds + succs}/{total}")
    return round(float(score), 4), "; ".join(parts)


def _hanging(
    target: Skeleton,
    reference: Skeleton,
    mapping: dict[int, int],
    names: list[str],
    matched: dict[int, Match],
) -> dict[int, Match]:
    """Transparent target nodes take the reference's transparent node at the same place.

    The place is (matched anchor unit, class, rank on the chain); a place held by more than one
    node on either side is ambiguous and left alone.
    """

    def places(skeleton: Skeleton, anchor_map) -> dict[tuple, list[int]]:
        found: dict[tuple, list[int]] = {}
        for node, (anchor, klass, rank) in skeleton.hangers.items():
            key = anchor_map(anchor)
            if key is not None:
                found.setdefault((key, klass, rank), []).append(node)
        return found

    t_places = places(target, lambda a: INPUT if a == INPUT else mapping.get(a))
    r_places = places(reference, lambda a: a)
    inverse = {r: t for t, r in mapping.items()}
    out: dict[int, Match] = {}
    for key, t_nodes in t_places.items():
        r_nodes = r_places.get(key, [])
        if len(t_nodes) != 1 or len(r_nodes) != 1 or not names[r_nodes[0]]:
            continue
        anchor, klass, rank = key
        if anchor == INPUT:
            score, why = 0.5, f"{klass} on the graph input"
        else:
            r_unit = reference.units[anchor]
            anchor_match = matched.get(target.units[inverse[anchor]].node)
            score = anchor_match.score if anchor_match else 0.5
            why = f"{klass} #{rank} after {names[r_unit.node] or r_unit.label}"
        out[t_nodes[0]] = Match(t_nodes[0], names[r_nodes[0]], score, why)
    return out
