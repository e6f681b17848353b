"""Image sizes a network accepts: the multiple its strides need, found by probing, and messages.

Detection necks (FPN/PAN) upsample deep features x2 and concatenate them with shallower ones,
so they only run when each side is divisible by the network's total stride (often 32). Which
multiple a graph needs is found by running it, which is more robust than reading strides off
the graph (padding modes, ceil/floor rounding, Resize with sizes from Shape, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import onnx

from onnxdream.errors import OnnxDreamError, first_line
from onnxdream.layout import NCHW, image_axes, in_layout, input_layout, nchw_shape

Probe = Callable[[int, int], object]
"""Runs the network on an input of the given height and width; raises when it cannot."""

PROBE_BASE = (256, 512)
"""Sides divisible by every multiple probed; the second is for networks that need more than 256."""
MULTIPLES = (1, 2, 4, 8, 16, 32, 64, 128)


def _runs(probe: Probe, height: int, width: int) -> bool:
    try:
        probe(height, width)
    except Exception:  # torch and ONNX Runtime raise many unrelated types for a shape they reject
        return False
    return True


def required_multiple(probe: Probe, fixed: tuple[int | None, int | None] = (None, None)) -> int | None:
    """The multiple every free side must be a multiple of, or ``None`` when probing cannot tell.

    The network runs at a base side divisible by every candidate, then at ``base + m`` and
    ``base + 3 m`` for m = 1, 2, 4, ...; the first m at which both run is the answer. Two odd
    multiples of m are tried because a side that is not a multiple of the stride may still run
    by chance of rounding (stride 32 with 'same' padding runs at 280 but not at 264).

    Args:
        probe: runs the network at ``(height, width)``.
        fixed: sides the model fixes (they are probed at that size, never varied).
    """
    if fixed[0] is not None and fixed[1] is not None:
        return 1

    def runs(side: int) -> bool:
        return _runs(probe, fixed[0] or side, fixed[1] or side)

    for base in PROBE_BASE:
        if runs(base):
            return next((m for m in MULTIPLES if runs(base + m) and runs(base + 3 * m)), None)
    return None


def nearest_multiples(side: int, multiple: int) -> tuple[int, int]:
    """The multiples of ``multiple`` just below (at least ``multiple``) and just above ``side``."""
    return max(multiple, side // multiple * multiple), max(multiple, math.ceil(side / multiple) * multiple)


def round_to_multiple(side: int, multiple: int) -> int:
    """The multiple of ``multiple`` nearest to ``side`` (ties round up; never below ``multiple``)."""
    below, above = nearest_multiples(side, multiple)
    return below if side - below < above - side else above


def valid_sizes(
    height: int, width: int, multiple: int, fixed: tuple[int | None, int | None] = (None, None)
) -> list[tuple[int, int]]:
    """Sizes around ``height x width`` whose free sides are multiples, nearest (by area) first."""
    heights = (fixed[0],) if fixed[0] is not None else nearest_multiples(height, multiple)
    widths = (fixed[1],) if fixed[1] is not None else nearest_multiples(width, multiple)
    sizes = {(h, w) for h in heights for w in widths}
    return sorted(sizes, key=lambda s: (abs(s[0] * s[1] - height * width), s))


class InputError(OnnxDreamError):
    """An input the model cannot run."""


class InputSizeError(InputError):
    """An input whose height or width is not a multiple of the network's stride."""

    def __init__(self, message: str, multiple: int, sizes: list[tuple[int, int]]) -> None:
        super().__init__(message)
        self.multiple = multiple
        self.sizes = sizes


def _shape(dims: Sequence[int]) -> str:
    return "x".join(map(str, dims))


def ort_probe(
    model: onnx.ModelProto, name: str, shape: Sequence[int], dtype: np.dtype, layout: str = NCHW
) -> Probe:
    """A probe that runs ``model`` in ONNX Runtime (CPU) on zeros shaped like ``shape`` (in
    ``layout``) with new H, W."""
    from onnxdream.runtime import make_session

    session = make_session(model, device="cpu")
    batch, channels = nchw_shape(shape, layout)[:2]

    def probe(height: int, width: int) -> None:
        zeros = np.zeros(in_layout((batch, channels, height, width), layout), dtype=dtype)
        session.run({name: zeros}, quiet=True)

    return probe


def input_failure(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    source: str,
    cause: BaseException,
    what: str = "the input",
    layout: str | None = None,
) -> InputError:
    """The error for an input the model cannot run, naming the sizes that would work.

    When the input is an image-like NCHW (or NHWC: ``layout``, else found from the model)
    tensor and ONNX Runtime runs the model at sides that
    are multiples of some stride but not at the given ones, the message gives the nearest such
    sizes; otherwise it gives the runtime's own reason.

    Args:
        model: the model (the input's declared dims decide which sides may change).
        feeds: the input that failed.
        source: the input's file (or the model's) for the message.
        cause: what the runtime raised (a :class:`~onnxdream.runtime.RunError` gives its reason).
        what: how to call the input in the message (``the default input``, its file).
    """
    from onnxdream.shapes import input_dims

    reason = getattr(cause, "reason", None) or first_line(cause)
    if len(feeds) != 1:
        return InputError(f"{source}: cannot run {what}: {reason}")
    ((name, array),) = feeds.items()
    shape = _shape(array.shape)
    declared = next((input_dims(v) for v in model.graph.input if v.name == name), None)
    order = input_layout(model, layout).layout
    _, h_axis, w_axis = image_axes(order)
    if (
        array.ndim == 4
        and declared is not None
        and len(declared) == 4
        and None in (declared[h_axis], declared[w_axis])
    ):
        fixed = (declared[h_axis], declared[w_axis])
        sides = (array.shape[h_axis], array.shape[w_axis])
        multiple = required_multiple(ort_probe(model, name, array.shape, array.dtype, order), fixed)
        free = [
            (side, label)
            for side, label, known in zip(sides, ("height", "width"), fixed, strict=True)
            if known is None
        ]
        if multiple is not None and any(side % multiple for side, _ in free):
            sizes = valid_sizes(sides[0], sides[1], multiple, fixed)
            batch, channels = nchw_shape(array.shape, order)[:2]
            choices = " or ".join(_shape(in_layout((batch, channels, h, w), order)) for h, w in sizes[:2])
            return InputSizeError(
                f"{source}: cannot run {what} (input {name!r} of shape {shape}): its "
                f"{' and '.join(label for _, label in free)} must be multiples of {multiple} (the "
                f"network's stride); nearest sizes that work: {choices}",
                multiple,
                sizes,
            )
    return InputError(f"{source}: cannot run {what} (input {name!r} of shape {shape}): {reason}")
