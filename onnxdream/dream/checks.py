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
from onnxdream.layout import NHWC, TO_NHWC
from onnxdream.runtime import make_session
from onnxdream.surgery.cut import cut_model


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
        layouts: dict[str, str] | None = None,
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
            layouts: tensor -> layout for tensors the graph keeps channels-last; the activations
                given to :meth:`check` are NCHW and are turned back, so that the comparison is in
                the model's own layout.
        """
        self.mapping = {layer: list(names) for layer, names in mapping.items()}
        outputs = list(dict.fromkeys(name for names in self.mapping.values() for name in names))
        self.model = cut_model(model, outputs)
        # No busy-waiting ORT threads between checks: they would steal the CPU from torch.
        self.session = make_session(self.model, device=device, spinning=False, source=source)
        self.input_name = self.session.input_names[0]
        self.atol, self.rtol = atol, rtol
        self.channels_last = {t for t, layout in (layouts or {}).items() if layout == NHWC}

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
                if name in self.channels_last and tensor.dim() == 4:
                    tensor = tensor.permute(*TO_NHWC)
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
