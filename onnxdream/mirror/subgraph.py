"""Subgraphs (If branches, Loop and Scan bodies) as nested mirrors, run as torch control flow.

A body reads its own inputs and, by name, tensors of the enclosing graphs (the node's
:attr:`~onnxdream.mirror.registry.NodeView.implicit` inputs, fed to the converter after its
explicit inputs). Each body is built once, when the mirror is built, so an op it lacks is
refused at once; it runs eagerly (data-dependent branches and trip counts are Python control
flow, and autograd flows through the iterations).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx
import torch
from onnx import helper

from onnxdream.errors import UnsupportedOpError
from onnxdream.graph import outer_names
from onnxdream.mirror.registry import NodeView


class Body:
    """One subgraph attribute of a node: ``body(values, outer) -> outputs``."""

    def __init__(self, node: NodeView, attribute: str) -> None:
        from onnxdream.mirror.module import Mirror

        graph = node.attr(attribute)
        if not isinstance(graph, onnx.GraphProto):
            raise node.unsupported(f"attribute {attribute!r} is not a graph")
        holder = onnx.NodeProto()
        holder.attribute.append(helper.make_attribute("body", graph))
        self.outer = outer_names(holder)
        self.inputs = [i.name for i in graph.input]
        self.outputs = [o.name for o in graph.output]
        body = onnx.GraphProto()
        body.CopyFrom(graph)
        body.input.extend(helper.make_value_info(name, onnx.TypeProto()) for name in self.outer)
        model = helper.make_model(body, opset_imports=[helper.make_opsetid("", node.opset)])
        try:
            self.mirror = Mirror(model, source=f"{node.key} ({node.op_type} {attribute})")
        except UnsupportedOpError as exc:
            raise node.unsupported(f"its {attribute} has {exc}") from None
        self.device = torch.device("cpu")

    def __call__(self, values: Sequence[Any], outer: dict[str, Any]) -> list[torch.Tensor]:
        feeds = dict(zip(self.inputs, values, strict=True))
        feeds.update((name, outer[name]) for name in self.outer)
        device = next((v.device for v in feeds.values() if isinstance(v, torch.Tensor)), self.device)
        if device != self.device:
            self.mirror.to(device)
            self.device = device
        got = self.mirror.tensors({k: feeds[k] for k in self.mirror.input_names}, names=self.outputs)
        return [got[name] for name in self.outputs]


def implicit_positions(node: NodeView) -> list[int]:
    """Converter positions of the node's implicit (enclosing-scope) inputs."""
    return list(range(len(node.inputs), len(node.inputs) + len(node.implicit)))
