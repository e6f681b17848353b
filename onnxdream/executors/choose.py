"""From the batch verbs' ``--ray``, ``--workers`` and ``--gpus-per-worker`` flags to an executor."""

from __future__ import annotations

from onnxdream.errors import OptionError
from onnxdream.executors.base import Executor
from onnxdream.executors.local import InProcessExecutor


def open_executor(
    ray: str | None, workers: int | None = None, gpus: float | None = None, device: str = "auto"
) -> Executor:
    """In-process without ``ray``; else a :class:`RayExecutor` joined to the cluster at ``ray``.

    ``gpus`` per worker defaults to 1 when the cluster has GPUs and ``device`` is not ``cpu``,
    else 0 (fractions share a GPU between workers).

    Raises:
        OptionError: ``--workers`` or ``--gpus-per-worker`` without ``--ray``, or out of range.
        OnnxDreamError: Ray is not installed, or no cluster answers at ``ray``.
    """
    if ray is None:
        for value, flag in ((workers, "workers"), (gpus, "gpus")):
            if value is not None:
                raise OptionError(f"{{{flag}}} runs on a Ray cluster: give {{ray}} ADDRESS too", flag, "ray")
        return InProcessExecutor()
    if workers is not None and workers < 1:
        raise OptionError(f"{{workers}} must be at least 1, got {workers}", "workers")
    if gpus is not None and gpus < 0:
        raise OptionError(f"{{gpus}} must be 0 or more, got {gpus}", "gpus")
    from onnxdream.executors.ray_executor import RayExecutor, cluster_gpus, connect

    connect(ray)
    if gpus is None:
        gpus = 1.0 if device != "cpu" and cluster_gpus() > 0 else 0.0
    return RayExecutor(ray, workers=workers, gpus=gpus)
