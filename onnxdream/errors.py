"""One exception tree for the package: every user-facing failure is an ``OnnxDreamError``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class OnnxDreamError(Exception):
    """Root of all onnxdream errors; the CLI prints its message on one line and exits 2."""

    exit_code = 2


class OptionError(OnnxDreamError):
    """A bad option value (or combination); its message names options through ``{name}`` placeholders.

    ``str()`` names each option as the Python API spells it (its keyword, or the spelling given:
    ``trust_pickle="trust_pickle=True"``); the CLI renders the same message with its flags
    (``--octave-scale``) through :meth:`render`.
    """

    def __init__(self, template: str, *options: str, **spellings: str) -> None:
        self.template = template
        self.spellings = {option: option for option in options} | spellings
        super().__init__(self.render({}))

    def render(self, names: Mapping[str, str]) -> str:
        """The message with each ``{option}`` replaced by ``names[option]`` (the Python spelling if absent)."""
        text = self.template
        for option, spelling in self.spellings.items():
            text = text.replace("{" + option + "}", names.get(option, spelling))
        return text


class BadModelError(OnnxDreamError):
    """A model file is missing, unreadable, invalid or unsafe."""


class WriteError(OnnxDreamError):
    """An output cannot be written (read-only folder, full disk, a folder in the way, ...)."""


class UnknownLayerError(OnnxDreamError):
    """A layer name matches no node and no scope of the model."""


class AmbiguousLayerError(UnknownLayerError):
    """A layer's own name (its last path components) ends several layers; the message lists them."""


class UnsupportedOpError(OnnxDreamError):
    """The torch mirror has no converter for an op at the model's opset.

    Attributes:
        problems: every node that cannot be converted (``mirror.Unsupported`` records).
    """

    def __init__(self, message: str, problems: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class MismatchError(OnnxDreamError):
    """A check found a numerical difference (exit code 1, as ``diff`` does)."""

    exit_code = 1


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return a ``did you mean ...?`` clause for ``name`` among ``choices`` (empty if none close)."""
    pool = list(choices)
    close = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    if not close:
        # Prefix matches catch "_blocks" -> "_blocks.0" where difflib's ratio is too low.
        close = [c for c in pool if c.startswith(name)][:n]
    if not close:
        return ""
    return "did you mean " + ", ".join(repr(c) for c in close) + "?"


def unknown(
    kind: str,
    name: str,
    choices: Iterable[str],
    *,
    where: str | None = None,
    lead: str | None = None,
    listing: str | None = None,
) -> str:
    """One line for a name that matches nothing, with the nearest valid names suggested.

    ``unknown("layer", "blok", names, where="m.onnx")`` gives
    ``m.onnx: unknown layer 'blok'; did you mean 'block'?``.

    Args:
        kind: what the name should have named (``layer``, ``zoo model``).
        name: the name given.
        choices: the valid names; the nearest ones are suggested.
        where: the file or model searched, prefixed as ``where: ``.
        lead: the words before the name instead of ``unknown <kind>`` (``no layer matches``).
        listing: when given, every choice follows these words: ``available:`` gives
            ``(available: a, b)``.
    """
    pool = list(choices)
    hint = suggest(name, pool)
    text = f"{lead or f'unknown {kind}'} {name!r}" + (f"; {hint}" if hint else "")
    if listing is not None:
        text += f" ({listing} {', '.join(pool)})"
    return f"{where}: {text}" if where else text


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
