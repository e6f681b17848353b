"""torch models from an export SPEC: a built-in name, a torch file or ``package.module:factory``.

Loading a ``torch.save(model)`` pickle runs code from the file, so it needs an explicit opt-in.
"""

from __future__ import annotations

import importlib
import re
import zipfile
from pathlib import Path

from onnxdream import zoo
from onnxdream.errors import BadModelError, OnnxDreamError, OptionError, first_line

FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
"""``package.module:factory``: a SPEC naming a function that builds the model."""

TORCH_SUFFIXES = (".pt", ".pth", ".pkl", ".ts", ".torchscript", ".jit")
"""File endings that mark a torch file (any other file is read as ONNX unless it is a zip archive)."""


def is_torch_spec(spec: str) -> bool:
    """Whether ``spec`` names a torch model (a torch file or a factory), not an ONNX file."""
    path = Path(spec)
    if path.is_file():
        return path.suffix.lower() in TORCH_SUFFIXES or zipfile.is_zipfile(path)
    return path.suffix.lower() in TORCH_SUFFIXES or bool(FACTORY.match(spec))


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


class UntrustedPickleError(OptionError, BadModelError):
    """A ``torch.save`` file that would run code when loaded, and ``trust_pickle`` was not given."""


class WeightsAsSpecError(OptionError, BadModelError):
    """A state dict or checkpoint given where the architecture is wanted (it goes in ``weights``)."""


def _load_torch_file(path: Path, trust_pickle: bool):
    """A TorchScript archive, or a ``torch.save`` file (unpickled with code only if trusted)."""
    import pickle

    import torch

    with path.open("rb") as file:
        head = file.read(2)
    if not zipfile.is_zipfile(path) and not head.startswith(b"\x80"):  # zip archive or pickle protocol 2+
        raise BadModelError(f"{path}: not a torch file (neither a torch.save archive nor a pickle)")
    try:
        if _is_torchscript(path):
            return torch.jit.load(str(path), map_location="cpu")
        return torch.load(str(path), map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        if not trust_pickle and "weights_only" in str(exc).replace(" ", "_").lower():
            raise UntrustedPickleError(
                f"{path}: a pickled torch object, which can run code when loaded; if you trust "
                "this file, pass {trust_pickle}",
                trust_pickle="trust_pickle=True",
            ) from None
        raise BadModelError(f"{path}: cannot load a torch model ({first_line(exc)})") from None
    except Exception as exc:
        raise BadModelError(f"{path}: cannot load a torch model ({first_line(exc)})") from None


def _call_factory(spec: str):
    """Import ``package.module`` and call its ``factory``; any failure names the SPEC and its cause."""
    module_name, _, factory = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a broken module raises anything: SyntaxError, ImportError, its own errors
        raise OnnxDreamError(
            f"{spec}: cannot import {module_name!r}: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    if not callable(getattr(module, factory, None)):
        raise OnnxDreamError(f"{spec}: module {module_name!r} has no callable {factory!r}")
    try:
        return getattr(module, factory)()
    except Exception as exc:
        raise OnnxDreamError(f"{spec}: {factory}() raised {type(exc).__name__}: {first_line(exc)}") from None


def load_torch_model(spec: str, *, trust_pickle: bool = False):
    """Resolve an export SPEC to an ``nn.Module`` in eval mode.

    SPEC is ``zoo:efficientnet-lite0``, a ``torch.save(model)`` file, a TorchScript file, or
    ``package.module:factory``. A ``torch.save(model)`` file is a pickle that can run any code
    when loaded: it is read only with ``trust_pickle=True``; otherwise torch's ``weights_only``
    loader reads it, which refuses pickled code (and full modules).

    Raises:
        OnnxDreamError: unknown zoo name, unreadable or untrusted file, import or factory
            failure, or not a module.
    """
    import torch

    if spec.startswith(zoo.ZOO_PREFIX):
        name = spec[len(zoo.ZOO_PREFIX) :]
        if name != zoo.EFFICIENTNET:
            raise OnnxDreamError(f"unknown built-in model {name!r}; available: {zoo.EFFICIENTNET!r}")
        return zoo.efficientnet_lite0()
    path = Path(spec)
    if path.is_file():
        model = _load_torch_file(path, trust_pickle)
    elif FACTORY.match(spec):
        model = _call_factory(spec)
    else:
        raise BadModelError(
            f"{spec}: not found; SPEC is zoo:efficientnet-lite0, a torch file or package.module:factory"
        )
    if isinstance(model, dict):
        raise WeightsAsSpecError(
            f"{spec}: holds a {type(model).__name__} of weights, not a torch.nn.Module; give the "
            "architecture as SPEC (package.module:factory) and this file as {weights}",
            "weights",
        )
    if not isinstance(model, torch.nn.Module):
        raise BadModelError(f"{spec}: holds a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()
