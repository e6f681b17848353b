"""The in-process executor: one setup per job, results per item, early stop stops the work."""

from __future__ import annotations

from onnxdream.executors import Executor, InProcessExecutor, Job


class Square:
    def __init__(self) -> None:
        self.setups = 0
        self.ran: list[int] = []

    def setup(self) -> None:
        self.setups += 1

    def run(self, item: int) -> int:
        self.ran.append(item)
        return item * item


def test_in_process_runs_every_item_with_one_setup():
    job = Square()
    executor: Executor = InProcessExecutor()
    assert isinstance(job, Job)
    assert dict(executor.map_unordered(job, range(5))) == {0: 0, 1: 1, 2: 4, 3: 9, 4: 16}
    assert dict(executor.map_unordered(job, [7])) == {7: 49}
    assert job.setups == 1


def test_closing_the_iterator_cancels_what_is_left():
    job = Square()
    results = InProcessExecutor().map_unordered(job, range(100))
    assert next(results) == (0, 0) and next(results) == (1, 1)
    results.close()
    assert job.ran == [0, 1]


def test_every_new_job_is_set_up_even_when_a_finished_one_is_gone():
    """A finished job's id may be reused by the next object: the executor must not mistake it."""
    executor = InProcessExecutor()
    for _ in range(20):
        job = Square()
        assert dict(executor.map_unordered(job, [3])) == {3: 9}
        assert job.setups == 1
        del job
