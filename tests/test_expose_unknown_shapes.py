"""``expose-layers`` where ONNX shape inference gives no type or shape: every output still checks."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.errors import OnnxDreamError
from onnxdream.model import Model
from onnxdream.runtime import make_session
from onnxdream.shapes import value_type
from onnxdream.surgery import expose
from tests.realworld_helpers import inference_resistant

runner = CliRunner()
X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
UNINFERRED = {"g": 4, "r": 4, "p": 4, "flat": 2, "logits": 2}
"""Tensors shape inference leaves without a type or shape, and their rank."""


def _outputs(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    return {o.name: o for o in model.graph.output}


def test_the_model_defeats_shape_inference():
    inferred = onnx.shape_inference.infer_shapes(inference_resistant())
    known = {v.name for v in inferred.graph.value_info if v.type.tensor_type.HasField("shape")}
    assert not known & set(UNINFERRED)


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        pytest.param(None, {t: (None,) * rank for t, rank in UNINFERRED.items()}, id="dynamic-rank-only"),
        pytest.param(
            [2, 3, 8, 8],
            {"g": (2, 4, 8, 8), "r": (2, 4, 8, 8), "p": (2, 4, 1, 1), "flat": (2, 4), "logits": (2, 5)},
            id="static-full-shape",
        ),
    ],
)
def test_all_fills_types_from_a_run_and_passes_the_checker(dims, expected):
    model = inference_resistant(dims)
    result = expose(model, all=True)
    onnx.checker.check_model(result.model, full_check=True)
    outputs = _outputs(result.model)
    for tensor, shape in expected.items():
        assert value_type(outputs[tensor]) is not None
        assert (value_type(outputs[tensor]).dtype, value_type(outputs[tensor]).shape) == ("float32", shape)
    # Tensors inference does type keep its (symbolic) dims.
    assert value_type(outputs["c"]).shape[:2] == ((2, 4) if dims else ("N", 4))

    before = make_session(model, device="cpu", optimization="none").run({"x": X})
    after = make_session(result.model, device="cpu", optimization="none").run({"x": X})
    assert list(after)[: len(before)] == list(before)
    for name, value in before.items():
        assert after[name].tobytes() == value.tobytes()
    assert after["logits"].shape == (2, 5) and after["flat"].shape == (2, 4)


def test_cli_lists_matmul_with_its_rank_and_writes_a_checked_model(tmp_path):
    source, out = tmp_path / "m.onnx", tmp_path / "out.onnx"
    onnx.save(inference_resistant(), source)
    result = runner.invoke(app, ["expose-layers", str(source), str(out), "--all", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["layer"]: row for row in json.loads(result.stdout)}
    assert rows["fc"]["shape"] == [None, None] and rows["fc"]["dtype"] == "float32"
    assert rows["act"]["shape"] == [None, None, None, None]
    onnx.checker.check_model(onnx.load(out), full_check=True)


def test_run_and_save_with_filled_types(tmp_path):
    np.save(tmp_path / "x.npy", X)
    source, out, saved = tmp_path / "m.onnx", tmp_path / "out.onnx", tmp_path / "acts.npz"
    onnx.save(inference_resistant(), source)
    args = ["expose-layers", source, out, "-l", "fc", "--run", tmp_path / "x.npy", "--save", saved, "--json"]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["layer"], row["tensor"], row["shape"]) == ("fc", "logits", [None, None])
    # The saved logits are what the original model's softmax turns into its output.
    with np.load(saved) as acts:
        logits = acts["fc"].astype(np.float64)
    softmax = np.exp(logits - logits.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    expected = make_session(inference_resistant(), device="cpu").run({"x": X})["y"]
    np.testing.assert_allclose(softmax, expected, rtol=1e-5, atol=1e-6)


def test_an_op_no_runtime_knows_is_a_one_line_error():
    with pytest.raises(
        OnnxDreamError, match=r"shape inference gives no shape for tensor 'g' \(output of Gelu"
    ):
        expose(Model(inference_resistant(op_domain="my.domain"), "m.onnx"), all=True)
