"""``onnxdream microscope``: receptive fields against torch gradients, statistics against numpy and
ONNX Runtime, cached and resumable items, names as text, bad input, and the two CI sites."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.microscope.dataset import DatasetItem, DatasetJob, prepare_image
from onnxdream.microscope.plan import layer_tree, plan_layers, slug
from onnxdream.microscope.receptive import receptive_fields
from onnxdream.microscope.stats import REDUCTIONS, summarize
from onnxdream.model import open_model
from tests.browser_helpers import browser_available, offline_page
from tests.dream_helpers import tiny_cnn, tiny_onnx
from tests.microscope_helpers import HOSTILE, QUICK, hostile_model, image_folder, quick_options

runner = CliRunner()


def reduce_batch(activations: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics the graph computes, in numpy: the independent reference."""
    flat = activations.reshape(*activations.shape[:2], -1).astype(np.float64)
    reduced = {
        "max": flat.max(axis=2),
        "argmax": flat.argmax(axis=2),
        "mean": flat.mean(axis=2),
        "active": (flat > 0).mean(axis=2),
    }
    assert set(reduced) == set(REDUCTIONS)
    return reduced


TINY_LAYERS = ["stem.0", "stem.1", HOSTILE["block1.0"], "block1.1", HOSTILE["block2.0"], "block2.1"]


def build(*args: str) -> dict:
    result = runner.invoke(app, ["microscope", *QUICK, *map(str, args)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def site_files(site: Path) -> dict[str, bytes]:
    """Every file of a site except its item store."""
    return {
        str(p.relative_to(site)): p.read_bytes()
        for p in sorted(site.rglob("*"))
        if p.is_file() and ".microscope" not in p.relative_to(site).parts
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("microscope")
    return hostile_model(root / "hostile.onnx"), image_folder(root / "images")


@pytest.fixture(scope="module")
def site(inputs, tmp_path_factory) -> tuple[Path, dict]:
    model, images = inputs
    out = tmp_path_factory.mktemp("site") / "site"
    return out, build(model, "-o", out, "--images", images)


# Receptive fields and statistics


def test_receptive_field_is_the_support_of_the_gradient():
    model = open_model(tiny_onnx())
    fields = receptive_fields(model.index, "input")
    tensor = model.index.resolve("block2.0").outputs[0]
    net = tiny_cnn()
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    y, xx = 3, 5
    net.block2[0](net.block1(net.stem(x)))[:, 2, y, xx].sum().backward()
    rows, cols = np.nonzero(x.grad.abs().sum(dim=(0, 1)).numpy())
    support = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    assert fields[tensor].size == (9.0, 9.0)
    assert fields[tensor].box(y, xx, 32, 32) == support


def test_reduce_and_summarize_match_numpy():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(5, 5, 4, 6)).astype(np.float32)
    acts[:, 1] = -1.0  # never positive: dead
    acts[:, 2] = 0.7  # the same positive value everywhere: dead
    acts[:, 3] = np.arange(5, dtype=np.float32)[:, None, None] + 0.1  # constant per image only: alive
    acts[2, 0, 3, 4] = 50.0  # image 2 is channel 0's strongest, at (3, 4)
    parts = [reduce_batch(acts[:2]), reduce_batch(acts[2:])]
    stats = summarize(parts, width=6, top_k=2)
    assert stats.images == 5
    assert stats.dead == [1, 2]
    assert stats.mean == pytest.approx(float(acts.mean()), rel=1e-6)
    assert stats.sparsity == pytest.approx(float((acts <= 0).mean()), rel=1e-6)
    assert stats.channel_max == pytest.approx(acts.max(axis=(0, 2, 3)).tolist())
    best = stats.top[0][0]
    assert (best.image, best.y, best.x, best.value) == (2, 3, 4, 50.0)
    second = int(np.argsort(-acts[:, 0].max(axis=(1, 2)))[1])
    assert stats.top[0][1].image == second


def test_dataset_pass_matches_onnxruntime_on_each_image(inputs, tmp_path):
    """Batched, cut and exposed, the pass gives what the full model gives one image at a time."""
    from onnxdream.inputs.normalize import preprocess_for
    from onnxdream.runtime import make_session
    from onnxdream.surgery import expose

    model_path, images = inputs
    paths = sorted(str(p) for p in images.glob("pattern*"))
    job = DatasetJob(str(model_path), (32, 32), "cpu")
    job.setup()
    name = HOSTILE["block2.0"]
    tensor = open_model(model_path).index.resolve(name).outputs[0]
    result = job.run(DatasetItem(0, (*paths, str(images / "notes.jpg")), ((name, tensor),)))
    assert result["valid"].tolist() == [True] * len(paths) + [False]
    assert job._session((tensor,))[1], "the cut model should take a batch"
    exposed = expose(str(model_path), [name]).model
    session = make_session(exposed, "cpu", "none")
    preprocess = preprocess_for(exposed)
    for k, path in enumerate(paths):
        pixels = torch.from_numpy(prepare_image(path, (32, 32), 0)).permute(2, 0, 1)[None]
        feed = preprocess.to_model(pixels).numpy()
        alone = reduce_batch(session.run({"input": feed}, [tensor])[tensor])
        for key in ("max", "mean", "active"):
            np.testing.assert_allclose(result["layers"][name][key][k], alone[key][0], rtol=1e-4, atol=1e-5)
        assert result["layers"][name]["argmax"][k].tolist() == alone["argmax"][0].tolist()
    assert result["layers"][name]["map_size"].tolist() == [8, 8]


def test_activations_of_a_requested_layer_reuse_its_reductions():
    """A Relu, or a Clip that keeps the sign, of another requested layer takes max, peak position
    and fraction > 0 from that layer's statistics; every statistic still equals numpy's on the
    activations, and where a saturating Clip ties, its position is still one of its peaks."""
    from onnx import helper, numpy_helper

    from onnxdream.microscope.reductions import output_name, statistics_model
    from onnxdream.runtime import make_session
    from onnxdream.surgery import cut_model

    model = tiny_onnx()
    bounds = {"block1.1": (-0.5, 0.05), "block2.1": (0.02, 6.0)}  # saturating (shared), lower bound > 0 (not)
    for node in model.graph.node:
        if node.name in bounds:
            low, high = (
                numpy_helper.from_array(np.array(v, np.float32), f"{node.name}/{k}")
                for k, v in zip("lh", bounds[node.name], strict=True)
            )
            model.graph.initializer.extend([low, high])
            node.CopyFrom(
                helper.make_node("Clip", [node.input[0], low.name, high.name], node.output, name=node.name)
            )
    nodes = {n.name: n for n in model.graph.node}
    bias = next(t for t in model.graph.initializer if t.name == nodes["stem.0"].input[2])
    dead = numpy_helper.to_array(bias).copy()
    dead[0] = -100.0  # stem.1 (Relu) is 0 everywhere on channel 0: its peak is the first position
    bias.CopyFrom(numpy_helper.from_array(dead, bias.name))
    names = ["stem.0", "stem.1", "block1.0", "block1.1", "block2.0", "block2.1"]
    tensors = [nodes[n].output[0] for n in names]
    stats = statistics_model(model, tensors)
    shared = {n.output[0] for n in stats.graph.node if n.op_type == "Identity"}
    assert shared == {output_name(1, "active"), output_name(3, "active")}
    assert sum(n.op_type == "TopK" for n in stats.graph.node) == 4, "shared peaks come from their inputs'"
    torch.manual_seed(0)
    feed = {"input": torch.randn(3, 3, 32, 32).numpy()}
    got = make_session(stats, "cpu", "all").run(feed)
    activations = make_session(cut_model(model, tensors), "cpu", "none").run(feed, tensors)
    for k, tensor in enumerate(tensors):
        want = reduce_batch(activations[tensor])
        for key in ("max", "mean", "active"):
            np.testing.assert_allclose(
                got[output_name(k, key)], want[key], rtol=1e-5, atol=1e-6, err_msg=f"{names[k]} {key}"
            )
        flat = activations[tensor].reshape(*want["max"].shape, -1)
        at_peak = np.take_along_axis(flat, got[output_name(k, "argmax")][..., None], axis=2)[..., 0]
        assert (at_peak == want["max"]).all(), f"{names[k]}: the position is not a peak"
        if k != 3:
            assert got[output_name(k, "argmax")].tolist() == want["argmax"].tolist(), names[k]
    saturated = (activations[tensors[3]] == 0.05).reshape(3, 4, -1).sum(axis=2)
    assert (saturated > 1).any(), "the saturating Clip should tie at its upper bound"
    # Among the tied positions, the saturating Clip's peak is its input's: the strongest input.
    assert got[output_name(3, "argmax")].tolist() == got[output_name(2, "argmax")].tolist()
    assert got[output_name(1, "argmax")][:, 0].tolist() == [0, 0, 0]
    assert got[output_name(0, "argmax")][:, 0].tolist() != [0, 0, 0]


def test_tree_nests_scopes_and_slugs_are_safe():
    model = open_model(tiny_onnx())
    layers, _ = plan_layers(model, "input")
    assert [layer.name for layer in layers] == [
        "stem.0",
        "stem.1",
        "block1.0",
        "block1.1",
        "block2.0",
        "block2.1",
    ]
    tree = layer_tree(layers)
    assert [n.name for n in tree] == ["stem", "block1", "block2"]
    assert [(n.label, n.layer.name) for n in tree[1].children] == [("0", "block1.0"), ("1", "block1.1")]
    names = [*HOSTILE.values(), "a/b", "a_b", "../../etc"]
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(names)
    assert all(
        set(s) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") for s in slugs
    )
    assert not any(s.startswith(".") for s in slugs)


# A site: items, reruns, names as text


def test_site_lists_every_layer_and_counts_its_items(site):
    out, summary = site
    assert summary["layers"] == TINY_LAYERS
    assert summary["images"] == 5
    assert [Path(line.split(":")[0]).name for line in summary["skipped_images"]] == ["notes.jpg"]
    kinds = summary["items"]["by_kind"]
    # 6 images in batches of 2; 3 channels per layer in batches of 2; index + layer + channel pages.
    assert kinds["dataset"] == {"total": 3, "computed": 3}
    assert kinds["visual"] == {"total": 12, "computed": 12}
    assert kinds["dream"] == {"total": 6, "computed": 6}
    assert kinds["page"] == {"total": 1 + 6 + 18, "computed": 25}
    assert summary["errors"] == []
    files = site_files(out)
    assert "index.html" in files and "assets/site.js" in files
    assert sum(name.endswith(".html") for name in files) == 25
    channel_pages = [n for n in files if n.startswith("channels/")]
    assert all(f"img/{n.split('/')[1]}/vis-{Path(n).stem}.png" in files for n in channel_pages)


def test_rerun_computes_nothing_and_changes_nothing(site, inputs):
    out, _ = site
    model, images = inputs
    before = site_files(out)
    summary = build(model, "-o", out, "--images", images)
    assert summary["items"]["computed"] == 0
    assert summary["items"]["cached"] == summary["items"]["total"] == 3 + 12 + 6 + 25
    assert site_files(out) == before


def test_an_added_layer_adds_its_items_only(site, inputs, tmp_path):
    out, _ = site
    copy = tmp_path / "site"
    shutil.copytree(out, copy)
    model, images = inputs
    layers = [arg for name in TINY_LAYERS for arg in ("--layer", name)]
    first = build(model, "-o", copy, "--images", images, *layers)
    assert first["items"]["computed"] == 0  # the same layers, given by name: the same site
    summary = build(model, "-o", copy, "--images", images, *layers, "--layer", "block2")
    kinds = summary["items"]["by_kind"]
    assert summary["layers"][-1] == "block2"
    assert kinds["visual"]["computed"] == 2 and kinds["dream"]["computed"] == 1
    assert kinds["dataset"]["computed"] == 3  # each batch runs again, for the new layer only
    assert kinds["page"]["computed"] == 1 + 1 + 3  # index, the layer and its channels


def test_names_from_the_model_are_text_not_markup(site):
    out, _ = site
    for page in out.rglob("*.html"):
        text = page.read_text()
        assert "<script>alert" not in text and "<img src=x" not in text, page
    index = (out / "index.html").read_text()
    attributes = {html.unescape(value) for value in re.findall(r'data-name="([^"]*)"', index)}
    assert set(HOSTILE.values()) <= attributes
    layer = next(out.glob("layers/script*.html")).read_text()
    heading = re.search(r'<h1 class="name">([^<]*)</h1>', layer)
    assert heading is not None and html.unescape(heading.group(1)) == HOSTILE["block1.0"]


def test_bad_input_is_one_line_and_exit_2(inputs, tmp_path):
    model, _ = inputs
    cases = {
        "unknown layer": (["--layer", "block3"], "block3", "block1"),
        "empty folder": (["--images", str((tmp_path / "empty").resolve())], "no image files", ""),
        "bad channels": (["--channels", "-1"], "--channels", ""),
    }
    (tmp_path / "empty").mkdir()
    for what, (extra, expected, suggestion) in cases.items():
        result = runner.invoke(app, ["microscope", str(model), "-o", str(tmp_path / "s"), *extra, "--quiet"])
        assert result.exit_code == 2, (what, result.output)
        assert expected in result.output and suggestion in result.output, (what, result.output)
        assert "Traceback" not in result.output
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["microscope", str(model), "-o", str(tmp_path / "file"), "--quiet"])
    assert result.exit_code == 2 and "a file is in the way" in result.output
    assert not (tmp_path / "s").exists()


def test_a_killed_build_resumes_without_recomputing_finished_items(inputs, tmp_path):
    model, images = inputs
    args = [str(model), "--images", str(images), "--match", "stem.*", "--channels", "6", "--steps", "4"]
    command = [sys.executable, "-m", "onnxdream", "microscope", *QUICK, *args]
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [*command, "-o", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while len(list(killed.rglob("*.visual.npz"))) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, "the build finished before it could be killed"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {kind: len(list(killed.rglob(f"*.{kind}.npz"))) for kind in ("visual", "dream")}
    assert 2 <= finished["visual"] < 6

    resumed = subprocess.run([*command, "-o", str(killed)], capture_output=True, text=True, check=True)
    kinds = json.loads(resumed.stdout)["items"]["by_kind"]
    assert kinds["visual"]["computed"] == kinds["visual"]["total"] - finished["visual"]
    assert kinds["dream"]["computed"] == kinds["dream"]["total"] - finished["dream"]
    assert kinds["dataset"]["computed"] == 0

    whole = tmp_path / "whole"
    build(*args, "-o", whole)
    assert site_files(killed) == site_files(whole)


# The sites CI builds


@pytest.mark.slow
def test_builtin_model_site(tmp_path):
    images = image_folder(tmp_path / "images", count=4, size=(180, 240), junk=False)
    summary = build(
        "zoo:efficientnet-lite0", "-o", tmp_path / "site", "--images", images,
        "--match", "_blocks.[25]._project_conv", "--channels", "2", "--size", "64", "--dream-size", "64",
    )  # fmt: skip
    assert summary["layers"] == ["_blocks.2._project_conv", "_blocks.5._project_conv"]
    assert summary["errors"] == [] and summary["images"] == 4
    page = (tmp_path / "site" / "layers").glob("blocks.5._project_conv-*.html")
    text = next(page).read_text()
    assert "1 x 80 x 14 x 14" in text and "export" in text


@pytest.mark.slow
def test_renamed_googlenet_site(tmp_path):
    from onnxdream.zoo import light_zoo_model

    onnx.save(light_zoo_model("googlenet"), tmp_path / "googlenet.onnx")
    renamed = tmp_path / "renamed.onnx"
    result = runner.invoke(app, ["rename", str(tmp_path / "googlenet.onnx"), str(renamed)])
    assert result.exit_code == 0, result.output
    images = image_folder(tmp_path / "images", count=4, size=(200, 200), junk=False)
    summary = build(
        renamed, "-o", tmp_path / "site", "--images", images,
        "--layer", "inception_3a", "--layer", "conv2/3x3", "--channels", "2", "--size", "64", "--dream-size", "64",
    )  # fmt: skip
    assert summary["layers"] == ["conv2/3x3", "inception_3a"]
    assert summary["errors"] == []
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'data-name="inception_3a"' in index and 'data-name="conv2"' in index
    scope = next((tmp_path / "site" / "layers").glob("inception_3a-*.html")).read_text()
    # A scope's name comes from its nodes: convolutions named from weights, the rest from structure.
    assert "<th>op</th><td>scope</td>" in scope and "<th>name from</th><td>mixed</td>" in scope


# In a real browser


@pytest.mark.skipif(
    not browser_available(), reason="needs playwright and /usr/bin/chromium (.ci/run installs both)"
)
def test_site_in_a_real_browser(site, tmp_path):
    out, _ = site
    with offline_page() as (page, watch):
        # The watch itself: a request that leaves file:// is caught and aborted.
        with page.expect_console_message(lambda m: m.type == "error"):
            page.set_content('<img src="http://127.0.0.1:9/probe.png">')
        assert watch.requests and "127.0.0.1" in watch.requests[0]
        assert watch.console_errors
        watch.requests.clear()
        watch.console_errors.clear()

        page.goto((out / "index.html").as_uri())
        links = page.locator("#tree a.layer")
        assert [links.nth(k).get_attribute("title") for k in range(links.count())] == TINY_LAYERS
        page.fill("#search", "block1.1")
        assert page.locator("#search-count").text_content() == "1 match"
        visible = page.locator("#tree a.layer:visible")
        assert visible.count() == 1 and visible.first.get_attribute("title") == "block1.1"
        page.fill("#search", "")
        assert page.locator("#tree a.layer:visible").count() == len(TINY_LAYERS)
        page.screenshot(path=str(tmp_path / "index.png"))

        page.locator(
            f'#tree a.layer[title="{HOSTILE["block1.0"].replace(chr(34), chr(92) + chr(34))}"]'
        ).click()
        assert page.locator("h1.name").text_content() == HOSTILE["block1.0"]
        page.locator(".grid a.cell").first.click()
        page.wait_for_load_state("load")
        assert page.url.endswith("/0.html")
        sizes = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
        assert len(sizes) == 1 + 2  # the visualisation and the top-2 crops
        assert all(width > 0 for _, width in sizes), sizes
        assert (
            page.locator("pre.spec code").first.text_content().endswith(f"--layer '{HOSTILE['block1.0']}:0'")
        )
        page.screenshot(path=str(tmp_path / "channel.png"), full_page=True)
    assert watch.problems() == []


def test_jobs_and_items_pickle_for_remote_workers(inputs):
    """A remote executor (Ray) ships jobs before ``setup`` and items as they are."""
    import pickle

    from onnxdream.microscope.mirror_items import DreamItem, MirrorJob, MirrorSettings, VisualItem
    from onnxdream.microscope.site import Crop, PageItem, PageJob

    model, images = inputs
    picture = np.zeros((4, 4, 3), dtype=np.uint8)
    crop = Crop(str(images / "pattern0.jpg"), (32, 32), (0, 0, 8, 8))
    objects = [
        DatasetJob(str(model), (32, 32)),
        DatasetItem(0, (str(images / "pattern0.jpg"),), (("stem.0", "t"),)),
        MirrorJob(str(model), MirrorSettings(), picture.astype(np.float32)),
        VisualItem("stem.0", (0, 1), 0),
        DreamItem("stem.0"),
        PageJob(),
        PageItem("channel.html", "channels/x/0.html", {"a": 1}, {"img/x.png": picture}, {"img/c.jpg": crop}),
    ]
    for value in objects:
        copy = pickle.loads(pickle.dumps(value))
        assert type(copy) is type(value)


class _PicklingExecutor:
    """Runs items here, but as a remote worker gets them: the job, items and results pickled."""

    def __init__(self) -> None:
        self.jobs: list = []

    def map_unordered(self, job, items):
        import pickle

        self.jobs.append(job)
        worker = pickle.loads(pickle.dumps(job))
        worker.setup()
        for item in items:
            yield item, pickle.loads(pickle.dumps(worker.run(pickle.loads(pickle.dumps(item)))))

    def close(self) -> None:
        pass


def test_remote_workers_get_the_model_bytes_and_threads_and_give_the_same_site(site, inputs, tmp_path):
    """What ``--ray`` ships (tests/test_executors_ray.py runs it on a real cluster): the model as
    ONNX bytes (workers may not see the driver's files) and torch's thread count (same sums)."""
    from onnxdream.microscope import build_site
    from onnxdream.microscope.mirror_items import MirrorJob

    model, images = inputs
    executor = _PicklingExecutor()
    options = quick_options()
    build_site(str(model), tmp_path / "site", images=images, options=options, executor=executor)
    dataset_job, mirror_job = executor.jobs[:2]
    assert isinstance(dataset_job, DatasetJob) and isinstance(mirror_job, MirrorJob)
    assert dataset_job.model_bytes == mirror_job.model_bytes == model.read_bytes()
    assert mirror_job.threads == torch.get_num_threads()
    assert site_files(tmp_path / "site") == site_files(site[0])
