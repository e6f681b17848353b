"""Where batch work runs: every batch verb hands its items to an :class:`Executor`.

A verb describes its work as a :class:`Job` (a picklable object that loads what it needs once per
worker in ``setup`` and turns one item into one result in ``run``) and iterates the results as
they finish. The driver, not the workers, writes every output, so outputs stay atomic and
resumable whatever runs the items. :class:`InProcessExecutor` is the default.
"""

from __future__ import annotations

from onnxdream.executors.base import Executor, Job
from onnxdream.executors.local import InProcessExecutor

__all__ = ["Executor", "InProcessExecutor", "Job"]
