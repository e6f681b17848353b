"""One ONNX node as an ``nn.Module``: what the mirror runs, prints, pickles, hooks and traces.

Design: a single :class:`NodeModule` class wraps whatever a converter returns, rather than one
module class per op family. Module classes per family would have to re-state every converter's
attribute handling (a twin of each of the ~114 converters, kept in step by hand); one generic
class keeps converters pure functions ``NodeView -> Converted``, so new ones need no module code,
and every op, present or future, gets the same module behaviour:

* ``repr`` names the op type and its attributes (``Conv(k=3x3, s=2, p=1, d=1, g=1)``);
* forward hooks see the node's inputs (in the converter's ``positions`` order, weights included)
  and its output (a tuple for a node with several outputs);
* pickling keeps the node's definition (NodeProto bytes, key, opset, and the small constant
  inputs the converter read and baked in, such as a Reshape's shape) and drops the converter's
  callable, which is often a closure; the owning :class:`~onnxdream.mirror.module.Mirror` runs
  the converter again after loading (:meth:`NodeModule.rebuild`), supplying the constants it
  stores itself (weights), so ``torch.save(mirror)`` / ``torch.load`` round-trip and no weight
  is saved twice;
* the module holds no parameters: initializers are graph-level (one tensor may feed several
  nodes) and stay in the mirror's ``weights``, so ``state_dict`` keys and shared weights are as
  before, and ``.to()``/``.half()`` move each tensor once.

Submodule names: ``nn.Module`` forbids ``.`` in a child's name (``get_submodule`` splits paths on
it), so :func:`attribute_names` replaces each ``.`` with ``_``; ``/`` and every other character
are kept (``head/fc`` stays ``head/fc``). A name that then collides with another node's, or with
an attribute of the mirror (``forward``, ``weights``, ...), gets a suffix ``_1``, ``_2``, ...
:meth:`Mirror.node_module(name) <onnxdream.mirror.module.Mirror.node_module>` maps ONNX node names
to modules without having to know this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import onnx
import torch
from torch import nn

from onnxdream.errors import BadModelError, UnsupportedOpError
from onnxdream.fresh_names import NameAuthority
from onnxdream.mirror.registry import Converted, NodeView, lookup

ConstantLookup = Callable[[str], "torch.Tensor | None"]

_ABBREVIATIONS = {"kernel_shape": "k", "strides": "s", "pads": "p", "dilations": "d", "group": "g"}
_FIRST = tuple(_ABBREVIATIONS)


def attribute_names(keys: Iterable[str], reserved: Callable[[str], bool]) -> dict[str, str]:
    """Submodule names for node keys: ``.`` becomes ``_``; clashes get ``_1``, ``_2``, ...

    Args:
        keys: unique node keys, in the order their modules are registered.
        reserved: whether a name is already an attribute of the parent module.
    """
    keys = list(keys)
    bases = {key: key.replace(".", "_") for key in keys}
    authority = NameAuthority(taken=[b for b in set(bases.values()) if reserved(b)])
    names: dict[str, str] = {}
    for key in keys:
        name = authority.claim(bases[key])
        while reserved(name):  # a suffixed name can be an attribute too
            name = authority.claim(bases[key], bare=False)
        names[key] = name
    return names


def _format_value(name: str, value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, onnx.TensorProto):
        kind = onnx.TensorProto.DataType.Name(value.data_type).lower()
        return f"{kind}[{'x'.join(str(d) for d in value.dims)}]"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        if name == "kernel_shape":
            return "x".join(str(v) for v in value)
        if name in ("strides", "dilations", "pads") and value and len(set(value)) == 1:
            return str(value[0])
        items = [_format_value("", v) for v in value[:8]]
        return "[" + ", ".join(items) + (", ...]" if len(value) > 8 else "]")
    if isinstance(value, onnx.GraphProto):
        return f"<graph {value.name}>"
    return str(value)


@lru_cache(maxsize=1024)
def _schema(op_type: str, opset: int, domain: str) -> Any:
    try:
        return onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return None


def _is_default(schema: Any, name: str, value: Any) -> bool:
    if schema is None or name in _ABBREVIATIONS or name not in schema.attributes:
        return False
    default = schema.attributes[name].default_value
    return default.type != onnx.AttributeProto.UNDEFINED and onnx.helper.get_attribute_value(default) == value


def _input_name(schema: Any, i: int) -> str:
    formal = list(schema.inputs) if schema is not None else []
    return formal[min(i, len(formal) - 1)].name if formal else f"input{i}"


def describe(node: onnx.NodeProto, opset: int, constants: Mapping[str, torch.Tensor]) -> str:
    """The node's attributes and baked-in inputs, short: ``k=3x3, s=2, p=1, g=1``.

    Kernel, strides, pads, dilations and group come first (abbreviated); other attributes follow
    unless they hold the schema's default; then the ``constants`` (inputs the converter baked in
    rather than feeding them, such as Clip's bounds) of at most 8 values, by their schema names
    (``Clip(min=0, max=6)``).
    """
    schema = _schema(node.op_type, opset, node.domain)
    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    order = [n for n in _FIRST if n in values] + sorted(n for n in values if n not in _FIRST)
    parts = [
        f"{_ABBREVIATIONS.get(n, n)}={_format_value(n, values[n])}"
        for n in order
        if not _is_default(schema, n, values[n])
    ]
    for i, name in enumerate(node.input):
        value = constants.get(name) if name else None
        if value is not None and value.numel() <= 8:
            items = value.reshape(-1).tolist()
            shown = _format_value("", items if value.dim() else items[0])
            parts.append(f"{_input_name(schema, i)}={shown}")
    return ", ".join(parts)


class _Recorded(Mapping):
    """The constants a converter may see when it runs again: the same names, the same values."""

    def __init__(self, names: Sequence[str], kept: Mapping[str, torch.Tensor], fetch: ConstantLookup) -> None:
        self._names, self._kept, self._fetch = set(names), kept, fetch

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._names:
            raise KeyError(name)
        value = self._kept.get(name)
        if value is None:
            value = self._fetch(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class NodeModule(nn.Module):
    """One ONNX node: ``outputs = module(*inputs)``, ``inputs`` in the converter's order.

    Attributes:
        key: the node's key in the mirror (its ONNX name, or ``node_<Op>_<n>`` when unnamed).
        op_type: the ONNX op type (also the name ``repr`` shows).
        inputs: the ONNX tensor names fed to the module, in order ("" for an absent input).
        outputs: the ONNX tensor names the module produces.
        on_device: False for shape computations, which run on the CPU.
        positions: the node inputs the converter reads (``Converted.positions``).
        fn: the converter's callable (rebuilt after unpickling, see :meth:`rebuild`).
    """

    def __init__(
        self,
        node: onnx.NodeProto,
        view: NodeView,
        converted: Converted,
        inputs: Sequence[str],
        outputs: Sequence[str],
        on_device: bool,
        moves: Sequence[int] = (),
        anchor: int = 0,
        summary: str = "",
    ) -> None:
        super().__init__()
        constant, fed = view.constant_names, set(inputs)
        # Plain attributes go straight into __dict__: nn.Module.__setattr__ costs ~10 us a call,
        # which a mirror of hundreds of nodes would pay a dozen times per node.
        vars(self).update(
            key=view.key,
            op_type=node.op_type,
            opset=view.opset,
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            on_device=on_device,
            positions=converted.positions,
            fn=converted.fn,
            _node=node,
            _summary=summary,
            _constant_inputs=tuple(n for n in node.input if n in constant),
            # Constants the converter read and the mirror does not store (shapes, axes, scales).
            _kept={n: v for n, v in view.read.items() if n not in fed},
            # Input indices computed on the CPU that move to the device of input ``_anchor``.
            _moves=tuple(moves),
            _anchor=anchor,
        )

    def _get_name(self) -> str:
        return self.op_type

    def extra_repr(self) -> str:
        return self._summary

    def forward(self, *inputs: Any) -> Any:
        fn = self.fn
        if fn is None:
            raise BadModelError(
                f"node {self.key!r} ({self.op_type}) was unpickled apart from its mirror; load the whole mirror"
            )
        if self._moves:
            device = _device_of(inputs[self._anchor])
            moved = list(inputs)
            for k in self._moves:
                moved[k] = _to_device(moved[k], device)
            return fn(*moved)
        return fn(*inputs)

    def rebuild(self, fetch: ConstantLookup) -> None:
        """Run the converter again (after unpickling); ``fetch`` gives the mirror's stored constants.

        Raises:
            UnsupportedOpError: this onnxdream has no converter for the node any more.
            BadModelError: the converter now feeds the node differently from when it was saved.
        """
        entry = lookup(self.op_type, self.opset, self._node.domain)
        if entry is None:
            raise UnsupportedOpError(f"node {self.key!r} ({self.op_type}, opset {self.opset}): no converter")
        view = NodeView(self._node, self.key, self.opset, _Recorded(self._constant_inputs, self._kept, fetch))
        converted = entry.func(view)
        if converted.positions != self.positions:
            raise BadModelError(
                f"node {self.key!r} ({self.op_type}): its converter now reads inputs {converted.positions}, "
                f"not {self.positions} as when the mirror was saved"
            )
        self.fn = converted.fn

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["fn"] = None  # often a closure: rebuilt from the node's definition after loading
        state["_node"] = self._node.SerializeToString()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._node = onnx.NodeProto.FromString(self._node)


def _device_of(value: Any) -> torch.device | None:
    """The device of a tensor, or of the first tensor in a sequence (``None`` for neither)."""
    if isinstance(value, torch.Tensor):
        return value.device
    if isinstance(value, list | tuple):
        return next((d for d in map(_device_of, value) if d is not None), None)
    return None


def _to_device(value: Any, device: torch.device | None) -> Any:
    """``value`` (a tensor, a sequence of tensors or ``None``) on ``device``."""
    if device is None or value is None:
        return value
    if isinstance(value, list | tuple):
        return type(value)(_to_device(v, device) for v in value)
    return value.to(device)
