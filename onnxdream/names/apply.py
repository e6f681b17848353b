"""``rename`` and ``undo`` on a model: node names and their metadata change, nothing else does.

The model proto is edited directly (onnx-graphsurgeon 0.6.1 would drop node ``metadata_props``):
node names, ``onnxdream.origin`` (and ``onnxdream.score``) on renamed nodes, and the model's
``onnxdream.renames`` map ``{new: original}``, which composes with an earlier map so that one
undo goes back to the names the model had before its first rename. Tensor names, graph inputs
and outputs, initializers, opsets, doc strings and all other metadata stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import onnx

from onnxdream.errors import OnnxDreamError
from onnxdream.metadata import ORIGIN_KEY, RENAMES_KEY, SCORE_KEY, get_json, set_json, set_prop
from onnxdream.model import ModelSpec, editable_proto, open_model
from onnxdream.names.mapping import Explicit, Rule
from onnxdream.names.plan import Entry, Plan, plan_names


@dataclass
class RenameResult:
    """The renamed model and the plan that produced it."""

    model: onnx.ModelProto
    plan: Plan

    @property
    def renamed(self) -> list[Entry]:
        """Entries whose name changed, in file order."""
        return [e for e in self.plan.entries if e.renamed]

    def report(self) -> dict:
        """JSON-ready report: per node ``{old, new, origin}`` (+ ``score``/``why``), counts, warnings."""
        nodes = []
        for e in self.plan.entries:
            item = {"old": e.old, "new": e.new, "origin": e.origin if e.renamed else "kept"}
            if e.renamed and e.score is not None:
                item["score"] = e.score
                item["why"] = e.why
            nodes.append(item)
        return {"nodes": nodes, "counts": self.plan.counts(), "warnings": list(self.plan.warnings)}


def rename(
    model: ModelSpec,
    *,
    strategies: Sequence[str] = ("auto",),
    rename_all: bool = False,
    mapping: Mapping[str, str] | None = None,
    rules: Iterable[str | Rule] = (),
    strip_prefix: str | None = None,
    reference: ModelSpec | None = None,
    min_score: float = 0.5,
    inplace: bool = False,
    trust_pickle: bool = False,
) -> RenameResult:
    """Give every node with a lost name (every node with ``rename_all``) a meaningful, unique name.

    Args:
        model: anything :func:`~onnxdream.model.open_model` opens. A proto or ``Model`` passed
            in is copied unless ``inplace``; a model read from a file here is edited directly.
        strategies: any of ``auto``, ``metadata``, ``weights``, ``tensors``, ``structure``.
        rename_all: replace every name, not only lost ones.
        mapping: explicit ``{old: new}`` renames (``old``: a planned or an original name).
        rules: ``'REGEX=>REPL'`` renames, applied to every name after the map.
        strip_prefix: a wrapper prefix (``0.``) removed from every name that has it.
        reference: a model with good names (anything ``open_model`` opens; a torch SPEC is
            exported); the nodes it matches get its names first.
        min_score: weakest reference match accepted.
        inplace: edit the given proto itself.
        trust_pickle: allow torch SPECs that are ``torch.save(model)`` pickles (they run code).

    Returns:
        The renamed model and its plan.

    Raises:
        OnnxDreamError: unknown strategy, bad rule, explicit renames that duplicate names.
    """
    explicit = Explicit(
        strip_prefix=strip_prefix or None,
        mapping=dict(mapping or {}),
        rules=tuple(r if isinstance(r, Rule) else Rule.parse(r) for r in rules),
    )
    opened = open_model(model, trust_pickle=trust_pickle)
    plan = plan_names(
        opened,
        strategies=strategies,
        rename_all=rename_all,
        explicit=explicit,
        reference=open_model(reference, trust_pickle=trust_pickle) if reference is not None else None,
        min_score=min_score,
    )
    return RenameResult(apply_plan(editable_proto(model, opened, inplace), plan), plan)


def apply_plan(model: onnx.ModelProto, plan: Plan) -> onnx.ModelProto:
    """Write the plan's names into ``model`` (edited in place) with their origins and the undo map."""
    renamed = [e for e in plan.entries if e.renamed]
    if not renamed:
        return model
    history: dict[str, str] = get_json(model, RENAMES_KEY, {})
    originals = {e.new: history.pop(e.old, e.old) for e in renamed}
    for new, original in originals.items():
        if new == original:
            continue
        history[new] = original
    nodes = model.graph.node
    for e in renamed:
        node = nodes[e.node]
        node.name = e.new
        set_prop(node, ORIGIN_KEY, e.origin)
        if e.score is not None:
            set_prop(node, SCORE_KEY, f"{e.score:.4f}")
    set_json(model, RENAMES_KEY, history)
    return model


def undo(model: ModelSpec, *, inplace: bool = False) -> RenameResult:
    """Give back every name recorded in ``onnxdream.renames`` and drop what rename added.

    A proto passed in is copied unless ``inplace``.

    Raises:
        OnnxDreamError: the model records no renames.
    """
    opened = open_model(model)
    history = get_json(opened.proto, RENAMES_KEY)
    if history is None:
        raise OnnxDreamError(
            f"{opened.source}: no renames recorded ({RENAMES_KEY!r} missing); nothing to undo"
        )
    model = editable_proto(model, opened, inplace)
    entries = []
    for i, node in enumerate(model.graph.node):
        if node.name in history:
            entries.append(Entry(i, node.name, history[node.name], "undo"))
            node.name = history[node.name]
            _drop_props(node.metadata_props, {ORIGIN_KEY, SCORE_KEY})
        else:
            entries.append(Entry(i, node.name, node.name, "kept"))
    _drop_props(model.metadata_props, {RENAMES_KEY})
    return RenameResult(model, Plan(entries))


def _drop_props(props, keys: set[str]) -> None:
    for k in reversed(range(len(props))):
        if props[k].key in keys:
            del props[k]
