"""The ``structure`` strategy: names from the graph around a node, for nodes with no other evidence.

A node joins the scope of the named nodes next to it and adds its op type:

- an activation (Relu, Clip, Dropout, ...) or the only reader of a layer's output continues that
  layer: ``inception_4c/3x3`` -> ``inception_4c/3x3/Relu``;
- a merge (Concat, Add, Sum of several activations) belongs to the scope its branches share:
  four ``inception_4c/...`` branches -> ``inception_4c/Concat``. Skip connections (an input that
  is an ancestor of another input) do not count, so a residual ``Add`` of ``layer1.0`` and
  ``layer1.1.bn3`` lands in ``layer1.1``;
- a node that starts a branch, or follows a block (a merge and its activation) without being
  an activation itself (the pooling between two Inception blocks), belongs to the scope of the
  layers that read it:
  ``inception_4c/MaxPool`` for the pool branch that feeds ``inception_4c/pool_proj``;
- a constant belongs to the layer that reads it: ``inception_4c/3x3/Constant``;
- a node with nothing named nearby is ``<OpType>_<k>``, counted in canonical order.

Forward over the canonical order, a node sees names of its producers and of the consumers that
already have evidence; a backward pass then names what is left from its consumers.
"""

from __future__ import annotations

from collections.abc import Iterable

from onnxdream.fresh_names import NameAuthority
from onnxdream.graph import GraphIndex
from onnxdream.names.scope import common_scope, extend_scope, owner, parent_scope

ACTIVATIONS = frozenset(
    {
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Elu",
        "Selu",
        "Celu",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Softplus",
        "Softsign",
        "Clip",
        "Gelu",
        "Mish",
        "Swish",
        "ThresholdedRelu",
        "Dropout",
        "Identity",
    }
)
"""Ops that post-process a layer's output in place: they always continue the layer they read."""


class _Namer:
    def __init__(self, index: GraphIndex, levels: list[int], names: dict[int, str]) -> None:
        self.index = index
        self.levels = levels
        self.names = names
        self._producers: dict[int, list[int]] = {}
        self.blocks: set[str] = set()
        """Scopes that a merge ends: what follows them belongs to them only as their activation."""

    def producers(self, i: int) -> list[int]:
        """Distinct producers of node ``i``'s non-constant inputs, in input order."""
        if i not in self._producers:
            found: dict[int, None] = {}
            for x in self.index.nodes[i].input:
                if x and x not in self.index.constant_tensors and x in self.index.producer:
                    found.setdefault(self.index.producer[x])
            self._producers[i] = list(found)
        return self._producers[i]

    def owner(self, i: int) -> str:
        return owner(self.names[i], self.index.nodes[i].op_type)

    def only_reader(self, i: int, p: int) -> bool:
        """Whether node ``i`` is the only user of everything it reads from ``p``."""
        read = set(self.index.nodes[i].input)
        for out in self.index.nodes[p].output:
            if out in read and (
                out in self.index.graph_outputs or set(self.index.consumers.get(out, ())) != {i}
            ):
                return False
        return True

    def is_ancestor(self, a: int, b: int) -> bool:
        """Whether ``a`` is upstream of ``b`` through non-constant tensors.

        Only nodes deeper than ``a`` can lie between them, so the walk enters no others.
        """
        floor = self.levels[a]

        def between(p: int) -> bool:
            return p == a or (self.levels[p] > floor and not self.index.is_constant(p))

        return a in self.index.upstream(self.index.reads(b), within=between)

    def merge_scope(self, named: list[int], all_producers: list[int]) -> str:
        main = [p for p in named if not any(q != p and self.is_ancestor(p, q) for q in all_producers)]
        if len(main) >= 2:
            return common_scope([self.owner(p) for p in main])
        if not main:
            return ""
        lead = self.owner(main[0])
        skipped = [self.owner(p) for p in named if p not in main]
        if not skipped:
            return parent_scope(lead)
        # The scope that tells the branch apart from what it skips: 'layer1.1' for
        # 'layer1.1.bn3' over 'layer1.0'; 'gpu_0/res2_1' for 'gpu_0/res2_1_branch2c_bn'.
        extended = extend_scope(lead, common_scope([lead, *skipped]))
        parent = parent_scope(lead)
        return extended if len(extended) >= len(parent) else parent

    def merge(self, named: list[int], all_producers: list[int]) -> str:
        """The scope of a merge node, remembered as a block."""
        scope = self.merge_scope(named, all_producers)
        if scope:
            self.blocks.add(scope)
        return scope

    def consumer_scope(self, i: int, *, constant: bool) -> str:
        """The scope shared by the named readers of node ``i`` ('' if none or none shared)."""
        scopes = []
        for c in self._consumers(i):
            if c in self.names:
                layer = self.owner(c)
                # A layer owns its constants; a node feeding a layer sits beside it.
                scopes.append(layer if constant or layer != self.names[c] else parent_scope(layer))
        return common_scope(scopes) if scopes and all(scopes) else ""

    def _consumers(self, i: int) -> list[int]:
        found: dict[int, None] = {}
        for out in self.index.nodes[i].output:
            for c in self.index.consumers.get(out, ()):
                found.setdefault(c)
        return list(found)

    def forward(self, i: int) -> str:
        """A scope from producers (or from consumers with evidence); '' to decide later."""
        op = self.index.nodes[i].op_type
        producers = self.producers(i)
        named = [p for p in producers if p in self.names]
        if len(producers) >= 2 and named:
            return self.merge(named, producers)
        single = named[0] if len(producers) == 1 and named else None
        follows_block = single is not None and self.owner(single) in self.blocks
        if single is not None and (op in ACTIVATIONS or (self.only_reader(i, single) and not follows_block)):
            return self.owner(single)
        scope = self.consumer_scope(i, constant=False)
        if scope:
            return scope
        return self.owner(single) if single is not None and not follows_block else ""

    def backward(self, i: int) -> str:
        """A scope from consumers named so far, else from any named producer."""
        constant = self.index.is_constant(i)
        scope = self.consumer_scope(i, constant=constant)
        if scope or constant:
            return scope
        named = [p for p in self.producers(i) if p in self.names]
        if len(named) == 1:
            return self.owner(named[0])
        return self.merge(named, self.producers(i)) if named else ""


def names_from_structure(
    index: GraphIndex,
    order: list[int],
    levels: list[int],
    named: dict[int, str],
    targets: Iterable[int],
    taken: set[str],
) -> dict[int, str]:
    """Names for ``targets`` from their neighbourhood.

    Args:
        index: the graph.
        order: canonical topological order of all nodes.
        levels: per node, its depth (the canonical key's first element).
        named: names already decided for other nodes (kept or from stronger evidence).
        targets: the nodes to name.
        taken: names ``<OpType>_<k>`` must not reuse.

    Returns:
        A name for every target.
    """
    wanted = set(targets)
    namer = _Namer(index, levels, dict(named))
    result: dict[int, str] = {}

    def assign(i: int, scope: str) -> None:
        name = f"{scope}/{index.nodes[i].op_type}"
        namer.names[i] = result[i] = name

    for i in order:
        if i in wanted and not index.is_constant(i):
            scope = namer.forward(i)
            if scope:
                assign(i, scope)
    for i in reversed(order):
        if i in wanted and i not in result:
            scope = namer.backward(i)
            if scope:
                assign(i, scope)
    authority = NameAuthority(taken)
    for i in order:
        if i in wanted and i not in result:
            result[i] = authority.claim(index.nodes[i].op_type, bare=False, start=0)
    return result
