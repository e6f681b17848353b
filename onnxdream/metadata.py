"""Keys and accessors for the metadata onnxdream stores in models and nodes."""

from __future__ import annotations

import json
from typing import Any

import onnx

ORIGIN_KEY = "onnxdream.origin"
"""Node metadata: how the node's name was obtained (export, metadata, weights, tensor, ...)."""
SCORE_KEY = "onnxdream.score"
"""Node metadata: match score in [0, 1] for names taken from a reference model."""
RENAMES_KEY = "onnxdream.renames"
"""Model metadata: JSON ``{new_name: old_name}`` of every rename, so it can be undone."""
EXPOSED_KEY = "onnxdream.exposed"
"""Model metadata: JSON ``{layer: [output tensor, ...]}`` of layers exposed as outputs."""
PREPROCESS_KEY = "onnxdream.preprocess"
"""Model metadata: JSON ``{"mean": [...], "std": [...], "range": [lo, hi], "channels": "RGB"}``,
optionally with ``"layout": "NHWC"`` (or ``"NCHW"``) for the image input's layout."""

Proto = onnx.NodeProto | onnx.ModelProto


def get_prop(proto: Proto, key: str, default: str | None = None) -> str | None:
    """Return the value of ``key`` in ``proto.metadata_props`` (a node or a model)."""
    for entry in proto.metadata_props:
        if entry.key == key:
            return entry.value
    return default


def set_prop(proto: Proto, key: str, value: str) -> None:
    """Set ``key`` in ``proto.metadata_props``, replacing an existing entry in place."""
    for entry in proto.metadata_props:
        if entry.key == key:
            entry.value = value
            return
    proto.metadata_props.add(key=key, value=value)


def get_json(proto: Proto, key: str, default: Any = None) -> Any:
    """Return the JSON value stored under ``key`` (``default`` when absent)."""
    raw = get_prop(proto, key)
    return default if raw is None else json.loads(raw)


def set_json(proto: Proto, key: str, value: Any) -> None:
    """Store ``value`` as canonical JSON (sorted keys, so output is deterministic)."""
    set_prop(proto, key, json.dumps(value, sort_keys=True))
