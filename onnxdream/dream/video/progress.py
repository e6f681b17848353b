"""A progress bar for video frames on stderr: count, frames per second and ETA."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class FrameProgress:
    """``with FrameProgress(enabled, total) as bar: bar(seconds)`` once per finished frame;
    ``label`` names the pass (``scan`` for the pieces run's first pass)."""

    def __init__(self, enabled: bool, total: int | None, label: str = "frame") -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._bar: Progress | None = None
        self._seconds = 0.0
        self._frames = 0

    def __enter__(self) -> Callable[[float], None]:
        if self.enabled:
            self._bar = Progress(
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[fps]} frames/s"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("frames", total=self.total, fps="-")
        return self.update

    def update(self, seconds: float) -> None:
        """One more frame, which took ``seconds`` of work."""
        self._seconds += seconds
        self._frames += 1
        if self._bar is not None:
            fps = self._frames / self._seconds if self._seconds > 0 else 0.0
            self._bar.update(self._task, advance=1, fps=f"{fps:.2f}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
