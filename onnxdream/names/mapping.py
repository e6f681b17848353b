"""Explicit renames, applied after every strategy: a prefix to strip, a JSON map, regex rules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from onnxdream.errors import OnnxDreamError


@dataclass(frozen=True)
class Rule:
    """A regex rename ``PATTERN=>REPLACEMENT`` (``re.sub`` syntax, ``\\1`` for groups)."""

    pattern: re.Pattern[str]
    replacement: str
    text: str

    @classmethod
    def parse(cls, text: str) -> Rule:
        """Parse ``'REGEX=>REPL'``.

        Raises:
            OnnxDreamError: no ``=>``, or the regex does not compile.
        """
        if "=>" not in text:
            raise OnnxDreamError(f"rule {text!r}: expected 'REGEX=>REPLACEMENT'")
        pattern, replacement = text.split("=>", 1)
        try:
            return cls(re.compile(pattern), replacement, text)
        except re.error as exc:
            raise OnnxDreamError(f"rule {text!r}: bad regular expression ({exc})") from None


@dataclass(frozen=True)
class Explicit:
    """The user's explicit renames, in the order they apply: strip prefix, map, rules."""

    strip_prefix: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.strip_prefix or self.mapping or self.rules)


def load_map(path: str | Path) -> dict[str, str]:
    """Read a JSON ``{old: new}`` map.

    Raises:
        OnnxDreamError: missing or unreadable file, invalid JSON, not an object of strings.
    """
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OnnxDreamError(f"{path}: map file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OnnxDreamError(f"{path}: cannot read map file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise OnnxDreamError(f"{path}: map file is not valid JSON ({exc})") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise OnnxDreamError(f'{path}: map file must be a JSON object of strings {{"old": "new"}}')
    return value


def apply_explicit(
    names: list[str], originals: list[str], explicit: Explicit
) -> tuple[dict[int, str], list[str]]:
    """Apply ``explicit`` to every node's planned name.

    A map key matches a node's planned name or, failing that, its original name.

    Args:
        names: per node, the name the strategies planned.
        originals: per node, its name in the input model.
        explicit: what to apply.

    Returns:
        ``(changed, warnings)``: node -> new name for the nodes that changed, and one warning
        per prefix, map key or rule that matched nothing.

    Raises:
        OnnxDreamError: an empty result, or two nodes ending up with one name.
    """
    current = list(names)
    warnings: list[str] = []
    if explicit.strip_prefix:
        prefix = explicit.strip_prefix
        hits = [i for i, n in enumerate(current) if n.startswith(prefix) and len(n) > len(prefix)]
        for i in hits:
            current[i] = current[i][len(prefix) :]
        if not hits:
            warnings.append(f"prefix {prefix!r} to strip matches no node name")
    if explicit.mapping:
        planned = {n: i for i, n in enumerate(current)}
        original = {n: i for i, n in enumerate(originals) if n}
        for old, new in explicit.mapping.items():
            i = planned.get(old, original.get(old))
            if i is None:
                warnings.append(f"map entry {old!r} matches no node name")
            else:
                current[i] = new
    for rule in explicit.rules:
        hits = 0
        for i, n in enumerate(current):
            renamed, count = rule.pattern.subn(rule.replacement, n)
            if count:
                hits += 1
                current[i] = renamed
        if not hits:
            warnings.append(f"rule {rule.text!r} matches no node name")
    changed = {i: n for i, n in enumerate(current) if n != names[i]}
    _check_unique(current, names, changed)
    return changed, warnings


def _check_unique(current: list[str], planned: list[str], changed: dict[int, str]) -> None:
    holders: dict[str, int] = {}
    for i, name in enumerate(current):
        if i in changed and not name:
            raise OnnxDreamError(f"explicit renames give node {planned[i]!r} an empty name")
        j = holders.setdefault(name, i)
        if j == i or not name or (i not in changed and j not in changed):
            continue
        if i in changed and j in changed:
            raise OnnxDreamError(
                f"explicit renames give both {planned[j]!r} and {planned[i]!r} the name {name!r}"
            )
        moved, other = (i, j) if i in changed else (j, i)
        raise OnnxDreamError(
            f"explicit renames give {planned[moved]!r} the name {name!r}, "
            f"which node {planned[other]!r} already has"
        )
