"""A layer by its full name or by its own name: the last path component(s) of exactly one layer.

Keras users know ``block_13_expand``, not ``mobilenetv2_1.00_224/block_13_expand``; torch users
know ``conv1`` or ``0.conv1`` of ``layer1.0.conv1``. A name that is no layer's full name selects
the one layer whose name ends with it at a separator (``.`` or ``/``); when several do, the
request is ambiguous and fails listing them. Every verb resolves names through :class:`NameLookup`
(the graph's :meth:`~onnxdream.graph.GraphIndex.resolve` and the plain torch module adapter).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Hashable, Iterable

from onnxdream.errors import AmbiguousLayerError, UnknownLayerError, unknown

_SEPARATOR = re.compile(r"[./]")
_GLOB_CHARS = re.compile(r"[*?\[]")
LISTED = 10
"""How many candidates an ambiguity error names before it says how many more there are."""


def own_names(name: str) -> list[str]:
    """The trailing component runs of ``name``, longest first: ``a/b.c`` -> ``b.c``, ``c``."""
    return [name[m.end() :] for m in _SEPARATOR.finditer(name) if m.start() > 0 and m.end() < len(name)]


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` has shell glob characters (``*``, ``?``, ``[``)."""
    return bool(_GLOB_CHARS.search(pattern))


def glob_names(names: Iterable[str], pattern: str) -> list[str]:
    """Names a shell glob matches: whole names, or (when it matches none) their own names.

    ``block_13_*`` finds ``model/block_13_expand`` as it would find ``block_13_expand`` itself.
    """
    pool = list(names)
    whole = [n for n in pool if fnmatch.fnmatchcase(n, pattern)]
    if whole:
        return whole
    return [n for n in pool if any(fnmatch.fnmatchcase(own, pattern) for own in own_names(n))]


def ambiguity(name: str, candidates: list[str], where: str | None = None) -> str:
    """One line for a name that ends several layers, listing them (the first :data:`LISTED`)."""
    shown = ", ".join(repr(c) for c in candidates[:LISTED])
    more = f" and {len(candidates) - LISTED} more" if len(candidates) > LISTED else ""
    text = (
        f"layer {name!r} is ambiguous: it ends {len(candidates)} layers ({shown}{more}); "
        "give more of its path"
    )
    return f"{where}: {text}" if where else text


class NameLookup:
    """Full names, and the layers each trailing component run names.

    Args:
        names: every full layer name, in the order suggestions should follow.
        source: the model or module searched, for messages.
        activation: optional key of what a full name computes; when every candidate of an own
            name has the same key (a scope and the one node inside it), the shortest is taken
            instead of failing as ambiguous.
    """

    def __init__(
        self,
        names: Iterable[str],
        source: str = "<model>",
        activation: Callable[[str], Hashable] | None = None,
    ) -> None:
        self.names = list(dict.fromkeys(names))
        self.source = source
        self.activation = activation
        self._full = set(self.names)
        self._ending: dict[str, list[str]] = {}
        for full in self.names:
            for own in own_names(full):
                self._ending.setdefault(own, []).append(full)

    def candidates(self, name: str) -> list[str]:
        """The full names ``name`` may mean: itself when it is one, else those it ends."""
        if name in self._full:
            return [name]
        return list(self._ending.get(name, []))

    def knows(self, name: str) -> bool:
        """Whether ``name`` names some layer (perhaps ambiguously)."""
        return bool(self.candidates(name))

    def find(self, name: str) -> str:
        """The full name of the one layer ``name`` names.

        Raises:
            UnknownLayerError: no layer (the nearest names are suggested).
            AmbiguousLayerError: several layers end with ``name`` (all are listed).
        """
        found = self.candidates(name)
        if len(found) > 1 and self.activation is not None:
            if len({self.activation(c) for c in found}) == 1:
                found = [min(found, key=len)]
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousLayerError(ambiguity(name, found, self.source))
        raise UnknownLayerError(unknown("layer", name, [*self.names, *self._ending], where=self.source))
