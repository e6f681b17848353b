"""Weights for a torch SPEC from a file: what ``--weights FILE`` (Python: ``weights=``) reads.

The SPEC gives the architecture, the file gives the weights. Formats, told apart by their bytes:
a ``torch.save`` file (``.pth``/``.pt``/``.bin``) holding a state dict, a checkpoint dict with a
``state_dict`` / ``model_state_dict`` / ``model`` entry (PyTorch Lightning's ``.ckpt`` is one), or
a ``.safetensors`` file (the optional ``safetensors`` package).

Reading runs no code from the file: torch's weights-only unpickler reads ``torch.save`` files, and
a file that needs pickled code is refused unless ``trust_pickle`` is given. Keys are matched the
way wrappers leave them: a common prefix (``module.`` from DataParallel/DDP, ``model.`` from a
Lightning module, ``_orig_mod.`` from ``torch.compile``) is found and stripped when that makes the
keys fit, or given; then every key must fit (names and shapes) before anything is loaded.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from onnxdream.errors import BadModelError, OnnxDreamError, OptionError, first_line
from onnxdream.torch_models import UntrustedPickleError

CHECKPOINT_ENTRIES = ("state_dict", "model_state_dict", "model")
"""Entries of a checkpoint dict that hold the model's state dict, in the order they are tried."""

OPTIONAL_KEYS = ("num_batches_tracked",)
"""State-dict entries a file may leave out (BatchNorm's step counter does not change eval outputs)."""

SHOWN = 3
"""How many keys of each kind a mismatch message names."""

GUESS_DEPTH = 3
"""Prefixes of up to this many dotted components are tried (``module._orig_mod.model.``)."""


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights came from: recorded in the export's metadata (``onnxdream.weights``).

    Attributes:
        file: the file's name (not its folder).
        sha256: hex digest of the file's bytes.
        format: what the file held: ``state dict``, ``safetensors``, ``Lightning checkpoint``,
            ``checkpoint 'model'`` ...
        prefix: the prefix stripped from every key (``""``: none).
        tensors: how many entries were loaded.
        ignored: entries outside ``prefix`` that were left out (a Lightning module's other parts).
    """

    file: str
    sha256: str
    format: str
    prefix: str
    tensors: int
    ignored: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """``ft.pth (state dict, sha256 3f2a9c01..., prefix 'module.' stripped)``."""
        parts = [self.format, f"sha256 {self.sha256[:12]}..."]
        if self.prefix:
            parts.append(f"prefix {self.prefix!r} stripped")
        if self.ignored:
            parts.append(f"{self.ignored} {'entry' if self.ignored == 1 else 'entries'} outside it left out")
        return f"{self.file} ({', '.join(parts)})"


class WeightsMismatchError(BadModelError):
    """A weights file whose keys or shapes do not fit the architecture (exit 2: bad input)."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (memory stays bounded for multi-GB checkpoints)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_safetensors(path: Path, head: bytes) -> bool:
    """A little-endian header length, then a JSON header that fits in the file."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 8 + struct.unpack("<Q", head[:8])[0] <= path.stat().st_size


def _read_safetensors(path: Path) -> dict[str, Any]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise OnnxDreamError(
            f"{path}: reading .safetensors needs the safetensors package: pip install 'onnxdream[weights]'"
        ) from None
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # SafetensorError for a cut or corrupt header; dtypes torch lacks
        raise BadModelError(f"{path}: not a readable safetensors file ({first_line(exc)})") from None


def _blocked_global(exc: BaseException) -> str:
    """The pickled global torch's weights-only loader refused (``posix.system``), if it says."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return f" ({found.group(1)})" if found else ""


def _read_torch(path: Path, trust_pickle: bool) -> Any:
    import torch

    try:
        return torch.load(
            str(path), map_location="cpu", weights_only=not trust_pickle, mmap=zipfile.is_zipfile(path)
        )
    except pickle.UnpicklingError as exc:
        if not trust_pickle and "weights_only" in str(exc).replace(" ", "_").lower():
            raise UntrustedPickleError(
                f"{path}: the weights file holds pickled objects that need code to load"
                f"{_blocked_global(exc)}; if you trust this file, pass {{trust_pickle}}",
                trust_pickle="trust_pickle=True",
            ) from None
        raise BadModelError(f"{path}: cannot read the weights ({first_line(exc)})") from None
    except Exception as exc:  # a truncated or corrupt archive raises RuntimeError, EOFError, ...
        raise BadModelError(f"{path}: cannot read the weights ({first_line(exc)})") from None


def read_weights(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> tuple[dict[str, Any], str]:
    """The state dict a weights file holds, and what held it (``state dict``, ``safetensors``, ...).

    Raises:
        BadModelError: a missing, unreadable or truncated file, one that holds no state dict,
            or an entry that is not a tensor.
        UntrustedPickleError: a pickle that needs code to load, without ``trust_pickle``.
    """
    path = Path(path)
    if not path.is_file():
        raise BadModelError(f"{path}: weights file not found")
    with path.open("rb") as file:
        head = file.read(16)
    if head.startswith(b"PK\x03\x04") and not zipfile.is_zipfile(path):
        raise BadModelError(
            f"{path}: a torch.save archive cut short or corrupt (its zip directory is missing)"
        )
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):  # torch.save: zip archive or pickle
        state, held = _state_dict_of(_read_torch(path, trust_pickle), path)
    elif _is_safetensors(path, head):
        state, held = _read_safetensors(path), "safetensors"
    else:
        raise BadModelError(
            f"{path}: not a weights file (neither a torch.save file nor safetensors; "
            "an ONNX model goes where a MODEL is taken, not in --weights)"
        )
    _require_tensors(state, path)
    return state, held


def _state_dict_of(value: Any, path: Path, depth: int = 0) -> tuple[dict[str, Any], str]:
    """The state dict inside what ``torch.load`` returned, and a word on where it was."""
    import torch

    if isinstance(value, torch.nn.Module):  # a pickled module, read with trust_pickle
        return dict(value.state_dict()), "pickled module"
    if not isinstance(value, Mapping):
        raise BadModelError(f"{path}: holds a {type(value).__name__}, not a state dict")
    if not value:
        raise BadModelError(f"{path}: holds an empty dict, not a state dict")
    if any(isinstance(v, torch.Tensor) for v in value.values()):
        return dict(value), "state dict"
    for entry in CHECKPOINT_ENTRIES:
        if entry in value and depth < 2:
            state, _ = _state_dict_of(value[entry], path, depth + 1)
            lightning = "pytorch-lightning_version" in value
            return state, "Lightning checkpoint" if lightning else f"checkpoint {entry!r}"
    keys = ", ".join(repr(k) for k in list(value)[:8])
    raise BadModelError(
        f"{path}: holds a dict with no tensors and no {', '.join(map(repr, CHECKPOINT_ENTRIES))} "
        f"entry (its keys: {keys})"
    )


def _require_tensors(state: Mapping[str, Any], path: Path) -> None:
    import torch

    for key, value in state.items():
        if not isinstance(key, str):
            raise BadModelError(f"{path}: key {key!r} is a {type(key).__name__}, not a parameter name")
        if not isinstance(value, torch.Tensor) and not key.endswith("_extra_state"):
            raise BadModelError(
                f"{path}: entry {key!r} holds a {type(value).__name__}, not a tensor "
                "(a state dict maps parameter names to tensors)"
            )


def _leading_prefixes(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:n]) + "." for n in range(1, min(GUESS_DEPTH, len(parts) - 1) + 1)]


def _fitting(keys: list[str], expected: Mapping[str, Any], prefix: str) -> int:
    return sum(1 for k in keys if k.startswith(prefix) and k[len(prefix) :] in expected)


def guess_prefix(keys: list[str], expected: Mapping[str, Any]) -> str:
    """The prefix whose removal makes most keys fit the model; ``""`` unless one fits more keys
    than none does and at least half of the model's."""
    best, best_fit = "", _fitting(keys, expected, "")
    for prefix in sorted({p for k in keys for p in _leading_prefixes(k)}, key=lambda p: (len(p), p)):
        fit = _fitting(keys, expected, prefix)
        if fit > best_fit and 2 * fit >= len(expected):
            best, best_fit = prefix, fit
    return best


def _normal_prefix(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith(".") else prefix + "."


def _shape(value: Any) -> str:
    if not hasattr(value, "shape"):
        return type(value).__name__
    return "x".join(map(str, value.shape)) or "scalar"


def _same_shape(a: Any, b: Any) -> bool:
    return not hasattr(a, "shape") or tuple(a.shape) == tuple(b.shape)


def _listed(items: list[str], total: int) -> str:
    more = f", +{total - len(items)} more" if total > len(items) else ""
    return ", ".join(items) + more


def _fit_problems(selected: Mapping[str, Any], model_state: Mapping[str, Any]) -> list[str]:
    """What keeps ``selected`` from loading strictly: missing, unexpected, of another shape."""
    missing = [k for k in model_state if k not in selected]
    unexpected = [k for k in selected if k not in model_state]
    reshaped = [k for k in selected if k in model_state and not _same_shape(selected[k], model_state[k])]
    problems = []
    if missing:
        shown = [repr(k) for k in missing[:SHOWN]]
        problems.append(f"{len(missing)} missing ({_listed(shown, len(missing))})")
    if unexpected:
        pool = missing or list(model_state)
        shown = []
        for key in unexpected[:SHOWN]:
            near = difflib.get_close_matches(key, pool, n=1, cutoff=0.5)
            shown.append(f"{key!r}" + (f" (nearest {near[0]!r})" if near else ""))
        problems.append(f"{len(unexpected)} unexpected ({_listed(shown, len(unexpected))})")
    if reshaped:
        shown = [
            f"{k!r} (file {_shape(selected[k])}, model {_shape(model_state[k])})" for k in reshaped[:SHOWN]
        ]
        problems.append(f"{len(reshaped)} of another shape ({_listed(shown, len(reshaped))})")
    return problems


def _part_hint(keys: list[str], model_state: Mapping[str, Any]) -> str:
    """``; they fit under '0.' (...)`` when the file holds the weights of one submodule only
    (the pretrained network's, not the fine-tuned whole's)."""
    inner = sorted({p for k in model_state for p in _leading_prefixes(k)}, key=lambda p: (len(p), p))
    best, best_fit = "", 0
    for prefix in inner:
        fit = sum(1 for k in keys if prefix + k in model_state)
        if fit > best_fit:
            best, best_fit = prefix, fit
    if not best or 2 * best_fit < len(keys):
        return ""
    return f"; {best_fit} of the file's keys fit under {best!r}: weights of that part only, not of the whole"


def _fill_optional(selected: dict[str, Any], model_state: Mapping[str, Any]) -> None:
    """Keep the model's own value where the file may leave an entry out: BatchNorm's step counter,
    and a tied parameter whose twin the file has (safetensors' ``save_model`` drops duplicates)."""
    storages: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for key, value in model_state.items():
        if hasattr(value, "untyped_storage") and value.numel():
            storages.setdefault(
                (value.untyped_storage().data_ptr(), value.storage_offset(), value.shape), key
            )
    for key, value in model_state.items():
        if key in selected:
            continue
        if key.rsplit(".", 1)[-1] in OPTIONAL_KEYS:
            selected[key] = value
        elif hasattr(value, "untyped_storage") and value.numel():
            twin = storages.get((value.untyped_storage().data_ptr(), value.storage_offset(), value.shape))
            if twin is not None and twin != key and twin in selected:
                selected[key] = selected[twin]


def load_weights(
    model: Any,
    path: str | os.PathLike[str],
    *,
    prefix: str | None = None,
    trust_pickle: bool = False,
    target: str = "the model",
) -> WeightsSource:
    """Load a weights file into ``model`` (an ``nn.Module``) in place, strictly.

    Args:
        model: the architecture, built by the SPEC.
        path: the weights file (see the module's docstring for formats).
        prefix: strip this from every key and leave out keys without it (``"module"`` and
            ``"module."`` are the same; ``""`` strips nothing); None guesses it.
        trust_pickle: allow a ``torch.save`` file whose loading runs code from the file.
        target: the SPEC, for messages.

    Raises:
        WeightsMismatchError: keys missing, unexpected or of another shape (one line: how many of
            each, the first few by name, the nearest model key of an unexpected one).
        OptionError: ``prefix`` matches no key.
        BadModelError: see :func:`read_weights`.
    """
    path = Path(path)
    state, held = read_weights(path, trust_pickle=trust_pickle)
    model_state = model.state_dict()
    keys = list(state)
    if prefix is None:
        chosen = guess_prefix(keys, model_state)
    else:
        chosen = _normal_prefix(prefix)
        if chosen and not any(k.startswith(chosen) for k in keys):
            starts = sorted({p for k in keys[:1000] for p in _leading_prefixes(k)[:1]})
            raise OptionError(
                f"{path}: no key starts with {{weights_prefix}} {chosen!r}; keys start with "
                + (", ".join(repr(s) for s in starts[:SHOWN]) or "no prefix"),
                "weights_prefix",
            )
    selected = {k[len(chosen) :]: v for k, v in state.items() if k.startswith(chosen)}
    fit = sum(1 for k, v in model_state.items() if k in selected and _same_shape(selected[k], v))
    provided = list(selected)
    _fill_optional(selected, model_state)
    problems = _fit_problems(selected, model_state)
    if problems:
        stripped = f" (prefix {chosen!r} stripped)" if chosen else ""
        hint = _part_hint(provided, model_state) if fit < len(model_state) // 2 else ""
        raise WeightsMismatchError(
            f"{path}: weights do not fit {target}{stripped}: {'; '.join(problems)}; "
            f"{fit} of {len(model_state)} model keys fit{hint}"
        )
    try:
        model.load_state_dict(selected, strict=True)
    except Exception as exc:  # dtype casts torch cannot make, _extra_state a module refuses
        raise WeightsMismatchError(f"{path}: weights do not load into {target} ({first_line(exc)})") from None
    return WeightsSource(
        file=path.name,
        sha256=sha256_of(path),
        format=held,
        prefix=chosen,
        tensors=len(selected),
        ignored=len(state) - sum(1 for k in keys if k.startswith(chosen)),
    )
