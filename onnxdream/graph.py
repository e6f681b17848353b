"""Layers of an ONNX graph: nodes, scopes (name prefixes) and the tensors that are their activations."""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import onnx

from onnxdream.lookup import NameLookup, glob_names

_SEPARATOR = re.compile(r"[./]")


def scopes_of(name: str) -> list[str]:
    """Proper prefixes of ``name`` that end just before a separator: ``a.b/c`` -> ``a``, ``a.b``."""
    return [name[: m.start()] for m in _SEPARATOR.finditer(name) if m.start() > 0]


def scope_at_depth(name: str, depth: int) -> str:
    """Collapse ``name`` to its first ``depth`` components (``_blocks.3._bn1``, 2 -> ``_blocks.3``)."""
    cuts = [m.start() for m in _SEPARATOR.finditer(name) if m.start() > 0]
    return name if depth > len(cuts) else name[: cuts[depth - 1]]


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The graphs a node holds as attributes (If branches, Loop and Scan bodies)."""
    graphs = []
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            graphs.append(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
            graphs.extend(a.graphs)
    return graphs


def outer_names(node: onnx.NodeProto) -> list[str]:
    """Names the node's subgraphs (If/Loop/Scan bodies, at any depth) read from enclosing scopes."""
    found: dict[str, None] = {}

    def visit(graph: onnx.GraphProto, known: set[str]) -> None:
        known = known | {i.name for i in graph.input} | {t.name for t in graph.initializer}
        for inner in graph.node:
            for name in inner.input:
                if name and name not in known:
                    found[name] = None
            for sub in subgraphs(inner):
                visit(sub, known)
            known |= set(inner.output)

    for sub in subgraphs(node):
        visit(sub, set())
    return list(found)


@dataclass(frozen=True)
class Layer:
    """Something a user can target by name, and the tensors that are its activation."""

    name: str
    kind: str  # "node", "scope" or "tensor"
    nodes: tuple[int, ...]
    outputs: tuple[str, ...]


class GraphIndex:
    """Producer/consumer maps, a topological order and layer resolution for one graph."""

    def __init__(self, graph: onnx.GraphProto, source: str = "<model>") -> None:
        self.graph = graph
        self.source = source
        self.nodes = list(graph.node)
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        for i, node in enumerate(self.nodes):
            for out in node.output:
                if out:
                    self.producer[out] = i
            for inp in node.input:
                if inp:
                    self.consumers.setdefault(inp, []).append(i)
        self.initializers = {t.name for t in graph.initializer}
        self.graph_outputs = [o.name for o in graph.output]
        self.graph_inputs = [i.name for i in graph.input if i.name not in self.initializers]
        self._reads: dict[int, tuple[str, ...]] = {}

    @cached_property
    def order(self) -> list[int]:
        """Node indices in a topological order, ties broken by position in the file."""
        indegree = [0] * len(self.nodes)
        for i, node in enumerate(self.nodes):
            indegree[i] = len({self.producer[x] for x in node.input if x in self.producer})
        ready = [i for i, d in enumerate(indegree) if d == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            i = heapq.heappop(ready)
            order.append(i)
            successors = {c for out in self.nodes[i].output if out for c in self.consumers.get(out, [])}
            for c in successors:
                indegree[c] -= 1
                if indegree[c] == 0:
                    heapq.heappush(ready, c)
        return order

    @cached_property
    def position(self) -> dict[int, int]:
        """Node index -> rank in :attr:`order`."""
        return {node: rank for rank, node in enumerate(self.order)}

    @cached_property
    def constant_tensors(self) -> set[str]:
        """Tensors that do not depend on a graph input (initializers and what folds from them)."""
        constant = set(self.initializers)
        for i in self.order:
            node = self.nodes[i]
            if all(x in constant for x in node.input if x):
                constant.update(x for x in node.output if x)
        return constant

    def reads(self, index: int) -> tuple[str, ...]:
        """Every tensor node ``index`` reads: its inputs, then what its subgraphs read from outside."""
        if index not in self._reads:
            node = self.nodes[index]
            names = [x for x in node.input if x]
            if node.attribute:
                names += outer_names(node)
            self._reads[index] = tuple(dict.fromkeys(names))
        return self._reads[index]

    def upstream(
        self,
        tensors: Iterable[str],
        *,
        within: Callable[[int], bool] | None = None,
        reads: Callable[[int], Sequence[str]] | None = None,
    ) -> Iterator[int]:
        """The nodes that ``tensors`` depend on, each once, as a depth-first walk back finds them.

        The walk is lazy: ``a in index.upstream(...)`` stops as soon as it reaches ``a``.

        Args:
            tensors: where the walk starts.
            within: the nodes the walk may enter (default: all); the tensors the others produce
                are where it stops.
            reads: the tensors a node depends on (default: :meth:`reads`, subgraph reads included).
        """
        read = reads or self.reads
        seen: set[str] = set()
        entered: set[int] = set()
        stack = list(tensors)
        while stack:
            name = stack.pop()
            if not name or name in seen:
                continue
            seen.add(name)
            i = self.producer.get(name)
            if i is None or i in entered or (within is not None and not within(i)):
                continue
            entered.add(i)
            yield i
            stack.extend(read(i))

    def is_constant(self, index: int) -> bool:
        """Whether node ``index`` computes only constants."""
        return all(x in self.constant_tensors for x in self.nodes[index].output if x)

    def activations(self, index: int) -> tuple[str, ...]:
        """A node's outputs that something uses (or its first output when none is used)."""
        outs = [x for x in self.nodes[index].output if x]
        used = [x for x in outs if x in self.consumers or x in self.graph_outputs]
        return tuple(used or outs[:1])

    @cached_property
    def by_name(self) -> dict[str, int]:
        """Node name -> index (named nodes only; the first wins if names repeat)."""
        names: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            if node.name:
                names.setdefault(node.name, i)
        return names

    @cached_property
    def scopes(self) -> dict[str, list[int]]:
        """Scope name -> member node indices (a node named exactly like the scope belongs to it)."""
        members: dict[str, list[int]] = {}
        for i, node in enumerate(self.nodes):
            for scope in scopes_of(node.name):
                members.setdefault(scope, []).append(i)
        for scope, nodes in members.items():
            if scope in self.by_name:
                nodes.append(self.by_name[scope])
        return members

    def layer_names(self) -> list[str]:
        """Every node name and scope, in topological order of first appearance."""
        seen: dict[str, None] = {}
        for i in self.order:
            name = self.nodes[i].name
            for scope in scopes_of(name):
                seen.setdefault(scope)
            if name:
                seen.setdefault(name)
        return list(seen)

    def boundary_outputs(self, members: Iterable[int]) -> tuple[str, ...]:
        """Tensors produced inside ``members`` and used outside them (or by the graph's outputs)."""
        inside = set(members)
        outputs = []
        for i in sorted(inside, key=self.position.__getitem__):
            for out in self.nodes[i].output:
                if not out:
                    continue
                users = self.consumers.get(out, [])
                if out in self.graph_outputs or any(u not in inside for u in users):
                    outputs.append(out)
        return tuple(outputs)

    @cached_property
    def lookup(self) -> NameLookup:
        """Layer names by their full name and by their own name (last path components)."""
        return NameLookup(self.layer_names(), self.source, lambda full: self._exact(full).outputs)

    def _exact(self, name: str) -> Layer | None:
        if name in self.by_name:
            index = self.by_name[name]
            return Layer(name, "node", (index,), self.activations(index))
        if name in self.scopes:
            members = tuple(sorted(set(self.scopes[name]), key=self.position.__getitem__))
            return Layer(name, "scope", members, self.boundary_outputs(members))
        if name in self.producer:
            return Layer(name, "tensor", (self.producer[name],), (name,))
        return None

    def resolve(self, name: str) -> Layer:
        """Resolve a node name, a scope, a tensor name, or (failing all) a layer's own name.

        A layer's own name is the last path component(s) of its full name (``block_13_expand``
        for ``mobilenetv2_1.00_224/block_13_expand``); it must end exactly one layer.

        Raises:
            UnknownLayerError: nothing matches; the message suggests the nearest names.
            AmbiguousLayerError: the name ends several layers; the message lists them.
        """
        layer = self._exact(name)
        if layer is None:
            layer = self._exact(self.lookup.find(name))
        assert layer is not None  # the lookup returns full names only
        return layer

    def resolve_many(self, names: Iterable[str]) -> list[Layer]:
        """Resolve names in order, dropping duplicates; all are validated before returning."""
        unique = list(dict.fromkeys(names))
        return [self.resolve(n) for n in unique]

    def match(self, pattern: str) -> list[str]:
        """Layer names (nodes and scopes) matching a shell glob, in topological order.

        The glob is matched against full names; when it matches none, against the layers' own
        names (``block_13_*`` finds ``model/block_13_expand``).
        """
        return glob_names(self.lookup.names, pattern)
