"""Converters from ONNX nodes to torch callables, registered by op type and opset version.

A converter is a pure function ``NodeView -> Converted``: it reads the node's attributes and the
values of its constant inputs, and returns a callable plus the ONNX tensor names to feed it.
Converters are registered with ``@converter("Conv", since=1)``; ``since`` must be a real
``since_version`` of the op's schema. For a model's opset the op's schema version is found with
``onnx.defs.get_schema(op, opset).since_version`` and the converter with the greatest ``since``
not above it is used, so one converter covers every schema version up to the next registered one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
from onnx import defs, numpy_helper

from onnxdream.errors import UnsupportedOpError
from onnxdream.graph import outer_names

Fn = Callable[..., Any]


@dataclass(frozen=True)
class Converted:
    """What a converter returns: ``fn(*tensors)`` fed with the node inputs at ``positions``.

    ``fn`` returns one tensor for a node with one output, else a sequence with one item per
    output. An absent optional input is passed as ``None``.
    """

    fn: Fn
    positions: tuple[int, ...]


ConverterFunc = Callable[["NodeView"], Converted]


@dataclass(frozen=True)
class Entry:
    """A registered converter."""

    op_type: str
    since: int
    func: ConverterFunc
    shape_inputs: tuple[int, ...]
    """Input positions read as integer lists (shapes, axes, pads): they stay on the CPU."""


_REGISTRY: dict[str, dict[int, Entry]] = {}


def converter(op_type: str, since: int, *, shape_inputs: Sequence[int] = ()) -> Callable:
    """Register a converter for ``op_type`` from schema version ``since`` on.

    Raises:
        ValueError: ``since`` is not a schema version of the op, or already registered.
    """

    def register(func: ConverterFunc) -> ConverterFunc:
        versions = _REGISTRY.setdefault(op_type, {})
        if since in versions:
            raise ValueError(f"duplicate converter for {op_type!r} since version {since}")
        try:
            real = defs.get_schema(op_type, since).since_version
        except defs.SchemaError:
            raise ValueError(f"{op_type!r} has no schema at version {since}") from None
        if real != since:
            raise ValueError(f"{op_type!r} has no schema version {since} (version {since} is {real})")
        versions[since] = Entry(op_type, since, func, tuple(shape_inputs))
        return func

    return register


def lookup(op_type: str, opset: int, domain: str = "") -> Entry | None:
    """The converter for ``op_type`` at ``opset`` (``None`` when the mirror has none).

    An op without a converter that its schema defines as a function is run as that function
    (:mod:`onnxdream.mirror.function`); in other domains onnx defines (``ai.onnx.preview``) only
    such function ops are supported.
    """
    standard = domain in ("", "ai.onnx")
    try:
        schema = defs.get_schema(op_type, opset, "" if standard else domain)
    except defs.SchemaError:
        return None
    eligible = [v for v in _REGISTRY.get(op_type, {}) if v <= schema.since_version] if standard else []
    if eligible:
        return _REGISTRY[op_type][max(eligible)]
    if schema.has_function or schema.has_context_dependent_function:
        from onnxdream.mirror.function import expand

        return Entry(op_type, schema.since_version, expand, ())
    return None


def supported_ops() -> dict[str, list[int]]:
    """``{op_type: [since versions]}`` of every registered converter."""
    return {op: sorted(versions) for op, versions in sorted(_REGISTRY.items())}


def input_names(node: onnx.NodeProto, positions: Sequence[int]) -> list[str]:
    """The tensor names at ``positions``: node inputs, then :func:`onnxdream.graph.outer_names` ("" when absent)."""
    names = list(node.input) + outer_names(node)
    return [names[p] if p < len(names) else "" for p in positions]


class NodeView:
    """One ONNX node as a converter sees it: attributes, opset and constant input values."""

    def __init__(
        self, node: onnx.NodeProto, key: str, opset: int, constants: Mapping[str, torch.Tensor]
    ) -> None:
        self.node = node
        self.key = key
        self.opset = opset
        self.op_type = node.op_type
        self.inputs = list(node.input)
        self.outputs = list(node.output)
        while self.outputs and not self.outputs[-1]:
            self.outputs.pop()
        self._constants = constants
        self._attrs = {a.name: a for a in node.attribute}
        self.read: dict[str, torch.Tensor] = {}
        """Constant inputs whose values the converter read, by name (kept to convert it again)."""
        self.implicit = outer_names(node)
        """Tensors the node's subgraphs read from enclosing scopes: positions ``len(inputs)`` on."""

    @property
    def constant_names(self) -> set[str]:
        """Names of the node's inputs that are constants."""
        return {n for n in self.inputs if n and n in self._constants}

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    def attr(self, name: str, default: Any = None) -> Any:
        """Attribute value: ints/floats/lists as Python values, strings decoded, tensors as torch."""
        if name not in self._attrs:
            return default
        value = onnx.helper.get_attribute_value(self._attrs[name])
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, onnx.TensorProto):
            return to_torch_tensor(value)
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            return [v.decode() for v in value]
        return value

    def input(self, i: int) -> str:
        """Name of input ``i`` ("" when absent)."""
        return self.inputs[i] if i < len(self.inputs) else ""

    def has_input(self, i: int) -> bool:
        return bool(self.input(i))

    def static(self, i: int) -> torch.Tensor | None:
        """The value of input ``i`` when it is a constant (initializer or folded), else ``None``."""
        name = self.input(i)
        value = self._constants.get(name) if name else None
        if value is not None:
            self.read[name] = value
        return value

    def is_static(self, i: int) -> bool:
        """Whether input ``i`` is absent or constant (its value is known when converting)."""
        return not self.has_input(i) or self.input(i) in self._constants

    def static_ints(self, i: int) -> list[int] | None:
        """A constant integer input as a list (``None`` when absent or not constant)."""
        value = self.static(i)
        return None if value is None else [int(v) for v in value.reshape(-1).tolist()]

    def call(self, fn: Fn, *positions: int) -> Converted:
        """Feed ``fn`` with the inputs at ``positions`` at run time."""
        return Converted(fn, tuple(positions))

    def unsupported(self, why: str) -> UnsupportedOpError:
        """An error naming this node, its op and opset."""
        return UnsupportedOpError(f"node {self.key!r} ({self.op_type}, opset {self.opset}): {why}")


_DTYPES: dict[int, torch.dtype] = {
    onnx.TensorProto.FLOAT: torch.float32,
    onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.FLOAT16: torch.float16,
    onnx.TensorProto.BFLOAT16: torch.bfloat16,
    onnx.TensorProto.INT8: torch.int8,
    onnx.TensorProto.INT16: torch.int16,
    onnx.TensorProto.INT32: torch.int32,
    onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.UINT8: torch.uint8,
    onnx.TensorProto.BOOL: torch.bool,
    onnx.TensorProto.FLOAT8E4M3FN: torch.float8_e4m3fn,
    onnx.TensorProto.FLOAT8E4M3FNUZ: torch.float8_e4m3fnuz,
    onnx.TensorProto.FLOAT8E5M2: torch.float8_e5m2,
    onnx.TensorProto.FLOAT8E5M2FNUZ: torch.float8_e5m2fnuz,
}


def onnx_dtype(dtype: torch.dtype) -> int:
    """The ONNX element type of a torch dtype.

    Raises:
        UnsupportedOpError: a torch dtype ONNX has no element type for.
    """
    for onnx_type, candidate in _DTYPES.items():
        if candidate == dtype:
            return onnx_type
    raise UnsupportedOpError(f"element type {dtype} has no ONNX equivalent the mirror knows")


def torch_dtype(onnx_type: int) -> torch.dtype | None:
    """The torch dtype for an ONNX element type (``None`` when torch has no full equivalent)."""
    return _DTYPES.get(onnx_type)


def to_torch_tensor(tensor: onnx.TensorProto) -> torch.Tensor:
    """An initializer or attribute tensor as a CPU torch tensor (a private copy).

    Raises:
        UnsupportedOpError: an element type torch cannot hold (strings, float8, ...).
    """
    if torch_dtype(tensor.data_type) is None:
        kind = onnx.TensorProto.DataType.Name(tensor.data_type)
        raise UnsupportedOpError(f"tensor {tensor.name!r} has element type {kind}, which the mirror lacks")
    array = numpy_helper.to_array(tensor)
    dtype = torch_dtype(tensor.data_type)
    if array.dtype.kind == "V":  # ml_dtypes' float8: the same bits as torch's type
        bits = np.array(array.view(f"uint{8 * array.dtype.itemsize}"), copy=True)
        return torch.from_numpy(bits).view(dtype)
    return torch.from_numpy(np.array(array, copy=True))
