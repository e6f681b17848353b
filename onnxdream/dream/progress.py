"""A rich progress bar on stderr (where, step count, objective, ETA), or nothing when disabled."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class ProgressBar:
    """``with ProgressBar(enabled, total, label) as bar: bar(where, objective)`` once per step."""

    def __init__(self, enabled: bool, total: int, label: str = "octave") -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._bar: Progress | None = None

    def __enter__(self) -> Callable[[str, float], None]:
        if self.enabled:
            self._bar = Progress(
                TextColumn(f"{self.label} " + "{task.fields[where]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("objective {task.fields[objective]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, where="-", objective="-")
        return self.update

    def update(self, where: str, objective: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, where=where, objective=f"{objective:.4g}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
