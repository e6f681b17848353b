"""The Ray executor against a real two-node cluster on 127.0.0.1: same results as in-process,
a worker killed mid-run is replaced and its items redone, and the cluster leaves nothing behind."""

from __future__ import annotations

import os
import signal

import pytest

from onnxdream.errors import OnnxDreamError
from onnxdream.executors import InProcessExecutor
from tests.ray_cluster import SlowSquare, cluster_pids, local_cluster

ray = pytest.importorskip("ray")

from onnxdream.executors.ray_executor import RayExecutor  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(nodes=2) as running:
        yield running.address
        ray.shutdown()
    assert cluster_pids(running.temp_dir) == set(), "the test cluster left processes running"


def test_results_match_the_in_process_run_and_use_both_workers(cluster):
    executor = RayExecutor(cluster, workers=2)
    remote = dict(executor.map_unordered(SlowSquare(), range(12)))
    local = dict(InProcessExecutor().map_unordered(SlowSquare(), range(12)))
    assert {k: v[0] for k, v in remote.items()} == {k: v[0] for k, v in local.items()}
    assert len({pid for _, pid in remote.values()}) == 2  # both workers took items
    assert os.getpid() not in {pid for _, pid in remote.values()}


def test_a_killed_worker_is_replaced_and_nothing_is_lost_or_duplicated(cluster):
    executor = RayExecutor(cluster, workers=2)
    seen: list[int] = []
    for n, (item, (square, _)) in enumerate(executor.map_unordered(SlowSquare(), range(16))):
        assert square == item * item
        seen.append(item)
        if n == 2:
            os.kill(executor.worker_pids()[0], signal.SIGKILL)
    assert sorted(seen) == list(range(16))


def test_an_item_error_reaches_the_driver_as_itself(cluster):
    executor = RayExecutor(cluster, workers=1)
    with pytest.raises(OnnxDreamError, match=r"^item -1: negative$"):
        dict(executor.map_unordered(SlowSquare(), [1, -1, 2]))


def test_a_bad_address_is_one_line_without_waiting():
    with pytest.raises(OnnxDreamError, match=r"^--ray 127\.0\.0\.1:1: no Ray cluster answers there"):
        RayExecutor("127.0.0.1:1", workers=1)
