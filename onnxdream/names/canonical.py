"""A canonical topological order: the same graph gives the same order however its nodes are listed.

Each node gets a key ``(level, upstream hash, downstream hash, output names)``:

- *level*: the longest path from a graph input or constant to the node, so every producer
  comes before its consumers;
- *upstream hash*: op type, domain, attributes and the upstream hashes of its inputs, each
  tagged with the output slot it comes from (initializers by dtype and shape, graph inputs by
  position), so it summarises everything the node depends on, Weisfeiler-Lehman style;
- *downstream hash*: the same over the node's consumers, which separates look-alike branches
  that feed different places;
- *output names*: the last tie-break, for nodes that are symmetric in every other respect.
  Tensor names belong to the graph, not to the order in which the file lists nodes.

None of these depend on the position of a node in ``graph.node``.
"""

from __future__ import annotations

import hashlib

import onnx

from onnxdream.graph import GraphIndex

_DIGEST = 8


def _hash(*parts: bytes) -> bytes:
    # A collision could only merge two keys; the output names still break the tie.
    return hashlib.blake2b(b"\x1f".join(parts), digest_size=_DIGEST).digest()


def _local_label(node: onnx.NodeProto) -> bytes:
    attributes = sorted(node.attribute, key=lambda a: a.name)
    return _hash(
        node.op_type.encode(),
        node.domain.encode(),
        str(len(node.output)).encode(),
        *(a.SerializeToString(deterministic=True) for a in attributes),
    )


class _SlotLabels(dict):
    """Labels of tensors that no node produces: graph inputs by position, initializers by type."""

    def __init__(self, index: GraphIndex) -> None:
        super().__init__({"": b"<none>"})
        self.inputs = {value.name: k for k, value in enumerate(index.graph.input)}
        self.initializers = {t.name: t for t in index.graph.initializer}

    def __missing__(self, name: str) -> bytes:
        if name in self.initializers:
            tensor = self.initializers[name]
            label = f"init:{tensor.data_type}:{tuple(tensor.dims)}".encode()
        elif name in self.inputs:
            label = f"input:{self.inputs[name]}".encode()
        else:
            label = b"<outer>"
        self[name] = label
        return label


def canonical_keys(index: GraphIndex) -> list[tuple]:
    """Per node (by index): its sort key in the canonical order."""
    nodes = index.nodes
    topo = index.order
    slots = _SlotLabels(index)
    output_slot: dict[str, int] = {}
    for node in nodes:
        for j, out in enumerate(node.output):
            output_slot[out] = j

    level = [0] * len(nodes)
    up = [b""] * len(nodes)
    for i in topo:
        node = nodes[i]
        parts = [_local_label(node)]
        depth = 0
        for x in node.input:
            p = index.producer.get(x)
            if p is None:
                parts.append(slots[x])
            else:
                depth = max(depth, level[p] + 1)
                parts.append(up[p] + output_slot[x].to_bytes(2, "little"))
        level[i] = depth
        up[i] = _hash(*parts)

    graph_outputs = {name: k for k, name in enumerate(index.graph_outputs)}
    down = [b""] * len(nodes)
    for i in reversed(topo):
        node = nodes[i]
        parts = [up[i]]
        for out in node.output:
            uses = sorted(
                down[c] + _positions(nodes[c].input, out) for c in set(index.consumers.get(out, ()))
            )
            if out in graph_outputs:
                uses.append(f"output:{graph_outputs[out]}".encode())
            parts.append(_hash(*uses))
        down[i] = _hash(*parts)

    return [(level[i], up[i], down[i], tuple(nodes[i].output)) for i in range(len(nodes))]


def _positions(inputs, name: str) -> bytes:
    return bytes(k for k, x in enumerate(inputs) if x == name and k < 256)


def canonical_order(index: GraphIndex) -> list[int]:
    """Node indices in canonical topological order (see the module docstring)."""
    keys = canonical_keys(index)
    return sorted(range(len(keys)), key=keys.__getitem__)
