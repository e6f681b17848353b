"""Resize (opsets 10-19) and Upsample: nearest, linear and cubic on any axes.

Where ``F.interpolate`` computes exactly what ONNX specifies (integer nearest upsampling,
half-pixel or align-corners linear on the spatial axes) it is used; everything else goes
through a separable interpolation matrix per resized axis, built from the ONNX definition
(taps, coefficients, edge clamping, ``exclude_outside``, antialias, ``tf_crop_and_resize``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from onnxdream.mirror.ops._common import as_ints, norm_axis
from onnxdream.mirror.registry import Converted, NodeView, converter

_LINEAR = {3: "linear", 4: "bilinear", 5: "trilinear"}


@dataclass(frozen=True)
class _Spec:
    mode: str
    transform: str
    nearest: str
    cubic_a: float
    exclude_outside: bool
    extrapolation: float
    antialias: bool
    aspect: str


def _nearest(ratio: float, mode: str) -> list[float]:
    if ratio == 1.0:
        return [0.0, 1.0]
    pick = {
        "round_prefer_floor": ratio > 0.5,
        "round_prefer_ceil": ratio >= 0.5,
        "floor": False,
        "ceil": True,
    }[mode]
    return [0.0, 1.0] if pick else [1.0, 0.0]


def _cubic(x: float, a: float) -> float:
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def _coeffs(ratio: float, scale: float, spec: _Spec) -> list[float]:
    if spec.mode == "nearest":
        return _nearest(ratio, spec.nearest)
    if spec.mode == "linear":
        if not spec.antialias or scale >= 1:
            return [1 - ratio, ratio]
        start = math.floor(-1 / scale) + 1
        taps = [max(0.0, 1 - abs((i - ratio) * scale)) for i in range(start, 2 - start)]
        return [t / sum(taps) for t in taps]
    s = min(scale, 1.0) if spec.antialias else 1.0
    start = math.floor(-2 / s) + 1
    taps = [_cubic(s * (i - ratio), spec.cubic_a) for i in range(start, 2 - start)]
    return [t / sum(taps) for t in taps] if spec.antialias else taps


def _source(x: int, n: int, out_int: int, scale: float, spec: _Spec, roi: tuple[float, float]) -> float:
    """Source coordinate of output index ``x``; lengths are the integer output size, as in ONNX Runtime."""
    t = spec.transform
    if t == "align_corners":
        return 0.0 if out_int == 1 else x * (n - 1) / (out_int - 1)
    if t == "asymmetric":
        return x / scale
    if t == "tf_crop_and_resize":
        if out_int == 1:
            return (roi[1] - roi[0]) * (n - 1) / 2 + roi[0] * (n - 1)
        return x * (roi[1] - roi[0]) * (n - 1) / (out_int - 1) + roi[0] * (n - 1)
    if t == "pytorch_half_pixel":
        return -0.5 if out_int == 1 else (x + 0.5) / scale - 0.5
    if t == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if t == "half_pixel_symmetric":
        offset = n / 2 * (1 - out_int / (scale * n))
        return offset + (x + 0.5) / scale - 0.5
    raise ValueError(t)


@lru_cache(maxsize=256)
def _matrix(
    n: int, m: int, scale: float, spec: _Spec, roi: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolation weights ``(m, n)`` for one axis and the rows that take the extrapolation value."""
    weights = np.zeros((m, n))
    outside = np.zeros(m, dtype=bool)
    for x in range(m):
        src = _source(x, n, m, scale, spec, roi)
        if spec.transform == "tf_crop_and_resize" and (src < 0 or src > n - 1):
            outside[x] = True
            continue
        base = math.ceil(src) - 1
        ratio = src - base
        coeffs = _coeffs(ratio, scale, spec)
        first = base + 1 - len(coeffs) // 2
        taps = [(first + j, c) for j, c in enumerate(coeffs)]
        if spec.exclude_outside:
            taps = [(i, c) for i, c in taps if 0 <= i < n]
            total = sum(c for _, c in taps)
            taps = [(i, c / total) for i, c in taps]
        for i, c in taps:
            weights[x, min(max(i, 0), n - 1)] += c
    return weights, outside


def _resize_axis(x: torch.Tensor, axis: int, m: int, scale: float, spec: _Spec, roi) -> torch.Tensor:
    weights, outside = _matrix(x.shape[axis], m, scale, spec, roi)
    if spec.mode == "nearest":
        idx = torch.as_tensor(weights.argmax(axis=1), device=x.device)
        y = torch.index_select(x, axis, idx)
    else:
        w = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
        y = torch.movedim(torch.movedim(x, axis, -1) @ w.T, -1, axis)
    if outside.any():
        mask = torch.as_tensor(outside, device=x.device).reshape([-1] + [1] * (x.dim() - axis - 1))
        y = torch.where(mask, torch.full((), spec.extrapolation, dtype=y.dtype, device=y.device), y)
    return y


def _fast(x: torch.Tensor, sizes: list[int], scales: list[float], spec: _Spec, by_sizes: bool):
    """``F.interpolate`` where it matches ONNX exactly; ``None`` otherwise."""
    rank = x.dim()
    if rank not in _LINEAR or sizes[:2] != list(x.shape[:2]) or spec.antialias:
        return None
    spatial_sizes, spatial_scales = sizes[2:], scales[2:]
    if spec.mode == "nearest" and spec.transform == "asymmetric" and spec.nearest == "floor":
        if all(float(s).is_integer() and s >= 1 for s in spatial_scales) and not by_sizes:
            return F.interpolate(x, scale_factor=[float(s) for s in spatial_scales], mode="nearest")
        return None
    if spec.mode != "linear":
        return None
    if spec.transform == "half_pixel" or (spec.transform == "pytorch_half_pixel" and min(spatial_sizes) > 1):
        if by_sizes:
            return F.interpolate(x, size=spatial_sizes, mode=_LINEAR[rank], align_corners=False)
        return F.interpolate(
            x,
            scale_factor=[float(s) for s in spatial_scales],
            mode=_LINEAR[rank],
            align_corners=False,
            recompute_scale_factor=False,
        )
    if spec.transform == "align_corners" and by_sizes:
        return F.interpolate(x, size=spatial_sizes, mode=_LINEAR[rank], align_corners=True)
    return None


def _resize(x, roi, scales, sizes, axes, spec: _Spec) -> torch.Tensor:
    rank = x.dim()
    axes = list(range(rank)) if axes is None else [norm_axis(a, rank) for a in axes]
    in_sizes = [x.shape[a] for a in axes]
    by_sizes = sizes is not None and len(sizes) > 0
    if by_sizes:
        if spec.aspect in ("not_larger", "not_smaller"):
            ratios = [s / n for s, n in zip(sizes, in_sizes, strict=True)]
            r = min(ratios) if spec.aspect == "not_larger" else max(ratios)
            scale_list = [r] * len(axes)
            out = [round(r * n) for n in in_sizes]
        else:
            out = list(sizes)
            scale_list = [s / n for s, n in zip(out, in_sizes, strict=True)]
    else:
        scale_list = list(scales)
        out = [math.floor(n * s) for n, s in zip(in_sizes, scale_list, strict=True)]
    roi_pairs = [(0.0, 1.0)] * len(axes)
    if roi is not None and len(roi) > 0 and spec.transform == "tf_crop_and_resize":
        half = len(roi) // 2
        roi_pairs = [(float(roi[i]), float(roi[i + half])) for i in range(half)]
    if axes == list(range(rank)) and spec.transform != "tf_crop_and_resize":
        fast = _fast(x, out, scale_list, spec, by_sizes and spec.aspect == "stretch")
        if fast is not None:
            return fast
    y = x
    for i, a in enumerate(axes):
        if out[i] != y.shape[a] or scale_list[i] != 1.0 or spec.transform == "tf_crop_and_resize":
            y = _resize_axis(y, a, out[i], float(scale_list[i]), spec, roi_pairs[i])
    return y


def _spec(node: NodeView, legacy: bool) -> _Spec:
    mode = node.attr("mode", "nearest")
    if mode in ("bilinear", "trilinear"):
        mode = "linear"
    if mode not in ("nearest", "linear", "cubic"):
        raise node.unsupported(f"mode {mode!r}")
    aspect = node.attr("keep_aspect_ratio_policy", "stretch")
    if aspect not in ("stretch", "not_larger", "not_smaller"):
        raise node.unsupported(f"keep_aspect_ratio_policy {aspect!r}")
    return _Spec(
        mode=mode,
        transform="asymmetric" if legacy else node.attr("coordinate_transformation_mode", "half_pixel"),
        nearest="floor" if legacy else node.attr("nearest_mode", "round_prefer_floor"),
        cubic_a=node.attr("cubic_coeff_a", -0.75),
        exclude_outside=bool(node.attr("exclude_outside", 0)),
        extrapolation=node.attr("extrapolation_value", 0.0),
        antialias=bool(node.attr("antialias", 0)),
        aspect=aspect,
    )


def _floats(t: torch.Tensor | None) -> list[float] | None:
    return None if t is None else [float(v) for v in t.reshape(-1).tolist()]


@converter("Resize", 10, shape_inputs=(1,))
def resize_10(node: NodeView) -> Converted:
    spec = _spec(node, legacy=True)
    return node.call(lambda x, s: _resize(x, None, _floats(s), None, None, spec), 0, 1)


@converter("Resize", 11, shape_inputs=(1, 2, 3))
def resize(node: NodeView) -> Converted:
    spec = _spec(node, legacy=False)
    axes = node.attr("axes")
    if all(node.is_static(i) for i in (1, 2, 3)):
        roi, scales = _floats(node.static(1)), _floats(node.static(2))
        sizes = node.static_ints(3)
        return node.call(lambda x: _resize(x, roi, scales, sizes, axes, spec), 0)

    def run(x, roi=None, scales=None, sizes=None):
        ints = None if sizes is None else as_ints(sizes)
        return _resize(x, _floats(roi), _floats(scales), ints, axes, spec)

    return node.call(run, 0, 1, 2, 3)


@converter("Upsample", 7)
def upsample_attr(node: NodeView) -> Converted:
    spec = _spec(node, legacy=True)
    scales = node.attr("scales")
    return node.call(lambda x: _resize(x, None, scales, None, None, spec), 0)


@converter("Upsample", 9, shape_inputs=(1,))
def upsample(node: NodeView) -> Converted:
    spec = _spec(node, legacy=True)
    if node.is_static(1):
        scales = _floats(node.static(1))
        return node.call(lambda x: _resize(x, None, scales, None, None, spec), 0)
    return node.call(lambda x, s: _resize(x, None, _floats(s), None, None, spec), 0, 1)
