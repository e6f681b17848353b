"""The ``keras`` strategy: Keras layer paths back from the TensorFlow op paths tf2onnx writes.

Keras 3 on TensorFlow exports through tf2onnx (``model.export(format="onnx")``,
``tf2onnx.convert.from_keras``), which names nodes and tensors after TensorFlow ops:

- ``sequential_1/mobilenetv2_1.00_224_1/block_13_expand_1/convolution``: the root model's
  scope (``sequential_1``), then one scope per nested layer, each with a call counter (``_1``),
  then op-level leaves (``convolution``, ``depthwise``, ``BiasAdd``, ``batchnorm/mul_1``, ``Relu6``);
- ``Conv__995``: a convolution tf2onnx built (a BatchNormalization folded into it), whose weights
  still carry the layer (``.../block_13_expand_1/convolution/merged_input:0``); tf2onnx names it
  after nothing, or after the folded BatchNorm (``.../bn_Conv1_1/batchnorm/mul_1``);
- ``...:0`` tensor suffixes; ``...__661``: helpers tf2onnx inserted (a Transpose of the input).

Each node gets the Keras layer path ``model.summary()`` nests (``mobilenetv2_1.00_224/
block_13_expand``; the root model's own name is no part of it), from its evidence, strongest
first: a weighted node's kernel name (so a convolution with a folded BatchNorm is the
convolution layer ``Conv1``, not ``bn_Conv1``), its own name, its output tensor, then a
helper's name when a neighbour belongs to the same layer. As in the export naming contract, the
node computing a layer's output is named exactly the layer path, the others
``<layer path>/<OpType>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import onnx

from onnxdream.fresh_names import NameAuthority
from onnxdream.graph import GraphIndex

KERAS_PRODUCERS = frozenset({"tf2onnx", "keras2onnx"})
"""Producers whose node names are TensorFlow op paths of Keras layers."""
_WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
_COUNTER = re.compile(r"^(?P<name>.+)_(?P<n>\d+)$")
_HELPER = re.compile(r"^(?P<path>.+?)__\d+$")
_TENSOR_SUFFIX = re.compile(r":\d+$")
# Scopes TensorFlow ops open inside a layer: they end the layer path.
_OP_SCOPES = frozenset(
    {
        "batchnorm",
        "convolution",
        "depthwise",
        "BiasAdd",
        "Conv2D",
        "MatMul",
        "ReadVariableOp",
        "merged_input",
        "Reshape",
        "transpose",
        "Cast",
        "strided_slice",
        "moments",
    }
)


def is_keras_born(model: onnx.ModelProto) -> bool:
    """Whether a converter that names nodes after TensorFlow ops of Keras layers wrote the model."""
    return model.producer_name in KERAS_PRODUCERS


def _segments(name: str) -> list[str]:
    """A TensorFlow op path's scopes (``:0`` dropped); empty when the name is no path."""
    name = _TENSOR_SUFFIX.sub("", name)
    return name.split("/") if "/" in name else []


def _layer_scopes(segments: list[str]) -> list[str]:
    """The layer scopes of an op path: the leading segments before the op-level part."""
    scopes: list[str] = []
    for segment in segments[:-1]:
        if segment in _OP_SCOPES or _COUNTER.sub(r"\g<name>", segment) in _OP_SCOPES:
            break
        scopes.append(segment)
    return scopes


class _Paths:
    """Turns op paths into Keras layer paths, with what the whole graph tells: whether every
    scope carries a call counter (Keras 3), and the root model's scope shared by every path."""

    def __init__(self, names: Iterable[str]) -> None:
        all_scopes = [s for s in (_layer_scopes(_segments(n)) for n in names) if s]
        firsts = {scopes[0] for scopes in all_scopes}
        self.root = next(iter(firsts)) if len(firsts) == 1 else None
        self.counters = bool(all_scopes) and all(_COUNTER.match(s) for scopes in all_scopes for s in scopes)

    def layer(self, name: str) -> str | None:
        scopes = _layer_scopes(_segments(name))
        if self.root is not None and scopes[:1] == [self.root]:
            scopes = scopes[1:]
        if not scopes:
            return None
        if self.counters:
            scopes = [_COUNTER.sub(r"\g<name>", s) for s in scopes]
        return "/".join(scopes)


def _layer_of(index: GraphIndex, i: int, paths: _Paths) -> str | None:
    """The layer a node belongs to by its own evidence (kernel, name, output), or ``None``."""
    node = index.nodes[i]
    if node.op_type in _WEIGHTED_OPS and len(node.input) > 1 and node.input[1] in index.initializers:
        layer = paths.layer(node.input[1])
        if layer:
            return layer
    for name in (node.name, *node.output):
        if name and not _HELPER.match(_TENSOR_SUFFIX.sub("", name)):
            layer = paths.layer(name)
            if layer:
                return layer
    return None


def _helper_layer(index: GraphIndex, i: int, paths: _Paths, layers: dict[int, str]) -> str | None:
    """A converter helper's layer (``.../fine_tune_conv1_1/convolution__996``), kept only when a
    node it reads from or feeds belongs to that layer (tf2onnx names an input Transpose after
    the BatchNorm it happens to precede)."""
    node = index.nodes[i]
    match = _HELPER.match(node.name)
    layer = paths.layer(match.group("path")) if match else None
    if layer is None:
        return None
    neighbours = {index.producer.get(x) for x in node.input if x} | {
        c for out in node.output if out for c in index.consumers.get(out, [])
    }
    return layer if any(layers.get(n) == layer for n in neighbours if n is not None) else None


def names_from_keras(index: GraphIndex, model: onnx.ModelProto) -> dict[int, str]:
    """Node index -> Keras layer name for every node of a tf2onnx/keras2onnx model with evidence
    (``{}`` for any other model)."""
    if not is_keras_born(model):
        return {}
    names = [n.name for n in index.nodes] + [o for n in index.nodes for o in n.output]
    names += [t for t in index.initializers]
    paths = _Paths(names)
    layers = {i: layer for i in range(len(index.nodes)) if (layer := _layer_of(index, i, paths))}
    for i in range(len(index.nodes)):
        if i not in layers and (layer := _helper_layer(index, i, paths, layers)):
            layers[i] = layer
    return _contract_names(index, layers)


def _contract_names(index: GraphIndex, layers: dict[int, str]) -> dict[int, str]:
    """The export naming contract: the node whose output leaves its layer is named the layer,
    the others ``<layer>/<OpType>``; repeats get ``_1``, ``_2`` in graph order."""
    outputs = set(index.graph_outputs)
    bases: dict[int, str] = {}
    for i in index.order:
        if i not in layers:
            continue
        node, layer = index.nodes[i], layers[i]
        leaves = any(o in outputs for o in node.output) or any(
            layers.get(c) != layer for o in node.output if o for c in index.consumers.get(o, [])
        )
        bases[i] = layer if leaves else f"{layer}/{node.op_type}"
    authority = NameAuthority(reserved=bases.values())
    return {i: authority.claim(base) for i, base in bases.items()}
