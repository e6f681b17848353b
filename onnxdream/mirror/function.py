"""Ops the mirror has no converter for, run as the ONNX function that defines them.

Many ONNX ops (Attention, RMSNormalization, SoftmaxCrossEntropyLoss, CastLike, ...) are
defined in their schema by a *function*: a small graph of simpler ops. Such a node is expanded
into that graph and run as a nested mirror. A static function body is expanded when the
mirror is built (so an unsupported op inside it is refused at once); a context-dependent one
depends on the input types and is expanded on first use for each distinct input signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx
import onnx.inliner
import torch
from onnx import defs, helper

from onnxdream.errors import UnsupportedOpError
from onnxdream.mirror.registry import Converted, NodeView, onnx_dtype

_DOMAIN = "onnxdream.function"


def _type_proto(x: Any) -> onnx.TypeProto:
    if isinstance(x, list):  # a sequence: typed by its first element
        return helper.make_sequence_type_proto(_type_proto(x[0]) if x else onnx.TypeProto())
    if x is None:
        return onnx.TypeProto()
    return helper.make_tensor_type_proto(onnx_dtype(x.dtype), list(x.shape))


def _signature(x: Any) -> Any:
    if isinstance(x, list):
        return ("seq", tuple(_signature(e) for e in x))
    return None if x is None else (x.dtype, tuple(x.shape))


def _body_opset(versions: Sequence[int], opset: int) -> int:
    """The opset of the body to use: the newest not above the model's, else the oldest there is.

    A body written for a later opset computes the same op; it runs at its own opset.
    """
    below = [v for v in versions if v <= opset]
    return max(below) if below else min(versions, default=opset)


def _body(node: NodeView, types: Sequence[onnx.TypeProto] | None) -> onnx.FunctionProto:
    """The function body for this node (``types`` are needed for a context-dependent one)."""
    schema = defs.get_schema(node.op_type, node.opset, node.node.domain)
    raw: bytes | None = None
    if schema.has_function:
        raw = schema.get_function_with_opset_version(_body_opset(schema.function_opset_versions, node.opset))
    elif types is not None:
        version = _body_opset(schema.context_dependent_function_opset_versions, node.opset)
        blob = [t.SerializeToString() for t in types]
        raw = schema.get_context_dependent_function_with_opset_version(
            version, node.node.SerializeToString(), blob
        )
    if not raw:
        raise node.unsupported("its function body cannot be built")
    body = onnx.FunctionProto()
    body.ParseFromString(raw if isinstance(raw, bytes) else raw.SerializeToString())
    return body


def _inlined(node: NodeView, body: onnx.FunctionProto) -> onnx.ModelProto:
    """A model of one call to ``body`` (renamed into a private domain), with the call inlined."""
    fn = onnx.FunctionProto()
    fn.CopyFrom(body)
    fn.name, fn.domain = node.op_type, _DOMAIN
    present = [i for i, name in enumerate(node.inputs) if name]
    call = onnx.NodeProto()
    call.CopyFrom(node.node)
    call.domain = _DOMAIN
    # The body refers to the node's attributes; the schema's defaults stand in for absent ones.
    given = {a.name for a in call.attribute}
    for name, spec in defs.get_schema(node.op_type, node.opset, node.node.domain).attributes.items():
        if name not in given and spec.default_value.type != onnx.AttributeProto.UNDEFINED:
            call.attribute.append(spec.default_value)
    del call.input[:]
    call.input.extend(f"in{i}" if name else "" for i, name in enumerate(node.inputs))
    del call.output[:]
    call.output.extend(f"out{i}" if name else "" for i, name in enumerate(node.node.output))
    opsets = {o.domain: o.version for o in body.opset_import}
    opsets.setdefault("", node.opset)
    graph = helper.make_graph(
        [call],
        f"{node.op_type}_function",
        [helper.make_value_info(f"in{i}", onnx.TypeProto()) for i in present],
        [helper.make_value_info(f"out{i}", onnx.TypeProto()) for i, o in enumerate(node.node.output) if o],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()]
        + [helper.make_opsetid(_DOMAIN, 1)],
        functions=[fn],
    )
    return onnx.inliner.inline_local_functions(model)


def _half_type(xs: Sequence[torch.Tensor | None]) -> torch.dtype | None:
    """The 16-bit float type when it is the only floating type among ``xs``."""
    floats = {x.dtype for x in xs if isinstance(x, torch.Tensor) and x.is_floating_point()}
    if len(floats) == 1 and floats & {torch.float16, torch.bfloat16}:
        return floats.pop()
    return None


class _Expanded:
    """``fn(*inputs)`` of a function op: a nested mirror per input signature, moved to the inputs' device."""

    def __init__(self, node: NodeView, static: bool) -> None:
        self.node = node
        self.static = static
        self.mirrors: dict[Any, Any] = {}
        self.outputs = [f"out{i}" if o else "" for i, o in enumerate(node.outputs)]
        self.devices: dict[Any, torch.device] = {}
        if static:
            self.mirrors[None] = self._build(None)

    def _build(self, types: Sequence[onnx.TypeProto] | None) -> Any:
        from onnxdream.mirror.module import Mirror

        model = _inlined(self.node, _body(self.node, types))
        try:
            return Mirror(model, source=f"{self.node.key} ({self.node.op_type} function)")
        except UnsupportedOpError as exc:
            raise self.node.unsupported(f"its function body has {exc}") from None

    def __call__(self, *xs: torch.Tensor | None) -> Any:
        half = _half_type(xs)
        if half is not None:
            # 16-bit floats: compute the body in float32 and round once, as the reference does.
            xs = tuple(x.float() if isinstance(x, torch.Tensor) and x.dtype == half else x for x in xs)
            outs = self._run(xs)
            if isinstance(outs, torch.Tensor):
                return outs.to(half) if outs.dtype == torch.float32 else outs
            return [
                o.to(half) if isinstance(o, torch.Tensor) and o.dtype == torch.float32 else o for o in outs
            ]
        return self._run(xs)

    def _run(self, xs: Sequence[torch.Tensor | None]) -> Any:
        key = None if self.static else tuple(_signature(x) for x in xs)
        mirror = self.mirrors.get(key)
        if mirror is None:
            mirror = self.mirrors[key] = self._build([_type_proto(x) for x in xs])
        feeds = {f"in{i}": x for i, x in enumerate(xs) if x is not None}
        device = next((x.device for x in xs if isinstance(x, torch.Tensor)), torch.device("cpu"))
        if self.devices.get(key, torch.device("cpu")) != device:
            mirror.to(device)
            self.devices[key] = device
        values = mirror.tensors(
            {k: feeds[k] for k in mirror.input_names}, names=[o for o in self.outputs if o]
        )
        outs = [values[o] if o else None for o in self.outputs]
        return outs[0] if len(outs) == 1 else outs


def expand(node: NodeView) -> Converted:
    """Run ``node`` as its schema's function body (a converter for ops defined by a function)."""
    static = defs.get_schema(node.op_type, node.opset, node.node.domain).has_function
    return node.call(_Expanded(node, static), *range(len(node.inputs)))
