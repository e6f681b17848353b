"""The rename plan: one name and its origin per node, from the strategies in order of evidence.

Order of evidence: a reference model (when given, for every node it matches), the exporter's
metadata, Keras layer paths behind tf2onnx's op paths, parameter names, tensor names, the graph
structure; explicit renames (strip prefix, map, rules) come last. By default only lost names are
replaced (see :mod:`onnxdream.names.lost`), and, in a model tf2onnx made of a Keras model, the
TensorFlow op paths it gave (names of ops, not of the layers a Keras user knows);
``rename_all`` replaces every name. Duplicates get ``_1``, ``_2``, ... in canonical order and
never take a name a kept node has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import onnx

from onnxdream.errors import OnnxDreamError, unknown
from onnxdream.fresh_names import NameAuthority
from onnxdream.graph import GraphIndex
from onnxdream.model import ModelSpec, open_model
from onnxdream.names.canonical import canonical_keys
from onnxdream.names.keras import names_from_keras
from onnxdream.names.lost import lost_nodes
from onnxdream.names.mapping import Explicit, apply_explicit
from onnxdream.names.metadata import names_from_metadata
from onnxdream.names.structure import names_from_structure
from onnxdream.names.tensors import names_from_tensors
from onnxdream.names.weights import names_from_weights

STRATEGIES = ("metadata", "keras", "weights", "tensors", "structure")
"""The strategies ``auto`` runs, in order of evidence."""
ORIGINS = ("reference", "metadata", "keras", "weights", "tensor", "structure", "map", "kept", "undo")
"""Every origin a plan entry can have (``kept``: the node keeps its name; ``undo``: restored)."""
_ORIGIN_OF = {
    "metadata": "metadata",
    "keras": "keras",
    "weights": "weights",
    "tensors": "tensor",
    "structure": "structure",
}


@dataclass(frozen=True)
class Entry:
    """One node's outcome: its old and new name and where the new name came from."""

    node: int
    old: str
    new: str
    origin: str
    score: float | None = None
    why: str | None = None

    @property
    def renamed(self) -> bool:
        """Whether the name changes."""
        return self.new != self.old


@dataclass
class Plan:
    """Per node (in file order) its entry, plus warnings for the user."""

    entries: list[Entry]
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many nodes got their name from each origin (``kept`` included)."""
        counted = Counter(e.origin if e.renamed else "kept" for e in self.entries)
        return {origin: counted[origin] for origin in ORIGINS if counted[origin]}


def resolve_strategies(strategies: Sequence[str]) -> list[str]:
    """Validate strategy names and expand ``auto``, keeping the order of evidence.

    Raises:
        OnnxDreamError: an unknown strategy (with the nearest valid one suggested).
    """
    choices = ["auto", *STRATEGIES]
    chosen: set[str] = set()
    for s in strategies or ["auto"]:
        if s not in choices:
            raise OnnxDreamError(unknown("strategy", s, choices, listing="choose from"))
        chosen.update(STRATEGIES if s == "auto" else [s])
    return [s for s in STRATEGIES if s in chosen]


def _from_reference(model: onnx.ModelProto, reference: onnx.ModelProto, min_score: float) -> list:
    try:
        from onnxdream.names.reference import match_reference
    except ImportError:
        raise OnnxDreamError("reference matching is not available in this installation") from None
    return match_reference(model, reference, min_score=min_score)


def _named_reference(reference: ModelSpec) -> onnx.ModelProto:
    """The reference with the names it is matched by: as it is, or, made by tf2onnx from a Keras
    model, with its Keras layer paths (the names a user wants back, not TensorFlow op paths)."""
    proto = open_model(reference).proto
    if not names_from_keras(GraphIndex(proto.graph), proto):
        return proto
    named = onnx.ModelProto()
    named.CopyFrom(proto)
    for entry in plan_names(named, strategies=["keras"]).entries:
        named.graph.node[entry.node].name = entry.new
    return named


def plan_names(
    model: ModelSpec,
    *,
    strategies: Sequence[str] = ("auto",),
    rename_all: bool = False,
    explicit: Explicit | None = None,
    reference: ModelSpec | None = None,
    min_score: float = 0.5,
) -> Plan:
    """Decide a name for every node of ``model`` (which is not modified).

    Raises:
        OnnxDreamError: an unknown strategy, or explicit renames that would duplicate a name.
    """
    chosen = resolve_strategies(strategies)
    model = open_model(model)
    index = model.index
    keys = canonical_keys(index)
    order = sorted(range(len(keys)), key=keys.__getitem__)
    nodes = index.nodes
    targets = set(range(len(nodes))) if rename_all else lost_nodes(model.proto.graph, order)
    keras = names_from_keras(index, model.proto) if "keras" in chosen else {}
    if keras:  # every name is a TensorFlow op path or a converter's helper name
        targets = set(range(len(nodes)))

    proposed: dict[int, tuple[str, str, float | None, str | None]] = {}
    if reference is not None:
        for match in _from_reference(model.proto, _named_reference(reference), min_score):
            proposed[match.node] = (match.name, "reference", match.score, match.why)
    evidence = {
        "metadata": lambda: names_from_metadata(index),
        "keras": lambda: keras,
        "weights": lambda: names_from_weights(index),
        # A tf2onnx model's tensors carry the op paths the keras strategy has read already.
        "tensors": lambda: {} if keras else names_from_tensors(index),
    }
    for strategy in chosen:
        if strategy == "structure":
            continue
        for i, name in evidence[strategy]().items():
            if i in targets and i not in proposed and name:
                proposed[i] = (name, _ORIGIN_OF[strategy], None, None)
    kept = {i: nodes[i].name for i in range(len(nodes)) if i not in targets and i not in proposed}
    if "structure" in chosen:
        named = {**kept, **{i: p[0] for i, p in proposed.items()}}
        left = [i for i in order if i in targets and i not in proposed]
        for i, name in names_from_structure(
            index, order, [k[0] for k in keys], named, left, set(kept.values())
        ).items():
            proposed[i] = (name, "structure", None, None)

    final = _unique({i: p[0] for i, p in proposed.items()}, order, set(kept.values()))
    entries = []
    for i, node in enumerate(nodes):
        if i in proposed:
            _, origin, score, why = proposed[i]
            entries.append(Entry(i, node.name, final[i], origin, score, why))
        else:
            entries.append(Entry(i, node.name, node.name, "kept"))
    plan = Plan(entries)
    unnamed = sum(1 for i in targets if i not in proposed)
    if unnamed:
        plan.warnings.append(
            f"{unnamed} node(s) keep a lost name: strategies {', '.join(chosen)} found no name for them"
        )
    if explicit:
        _apply(plan, explicit)
    return plan


def _unique(names: dict[int, str], order: list[int], taken: set[str]) -> dict[int, str]:
    """Make planned names unique: the first holder (canonical order) keeps the bare name, later
    ones get the first free ``_1``, ``_2``, ...; kept names and other planned names are avoided."""
    authority = NameAuthority(taken, reserved=names.values())
    return {i: authority.claim(names[i]) for i in order if i in names}


def _apply(plan: Plan, explicit: Explicit) -> None:
    names = [e.new for e in plan.entries]
    changed, warnings = apply_explicit(names, [e.old for e in plan.entries], explicit)
    plan.warnings.extend(warnings)
    for i, name in changed.items():
        plan.entries[i] = Entry(i, plan.entries[i].old, name, "map")
