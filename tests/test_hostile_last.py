"""The last hostile inputs: a string input to check, an input of no rank to dream, and a recogniser
``1x3x48x?`` whose width must suit a Reshape (the default 224 cannot run): the width is found by
probing, for expose-layers --all (with and without --run) and check's default input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.inputs.images import to_pil
from onnxdream.inputs.random import runnable_inputs
from onnxdream.sizes import runnable_size
from tests.dream_helpers import pattern

runner = CliRunner()
GROUP = 40
"""The recogniser's Reshape splits the width into groups of this many columns (not a power of 2)."""


def _save(graph: onnx.GraphProto, path: Path, check: bool = True) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    if check:  # the checker wants shapes on graph inputs and outputs: a model of no rank has none
        onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def grouped_recogniser(path: Path, hide_shapes: bool = False) -> Path:
    """``x: 1x3x48xW`` -> Conv -> Relu -> Reshape to (1, 8*48, -1, 40) -> mean: runs only when W % 40 == 0.

    ``hide_shapes`` passes the Reshape's shape through Compress, so shape inference cannot shape
    the tensors after it and expose-layers must run the model to type them.
    """
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "conv.weight"),
        numpy_helper.from_array(np.array([1, 8 * 48, -1, GROUP], np.int64), "groups"),
        numpy_helper.from_array(np.ones(4, bool), "keep"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="backbone.conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="backbone.relu"),
    ]
    shape = "groups"
    if hide_shapes:
        nodes.append(helper.make_node("Compress", ["groups", "keep"], ["shape"], name="neck.shape", axis=0))
        shape = "shape"
    nodes += [
        helper.make_node("Reshape", ["r", shape], ["s"], name="neck.reshape"),
        helper.make_node("ReduceMean", ["s"], ["m"], name="head.pool", keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "rec",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 48, "W"])],
        [helper.make_tensor_value_info("m", TensorProto.FLOAT, [])],
        inits,
    )
    return _save(graph, path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    grouped_recogniser(folder / "rec.onnx")
    grouped_recogniser(folder / "rec-hidden.onnx", hide_shapes=True)
    string = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"], name="id")],
        "strings",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [1, 3])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, [1, 3])],
    )
    _save(string, folder / "string.onnx")
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    no_rank = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])],
        "norank",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight],
    )
    _save(no_rank, folder / "norank.onnx", check=False)
    to_pil(pattern(48, 64)).save(folder / "line.png")  # width 64 at height 48: not a multiple of 40
    np.save(folder / "line.npy", np.zeros((1, 3, 48, 64), np.float32))
    return folder


def _cli(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def _one_error_line(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {expected}"]


def test_check_of_a_string_input_exits_2_with_one_line(models):
    _one_error_line(
        _cli("check", models / "string.onnx", "--device", "cpu"),
        f"{models / 'string.onnx'}: input 'text' is a string tensor; the torch mirror computes on "
        "numeric tensors only, so check cannot compare this model",
    )


def test_dream_on_an_input_of_no_rank_exits_2_with_one_line(models, tmp_path):
    out = tmp_path / "o.png"
    result = _cli("dream", "--demo", out, "--model", models / "norank.onnx", "--layer", "conv", "-q")
    _one_error_line(
        result,
        f"{models / 'norank.onnx'}: dream needs a float image input (N, C, H, W or N, H, W, C); input 'x' declares no "
        "rank (give the model a 4-D input shape, e.g. with onnx.tools.update_model_dims)",
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("constraint", "near", "fixed", "expected"),
    [
        ("multiple-of-40", (48, 224), (48, None), (48, 240)),
        ("multiple-of-40-below", (48, 210), (48, None), (48, 200)),
        ("at-least-600", (48, 224), (48, None), (48, 607)),
        ("runs-as-is", (48, 100), (48, None), (48, 100)),
        ("both-free-keep-aspect", (100, 210), (None, None), (95, 200)),
    ],
)
def test_runnable_size_finds_the_nearest_side_that_runs(constraint, near, fixed, expected):
    tried: list[tuple[int, int]] = []

    def probe(height: int, width: int) -> None:
        tried.append((height, width))
        ok = {
            "multiple-of-40": width % 40 == 0,
            "multiple-of-40-below": width % 40 == 0,
            "at-least-600": width >= 600,
            "runs-as-is": True,
            "both-free-keep-aspect": width % 40 == 0,
        }[constraint]
        if not ok:
            raise RuntimeError(f"cannot run {height}x{width}")

    assert runnable_size(probe, near, fixed) == expected
    assert len(tried) < 120


def test_runnable_size_gives_none_when_nothing_runs():
    def probe(height: int, width: int) -> None:
        raise RuntimeError("never")

    assert runnable_size(probe, (48, 224), (48, None), limit=1024) is None


def test_expose_all_types_every_output_at_a_width_the_network_takes(models, tmp_path):
    out = tmp_path / "exposed.onnx"
    result = _cli("expose-layers", models / "rec-hidden.onnx", out, "--all", "--json")
    assert result.exit_code == 0, result.output
    exposed = onnx.load(out)
    onnx.checker.check_model(exposed)
    ranks = {o.name: len(o.type.tensor_type.shape.dim) for o in exposed.graph.output}
    assert ranks == {"m": 0, "c": 4, "r": 4, "s": 4}  # the constant shape is not a layer
    assert runnable_inputs(onnx.load(models / "rec.onnx"))["x"].shape == (1, 3, 48, 240)


def test_expose_all_run_resizes_the_free_width_to_one_that_runs(models, tmp_path):
    saved = tmp_path / "acts.npz"
    result = _cli(
        "expose-layers", models / "rec.onnx", tmp_path / "o.onnx", "--all", "--run", models / "line.png",
        "--save", saved,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with np.load(saved) as acts:
        assert acts["backbone.relu"].shape == (1, 8, 48, 80)  # 64 -> 80, the nearest multiple of 40
        assert acts["neck.reshape"].shape == (1, 384, 2, GROUP)


def test_an_array_of_a_width_that_cannot_run_exits_2_naming_one_that_does(models, tmp_path):
    out = tmp_path / "o.onnx"
    result = _cli("expose-layers", models / "rec.onnx", out, "--all", "--run", models / "line.npy")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "(input 'x' of shape 1x3x48x64); the nearest size that works is 1x3x48x80" in text
    assert not out.exists()


def test_check_default_input_takes_a_width_the_network_runs(models):
    result = _cli("check", models / "rec.onnx", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "ok: 4 layers match" in result.output
