"""Benchmark: a folder dream in-process against the same items on a Ray cluster with 1 and 2 workers.

    python -m tools.bench_ray [--items 16] [--size 96x128] [--steps 4] [--ray ADDRESS]

Without ``--ray`` a throwaway two-node cluster is started on 127.0.0.1 (tests/ray_cluster.py, one
CPU per node) and stopped at the end. The job is the folder dream's own (:class:`FolderDreamJob`:
tiny test CNN, 2 octaves), every run at one torch thread per process so that two workers can use
two cores. Printed in one run: items per minute in-process and with 1 and 2 workers (steady state,
after each worker's model load, and wall time including it), the 2-worker speedup, and Ray's
per-item overhead (1 worker's seconds per item minus in-process seconds per item, and the round
trip of an item that does nothing).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from typing import Any

import torch

from onnxdream.dream import DreamOptions, parse_spec
from onnxdream.dream.folder_job import DreamerRecipe, FolderDreamJob
from onnxdream.executors import InProcessExecutor
from onnxdream.model import Model
from tests.dream_helpers import pattern, tiny_onnx


class Nothing:
    """An item that does nothing: what is left is the executor's own cost."""

    def setup(self) -> None:
        pass

    def run(self, item: Any) -> Any:
        return item


def _timed(executor: Any, job: Any, items: Iterable[Any]) -> tuple[float, float, int]:
    """(wall seconds, seconds after the first result, items) of one run."""
    began = time.perf_counter()
    first = None
    count = 0
    for _ in executor.map_unordered(job, items):
        count += 1
        first = first or time.perf_counter()
    end = time.perf_counter()
    return end - began, end - (first or end), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--size", default="96x128", help="HxW of each image")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--ray", default=None, help="a running cluster (default: start a local one)")
    args = parser.parse_args()
    height, width = map(int, args.size.split("x"))
    torch.set_num_threads(1)
    recipe = DreamerRecipe.of(Model(tiny_onnx(), "tiny"), device="cpu", threads=1)
    specs = [parse_spec("block2", lambda _n: True)]
    job = FolderDreamJob(recipe, specs, DreamOptions(octaves=2, steps=args.steps, lr=0.05))
    items = [(f"img{n}", pattern(height, width, seed=n)) for n in range(args.items)]

    rows: dict[str, tuple[float, float, int]] = {"in-process": _timed(InProcessExecutor(), job, items)}
    nothing_local = _timed(InProcessExecutor(), Nothing(), range(200))
    if args.ray:
        rows.update(_on_ray(args.ray, job, items))
        nothing_ray = _nothing_on_ray(args.ray)
    else:
        from tests.ray_cluster import local_cluster

        with local_cluster(nodes=2) as cluster:
            rows.update(_on_ray(cluster.address, job, items))
            nothing_ray = _nothing_on_ray(cluster.address)
            import ray

            ray.shutdown()

    print(f"{args.items} images {height}x{width}, 2 octaves x {args.steps} steps, tiny CNN, 1 thread each")
    print(f"{'run':<12} {'items/min':>10} {'incl. load':>11} {'s/item':>8}")
    for name, (wall, steady, count) in rows.items():
        per_item = steady / max(1, count - 1)
        print(f"{name:<12} {60 / per_item:>10.1f} {60 * count / wall:>11.1f} {per_item:>8.3f}")
    local = rows["in-process"][1] / (rows["in-process"][2] - 1)
    one = rows["ray 1"][1] / (rows["ray 1"][2] - 1)
    two = rows["ray 2"][1] / (rows["ray 2"][2] - 1)
    print(f"speedup 2 workers / 1 worker: {one / two:.2f}x; ray 1 worker / in-process: {local / one:.2f}x")
    print(f"Ray overhead per dream item: {1000 * (one - local):+.1f} ms")
    print(
        f"round trip of an empty item: ray {1000 * nothing_ray:.2f} ms, "
        f"in-process {1000 * nothing_local[0] / nothing_local[2]:.4f} ms"
    )


def _on_ray(address: str, job: Any, items: list[Any]) -> dict[str, tuple[float, float, int]]:
    from onnxdream.executors.ray_executor import RayExecutor

    return {f"ray {n}": _timed(RayExecutor(address, workers=n), job, items) for n in (1, 2)}


def _nothing_on_ray(address: str, count: int = 200) -> float:
    """Seconds per item of a job that does nothing, on one worker (after it started)."""
    from onnxdream.executors.ray_executor import RayExecutor

    _, steady, done = _timed(RayExecutor(address, workers=1), Nothing(), range(count))
    return steady / (done - 1)


if __name__ == "__main__":
    main()
