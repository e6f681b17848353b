"""What the dream engine needs from a network: activations of named layers, with gradients.

The engine is written against :class:`ActivationModel`, so it runs the same on the torch mirror of
an ONNX graph and on a plain ``torch.nn.Module`` (tests, benchmarks, the Python API).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from onnxdream.lookup import NameLookup

Activation = torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]


@runtime_checkable
class ActivationModel(Protocol):
    """A network that returns the activations of named layers for an NCHW float input."""

    def __call__(self, x: torch.Tensor, layers: list[str]) -> dict[str, Activation]: ...

    def layer_names(self) -> list[str]:
        """Every name a user may target, in network order."""
        ...

    def validate(self, layers: Sequence[str]) -> None:
        """Raise :class:`UnknownLayerError` (with the nearest names) for a name it does not know."""
        ...


def as_tensors(value: Activation) -> list[torch.Tensor]:
    """An activation as a list of tensors (a scope can have several boundary outputs)."""
    return [value] if isinstance(value, torch.Tensor) else list(value)


class _Captured(Exception):
    """Raised from a hook once every requested layer is captured: the rest of the net is skipped."""


class TorchActivations:
    """:class:`ActivationModel` over a plain ``nn.Module``, by ``named_modules`` paths (or a
    module's own name, the last components of exactly one path: ``conv1`` for ``layer1.0.conv1``).

    Forward hooks capture each requested module's output on its first call; the forward pass
    stops as soon as all are captured, so layers after the deepest target cost nothing (this
    assumes modules run in the order of their data flow, as in ``nn.Sequential``-like nets).
    """

    def __init__(self, module: nn.Module, source: str = "<torch module>") -> None:
        self.module = module
        self.source = source
        self._modules = {name: m for name, m in module.named_modules() if name}
        self._lookup = NameLookup(self._modules, source)

    def layer_names(self) -> list[str]:
        return list(self._modules)

    def validate(self, layers: Sequence[str]) -> None:
        for name in layers:
            self._lookup.find(name)

    def __call__(self, x: torch.Tensor, layers: list[str]) -> dict[str, Activation]:
        paths = {name: self._lookup.find(name) for name in dict.fromkeys(layers)}
        wanted = list(dict.fromkeys(paths.values()))
        captured: dict[str, Activation] = {}

        def hook(name: str):
            def capture(_module: nn.Module, _inputs: object, output: Activation) -> None:
                if name not in captured:
                    captured[name] = output
                if len(captured) == len(wanted):
                    raise _Captured

            return capture

        handles = [self._modules[name].register_forward_hook(hook(name)) for name in wanted]
        try:
            self.module(x)
        except _Captured:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return {name: captured[path] for name, path in paths.items()}
