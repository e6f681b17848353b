"""What a dream maximises: layer specs (``NAME[:C1,C2][@center][*W]``), losses and guided dreaming.

Guided dreaming follows the original Deep Dream notebook: for every position of the image's
feature map, take the guide feature vector (over all guide positions) with the largest dot
product, and maximise that dot product. Unlike one global correlation, this lets different parts
of the image pick up different parts of the guide, which is what makes guided dreams look like the
guide rather than like its average colour and texture.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from onnxdream.dream.activations import Activation, as_tensors
from onnxdream.errors import OnnxDreamError

LOSSES = ("l2", "mean")
_CHANNELS = re.compile(r"^\d+(,\d+)*$")
NEURON = "@center"
"""Suffix that narrows a spec to the centre position of its feature map (one neuron per channel)."""
_NEURON_ALIASES = (NEURON, "@centre")


@dataclass(frozen=True)
class LayerSpec:
    """One target: a layer, optional channels (dim 1), the centre position only, and a weight."""

    layer: str
    channels: tuple[int, ...] | None = None
    weight: float = 1.0
    neuron: bool = False

    def __str__(self) -> str:
        text = self.layer
        if self.channels is not None:
            text += ":" + ",".join(map(str, self.channels))
        if self.neuron:
            text += NEURON
        return text if self.weight == 1.0 else f"{text}*{self.weight:g}"


def parse_spec(spec: str, known: Callable[[str], bool] | None = None) -> LayerSpec:
    """Parse ``NAME``, ``NAME:C``, ``NAME:C1,C2``, ``NAME*W`` or ``NAME:C*W``, each optionally with
    ``@center`` before the weight (``NAME:C@center*W``): the neuron at the centre of the feature map.

    Args:
        spec: the text given to ``--layer``.
        known: optional test for layer names; a name that itself contains ``:`` or ``*``
            (``conv1:0``) is taken whole when ``known`` accepts it.

    Raises:
        OnnxDreamError: empty name, bad channel list or weight.
    """
    text = spec.strip()
    if known is not None and text and known(text):
        return LayerSpec(text)
    weight = 1.0
    if "*" in text:
        head, _, tail = text.rpartition("*")
        try:
            weight = float(tail)
        except ValueError:
            raise OnnxDreamError(f"layer spec {spec!r}: weight {tail!r} is not a number") from None
        if not math.isfinite(weight):
            raise OnnxDreamError(f"layer spec {spec!r}: weight must be finite")
        text = head
    neuron = False
    if "@" in text and not (known is not None and known(text)):
        head, _, tail = text.rpartition("@")
        if "@" + tail not in _NEURON_ALIASES:
            raise OnnxDreamError(f"layer spec {spec!r}: position must be {NEURON!r}, got {'@' + tail!r}")
        neuron, text = True, head
    channels = None
    if known is not None and text and known(text):
        return LayerSpec(text, None, weight, neuron)
    if ":" in text:
        head, _, tail = text.rpartition(":")
        if not _CHANNELS.match(tail):
            raise OnnxDreamError(
                f"layer spec {spec!r}: channels must be numbers like ':3' or ':3,17', got {tail!r}"
            )
        channels = tuple(dict.fromkeys(int(c) for c in tail.split(",")))
        text = head
    if not text:
        raise OnnxDreamError(f"layer spec {spec!r}: no layer name")
    return LayerSpec(text, channels, weight, neuron)


def _select(spec: LayerSpec, activation: Activation) -> torch.Tensor:
    tensors = as_tensors(activation)
    if spec.channels is None and not spec.neuron:
        return tensors[0] if len(tensors) == 1 else torch.cat([t.flatten() for t in tensors])
    if len(tensors) != 1:
        raise OnnxDreamError(
            f"layer {spec.layer!r} has {len(tensors)} outputs; "
            f"{'channel' if spec.channels is not None else NEURON} selection needs a layer with one"
        )
    tensor = tensors[0]
    if spec.neuron:
        if tensor.dim() != 4:
            raise OnnxDreamError(
                f"layer {spec.layer!r} has no feature map for {NEURON} (shape {tuple(tensor.shape)})"
            )
        tensor = tensor[..., tensor.shape[-2] // 2, tensor.shape[-1] // 2]
    if spec.channels is None:
        return tensor
    if tensor.dim() < 2:
        raise OnnxDreamError(f"layer {spec.layer!r} has no channel dimension (shape {tuple(tensor.shape)})")
    count = tensor.shape[1]
    bad = [c for c in spec.channels if c >= count]
    if bad:
        raise OnnxDreamError(
            f"layer {spec.layer!r} has {count} channels (0..{count - 1}); channel {bad[0]} does not exist"
        )
    return tensor[:, list(spec.channels)]


def _guided(features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Mean over positions of the best dot product with any guide feature vector."""
    x = features.flatten(2)[0].T if features.dim() > 2 else features.reshape(1, -1)  # (positions, C)
    scores = x @ guide  # (positions, guide positions)
    return scores.max(dim=1).values.mean()


def guide_features(feats: torch.Tensor) -> torch.Tensor:
    """A guide's features as a ``(C, positions)`` matrix for :func:`_guided`."""
    feats = feats.detach()
    return feats.flatten(2)[0] if feats.dim() > 2 else feats.reshape(-1, 1)


@dataclass
class Objective:
    """Weighted sum over layer specs of a per-layer loss, optionally guided."""

    specs: Sequence[LayerSpec]
    loss: str = "l2"
    guides: dict[str, torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise OnnxDreamError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if not self.specs:
            raise OnnxDreamError("no layer to dream on")

    @property
    def layers(self) -> list[str]:
        """The distinct layers the objective reads, in spec order."""
        return list(dict.fromkeys(s.layer for s in self.specs))

    def select(self, acts: dict[str, Activation]) -> dict[str, torch.Tensor]:
        """Per-spec selected activations (channels applied), keyed by the spec text."""
        return {str(s): _select(s, acts[s.layer]) for s in self.specs}

    def __call__(self, acts: dict[str, Activation]) -> torch.Tensor:
        terms = []
        for spec in self.specs:
            selected = _select(spec, acts[spec.layer])
            if self.guides is not None:
                value = _guided(selected, self.guides[str(spec)])
            elif self.loss == "l2":
                value = selected.square().mean()
            else:
                value = selected.mean()
            terms.append(value * spec.weight)
        return torch.stack(terms).sum()
