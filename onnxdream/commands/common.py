"""What every command shares: error handling, the stderr console, JSON output, common options."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from onnxdream.errors import OnnxDreamError

err_console = Console(stderr=True)
"""Logs, tables meant for people and progress go to stderr when ``--json`` owns stdout."""
out_console = Console()

F = TypeVar("F", bound=Callable[..., Any])


def guarded(func: F) -> F:
    """Turn an ``OnnxDreamError`` into one line on stderr and its exit code (2 or 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OnnxDreamError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()
