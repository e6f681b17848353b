"""Forward checks: ONNX Runtime runs the same input and must agree with the mirror's activations.

The check model is the ONNX graph cut right after the target layers' tensors (so a fixed-shape
Reshape further on cannot fail it) with its image input made dynamic (so a model exported at
224x224 checks at any size). It is built, and its session created, once per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
import torch

from onnxdream.compare import ATOL, RTOL, compare
from onnxdream.dream.activations import Activation, as_tensors
from onnxdream.errors import MismatchError, OnnxDreamError
from onnxdream.graph import GraphIndex
from onnxdream.runtime import make_session


def _subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Outer-scope names a node's subgraphs (If/Loop/Scan bodies) read."""
    names: set[str] = set()
    for attr in node.attribute:
        graphs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
        for graph in graphs:
            local = {i.name for i in graph.input} | {t.name for t in graph.initializer}
            for inner in graph.node:
                local.update(inner.output)
            for inner in graph.node:
                names.update(x for x in inner.input if x and x not in local)
                names.update(_subgraph_inputs(inner) - local)
    return names


def cut_model(model: onnx.ModelProto, outputs: Sequence[str]) -> onnx.ModelProto:
    """The part of ``model`` that computes ``outputs``, with those tensors as its outputs.

    Graph inputs keep their names and element types; every dimension becomes symbolic.

    Raises:
        OnnxDreamError: an output is not produced by any node or input.
    """
    graph = model.graph
    index = GraphIndex(graph)
    inputs = {i.name: i for i in graph.input if i.name not in index.initializers}
    needed_nodes: set[int] = set()
    needed_names: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in needed_names:
            continue
        needed_names.add(name)
        if name in index.producer:
            i = index.producer[name]
            if i not in needed_nodes:
                needed_nodes.add(i)
                stack.extend(x for x in index.nodes[i].input if x)
                stack.extend(_subgraph_inputs(index.nodes[i]))
        elif name not in inputs and name not in index.initializers:
            raise OnnxDreamError(f"tensor {name!r} is not computed by the model")
    nodes = [index.nodes[i] for i in sorted(needed_nodes, key=index.position.__getitem__)]
    new_inputs = []
    for name, info in inputs.items():
        if name not in needed_names:
            continue
        elem = info.type.tensor_type.elem_type
        rank = len(info.type.tensor_type.shape.dim)
        dims = [f"{name}_d{k}" for k in range(rank)] if info.type.tensor_type.HasField("shape") else None
        new_inputs.append(onnx.helper.make_tensor_value_info(name, elem, dims))
    initializers = [t for t in graph.initializer if t.name in needed_names]
    if model.ir_version < 4:
        # Before IR 4, every initializer must also be listed as a graph input.
        new_inputs += [
            onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in initializers
        ]
    new_outputs = [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in outputs]
    new_graph = onnx.helper.make_graph(
        nodes,
        graph.name or "cut",
        new_inputs,
        new_outputs,
        initializer=initializers,
        sparse_initializer=[t for t in graph.sparse_initializer if t.values.name in needed_names],
    )
    cut = onnx.helper.make_model(
        new_graph, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )
    cut.functions.extend(model.functions)
    _type_outputs(cut)
    return cut


def _type_outputs(model: onnx.ModelProto) -> None:
    """Give the outputs inferred (symbolic) shapes where shape inference finds them."""
    try:
        graph = onnx.shape_inference.infer_shapes(model).graph
    except (onnx.shape_inference.InferenceError, ValueError):
        return
    inferred = [*graph.value_info, *graph.output]
    types = {v.name: v.type for v in inferred if v.type.tensor_type.HasField("shape")}
    for output in model.graph.output:
        if output.name in types:
            output.type.CopyFrom(types[output.name])


@dataclass
class CheckReport:
    """Outcome of one forward check."""

    max_abs: float
    worst_layer: str
    failed: int
    total: int

    @property
    def passed(self) -> bool:
        return self.failed == 0


@dataclass
class CheckSummary:
    """All forward checks of a run."""

    reports: list[CheckReport] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.reports), default=0.0)

    def describe(self) -> str:
        if not self.reports:
            return "not checked"
        state = "ok" if self.passed else "MISMATCH"
        return f"{state} ({len(self.reports)} checks, max |diff| {self.max_abs:.2e})"


class ForwardChecker:
    """Compares activations with ONNX Runtime on the same input (session built once)."""

    def __init__(
        self,
        model: onnx.ModelProto,
        mapping: dict[str, Sequence[str]],
        device: str = "auto",
        atol: float = ATOL,
        rtol: float = RTOL,
        source: str = "<model>",
    ) -> None:
        """
        Args:
            model: the ONNX model the mirror mirrors.
            mapping: layer -> its activation tensor names (in the order the mirror returns them).
            device: ONNX Runtime device (``auto``, ``cpu`` or ``cuda``).
            atol, rtol: an element fails only when its difference is above both
                ``atol * max(1, max|reference of its tensor|)`` and ``rtol * |reference|`` (the
                tolerances of ``onnxdream check``).
            source: the model's file or name, for messages.
        """
        self.mapping = {layer: list(names) for layer, names in mapping.items()}
        outputs = list(dict.fromkeys(name for names in self.mapping.values() for name in names))
        self.model = cut_model(model, outputs)
        # No busy-waiting ORT threads between checks: they would steal the CPU from torch.
        self.session = make_session(self.model, device=device, spinning=False, source=source)
        self.input_name = self.session.input_names[0]
        self.atol, self.rtol = atol, rtol

    def check(self, model_input: torch.Tensor, activations: dict[str, Activation]) -> CheckReport:
        """Run ONNX Runtime on ``model_input`` and compare with ``activations``."""
        feed = model_input.detach().cpu().numpy().astype(np.float32, copy=False)
        reference = self.session.run({self.input_name: feed})
        worst, worst_layer, failed, total = 0.0, "", 0, 0
        for layer, names in self.mapping.items():
            ours = as_tensors(activations[layer])
            if len(ours) != len(names):
                raise OnnxDreamError(
                    f"layer {layer!r}: the mirror gives {len(ours)} tensors, the ONNX graph {len(names)}"
                )
            for tensor, name in zip(ours, names, strict=True):
                mine = tensor.detach().cpu().numpy()
                ref = reference[name]
                if mine.shape != ref.shape:
                    raise MismatchError(
                        f"layer {layer!r} ({name!r}): mirror shape {mine.shape} != ONNX Runtime {ref.shape}"
                    )
                found = compare(mine, ref, self.atol, self.rtol)
                failed += found.failed
                total += found.size
                if found.max_abs >= worst:
                    worst, worst_layer = found.max_abs, layer
        return CheckReport(worst, worst_layer, failed, total)
