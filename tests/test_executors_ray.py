"""The Ray executor against a real two-node cluster on 127.0.0.1: same results as in-process,
a worker killed mid-run is replaced and its items redone, and the cluster leaves nothing behind."""

from __future__ import annotations

import json
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


# The folder dream on the same cluster (one cluster per module keeps CI time down).

FAST = ["--octaves", "2", "--steps", "3", "--lr", "0.05", "--quiet", "--device", "cpu", "--layer", "block2"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A tiny model and a folder of six small images, one of them too small to dream (skipped)."""
    import onnx

    from onnxdream.inputs.images import to_pil
    from tests.dream_helpers import pattern, tiny_onnx

    root = tmp_path_factory.mktemp("ray_dream")
    onnx.save(tiny_onnx(), root / "tiny.onnx")
    (root / "in").mkdir()
    for n in range(5):
        to_pil(pattern(40 + 4 * n, 56, seed=n)).save(root / "in" / f"p{n}.png")
    to_pil(pattern(8, 8, seed=9)).save(root / "in" / "small.png")
    return root


def _pixels(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _local_run(photos, out):
    from typer.testing import CliRunner

    from onnxdream.cli import app

    args = ["dream", str(photos / "in"), str(out), "--model", str(photos / "tiny.onnx"), *FAST]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def local_outputs(photos):
    result = _local_run(photos, photos / "local")
    assert result.exit_code == 0, result.output
    return _pixels(photos / "local")


def test_folder_dream_on_ray_writes_the_local_run_bit_for_bit(cluster, photos, local_outputs, tmp_path):
    from typer.testing import CliRunner

    from onnxdream.cli import app

    out = tmp_path / "out"
    args = ["dream", str(photos / "in"), str(out), "--model", str(photos / "tiny.onnx"), *FAST]
    result = CliRunner().invoke(app, [*args, "--ray", cluster, "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "small.png: image is 8x8, too small for the target layers" in " ".join(result.output.split())
    assert sorted(local_outputs) == [f"p{n}.png" for n in range(5)]
    assert _pixels(out) == local_outputs


def _dream_folder_on(executor, photos, out, on_result):
    import onnx

    from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
    from onnxdream.dream.batch import dream_folder
    from onnxdream.dream.folder_job import DreamerRecipe
    from onnxdream.model import open_model

    model = open_model(str(photos / "tiny.onnx"))
    assert isinstance(model.proto, onnx.ModelProto)
    recipe = DreamerRecipe.of(model, device="cpu", threads=__import__("torch").get_num_threads())
    return dream_folder(
        open_dreamer(model, "cpu"),
        photos / "in",
        out,
        [parse_spec("block2", lambda _n: True)],
        DreamOptions(octaves=2, steps=3, lr=0.05),
        max_size=None,
        max_pixels=0,
        on_result=on_result,
        on_skip=lambda _message: None,
        executor=executor,
        recipe=recipe,
    )


def test_a_worker_killed_mid_folder_still_gives_the_whole_identical_result(
    cluster, photos, local_outputs, tmp_path
):
    executor = RayExecutor(cluster, workers=2)
    killed: list[int] = []

    def kill_once(_result, _target):
        if not killed:
            killed.append(executor.worker_pids()[0])
            os.kill(killed[0], signal.SIGKILL)

    assert _dream_folder_on(executor, photos, tmp_path / "out", kill_once) == 5
    assert killed and _pixels(tmp_path / "out") == local_outputs


def test_ctrl_c_on_the_driver_stops_the_workers_and_leaves_only_finished_outputs(cluster, photos, tmp_path):
    import time

    executor = RayExecutor(cluster, workers=2)
    pids: list[int] = []

    def interrupt(_result, _target):
        pids.extend(executor.worker_pids())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _dream_folder_on(executor, photos, tmp_path / "out", interrupt)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 1 and written[0].startswith("p") and written[0].endswith(".png")
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids), "workers still running after Ctrl-C"


def test_sigterm_on_a_ray_driver_unwinds_like_ctrl_c(cluster, photos, tmp_path):
    """ray.init installs its own SIGTERM handler (exit 1, nothing said): the command keeps its own,
    so a SIGTERM on the driver says so, exits 128 + 15 and leaves only finished outputs."""
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    slow = [arg if arg != "3" else "400" for arg in FAST]  # --steps 400: still dreaming when killed
    args = ["dream", str(photos / "in"), str(out), "--model", str(photos / "tiny.onnx"), *slow]
    driver = subprocess.Popen(
        [sys.executable, "-m", "onnxdream", *args, "--ray", cluster, "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out.exists() and any(out.glob("*.png"))) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.communicate()[1]
        time.sleep(0.05)
    driver.send_signal(signal.SIGTERM)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted by SIGTERM" in stderr
    written = [p.name for p in out.iterdir()]
    assert 1 <= len(written) < 5 and all(name.endswith(".png") for name in written)


def test_video_on_ray_split_at_a_scene_cut_writes_the_sequential_frames(cluster, photos, tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    import numpy as np
    from typer.testing import CliRunner

    from onnxdream.cli import app
    from tests.video_helpers import panning_frames, write_clip

    first = panning_frames(4)
    second = [np.ascontiguousarray(f[::-1, ::-1, ::-1]) for f in panning_frames(4, speed=3)]
    clip = write_clip(tmp_path / "cut.mp4", first + second, audio=False)
    args = ["dream", str(clip), "--model", str(photos / "tiny.onnx"), *FAST, "--octaves", "1"]
    local = CliRunner().invoke(app, [*args[:2], str(tmp_path / "local/"), *args[2:]])
    assert local.exit_code == 0, local.output
    remote = CliRunner().invoke(
        app, [*args[:2], str(tmp_path / "remote/"), *args[2:], "--ray", cluster, "--workers", "2"]
    )
    assert remote.exit_code == 0, remote.output
    assert len(_pixels(tmp_path / "remote")) == 8
    assert _pixels(tmp_path / "remote") == _pixels(tmp_path / "local")


# The microscope on the same cluster: every item and page as the local run writes them.


@pytest.fixture(scope="module")
def microscope_inputs(tmp_path_factory):
    """The tiny CNN with markup in its names and four images plus a junk file."""
    from tests.microscope_helpers import hostile_model, image_folder

    root = tmp_path_factory.mktemp("ray_microscope")
    return hostile_model(root / "hostile.onnx"), image_folder(root / "images", count=4)


MICROSCOPE_LAYERS = ["--layer", "stem.0", "--layer", "block1.1"]


def _site(site) -> dict[str, bytes]:
    """Every file of a site, its item store included."""
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def _microscope(model, images, out, *extra):
    from typer.testing import CliRunner

    from onnxdream.cli import app
    from tests.microscope_helpers import QUICK

    args = ["microscope", str(model), "-o", str(out), "--images", str(images), *MICROSCOPE_LAYERS]
    result = CliRunner().invoke(app, [*args, *QUICK, *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def local_site(microscope_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("local_site") / "site"
    report = _microscope(*microscope_inputs, out)
    return report, _site(out)


def test_microscope_on_ray_writes_the_local_site_and_items_bit_for_bit(
    cluster, microscope_inputs, local_site, tmp_path
):
    report, local_files = local_site
    remote = _microscope(*microscope_inputs, tmp_path / "site", "--ray", cluster, "--workers", "2")
    assert remote["items"] == report["items"] and remote["items"]["cached"] == 0
    assert remote["images"] == 4 and remote["skipped_images"] == report["skipped_images"] != []
    assert any(name.endswith(".visual.npz") for name in local_files)
    assert _site(tmp_path / "site") == local_files


def test_a_worker_killed_mid_microscope_still_gives_the_identical_site(
    cluster, microscope_inputs, local_site, tmp_path
):
    from onnxdream.microscope import build_site
    from tests.microscope_helpers import quick_options

    model, images = microscope_inputs
    executor = RayExecutor(cluster, workers=2)
    killed: list[int] = []

    def kill_once(kind: str, count: int) -> None:
        if kind == "visual" and count and not killed:
            killed.append(executor.worker_pids()[0])
            os.kill(killed[0], signal.SIGKILL)

    options = quick_options()
    result = build_site(
        str(model),
        tmp_path / "site",
        images=images,
        layers=["stem.0", "block1.1"],
        options=options,
        executor=executor,
        progress=kill_once,
    )
    assert killed and result.errors == []
    assert _site(tmp_path / "site") == local_site[1]
