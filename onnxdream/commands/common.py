"""What every command shares: error handling, the stderr console, JSON output, common options."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from onnxdream.commands.command import render_error
from onnxdream.errors import OnnxDreamError, OptionError, first_line

if TYPE_CHECKING:
    from onnxdream.dream.engine import Dreamer
    from onnxdream.model import Model

err_console = Console(stderr=True, soft_wrap=True)
"""Logs, tables meant for people and progress go to stderr when ``--json`` owns stdout."""
out_console = Console()

F = TypeVar("F", bound=Callable[..., Any])


EXIT_CODES = (
    "Exit codes: 0 success; 1 a check found a difference; 2 bad input or an output that cannot be "
    "written (one line naming the file, node, layer or flag); 3 an internal error (one line and where "
    "the full traceback was saved; ONNXDREAM_DEBUG=1 prints it); 128+N stopped by signal N (no "
    "partial output is left)."
)
"""The exit-code contract, shown in ``onnxdream --help``."""

DEBUG_ENV = "ONNXDREAM_DEBUG"
"""Set to 1 to print the full traceback of an internal error instead of saving it to a file."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C so that every ``finally`` cleans up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP unwind the command (temp files removed) instead of killing it."""
    signals = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    for signum in signals:
        signal.signal(signum, _interrupt)
    if hasattr(signal, "pthread_sigmask"):
        # Signals the parent blocked stay blocked across exec: they would wait forever.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


def _internal_error(exc: BaseException) -> None:
    """Say one line about a bug; the traceback goes to stderr (debug) or a file under the temp dir."""
    text = "".join(traceback.format_exception(exc))
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        sys.stderr.write(text)
        err_console.print(f"[bold red]internal error:[/] {first_line(exc)}", highlight=False)
        return
    try:
        fd, name = tempfile.mkstemp(prefix="onnxdream-traceback-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        where = f"traceback saved to {name}"
    except OSError:
        where = f"set {DEBUG_ENV}=1 to see the traceback"
    err_console.print(
        f"[bold red]internal error:[/] {type(exc).__name__}: {first_line(exc)} ({where}; please report it)",
        highlight=False,
    )


def guarded(func: F) -> F:
    """The one error contract of every command.

    ``OnnxDreamError``: its message on one line (options named by their flags) and its exit code
    (2, or 1 for a mismatch);
    an ``OSError`` about a file: that file and the reason, exit 2; a signal (Ctrl-C, or SIGTERM
    and SIGHUP once :func:`install_signal_handlers` ran): one line, exit 128+N;
    anything else is a bug: one ``internal error:`` line, exit 3, never a raw traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except (Interrupted, KeyboardInterrupt) as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            name = signal.Signals(signum).name
            err_console.print(
                f"[bold red]interrupted[/] by {name} (unfinished outputs removed)", highlight=False
            )
            raise typer.Exit(128 + signum) from None
        except OnnxDreamError as exc:
            text = render_error(exc) if isinstance(exc, OptionError) else str(exc)
            err_console.print(f"[bold red]error:[/] {text}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            if exc.filename is None:
                _internal_error(exc)
                raise typer.Exit(3) from None
            err_console.print(f"[bold red]error:[/] {exc.filename}: {exc.strerror or exc}", highlight=False)
            raise typer.Exit(2) from None
        except Exception as exc:
            _internal_error(exc)
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    """One warning line on stderr (e.g. an option that will be ignored)."""
    err_console.print(f"[bold yellow]warning:[/] {message}", highlight=False)


def open_model_with_status(spec: str | None, trust_pickle: bool) -> Model:
    """The model a MODEL or ``--model`` value names (default: the built-in one), behind a status
    line: the built-in model is exported on first use (several seconds), then read from its cache."""
    from onnxdream.model import open_model
    from onnxdream.zoo import BUILTIN

    with err_console.status("loading the model"):
        return open_model(BUILTIN if spec is None else spec, trust_pickle=trust_pickle)


def open_dreamer_from_flags(
    model: Model,
    device: str,
    mean: str | None,
    std: str | None,
    value_range: str | None,
    channel_order: str | None,
    layout: str | None = None,
) -> Dreamer:
    """``open_dreamer`` with the preprocessing flags parsed, behind a status line."""
    from onnxdream.commands.options import float_list
    from onnxdream.dream.source import open_dreamer

    with err_console.status("building the model's torch mirror"):
        return open_dreamer(
            model,
            device,
            float_list(mean, "--mean"),
            float_list(std, "--std"),
            float_list(value_range, "--range"),
            channel_order,
            layout=layout,
        )
