"""Converter modules, one per op family. Importing this package registers every converter."""

from __future__ import annotations

from onnxdream.mirror.ops import (
    activation,
    bitwise,
    control,
    conv,
    detection,
    elementwise,
    grid,
    linear,
    misc,
    norm,
    pad,
    pool,
    quant,
    random,
    recurrent,
    reduce,
    resize,
    scatter,
    select,
    sequence,
    shape,
    spectral,
)

FAMILIES = (
    activation,
    bitwise,
    control,
    conv,
    detection,
    elementwise,
    grid,
    linear,
    misc,
    norm,
    pad,
    pool,
    quant,
    random,
    recurrent,
    reduce,
    resize,
    scatter,
    select,
    sequence,
    shape,
    spectral,
)
"""The converter modules, listed explicitly (no import-time discovery)."""
