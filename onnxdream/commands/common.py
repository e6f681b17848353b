"""What every command shares: error handling, the stderr console, JSON output, common options."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console

from onnxdream.errors import OnnxDreamError

err_console = Console(stderr=True, soft_wrap=True)
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
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


# Shared by every command that runs a model (values mirror onnxdream.runtime.DEVICES/OPTIMIZATIONS;
# kept literal so that importing the CLI does not import onnxruntime).
DeviceOption = Annotated[
    Literal["auto", "cpu", "cuda"],
    typer.Option(
        "--device",
        help="Where ONNX Runtime runs: auto (CUDA when its provider really loads, else CPU), cpu, cuda.",
    ),
]
OrtOptOption = Annotated[
    Literal["all", "extended", "basic", "none"],
    typer.Option(
        "--ort-opt",
        help="ONNX Runtime graph optimisation level; 'none' computes every intermediate as in the graph.",
    ),
]


def warn(message: str) -> None:
    """One warning line on stderr (e.g. an option that will be ignored)."""
    err_console.print(f"[bold yellow]warning:[/] {message}", highlight=False)
