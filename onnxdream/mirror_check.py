"""Check the torch mirror against ONNX Runtime, layer by layer.

Both run on the same input; the requested tensors are added as extra outputs of the model, in
place and only while ONNX Runtime builds its session. An element differs when it exceeds both
``atol * max(1, max|reference of its layer|)`` and ``rtol * |reference|``; a layer passes when no element differs and the shapes agree.
ONNX Runtime runs with graph optimisations off by default (``ort_opt="none"``) so that every
intermediate tensor is the unfused op's own result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import torch

from onnxdream.compare import ATOL, RTOL, compare
from onnxdream.errors import MismatchError, OnnxDreamError, OptionError, UnsupportedOpError, first_line
from onnxdream.graph import GraphIndex
from onnxdream.inputs.random import DEFAULT_SIDE, random_inputs
from onnxdream.layout import input_layout
from onnxdream.mirror.module import Mirror, Unsupported
from onnxdream.mirror.registry import torch_dtype
from onnxdream.model import ModelSpec, open_model
from onnxdream.sizes import InputError, InputSizeError, input_failure, round_to_multiple
from onnxdream.surgery import node_layers, outputs_added, select

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


def _targets(index: GraphIndex, layers: Sequence[str], match: Sequence[str]) -> list[tuple[str, str]]:
    """``(entry name, tensor)`` pairs for the requested layers, or for every non-constant node.

    Pairs are in topological order; ``layer:tensor`` names the tensors of multi-output layers.
    """
    if layers or match:
        chosen = select(index, layers, match)
    else:  # not select's "everything": a graph that computes nothing still goes on to ONNX Runtime
        chosen = [layer for i in index.order if not index.is_constant(i) for layer in node_layers(index, i)]
    pairs = [
        (layer.name if len(layer.outputs) == 1 else f"{layer.name}:{t}", t)
        for layer in chosen
        for t in layer.outputs
    ]
    position = {t: index.position.get(index.producer.get(t, -1), -1) for _, t in pairs}
    return sorted(dict.fromkeys(pairs), key=lambda p: position[p[1]])


class _Run:
    """Runs the mirror and ONNX Runtime on one input; a failure says what is wrong with the input."""

    def __init__(
        self,
        model: onnx.ModelProto,
        mirror: Mirror,
        tensors: list[str],
        device: str,
        ort_opt: str,
        source: str,
        layout: str,
    ) -> None:
        self.model, self.mirror, self.tensors = model, mirror, tensors
        self.device, self.ort_opt, self.source = device, ort_opt, source
        self.layout = layout
        self.torch_device = "cuda" if device == "cuda" and torch.cuda.is_available() else "cpu"
        mirror.to(self.torch_device)

    def __call__(
        self, feeds: Mapping[str, np.ndarray], what: str
    ) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray], str]:
        """Mirror tensors, ONNX Runtime tensors and the device ONNX Runtime ran on."""
        from onnxdream.runtime import make_session

        torch_feeds = {
            k: torch.from_numpy(np.ascontiguousarray(v)).to(self.torch_device) for k, v in feeds.items()
        }
        try:
            with torch.no_grad():
                ours = self.mirror.tensors(torch_feeds, names=self.tensors)
        except OnnxDreamError:
            raise
        except Exception as exc:  # torch raises many types for a shape the graph cannot take
            raise self._mirror_failure(dict(feeds), exc, what) from None
        added = [
            onnx.helper.make_tensor_value_info(t, _ONNX_TYPES[ours[t].dtype], None) for t in self.tensors
        ]
        with outputs_added(self.model, added) as exposed:
            session = make_session(exposed, device=self.device, optimization=self.ort_opt, source=self.source)
        try:
            theirs = session.run(feeds, self.tensors, quiet=True)
        except Exception as exc:  # ORT raises several unrelated types for bad feeds
            raise input_failure(self.model, dict(feeds), self.source, exc, what, self.layout) from None
        return ours, theirs, session.device

    def _mirror_failure(self, feeds: dict[str, np.ndarray], exc: Exception, what: str) -> OnnxDreamError:
        """Bad input when ONNX Runtime cannot run it either, else a fault of the mirror."""
        from onnxdream.runtime import make_session

        try:
            make_session(self.model, device="cpu", source=self.source).run(feeds, quiet=True)
        except Exception as ort_exc:  # ORT raises several unrelated types for bad feeds
            return input_failure(self.model, feeds, self.source, ort_exc, what, self.layout)
        return MismatchError(
            f"{self.source}: the mirror fails on {what} where ONNX Runtime runs it: {first_line(exc)}"
        )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def check(
    model: ModelSpec,
    inputs: Mapping[str, np.ndarray] | None = None,
    *,
    layers: Sequence[str] = (),
    match: Sequence[str] = (),
    atol: float = ATOL,
    rtol: float = RTOL,
    device: str = "auto",
    ort_opt: str = "none",
    input_source: str = "the input",
    layout: str | None = None,
) -> CheckResult:
    """Compare the mirror with ONNX Runtime on ``inputs`` (default: seeded random).

    The default input takes the model's declared dims; where the network needs sides that are
    multiples of its stride, the free sides are the multiple nearest to 224. Free dims follow
    the input's layout (``layout``: ``nchw`` / ``nhwc``, else found from the model); tensors are
    compared as the graph computes them, in the model's own layout.

    Raises:
        InputSizeError: ``inputs`` has a height or width the network's stride does not allow
            (exit code 2; the message gives the nearest sizes that work).
        MismatchError: the mirror cannot run an input that ONNX Runtime runs (exit code 1).
        OnnxDreamError: bad model, layer, pattern, input or device (exit code 2).
    """
    from onnxdream.runtime import resolve_device

    if ort_opt not in ("all", "none"):
        raise OptionError(f"unknown {{ort_opt}} {ort_opt!r}; choose 'all' or 'none'", "ort_opt")
    for name, value in (("atol", atol), ("rtol", rtol)):
        if not (math.isfinite(value) and value >= 0):
            raise OptionError(f"{{{name}}} must be a finite number >= 0, got {value}", name)
    model = open_model(model)
    index, source = model.index, model.source
    if not index.graph_inputs:
        raise OnnxDreamError(f"{source}: the model has no inputs, so there is nothing to run and compare")
    pairs = _targets(index, layers, match)
    resolved = resolve_device(device)
    order = input_layout(model.proto, layout, index).layout
    feeds = dict(inputs) if inputs is not None else random_inputs(model.proto, source=source, layout=order)
    try:
        mirror = Mirror(model)
    except UnsupportedOpError as exc:
        return CheckResult(device=resolved, unsupported=exc.problems)

    tensors = list(dict.fromkeys(t for _, t in pairs))
    run = _Run(model.proto, mirror, tensors, resolved, ort_opt, source, order)
    try:
        ours, theirs, used = run(feeds, input_source if inputs is not None else "the default input")
    except InputSizeError as exc:
        if inputs is not None:
            raise
        # The default side does not suit the network's stride: take the nearest one that does.
        side = round_to_multiple(DEFAULT_SIDE, exc.multiple)
        ours, theirs, used = run(
            random_inputs(model.proto, size=(side, side), source=source, layout=order), "the default input"
        )
    except InputError as exc:
        if inputs is not None:
            raise
        raise OptionError(
            f"{exc}; give an input of the size the model needs ({{input}})", input="inputs"
        ) from None
    result = CheckResult(device=used)
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
