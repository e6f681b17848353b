"""The torch mirror: an ONNX graph as a differentiable ``nn.Module``, node for node.

Usage (the API ``dream`` and ``check`` rely on)::

    mirror = to_torch(model)                      # ModelProto or path
    logits = mirror(x)                            # graph outputs (a tuple if several)
    acts = mirror(x, layers=["_blocks.8"])        # {"_blocks.8": tensor}, runs only what it needs
    acts = mirror({"input": x}, layers=[...])     # inputs by name; positional inputs follow
                                                  # the graph's input order

* ``layers`` takes node names, scopes and tensor names, resolved by
  :meth:`onnxdream.graph.GraphIndex.resolve`. A layer with one activation tensor maps to that
  tensor; a scope with several boundary outputs maps to a tuple of tensors in topological order
  (:meth:`Mirror.layer_tensors` names them). Nodes that no requested layer depends on are not run.
* The input may have any spatial size: Shape/Reshape/... read live tensors, so the graph follows
  the input instead of the size the file declares (what the file bakes in as constants stays).
* Autograd flows to the input; weights are frozen ``nn.Parameter``s (``requires_grad=False``) and
  folded constants are buffers, so ``.to(device)``, ``.double()``, ``.half()`` and
  ``state_dict()`` work. The mirror always computes inference semantics (BatchNormalization uses
  running statistics, Dropout is the identity) whatever ``train()`` says.
* Every node run at forward time is an ``nn.Module`` (:class:`~onnxdream.mirror.node.NodeModule`)
  in :attr:`Mirror.nodes`, keyed by its ONNX node name (names are never changed; unnamed nodes
  get a deterministic ``node_<Op>_<n>`` key, skipping names taken), and registered as a child of
  the mirror, so ``print(mirror)`` lists the graph, forward hooks on
  ``mirror.node_module("stem.conv")`` (or ``mirror.get_submodule("stem_conv")``: ``.`` becomes
  ``_`` in submodule names, see :mod:`onnxdream.mirror.node`) see the node's output, and
  ``torch.save(mirror)`` / ``torch.load(path, weights_only=False)`` round-trip. Nodes computing
  only constants are folded when the mirror is built and have no module.
* :func:`onnxdream.mirror.fx.trace` gives a ``torch.fx.GraphModule`` with one ``call_module``
  per node; ``torch.onnx.export(mirror, (x,))`` re-exports the graph for a fixed input size.

Shape-like integer tensors (the results of Shape and Size, and whatever is computed from them
and from constants alone) are computed on the CPU; they move to the input's device only where
a node uses them as data. Subgraphs that depend on initializers only are folded once, when the
mirror is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import onnx
import torch
import torch.fx
from torch import nn

import onnxdream.mirror.ops  # noqa: F401  (registers the converters)
from onnxdream.errors import BadModelError, OnnxDreamError, UnknownLayerError, UnsupportedOpError, unknown
from onnxdream.fresh_names import NameAuthority
from onnxdream.graph import GraphIndex
from onnxdream.mirror.node import NodeModule, attribute_names, describe
from onnxdream.mirror.registry import Converted, NodeView, input_names, lookup, to_torch_tensor
from onnxdream.model import Model, ModelSpec, open_model

_NONE_SLOT = 0
_TRASH_SLOT = 1


@dataclass(frozen=True)
class Unsupported:
    """A node the mirror cannot convert, and why."""

    node: str
    op_type: str
    reason: str


@dataclass(frozen=True)
class _Plan:
    inputs: tuple[tuple[int, int], ...]  # (slot, position among graph inputs)
    consts: tuple[tuple[int, dict, str], ...]  # (slot, storage dict, key)
    steps: tuple[tuple[NodeModule, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]
    targets: tuple[int, ...]


def node_keys(graph: onnx.GraphProto) -> list[str]:
    """A unique key per node: its name, or ``node_<Op>_<k>`` (``k`` counted per op type from 0)
    for an unnamed node or a repeated name; generated keys never take a node's own name."""
    authority = NameAuthority(reserved=(n.name for n in graph.node if n.name))
    keys = []
    for node in graph.node:
        named = node.name and node.name not in authority.taken
        keys.append(
            authority.claim(node.name)
            if named
            else authority.claim(f"node_{node.op_type}", bare=False, start=0)
        )
    return keys


def _state_key(name: str, authority: NameAuthority) -> str:
    """A ``state_dict``-safe key for a tensor name (the mapping is kept in ``weight_keys``)."""
    base = re.sub(r"\W", "_", name) or "t"
    return authority.claim("t_" + base if base[0].isdigit() else base)


class _Builder:
    """Converts every node, folds constants and decides where each tensor lives."""

    def __init__(self, model: Model) -> None:
        self.model = model.proto
        self.index = model.index
        self.opset = model.opset
        self.keys = node_keys(model.proto.graph)
        self.problems: list[Unsupported] = []
        self.initializers = {t.name: t for t in model.proto.graph.initializer}
        self.constants: dict[str, torch.Tensor] = {}
        self.converted: dict[int, tuple[Converted, tuple[int, ...], NodeView]] = {}
        self._convert_all()

    def _convert(self, i: int) -> tuple[Converted, tuple[int, ...], NodeView] | None:
        node = self.index.nodes[i]
        entry = lookup(node.op_type, self.opset, node.domain)
        if entry is None:
            domain = f" in domain {node.domain!r}" if node.domain not in ("", "ai.onnx") else ""
            why = f"node {self.keys[i]!r} ({node.op_type}, opset {self.opset}): no converter{domain}"
            self.problems.append(Unsupported(self.keys[i], node.op_type, why))
            return None
        view = NodeView(node, self.keys[i], self.opset, self.constants)
        try:
            return entry.func(view), entry.shape_inputs, view
        except UnsupportedOpError as exc:
            self.problems.append(Unsupported(self.keys[i], node.op_type, str(exc)))
            return None

    def _convert_all(self) -> None:
        for name, tensor in self.initializers.items():
            try:
                self.constants[name] = to_torch_tensor(tensor)
            except UnsupportedOpError as exc:
                self.problems.append(Unsupported(name, "initializer", str(exc)))
        constant = self.index.constant_tensors
        for i in self.index.order:
            node = self.index.nodes[i]
            result = self._convert(i)
            if result is None:
                continue
            self.converted[i] = result
            outputs = [o for o in node.output if o]
            if outputs and all(o in constant for o in outputs):
                self._fold(i, result[0])

    def _fold(self, i: int, conv: Converted) -> None:
        node = self.index.nodes[i]
        names = input_names(node, conv.positions)
        if any(n and n not in self.constants for n in names):
            return  # an input failed to convert; that problem is already listed
        try:
            with torch.no_grad():
                result = conv.fn(*[self.constants[n] if n else None for n in names])
        except Exception as exc:
            raise BadModelError(
                f"{self.index.source}: cannot evaluate constant node {self.keys[i]!r} ({node.op_type}): {exc}"
            ) from None
        outs = [o for o in node.output]
        values = [result] if len(_trimmed(outs)) == 1 else list(result)
        for name, value in zip(outs, values, strict=False):
            if name:
                self.constants[name] = value


def _trimmed(outputs: Sequence[str]) -> list[str]:
    outs = list(outputs)
    while outs and not outs[-1]:
        outs.pop()
    return outs


def unsupported_nodes(model: ModelSpec, source: str | None = None) -> list[Unsupported]:
    """Every node the mirror cannot convert (all of them, not only the first)."""
    return _Builder(open_model(model, source=source)).problems


class Constants(nn.Module):
    """Holds the mirror's constant tensors as attributes; ``repr`` counts them."""

    def extra_repr(self) -> str:
        return f"{len(self._parameters)} parameters, {len(self._buffers)} buffers"


class HostConstants(Constants):
    """Constants of the shape computations: CPU tensors that device and dtype moves leave alone."""

    def _apply(self, fn: Any, recurse: bool = True) -> HostConstants:
        return self


class Mirror(nn.Module):
    """An ONNX graph as a torch module; see the module docstring for the calling conventions."""

    def __init__(self, model: ModelSpec, source: str | None = None) -> None:
        super().__init__()
        model = open_model(model, source=source)
        source = model.source
        builder = _Builder(model)
        if builder.problems:
            shown = "; ".join(p.reason for p in builder.problems[:5])
            more = f" (and {len(builder.problems) - 5} more)" if len(builder.problems) > 5 else ""
            raise UnsupportedOpError(
                f"{source}: {len(builder.problems)} unsupported node(s): {shown}{more}", builder.problems
            )
        self.index = builder.index
        self.source = source
        self.input_names = list(self.index.graph_inputs)
        self.output_names = list(self.index.graph_outputs)
        self.weights = Constants()
        self.weight_keys: dict[str, str] = {}
        """ONNX tensor name -> attribute of :attr:`weights` (``state_dict`` key ``weights.<key>``)."""
        self.host = HostConstants()
        self.host_keys: dict[str, str] = {}
        """ONNX tensor name -> attribute of :attr:`host` (CPU constants, not in ``state_dict``)."""
        self.host_values: dict[str, Any] = {}
        """Folded constants that are no tensor: sequences (lists) and empty optionals (``None``)."""
        self._slots: dict[str, int] = {}
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self._layers: dict[str, tuple[str, ...]] = {}
        self.nodes: dict[str, NodeModule] = {}
        """Node key (the ONNX node name) -> its module, for every node run at forward time."""
        self.module_names: dict[str, str] = {}
        """Node key -> the submodule name it is registered under (see :meth:`node_module`)."""
        self._build(builder)
        self.module_names.update(attribute_names(self.nodes, lambda name: hasattr(self, name)))
        for key, name in self.module_names.items():
            self.add_module(name, self.nodes[key])

    # -- construction -------------------------------------------------------------------------

    def _slot(self, name: str) -> int:
        if not name:
            return _NONE_SLOT
        if name not in self._slots:
            self._slots[name] = len(self._slots) + 2
        return self._slots[name]

    def _store(self, name: str, value: torch.Tensor, device: bool, keys: NameAuthority) -> None:
        if name in self.weight_keys or name in self.host_keys or name in self.host_values:
            return
        if not isinstance(value, torch.Tensor):  # a folded sequence (list) or empty optional
            self.host_values[name] = value
            return
        key = _state_key(name, keys)
        if device:
            self.weight_keys[name] = key
            initializer = name in self._initializer_names
            if initializer and value.is_floating_point():
                self.weights.register_parameter(key, nn.Parameter(value, requires_grad=False))
            else:
                self.weights.register_buffer(key, value, persistent=initializer)
        else:
            self.host_keys[name] = key
            self.host.register_buffer(key, value, persistent=False)

    def _build(self, b: _Builder) -> None:
        index = b.index
        self._initializer_names = set(b.initializers)
        constants = b.constants
        device_tensors: set[str] = set(index.graph_inputs)
        keys = NameAuthority()
        producers: dict[str, int] = {}
        self._steps: dict[int, tuple[NodeModule, tuple[str, ...]]] = {}
        for i in index.order:
            node = index.nodes[i]
            outputs = _trimmed(node.output)
            if all(o in constants for o in outputs if o):
                continue
            conv, shape_inputs, view = b.converted[i]
            names = tuple(input_names(node, conv.positions))
            data = [n for p, n in zip(conv.positions, names, strict=True) if n and p not in shape_inputs]
            on_device = any(n in device_tensors for n in data)
            move: list[int] = []
            anchor: int | None = None
            for k, (p, n) in enumerate(zip(conv.positions, names, strict=True)):
                if not n:
                    continue
                data_position = p not in shape_inputs
                if n in constants:
                    self._store(n, constants[n], on_device and data_position, keys)
                elif n not in device_tensors and on_device and data_position:
                    move.append(k)
                elif n not in index.producer and n not in device_tensors:
                    raise BadModelError(
                        f"{self.source}: node {b.keys[i]!r} reads {n!r}, which nothing produces"
                    )
                elif n in device_tensors and data_position and anchor is None:
                    anchor = k
            if on_device:
                device_tensors.update(o for o in outputs if o)
            for o in outputs:
                if o:
                    producers[o] = i
            baked = {n: constants[n] for n in node.input if n in constants and n not in names}
            summary = describe(node, b.opset, baked)
            module = NodeModule(node, view, conv, names, outputs, on_device, move, anchor or 0, summary)
            self._steps[i] = (module, names)
            self.nodes[b.keys[i]] = module
        # Constant node outputs are kept (graph outputs, or layers someone may ask for).
        for i in index.order:
            for o in index.nodes[i].output:
                if o and o in constants:
                    self._store(o, constants[o], o in index.graph_outputs, keys)
        self._producers = producers
        self._device_tensors = device_tensors

    def _constant(self, name: str) -> torch.Tensor | None:
        """A stored constant by ONNX tensor name (``None`` when the mirror keeps no such tensor)."""
        source = self._const_source(name)
        return None if source is None else source[0][source[1]]

    def node_module(self, name: str) -> NodeModule:
        """The submodule of ONNX node ``name``: ``mirror.node_module("stem.conv")``.

        Its submodule path is ``mirror.module_names[name]`` (``.`` in the name becomes ``_``).

        Raises:
            UnknownLayerError: no node has that name, or the node was folded into a constant when
                the mirror was built (it never runs, so it has no module).
        """
        module = self.nodes.get(name)
        if module is not None:
            return module
        if name in self.index.by_name:
            raise UnknownLayerError(
                f"{self.source}: node {name!r} computes a constant, folded when the mirror was built; "
                "it has no module"
            )
        raise UnknownLayerError(unknown("node", name, self.nodes, where=self.source))

    # -- pickling -----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        graph = self.index.graph
        # The graph without the initializers' data (the tensors themselves are in weights/host).
        skeleton = onnx.GraphProto(name=graph.name, node=graph.node, input=graph.input, output=graph.output)
        skeleton.initializer.extend(
            onnx.TensorProto(name=t.name, data_type=t.data_type) for t in graph.initializer
        )
        state["index"] = skeleton.SerializeToString()
        state["_plans"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.index = GraphIndex(onnx.GraphProto.FromString(self.index), self.source)
        for key, value in self.host._buffers.items():  # even under torch.load(map_location=...)
            self.host._buffers[key] = value.cpu()
        for module in self.nodes.values():
            module.rebuild(self._constant)

    # -- plans --------------------------------------------------------------------------------

    def _const_source(self, name: str) -> tuple[dict, str] | None:
        if name in self.weight_keys:
            key = self.weight_keys[name]
            store = self.weights._parameters if key in self.weights._parameters else self.weights._buffers
            return store, key
        if name in self.host_keys:
            return self.host._buffers, self.host_keys[name]
        if name in self.host_values:
            return self.host_values, name
        return None

    def _reads(self, i: int) -> tuple[str, ...]:
        """The tensors node ``i``'s module takes (constants its converter baked in are not among them)."""
        return self._steps[i][1]

    def _plan(self, targets: tuple[str, ...]) -> _Plan:
        plan = self._plans.get(targets)
        if plan is not None:
            return plan
        # Folded nodes are not entered: their outputs are stored constants.
        needed = set(self.index.upstream(targets, within=self._steps.__contains__, reads=self._reads))
        consts: dict[str, tuple[dict, str]] = {}
        inputs: set[str] = set()
        for name in dict.fromkeys([*targets, *(n for i in needed for n in self._steps[i][1])]):
            if not name or name in self._producers:
                continue
            if name in self.input_names:
                inputs.add(name)
                continue
            source = self._const_source(name)
            if source is None:
                raise OnnxDreamError(f"{self.source}: tensor {name!r} is not computed by the mirror")
            consts[name] = source
        order = [i for i in self.index.order if i in needed]
        last_use: dict[int, int] = {}
        for k, i in enumerate(order):
            for n in self._steps[i][1]:
                if n:
                    last_use[self._slot(n)] = k
        keep = {self._slot(t) for t in targets}
        frees: dict[int, list[int]] = {}
        for slot, k in last_use.items():
            if slot not in keep:
                frees.setdefault(k, []).append(slot)
        steps = []
        for k, i in enumerate(order):
            module, names = self._steps[i]
            outs = tuple(self._slot(o) if o else _TRASH_SLOT for o in module.outputs)
            steps.append((module, tuple(self._slot(n) for n in names), outs, tuple(frees.get(k, ()))))
        plan = _Plan(
            inputs=tuple((self._slot(n), self.input_names.index(n)) for n in sorted(inputs)),
            consts=tuple((self._slot(n), store, key) for n, (store, key) in consts.items()),
            steps=tuple(steps),
            targets=tuple(self._slot(t) for t in targets),
        )
        self._plans[targets] = plan
        return plan

    # -- running ------------------------------------------------------------------------------

    def layer_tensors(self, name: str) -> tuple[str, ...]:
        """The tensor names a layer (node, scope or tensor name) maps to.

        Raises:
            UnknownLayerError: no such layer; the message suggests the nearest names.
        """
        if name not in self._layers:
            self._layers[name] = self.index.resolve(name).outputs
        return self._layers[name]

    def _feeds(self, inputs: tuple[Any, ...]) -> list[torch.Tensor]:
        if len(inputs) == 1 and isinstance(inputs[0], Mapping):
            given = dict(inputs[0])
            extra = [k for k in given if k not in self.input_names]
            missing = [k for k in self.input_names if k not in given]
            if extra or missing:
                raise OnnxDreamError(
                    f"{self.source}: inputs {sorted(given)} do not match the graph's {self.input_names}"
                )
            return [given[k] for k in self.input_names]
        if len(inputs) != len(self.input_names):
            raise OnnxDreamError(
                f"{self.source}: expected {len(self.input_names)} input(s) {self.input_names}, "
                f"got {len(inputs)}"
            )
        return list(inputs)

    def tensors(self, *inputs: Any, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Compute the named ONNX tensors (and only what they depend on)."""
        feeds = self._feeds(inputs)
        plan = self._plan(tuple(dict.fromkeys(names)))
        env: list[Any] = [None] * (len(self._slots) + 2)
        for slot, position in plan.inputs:
            env[slot] = feeds[position]
        for slot, store, key in plan.consts:
            env[slot] = store[key]
        for module, ins, outs, free in plan.steps:
            result = module(*[env[s] for s in ins])
            if len(outs) == 1:
                env[outs[0]] = result
            else:  # indexed, not iterated, so that fx proxies work too
                for k, s in enumerate(outs):
                    env[s] = result[k]
            for s in free:
                env[s] = None
        return {name: env[slot] for name, slot in zip(dict.fromkeys(names), plan.targets, strict=True)}

    def forward(self, *inputs: Any, layers: Sequence[str] | None = None) -> Any:
        """Graph outputs (one tensor, or a tuple), or ``{layer: activation}`` when ``layers`` is given."""
        if isinstance(layers, torch.fx.Proxy):  # fx made one placeholder of the variable inputs
            raise OnnxDreamError(
                f"{self.source}: torch.fx.symbolic_trace cannot trace a mirror; use onnxdream.mirror.fx.trace"
            )
        if layers is None:
            values = self.tensors(*inputs, names=self.output_names)
            outs = tuple(values[n] for n in self.output_names)
            return outs[0] if len(outs) == 1 else outs
        wanted = {name: self.layer_tensors(name) for name in dict.fromkeys(layers)}
        values = self.tensors(*inputs, names=[t for ts in wanted.values() for t in ts])
        return {
            name: values[ts[0]] if len(ts) == 1 else tuple(values[t] for t in ts)
            for name, ts in wanted.items()
        }


def to_torch(model: ModelSpec, *, trust_pickle: bool = False) -> Mirror:
    """Build the torch mirror of a model: anything :func:`onnxdream.model.open_model` opens.

    Raises:
        BadModelError: the file cannot be read or the graph is malformed.
        UnsupportedOpError: some nodes have no converter at the model's opset (all are listed).
    """
    return Mirror(open_model(model, trust_pickle=trust_pickle))
