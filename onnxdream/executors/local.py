"""The default executor: items run one after another in this process."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from onnxdream.executors.base import Job


class InProcessExecutor:
    """Runs every item here, in order; the job is set up once, on the first item."""

    def __init__(self) -> None:
        self._ready: set[int] = set()

    def map_unordered(self, job: Job, items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, job.run(item))`` in order; stopping the loop stops the work."""
        for item in items:
            if id(job) not in self._ready:
                job.setup()
                self._ready.add(id(job))
            yield item, job.run(item)

    def close(self) -> None:
        self._ready.clear()
