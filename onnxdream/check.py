"""Check the torch mirror against ONNX Runtime, layer by layer.

Both run on the same input; the requested tensors are exposed as extra outputs on a copy of
the model for ONNX Runtime. An element differs when it exceeds both
``atol * max(1, max|reference of its layer|)`` and ``rtol * |reference|``; a layer passes when no element differs and the shapes agree.
ONNX Runtime runs with graph optimisations off by default (``ort_opt="none"``) so that every
intermediate tensor is the unfused op's own result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from onnxdream.errors import OnnxDreamError
from onnxdream.graph import GraphIndex
from onnxdream.io import as_model
from onnxdream.mirror.module import Mirror, Unsupported, unsupported_nodes
from onnxdream.mirror.registry import torch_dtype
from onnxdream.preprocess import check_size
from onnxdream.shapes import value_type

_ONNX_TYPES = {v: k for k, v in {t: torch_dtype(t) for t in onnx.TensorProto.DataType.values()}.items() if v}


@dataclass(frozen=True)
class LayerCheck:
    """The comparison of one tensor; ``name`` is the layer, or ``layer:tensor`` for multi-output layers."""

    name: str
    tensor: str
    shape: list[int]
    max_abs: float | None
    max_rel: float | None
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": self.shape,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "ok": self.ok,
        }


@dataclass
class CheckResult:
    """Everything ``check`` found; ``layers`` are in topological order."""

    device: str
    layers: list[LayerCheck] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unsupported and all(layer.ok for layer in self.layers)

    @property
    def first_diverging(self) -> LayerCheck | None:
        return next((layer for layer in self.layers if not layer.ok), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "device": self.device,
            "layers": [layer.to_json() for layer in self.layers],
            "unsupported": [{"node": u.node, "op_type": u.op_type} for u in self.unsupported],
        }


def random_inputs(model: onnx.ModelProto, seed: int = 0, source: str = "<model>") -> dict[str, np.ndarray]:
    """Seeded inputs of the model's declared shapes (unknown dims: 1 for the batch, 224 for image sides).

    Raises:
        OnnxDreamError: an input declares no rank, or more elements than can be made.
    """
    index = GraphIndex(model.graph)
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        if vi.name not in index.graph_inputs:
            continue
        dims = value_type(vi).shape
        if dims is None:
            raise OnnxDreamError(
                f"{source}: input {vi.name!r} declares no shape, so no random input can be made; "
                "pass one with --input FILE.npy"
            )
        shape = [
            d if isinstance(d, int) else (224 if len(dims) == 4 and i >= 2 else 1) for i, d in enumerate(dims)
        ]
        try:
            check_size(vi.name, shape)
        except OnnxDreamError as exc:
            raise OnnxDreamError(f"{source}: {exc}") from None
        dtype = torch_dtype(vi.type.tensor_type.elem_type) or torch.float32
        if dtype.is_floating_point:
            array = rng.standard_normal(shape).astype(np.float32)
            feeds[vi.name] = torch.from_numpy(array).to(dtype).numpy()
        else:
            feeds[vi.name] = np.zeros(shape, dtype=torch.zeros((), dtype=dtype).numpy().dtype)
    return feeds


def _targets(
    index: GraphIndex, layers: Sequence[str], patterns: Sequence[str], source: str
) -> list[tuple[str, str]]:
    """``(entry name, tensor)`` pairs for the requested layers, or for every non-constant node."""
    names = list(layers)
    for pattern in patterns:
        matched = index.match(pattern)
        if not matched:
            raise OnnxDreamError(f"{source}: no layer matches {pattern!r}")
        names += matched
    pairs: list[tuple[str, str]] = []
    if names:
        for layer in index.resolve_many(names):
            outs = layer.outputs
            pairs += [(layer.name if len(outs) == 1 else f"{layer.name}:{t}", t) for t in outs]
    else:
        for i in index.order:
            if index.is_constant(i):
                continue
            outs = index.activations(i)
            label = index.nodes[i].name
            for t in outs:
                if not label:
                    pairs.append((t, t))
                else:
                    pairs.append((label if len(outs) == 1 else f"{label}:{t}", t))
    position = {t: index.position.get(index.producer.get(t, -1), -1) for _, t in pairs}
    unique = list(dict.fromkeys(pairs))
    return sorted(unique, key=lambda p: position[p[1]])


def _with_outputs(model: onnx.ModelProto, tensors: Mapping[str, torch.dtype]) -> onnx.ModelProto:
    """A copy of ``model`` with ``tensors`` added as graph outputs (original outputs first)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    for name, dtype in tensors.items():
        if name not in present:
            copy.graph.output.append(onnx.helper.make_tensor_value_info(name, _ONNX_TYPES[dtype], None))
    return copy


@dataclass(frozen=True)
class Comparison:
    """How one tensor differs from its reference (see :func:`compare` for the rule)."""

    max_abs: float
    max_rel: float
    failed: int
    size: int

    @property
    def ok(self) -> bool:
        return self.failed == 0


def compare(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> Comparison:
    """Compare ``actual`` with the reference ``expected``; NaN only matches NaN.

    An element fails when its difference exceeds both ``atol * max(1, max|expected|)`` and
    ``rtol * |expected|``: ``atol`` scales with the layer's magnitude as in the float32 contract
    (per-layer max abs error <= 1e-4 * max(1, max|reference|)), so large activations are not
    failed for float32 rounding in elements that happen to be small. ``max_rel`` is taken over
    non-zero references.
    """
    a = actual.astype(np.float64)
    b = expected.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    diff = np.where(both_nan | same_inf, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    scale = np.abs(b)
    rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
    finite = scale[np.isfinite(scale)]
    layer_scale = max(1.0, float(finite.max())) if finite.size else 1.0
    bad = (diff > atol * layer_scale) & (diff > rtol * scale)
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    return Comparison(max_abs, max_rel, int(bad.sum()), int(diff.size))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def check(
    model: onnx.ModelProto | str | Path,
    inputs: Mapping[str, np.ndarray] | None = None,
    *,
    layers: Sequence[str] = (),
    match: Sequence[str] = (),
    atol: float = 1e-4,
    rtol: float = 1e-3,
    device: str = "auto",
    ort_opt: str = "none",
    source: str | None = None,
) -> CheckResult:
    """Compare the mirror with ONNX Runtime on ``inputs`` (default: seeded random).

    Raises:
        OnnxDreamError: bad model, layer, pattern, input or device (exit code 2).
    """
    from onnxdream.runtime import make_session, resolve_device

    if ort_opt not in ("all", "none"):
        raise OnnxDreamError(f"unknown --ort-opt {ort_opt!r}; choose 'all' or 'none'")
    for name, value in (("atol", atol), ("rtol", rtol)):
        if not (math.isfinite(value) and value >= 0):
            raise OnnxDreamError(f"--{name} must be a finite number >= 0, got {value}")
    model, source = as_model(model, source)
    index = GraphIndex(model.graph, source)
    if not index.graph_inputs:
        raise OnnxDreamError(f"{source}: the model has no inputs, so there is nothing to run and compare")
    pairs = _targets(index, layers, match, source)
    resolved = resolve_device(device)
    feeds = dict(inputs) if inputs is not None else random_inputs(model, source=source)
    problems = unsupported_nodes(model, source)
    if problems:
        return CheckResult(device=resolved, unsupported=problems)

    mirror = Mirror(model, source)
    torch_device = "cuda" if resolved == "cuda" and torch.cuda.is_available() else "cpu"
    mirror.to(torch_device)
    torch_feeds = {k: torch.from_numpy(np.ascontiguousarray(v)).to(torch_device) for k, v in feeds.items()}
    tensors = list(dict.fromkeys(t for _, t in pairs))
    with torch.no_grad():
        ours = mirror.tensors(torch_feeds, names=tensors)
    exposed = _with_outputs(model, {t: ours[t].dtype for t in tensors})
    session = make_session(exposed, device=resolved, optimization=ort_opt, source=source)
    theirs = session.run(feeds, tensors)
    result = CheckResult(device=session.device)
    for name, tensor in pairs:
        actual = ours[tensor].detach().cpu()
        actual_np = (actual.float() if actual.dtype == torch.bfloat16 else actual).numpy()
        expected = np.asarray(theirs[tensor])
        shape = list(expected.shape)
        if actual_np.shape != expected.shape:
            result.layers.append(LayerCheck(name, tensor, shape, None, None, False))
            continue
        found = compare(actual_np, expected, atol, rtol)
        result.layers.append(
            LayerCheck(name, tensor, shape, _finite(found.max_abs), _finite(found.max_rel), found.ok)
        )
    return result
