"""The one rule for "these numbers agree": used by ``check``, dream's forward checks and ``export``.

An element of ``actual`` fails when its difference from the reference exceeds both
``atol * max(1, max|reference|)`` and ``rtol * |reference|``. ``atol`` scales with the tensor's
magnitude as in the float32 contract (per-layer max abs error <= 1e-4 * max(1, max|reference|)),
so large activations are not failed for float32 rounding in elements that happen to be small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ATOL = 1e-4
"""Absolute tolerance, times ``max(1, max|reference|)`` of the tensor."""
RTOL = 1e-3
"""Relative tolerance, times ``|reference|`` of the element."""


@dataclass(frozen=True)
class Comparison:
    """How one tensor differs from its reference (see :func:`compare` for the rule)."""

    max_abs: float
    max_rel: float
    failed: int
    size: int
    scale: float
    """``max(1, max|reference|)`` over the finite reference values."""

    @property
    def ok(self) -> bool:
        return self.failed == 0


def compare(actual: np.ndarray, expected: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> Comparison:
    """Compare ``actual`` with the reference ``expected``; NaN only matches NaN, inf only the same inf.

    ``max_rel`` is taken over non-zero references. ``rtol=0`` makes the rule a plain bound on the
    absolute difference relative to the tensor's scale.
    """
    a = np.asarray(actual).astype(np.float64)
    b = np.asarray(expected).astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    diff = np.where(both_nan | same_inf, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    magnitude = np.abs(b)
    rel = np.divide(diff, magnitude, out=np.zeros_like(diff), where=magnitude > 0)
    finite = magnitude[np.isfinite(magnitude)]
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    bad = (diff > atol * scale) & (diff > rtol * magnitude)
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    return Comparison(max_abs, max_rel, int(bad.sum()), int(diff.size), scale)
