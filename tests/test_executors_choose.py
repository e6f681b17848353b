"""``--ray``, ``--workers`` and ``--gpus-per-worker``: in-process by default, one line for a misuse."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.errors import OptionError
from onnxdream.executors import InProcessExecutor
from onnxdream.executors.choose import open_executor

runner = CliRunner()


def test_without_ray_the_work_runs_in_process():
    assert isinstance(open_executor(None), InProcessExecutor)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ray": None, "workers": 2}, r"^workers runs on a Ray cluster: give ray ADDRESS too$"),
        ({"ray": None, "gpus": 1.0}, r"^gpus runs on a Ray cluster"),
        ({"ray": "127.0.0.1:1", "workers": 0}, r"^workers must be at least 1, got 0$"),
        ({"ray": "127.0.0.1:1", "gpus": -1.0}, r"^gpus must be 0 or more, got -1.0$"),
    ],
)
def test_bad_combinations_are_refused_before_joining_a_cluster(kwargs, message):
    with pytest.raises(OptionError, match=message):
        open_executor(**kwargs)


def test_the_cli_names_the_flags(tmp_path):
    (tmp_path / "in").mkdir()
    result = runner.invoke(app, ["dream", str(tmp_path / "in"), str(tmp_path / "out"), "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers runs on a Ray cluster: give --ray ADDRESS too" in " ".join(result.output.split())


def test_ray_on_a_single_image_is_refused(tmp_path):
    result = runner.invoke(app, ["dream", "--demo", str(tmp_path / "o.png"), "--ray", "auto"])
    assert result.exit_code == 2
    assert "--ray runs a folder of images or a video" in " ".join(result.output.split())
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2"], "--workers runs on a Ray cluster: give --ray ADDRESS too"),
        (["--gpus-per-worker", "1"], "--gpus-per-worker runs on a Ray cluster: give --ray ADDRESS too"),
        (["--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: no Ray cluster answers there"),
    ],
    ids=["workers", "gpus", "no-cluster"],
)
def test_microscope_refuses_a_misused_cluster_flag_before_writing_anything(tmp_path, extra, message):
    if extra[0] == "--ray":
        pytest.importorskip("ray")
    result = runner.invoke(app, ["microscope", "zoo:efficientnet-lite0", "-o", str(tmp_path / "s"), *extra])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "s").exists()
