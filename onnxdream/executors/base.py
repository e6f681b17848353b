"""The executor interface: submit a job's items, get results as they finish, cancel the rest."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Job(Protocol):
    """One kind of work: ``setup`` once per worker (load the model), then ``run`` per item.

    A job is pickled to reach remote workers: keep it to plain settings and paths, and build
    heavy state (models, sessions) in ``setup``.
    """

    def setup(self) -> None:
        """Load what every item needs (called once per worker, before its first item)."""

    def run(self, item: Any) -> Any:
        """The result of one item (picklable; the driver writes it)."""


class Executor(Protocol):
    """Runs a job's items somewhere and yields ``(item, result)`` pairs as they finish."""

    def map_unordered(self, job: Job, items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Results in completion order; closing the iterator early cancels what is left."""

    def close(self) -> None:
        """Release workers (idempotent)."""
