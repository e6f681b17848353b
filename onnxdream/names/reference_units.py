"""The compute skeleton of a graph, as reference matching sees it.

Exporters disagree on everything but the computation: BatchNormalization fused into Conv or not,
padding as a Pad node or in Conv's ``pads``, Flatten or Reshape, Relu6 as Clip with attributes or
inputs, a bias as Gemm's third input or a separate Add. The skeleton hides those differences:

- static sub-graphs are dropped: constants (Constant, arithmetic on initializers) and shape
  arithmetic (Shape -> Gather -> Concat feeding a Reshape);
- *transparent* ops that only move or re-type data (Pad, Reshape, Flatten, Identity, ...) are
  looked through when connecting units, and named later relative to the unit they hang off;
- every other node is a *unit*; a Conv (or ConvTranspose, Gemm, MatMul with a constant weight)
  absorbs the BatchNormalization and bias Add that directly follow it and nothing else reads;
- a unit's signature is what must agree for two units to be the same layer: the normalised op,
  kernel/stride/dilation/groups and weight shape for convolutions, clip bounds, pooled axes, ...
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from onnxdream.graph import GraphIndex

INPUT = -1
"""Predecessor id standing for a graph input."""

TRANSPARENT = {
    "Identity": "identity",
    "Dropout": "identity",
    "Cast": "cast",
    "Pad": "pad",
    "Reshape": "reshape",
    "Flatten": "reshape",
    "Squeeze": "reshape",
    "Unsqueeze": "reshape",
}
"""Ops that only move or re-type data, and the class under which they are compared."""

_WEIGHTED = {"Conv": "conv", "ConvTranspose": "convT", "Gemm": "dense", "MatMul": "dense"}
_SPATIAL_AXES = ({2, 3}, {-2, -1}, {2, 3, 4}, {-3, -2, -1})


@dataclass
class Unit:
    """One layer of the skeleton: a primary node plus the nodes it absorbed.

    Attributes:
        index: position of this unit in :attr:`Skeleton.units`.
        node: index of the primary node in ``graph.node``.
        roles: role -> node index (``main``, and ``bn`` / ``bias`` when absorbed).
        kind: normalised op (``conv``, ``dense``, ``gap``, ``Clip``, ...).
        signature: what two units must share to be the same layer.
        label: short human description of the signature (``conv 3x3/s2 3->32``).
        weight: kernel as (out, fan_in) with L2-normalised rows, or None.
        preds: units (or :data:`INPUT`) feeding this one.
        succs: units reading this one.
    """

    index: int
    node: int
    roles: dict[str, int]
    kind: str
    signature: tuple
    label: str
    weight: np.ndarray | None = None
    preds: list[int] = field(default_factory=list)
    succs: list[int] = field(default_factory=list)


@dataclass
class Skeleton:
    """Units of a graph in canonical order, and how transparent nodes hang off them."""

    units: list[Unit]
    order: list[int]
    """Unit ids in a canonical topological order: independent of the order of nodes in the file."""
    unit_of: dict[int, int]
    """Node index -> unit id, for every node absorbed into a unit."""
    hangers: dict[int, tuple[int, str, int]]
    """Transparent node index -> (anchor unit or INPUT, class, rank among that class on the chain)."""


def build_skeleton(graph: onnx.GraphProto) -> Skeleton:
    """Build the skeleton of ``graph`` (see the module docstring)."""
    index = GraphIndex(graph)
    constants = index.constant_tensors
    values = _ConstantValues(graph, index)
    static = _static_tensors(index)

    def data_inputs(i: int) -> list[str]:
        return [x for x in index.nodes[i].input if x and x not in static]

    def is_static(i: int) -> bool:
        return all(x in static for x in index.nodes[i].output if x)

    def sole_consumer(i: int) -> int | None:
        outs = [x for x in index.nodes[i].output if x]
        if len(outs) != 1 or outs[0] in index.graph_outputs:
            return None
        users = index.consumers.get(outs[0], [])
        return users[0] if len(users) == 1 else None

    absorbed: set[int] = set()
    units: list[Unit] = []
    unit_of: dict[int, int] = {}
    for i in index.order:
        node = index.nodes[i]
        if i in absorbed or is_static(i) or node.op_type in TRANSPARENT:
            continue
        roles = {"main": i}
        if node.op_type in _WEIGHTED and _weight_input(node, values) is not None:
            follower = sole_consumer(i)
            if follower is not None and _is_bias_add(index.nodes[follower], constants):
                roles["bias"] = follower
                follower = sole_consumer(follower)
            if follower is not None and index.nodes[follower].op_type == "BatchNormalization":
                roles["bn"] = follower
        absorbed.update(roles.values())
        kind, signature, label, weight = _describe(node, values, data_inputs(i))
        unit = Unit(len(units), i, roles, kind, signature, label, weight)
        units.append(unit)
        for member in roles.values():
            unit_of[member] = unit.index

    hangers: dict[int, tuple[int, str, int]] = {}

    def source(tensor: str) -> int:
        """Unit that produced ``tensor``, looking through transparent nodes."""
        seen = 0
        while tensor in index.producer and seen < len(index.nodes):
            producer = index.producer[tensor]
            if producer in unit_of:
                return unit_of[producer]
            ins = data_inputs(producer)
            if index.nodes[producer].op_type not in TRANSPARENT or not ins:
                return INPUT
            tensor, seen = ins[0], seen + 1
        return INPUT

    for unit in units:
        for tensor in data_inputs(unit.node):
            pred = source(tensor)
            unit.preds.append(pred)
            if pred != INPUT and unit.index not in units[pred].succs:
                units[pred].succs.append(unit.index)

    for i in index.order:
        node = index.nodes[i]
        if node.op_type not in TRANSPARENT or is_static(i) or i in unit_of:
            continue
        klass = TRANSPARENT[node.op_type]
        rank, tensor = 0, (data_inputs(i) or [""])[0]
        while tensor in index.producer and index.producer[tensor] not in unit_of:
            up = index.producer[tensor]
            if index.nodes[up].op_type not in TRANSPARENT:
                break
            rank += TRANSPARENT[index.nodes[up].op_type] == klass
            tensor = (data_inputs(up) or [""])[0]
        hangers[i] = (source((data_inputs(i) or [""])[0]), klass, rank)

    return Skeleton(units, _canonical_order(units), unit_of, hangers)


def _static_tensors(index: GraphIndex) -> set[str]:
    """Constants, plus what is computed from tensor shapes only (``x.view(x.size(0), -1)``)."""
    static = set(index.constant_tensors)
    for i in index.order:
        node = index.nodes[i]
        if node.op_type in ("Shape", "Size") or all(x in static for x in node.input if x):
            static.update(x for x in node.output if x)
    return static


def _canonical_order(units: list[Unit]) -> list[int]:
    """Sort units by depth, then by signature and a structural hash of their ancestry.

    Depth (longest path from the inputs) strictly grows along edges, so the result is a
    topological order; the tie-breakers make it independent of the file's node order.
    """
    depth: dict[int, int] = {}
    for u in _kahn(units):
        depth[u] = 1 + max((depth[p] for p in units[u].preds if p != INPUT), default=0)
    stable = {u.index: zlib.crc32(repr(u.signature).encode()) for u in units}
    ancestry = dict(stable)
    for _ in range(3):
        ancestry = {
            u.index: zlib.crc32(
                repr((ancestry[u.index], sorted(ancestry[p] for p in u.preds if p != INPUT))).encode()
            )
            for u in units
        }
    return sorted(
        (u.index for u in units), key=lambda u: (depth[u], repr(units[u].signature), ancestry[u], u)
    )


def _kahn(units: list[Unit]) -> list[int]:
    indegree = {u.index: sum(p != INPUT for p in u.preds) for u in units}
    ready = [u for u, d in indegree.items() if d == 0]
    order = []
    while ready:
        u = ready.pop()
        order.append(u)
        for s in units[u].succs:
            indegree[s] -= units[s].preds.count(u)
            if indegree[s] == 0:
                ready.append(s)
    return order


class _ConstantValues:
    """Values of constant tensors: initializers and Constant nodes, looked up lazily."""

    def __init__(self, graph: onnx.GraphProto, index: GraphIndex) -> None:
        self._init = {t.name: t for t in graph.initializer}
        self._index = index
        self._cache: dict[str, np.ndarray | None] = {}

    def get(self, name: str) -> np.ndarray | None:
        """The array behind ``name``, looking through Identity/Cast; None if not a plain constant."""
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def _load(self, name: str) -> np.ndarray | None:
        if name in self._init:
            tensor = self._init[name]
            if tensor.data_location == onnx.TensorProto.EXTERNAL and not tensor.raw_data:
                return None
            return numpy_helper.to_array(tensor)
        producer = self._index.producer.get(name)
        if producer is None:
            return None
        node = self._index.nodes[producer]
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
                if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
                    return np.asarray(onnx.helper.get_attribute_value(attr))
            return None
        if node.op_type in ("Identity", "Cast") and node.input:
            return self.get(node.input[0])
        return None


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _weight_input(node: onnx.NodeProto, values: _ConstantValues) -> np.ndarray | None:
    if len(node.input) < 2 or not node.input[1]:
        return None
    weight = values.get(node.input[1])
    if weight is None or weight.ndim < 2 or not np.issubdtype(weight.dtype, np.floating):
        return None
    return weight


def _is_bias_add(node: onnx.NodeProto, constants: set[str]) -> bool:
    return node.op_type == "Add" and sum(x in constants for x in node.input) == 1


def _rows(kernel: np.ndarray) -> np.ndarray:
    """Kernel as (out, fan_in) float32 rows of unit length (zero rows stay zero)."""
    rows = kernel.reshape(kernel.shape[0], -1).astype(np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def _describe(
    node: onnx.NodeProto, values: _ConstantValues, inputs: list[str]
) -> tuple[str, tuple, str, np.ndarray | None]:
    """Kind, signature, label and normalised weight of a unit's primary node."""
    op, attrs = node.op_type, _attrs(node)
    weight = _weight_input(node, values) if op in _WEIGHTED else None
    if weight is not None and op in ("Conv", "ConvTranspose"):
        kernel = tuple(int(k) for k in weight.shape[2:])
        spatial = len(kernel)
        strides = tuple(attrs.get("strides", [1] * spatial))
        dilations = tuple(attrs.get("dilations", [1] * spatial))
        group = int(attrs.get("group", 1))
        if op == "ConvTranspose":
            out_ch, in_ch = weight.shape[1] * group, weight.shape[0]
            weight = np.swapaxes(weight.reshape(group, in_ch // group, *weight.shape[1:]), 1, 2)
            weight = weight.reshape(out_ch, in_ch // group, *kernel)
        else:
            out_ch, in_ch = int(weight.shape[0]), int(weight.shape[1]) * group
        kind = _WEIGHTED[op]
        label = f"{kind} {_dims(kernel)}/s{_dims(strides, collapse=True)}"
        label += (f"/g{group}" if group > 1 else "") + f" {in_ch}->{out_ch}"
        signature = (kind, kernel, strides, dilations, group, out_ch, in_ch)
        return kind, signature, label, _rows(weight)
    if weight is not None:
        matrix = weight.reshape(weight.shape[0], -1)
        transposed = op == "MatMul" or (op == "Gemm" and not attrs.get("transB", 0))
        if op == "Gemm" and attrs.get("transA", 0):
            return op, (op, "transA"), op, None
        matrix = matrix.T if transposed else matrix
        out_f, in_f = (int(d) for d in matrix.shape)
        return "dense", ("dense", out_f, in_f), f"dense {in_f}->{out_f}", _rows(matrix)
    if op == "Clip":
        lo = attrs.get("min", _scalar(values, node.input[1:2]))
        hi = attrs.get("max", _scalar(values, node.input[2:3]))
        bounds = tuple(None if b is None else round(float(b), 4) for b in (lo, hi))
        return op, (op, *bounds), f"Clip [{bounds[0]}, {bounds[1]}]", None
    if op == "GlobalAveragePool" or (op == "ReduceMean" and _spatial_mean(node, attrs, values)):
        return "gap", ("gap",), "global average pool", None
    if op == "GlobalMaxPool" or (op == "ReduceMax" and _spatial_mean(node, attrs, values)):
        return "gmp", ("gmp",), "global max pool", None
    if op in ("MaxPool", "AveragePool", "LpPool"):
        kernel = tuple(attrs.get("kernel_shape", []))
        strides = tuple(attrs.get("strides", [1] * len(kernel)))
        label = f"{op} {_dims(kernel)}/s{_dims(strides, collapse=True)}"
        return op, (op, kernel, strides), label, None
    if op == "BatchNormalization":
        scale = values.get(node.input[1]) if len(node.input) > 1 else None
        channels = None if scale is None else int(scale.size)
        return "bn", ("bn", channels), f"BatchNormalization {channels}", None
    if op == "Concat":
        return op, (op, int(attrs.get("axis", 0)), len(inputs)), f"Concat of {len(inputs)}", None
    if op in ("Add", "Sub", "Mul", "Div") and len(inputs) < len(node.input):
        return op, (op, "const"), f"{op} with constant", None
    return op, (op,), op, None


def _dims(values: tuple, collapse: bool = False) -> str:
    """``(3, 3)`` -> ``3x3``; with ``collapse``, equal values read as one (strides: ``2``)."""
    if collapse and values and len(set(values)) == 1:
        return str(values[0])
    return "x".join(map(str, values))


def _scalar(values: _ConstantValues, names) -> float | None:
    for name in names:
        if name:
            value = values.get(name)
            if value is not None and value.size == 1:
                return float(value.reshape(()))
    return None


def _spatial_mean(node: onnx.NodeProto, attrs: dict, values: _ConstantValues) -> bool:
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        found = values.get(node.input[1])
        axes = None if found is None else found.reshape(-1).tolist()
    return axes is not None and set(int(a) for a in axes) in _SPATIAL_AXES
