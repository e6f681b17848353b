"""The default executor: items run one after another in this process."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from onnxdream.executors.base import Job


class InProcessExecutor:
    """Runs every item here, in order; the job is set up once, on the first item."""

    def __init__(self) -> None:
        # Jobs set up here, kept alive so that a later job cannot reuse a finished one's id.
        self._ready: dict[int, Job] = {}

    def map_unordered(self, job: Job, items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, job.run(item))`` in order; stopping the loop stops the work."""
        for item in items:
            if id(job) not in self._ready:
                job.setup()
                self._ready[id(job)] = job
            yield item, job.run(item)

    def close(self) -> None:
        self._ready.clear()
