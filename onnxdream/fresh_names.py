"""Unique names, generated one way everywhere: a wanted name when free, else ``<name>_<k>``."""

from __future__ import annotations

from collections.abc import Iterable


class NameAuthority:
    """Hands out names that are not taken yet, deterministically, and remembers them.

    ``claim("conv")`` gives ``conv`` when it is free, else the first free ``conv_1``,
    ``conv_2``, ...; a name once given is taken. Suffixed names also avoid ``reserved`` names
    (names that others will claim bare later), so a generated ``x_1`` never steals one.
    Counters are kept per base, so claiming many repeats of one base stays linear.
    """

    def __init__(self, taken: Iterable[str] = (), reserved: Iterable[str] = ()) -> None:
        self.taken = set(taken)
        self._reserved = set(reserved)
        self._next: dict[str, int] = {}

    def claim(self, base: str, *, bare: bool = True, start: int = 1) -> str:
        """Take ``base`` (when ``bare`` and free) or the first free ``base_<k>`` with ``k >= start``."""
        if bare and base not in self.taken:
            self.taken.add(base)
            return base
        k = self._next.get(base, start)
        while f"{base}_{k}" in self.taken or f"{base}_{k}" in self._reserved:
            k += 1
        self._next[base] = k + 1
        name = f"{base}_{k}"
        self.taken.add(name)
        return name
