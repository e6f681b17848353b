"""Items on a Ray cluster: one actor per worker loads the job once, the driver keeps results.

Each worker is an actor that calls ``job.setup()`` once (the model is loaded once per worker, not
per item) and then ``job.run(item)`` for the items it is given. Ray restarts an actor whose
process dies and retries its unfinished calls (``max_restarts`` / ``max_task_retries``); an item
whose actor is lost for good is handed to another worker. Results come back to the driver, which
writes every output, so outputs stay atomic and resumable as in a local run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from onnxdream.errors import OnnxDreamError, first_line
from onnxdream.executors.base import Job

RESTARTS = 3
"""How often Ray restarts a worker whose process died (and retries the calls it was running)."""

IN_FLIGHT_PER_WORKER = 2
"""Items queued on each worker: enough to keep it busy, few enough to bound driver memory."""

_END = object()


def _ray():
    try:
        import ray
    except ImportError:
        raise OnnxDreamError('--ray needs Ray: pip install "onnxdream[ray]"') from None
    return ray


class _Worker:
    """The actor body: set the job up once, then run items."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.job.setup()

    def run(self, item: Any) -> Any:
        return self.job.run(item)

    def pid(self) -> int:
        return os.getpid()


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a ``host:port`` nobody answers at (``ray.init`` would wait for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise OnnxDreamError(
            f"--ray {address}: no Ray cluster answers there ({exc.strerror or first_line(exc)})"
        ) from None


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``auto``, ``host:port`` or ``ray://host:port``).

    Raises:
        OnnxDreamError: Ray is not installed, or no cluster answers at ``address``.
    """
    ray = _ray()
    _reachable(address)
    if ray.is_initialized():
        return
    # ray.init installs its own SIGTERM handler (exit 1, no cleanup): keep the process's, so that a
    # SIGTERM still unwinds the command, removes its unfinished outputs and exits 143.
    handler = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=False)
    except Exception as exc:  # Ray raises ConnectionError, ValueError, RuntimeError... for a bad address
        raise OnnxDreamError(f"--ray {address}: cannot join a Ray cluster ({first_line(exc)})") from None
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def _signals_as_raised() -> Iterator[None]:
    """A signal handler's exception (SIGTERM unwinding the command) raised while Ray's C++ code
    checks signals comes back wrapped in a SystemError: raise the original instead."""
    try:
        yield
    except SystemError as exc:
        if isinstance(exc.__cause__, BaseException) and not isinstance(exc.__cause__, Exception):
            raise exc.__cause__ from None
        raise


def cluster_gpus() -> float:
    """How many GPUs the joined cluster has in all."""
    return float(_ray().cluster_resources().get("GPU", 0))


class RayExecutor:
    """Runs items on ``workers`` actors of the cluster at ``address`` (each with ``gpus`` GPUs).

    ``workers=None`` starts one worker per CPU the cluster has (at most 64).
    """

    def __init__(self, address: str, *, workers: int | None = None, gpus: float = 0.0) -> None:
        connect(address)
        ray = _ray()
        if workers is None:
            workers = max(1, min(64, int(ray.cluster_resources().get("CPU", 1))))
        if workers < 1:
            raise OnnxDreamError(f"workers must be at least 1, got {workers}")
        self.workers, self.gpus = workers, gpus
        self._actor_class = ray.remote(_Worker).options(
            num_cpus=1, num_gpus=gpus, max_restarts=RESTARTS, max_task_retries=RESTARTS
        )
        self._actors: list[Any] = []

    def worker_pids(self) -> list[int]:
        """The process id of each live worker (for monitoring, and for fault tests)."""
        ray = _ray()
        return ray.get([actor.pid.remote() for actor in self._actors])

    def _start(self, job: Job) -> None:
        self.close()
        self._actors = [self._actor_class.remote(job) for _ in range(self.workers)]

    def map_unordered(self, job: Job, items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, result)`` as items finish anywhere; closing the iterator cancels the rest.

        An exception raised by ``job.run`` is raised here as itself (the item's error, not Ray's).
        ``items`` is read lazily, a few per worker ahead: the driver holds only what is in flight.
        """
        ray = _ray()
        self._start(job)
        fresh = iter(items)
        redo: deque[Any] = deque()  # items of lost workers, handed out again first
        running: dict[Any, tuple[Any, int]] = {}  # ref -> (item, actor index)
        load = [0] * len(self._actors)
        replaced = 0
        try:
            exhausted = False
            while True:
                for index, actor in enumerate(self._actors):
                    while load[index] < IN_FLIGHT_PER_WORKER:
                        if redo:
                            item = redo.popleft()
                        else:
                            item = next(fresh, _END) if not exhausted else _END
                            if item is _END:
                                exhausted = True
                                break
                        running[actor.run.remote(item)] = (item, index)
                        load[index] += 1
                if not running:
                    break
                with _signals_as_raised():
                    done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    item, index = running.pop(ref)
                    load[index] -= 1
                    try:
                        with _signals_as_raised():
                            result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from None
                    except ray.exceptions.RayActorError as exc:
                        # The worker is gone beyond its restarts: replace it, then redo the item.
                        replaced += 1
                        if replaced > RESTARTS * len(self._actors):
                            raise OnnxDreamError(f"Ray workers keep failing: {first_line(exc)}") from None
                        self._actors[index] = self._actor_class.remote(job)
                        redo.append(item)
                        continue
                    yield item, result
        finally:
            for ref in running:
                with contextlib.suppress(Exception):  # already finished or its worker is gone
                    ray.cancel(ref)
            self.close()

    def close(self) -> None:
        """Stop this executor's workers (the cluster itself keeps running)."""
        if self._actors:
            ray = _ray()
            for actor in self._actors:
                ray.kill(actor, no_restart=True)
            self._actors = []
