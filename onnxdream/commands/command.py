"""The command class of every subcommand: hidden old spellings, plain flags, flowing help, flag names."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, ClassVar

from typer.core import TyperCommand

from onnxdream.errors import OptionError

_FLAGS: ContextVar[Mapping[str, str]] = ContextVar("onnxdream_flags", default=MappingProxyType({}))
"""Option keyword -> flag of the command being run (how :func:`render_error` names options)."""


def flow(text: str) -> str:
    """Join the lines of each paragraph, so that the terminal (not the source) decides where lines break.

    A paragraph keeps the indentation of its first line (indented examples stay indented).
    """
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        " ".join([lines[0].rstrip(), *(line.strip() for line in lines[1:])])
        for lines in (p.splitlines() for p in paragraphs)
        if lines
    )


def render_error(exc: OptionError) -> str:
    """The message of ``exc`` with options named by the running command's flags."""
    return exc.render(_FLAGS.get())


def _plain(param: Any) -> Any:
    """A flag shows no value placeholder (typer would show ``<bool>``)."""
    if getattr(param, "is_flag", False):
        param.metavar = ""
    return param


class Command(TyperCommand):
    """A typer command whose old flag spellings still parse but are not shown in ``--help``.

    Subclasses set :attr:`aliases` (old spelling -> current flag); :func:`aliased` makes them.
    """

    aliases: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = flow(self.help)
        for param in self.params:
            _plain(param)
        for alias, flag in self.aliases.items():
            self._param(flag)  # an alias of a flag that does not exist is a bug: fail when the app is built
            if any(alias in (*p.opts, *p.secondary_opts) for p in self.params):
                raise ValueError(f"{self.name}: hidden alias {alias} is also a visible flag")

    def _param(self, flag: str) -> Any:
        for param in self.params:
            if flag in param.opts:
                return param
        raise ValueError(f"{self.name}: no option {flag} to alias")

    def flags(self) -> dict[str, str]:
        """Keyword -> flag: by parameter name and by the flag's own words (``--range`` -> ``range``)."""
        names: dict[str, str] = {}
        for param in self.params:
            long = [o for o in param.opts if o.startswith("--")]
            if long and param.name:
                names[long[0][2:].replace("-", "_")] = long[0]
                names.setdefault(param.name, long[0])
        return names

    def get_help_option(self, ctx: Any) -> Any:
        """``--help`` is a flag too: no placeholder."""
        option = super().get_help_option(ctx)
        return _plain(option) if option is not None else None

    def make_parser(self, ctx: Any) -> Any:
        """The parser, with each hidden alias feeding the same parameter as its current flag."""
        parser = super().make_parser(ctx)
        for alias, flag in self.aliases.items():
            twin = copy.copy(self._param(flag))
            twin.opts, twin.secondary_opts = [alias], []
            twin.add_to_parser(parser, ctx)
        return parser

    def invoke(self, ctx: Any) -> Any:
        """Run the command with its flags known to :func:`render_error`."""
        token = _FLAGS.set(self.flags())
        try:
            return super().invoke(ctx)
        finally:
            _FLAGS.reset(token)


def aliased(aliases: dict[str, str]) -> type[Command]:
    """A :class:`Command` class with hidden old spellings: ``{"--op": "--op-type", "-m": "--match"}``."""
    return type("AliasedCommand", (Command,), {"aliases": dict(aliases)})
