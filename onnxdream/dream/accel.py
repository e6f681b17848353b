"""Speed for long jobs: ``torch.compile`` of the mirror's cut graph, reduced precision, channels-last.

One :class:`ActivationModel` wrapper, so dream, visualize and every batch path (folders, atlases,
animations, channel atlases) get it through ``Dreamer.net``:

- ``compile``: one ``torch.compile`` per layer set of the fx-traced cut graph (the graph up to the
  target layers, node modules inlined); gradient passes only: probes and other no-grad passes
  run eagerly, so probing sizes never triggers a compilation. Compiled code is cached on disk
  by torch (``$TORCHINDUCTOR_CACHE_DIR``, default under onnxdream's cache), so a later run with
  the same graph and sizes skips most of the compile time.
- ``precision``: ``fp16``/``bf16`` run the mirror under ``torch.autocast``; activations come back as
  float32, so objectives and ONNX Runtime's checks (which stay float32) see float32, compared
  with tolerances for the precision. fp16 needs CUDA (the CPU refuses it: one line, exit 2);
  bf16 also runs on the CPU (slow where the CPU has no bf16 instructions).
- ``channels_last``: weights and inputs in NHWC memory order (faster convolutions on CUDA with
  tensor cores); on by default on CUDA only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from onnxdream.compare import ATOL, RTOL
from onnxdream.dream.activations import Activation, ActivationModel, as_tensors
from onnxdream.errors import OptionError

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
"""``--precision`` choices and the autocast dtype of each (None: plain float32)."""

TOLERANCES: dict[str, tuple[float, float]] = {
    "fp32": (ATOL, RTOL),
    "fp16": (1e-2, 2e-2),
    "bf16": (5e-2, 1e-1),
}
"""(atol, rtol) of the forward checks per precision: float32's contract, and what 10- and 7-bit
mantissas lose over a network's depth (fp16 and bf16 dreams of the built-in model stay within)."""


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse an unknown precision, and fp16 on the CPU.

    Raises:
        OptionError: one line naming ``--precision`` and the choices.
    """
    if precision not in PRECISIONS:
        raise OptionError(
            f"unknown {{precision}} {precision!r}; choose one of {', '.join(PRECISIONS)}", "precision"
        )
    if precision == "fp16" and device.type == "cpu":
        raise OptionError("{precision} fp16 needs CUDA; on the CPU use fp32 (default) or bf16", "precision")


def use_compile_cache() -> None:
    """Keep torch.compile's on-disk cache with onnxdream's, unless the user chose a place."""
    from onnxdream.builtin import cache_dir

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "torch-compile"))


def _float32(value: Activation) -> Activation:
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    return tuple(_float32(t) for t in as_tensors(value))  # type: ignore[misc]


class Accelerated:
    """:class:`ActivationModel` that runs ``net`` compiled, in reduced precision and/or channels-last.

    Args:
        net: the network; ``compile`` needs the torch mirror of an ONNX graph (``net.mirror``).
        device: where ``net`` runs.
        precision: ``fp32``, ``fp16`` or ``bf16``.
        compile: compile the cut graph of each layer set for gradient passes.
        channels_last: NHWC memory order (None: on CUDA only).

    Raises:
        OptionError: an unknown precision, fp16 on the CPU, ``compile`` on a plain torch module.
    """

    def __init__(
        self,
        net: ActivationModel,
        device: torch.device,
        precision: str = "fp32",
        compile: bool = False,
        channels_last: bool | None = None,
    ) -> None:
        check_precision(precision, device)
        mirror = getattr(net, "mirror", None)
        if compile and mirror is None:
            raise OptionError("{compile} works on ONNX models (it compiles the mirror's graph)", "compile")
        self.net, self.device, self.precision, self.compile = net, device, precision, compile
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        if self.channels_last and mirror is not None:
            mirror.to(memory_format=torch.channels_last)
        if compile:
            use_compile_cache()
        self._compiled: dict[tuple[str, ...], Any] = {}

    def layer_names(self) -> list[str]:
        return self.net.layer_names()

    def validate(self, layers: Sequence[str]) -> None:
        self.net.validate(layers)

    def _compiled_graph(self, layers: list[str]) -> Any:
        key = tuple(layers)
        if key not in self._compiled:
            from onnxdream.mirror.fx import trace

            graph = trace(self.net.mirror, layers)  # type: ignore[attr-defined]
            self._compiled[key] = torch.compile(graph)
        return self._compiled[key]

    def __call__(self, x: torch.Tensor, layers: list[str]) -> dict[str, Activation]:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = PRECISIONS[self.precision]
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if self.compile and torch.is_grad_enabled():
                self.net.validate(layers)
                acts = self._compiled_graph(list(layers))(x)
            else:
                acts = self.net(x, layers)
        return {name: _float32(value) for name, value in acts.items()} if dtype is not None else acts
