"""Which channels a channel atlas shows: a list such as ``0-15`` or ``3,7,20-23``, or the ``K``
most active channels of a layer on an image."""

from __future__ import annotations

import re

import numpy as np
import torch

from onnxdream.dream.activations import as_tensors
from onnxdream.dream.engine import Dreamer
from onnxdream.dream.objectives import LayerSpec
from onnxdream.errors import OnnxDreamError, OptionError

_PART = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_channels(text: str) -> list[int]:
    """``"0-3,8"`` -> ``[0, 1, 2, 3, 8]`` (order kept, duplicates dropped).

    Raises:
        OnnxDreamError: anything but comma-separated numbers and increasing ranges.
    """
    chosen: list[int] = []
    for part in text.replace(" ", "").split(","):
        found = _PART.match(part)
        if found is None:
            raise OptionError(
                f"{{channels}} {text!r}: {part!r} is not a channel or a range like '0-15'", "channels"
            )
        first = int(found.group(1))
        last = int(found.group(2)) if found.group(2) is not None else first
        if last < first:
            raise OptionError(f"{{channels}} {text!r}: range {part!r} goes down", "channels")
        chosen.extend(range(first, last + 1))
    return list(dict.fromkeys(chosen))


def channel_count(dreamer: Dreamer, spec: LayerSpec, size: int) -> int:
    """How many channels the spec's layer has (one probe at ``size``).

    Raises:
        OnnxDreamError: the layer has several outputs or no channel dimension.
    """
    with torch.no_grad():
        x = torch.full((1, 3, size, size), 0.5, device=dreamer.device)
        tensors = as_tensors(dreamer.net(dreamer.preprocess.to_model(x), [spec.layer])[spec.layer])
    if len(tensors) != 1 or tensors[0].dim() < 2:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise OnnxDreamError(f"layer {spec.layer!r} has no single channel dimension (shapes {shapes})")
    return int(tensors[0].shape[1])


def check_channels(channels: list[int], count: int, layer: str) -> None:
    """Raise for a channel the layer does not have, naming the valid range.

    Raises:
        OnnxDreamError: a channel at or past ``count``.
    """
    bad = [c for c in channels if c >= count]
    if bad:
        raise OnnxDreamError(
            f"layer {layer!r} has {count} channels (0..{count - 1}); channel {bad[0]} does not exist"
        )


def top_channels(dreamer: Dreamer, spec: LayerSpec, image: np.ndarray, k: int) -> list[int]:
    """The ``k`` channels of the spec's layer with the largest mean activation on ``image``.

    Raises:
        OnnxDreamError: ``k`` below 1, or a layer without a single channel dimension.
    """
    if k < 1:
        raise OptionError(f"{{top}} must be at least 1, got {k}", "top")
    pixels = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        acts = dreamer.net(dreamer.preprocess.to_model(pixels.to(dreamer.device)), [spec.layer])
    tensors = as_tensors(acts[spec.layer])
    if len(tensors) != 1 or tensors[0].dim() < 2:
        raise OptionError(f"layer {spec.layer!r} has no single channel dimension for {{top}}", "top")
    means = tensors[0][0].flatten(1).mean(dim=1)
    return [int(c) for c in torch.topk(means, min(k, means.numel())).indices]
