"""``torch.fx`` tracing of a mirror, with its node modules as leaves.

``torch.fx.symbolic_trace(mirror)`` cannot trace the mirror (it raises, naming :func:`trace`): its
``forward(*inputs, layers=None)`` takes a variable number of inputs, which fx turns into one
opaque placeholder. :class:`MirrorTracer`
gives fx one placeholder per graph input (named after it) and keeps every
:class:`~onnxdream.mirror.node.NodeModule` as a leaf, so the traced graph has one ``call_module``
per ONNX node, ``get_attr`` for the weights, and whatever the node does inside (shape arithmetic,
``.item()``) stays out of the trace: graphs with dynamic shapes trace too.

    gm = trace(mirror)                         # GraphModule: gm(x) == mirror(x)
    gm = trace(mirror, layers=["_blocks.8"])   # gm(x) == mirror(x, layers=["_blocks.8"])

The GraphModule shares the mirror's node modules (hooks on either fire in both) and its weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.fx
from torch import nn

from onnxdream.fresh_names import NameAuthority
from onnxdream.mirror.module import Mirror
from onnxdream.mirror.node import NodeModule


def placeholder_names(input_names: Sequence[str]) -> list[str]:
    """Python identifiers for graph input names (``input.1`` -> ``input_1``), unique."""
    authority = NameAuthority()
    bases = [re.sub(r"\W", "_", name) or "x" for name in input_names]
    return [authority.claim("x_" + base if base[0].isdigit() else base) for base in bases]


class MirrorTracer(torch.fx.Tracer):
    """An fx tracer for :class:`~onnxdream.mirror.module.Mirror`: node modules are leaves.

    Args:
        layers: as ``mirror(x, layers=...)``: the traced module returns ``{layer: activation}``;
            ``None`` traces the graph outputs.
    """

    def __init__(self, layers: Sequence[str] | None = None) -> None:
        super().__init__()
        self.layers = None if layers is None else list(layers)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, NodeModule) or super().is_leaf_module(m, module_qualified_name)

    def create_args_for_root(
        self, root_fn: Callable[..., Any], is_module: bool, concrete_args: Any = None
    ) -> tuple[Callable[..., Any], list[Any]]:
        mirror = self.root
        if not isinstance(mirror, Mirror):
            raise TypeError(f"MirrorTracer traces a Mirror, not {type(mirror).__name__}")
        proxies = [
            self.create_proxy("placeholder", name, (), {}) for name in placeholder_names(mirror.input_names)
        ]
        layers = self.layers

        def call(root: Mirror, *inputs: Any) -> Any:
            return root_fn(root, *inputs, layers=layers)

        return call, [mirror, *proxies]


def trace(mirror: Mirror, layers: Sequence[str] | None = None) -> torch.fx.GraphModule:
    """The mirror as a ``torch.fx.GraphModule`` (see :class:`MirrorTracer`).

    Raises:
        UnknownLayerError: a name in ``layers`` is not a layer of the graph.
    """
    graph = MirrorTracer(layers).trace(mirror)
    return torch.fx.GraphModule(mirror, graph, class_name="MirrorGraph")
