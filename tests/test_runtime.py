"""ONNX Runtime sessions: device choice without CUDA noise, clear errors, caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from onnxdream import io
from onnxdream.cli import app
from onnxdream.errors import OnnxDreamError
from onnxdream.runtime import clear_cache, cuda_available, make_session, resolve_device

needs_no_cuda = pytest.mark.skipif(cuda_available(), reason="checks the behaviour where CUDA does not load")

RELU = """
<ir_version: 8, opset_import: ["" : 17]>
relu (float[2,3] x) => (float[2,3] y)
{
  y = Relu (x)
}
"""


@pytest.fixture
def relu() -> onnx.ModelProto:
    return onnx.parser.parse_model(RELU)


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


@needs_no_cuda
def test_auto_is_cpu_and_quiet(relu: onnx.ModelProto, capfd: pytest.CaptureFixture[str]) -> None:
    cuda_available.cache_clear()  # probe again, under capture
    assert resolve_device("auto") == "cpu"
    session = make_session(relu, "auto")
    assert session.device == "cpu"
    x = np.array([[-1, 0, 2], [3, -4, 5]], np.float32)
    np.testing.assert_array_equal(session.run({"x": x})["y"], np.maximum(x, 0))
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


@needs_no_cuda
def test_cuda_where_it_does_not_load_is_an_error(relu: onnx.ModelProto) -> None:
    with pytest.raises(OnnxDreamError, match="device 'cuda' requested but ONNX Runtime's CUDA provider"):
        make_session(relu, "cuda")


@needs_no_cuda
def test_cli_device_cuda_exit_2(tmp_path: Path, relu: onnx.ModelProto) -> None:
    model = io.save_model(relu, tmp_path / "relu.onnx")
    np.save(tmp_path / "x.npy", np.ones((2, 3), np.float32))
    result = CliRunner().invoke(
        app,
        [
            "expose-layers",
            str(model),
            str(tmp_path / "o.onnx"),
            "-l",
            "y",
            "--run",
            str(tmp_path / "x.npy"),
            "--device",
            "cuda",
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: device 'cuda' requested")
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.onnx").exists()


def test_sessions_cached_per_model_device_and_level(relu: onnx.ModelProto, tmp_path: Path) -> None:
    first = make_session(relu, "cpu", "all")
    assert make_session(relu, "cpu", "all") is first
    same_bytes = onnx.parser.parse_model(RELU)
    assert make_session(same_bytes, "cpu", "all") is first
    assert make_session(relu, "cpu", "none") is not first
    other = onnx.parser.parse_model(RELU.replace("Relu", "Neg"))
    assert make_session(other, "cpu", "all") is not first
    path = io.save_model(relu, tmp_path / "relu.onnx")
    from_path = make_session(path, "cpu")
    assert make_session(str(path), "cpu") is from_path


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"optimization": "max"},
            "unknown optimisation level 'max'; choose one of all, extended, basic, none",
            id="opt",
        ),
        pytest.param({"device": "gpu"}, "unknown device 'gpu'; choose one of auto, cpu, cuda", id="device"),
    ],
)
def test_bad_arguments(relu: onnx.ModelProto, kwargs: dict, message: str) -> None:
    with pytest.raises(OnnxDreamError) as info:
        make_session(relu, **kwargs)
    assert str(info.value) == message


def test_cli_rejects_unknown_ort_opt(tmp_path: Path, relu: onnx.ModelProto) -> None:
    model = io.save_model(relu, tmp_path / "relu.onnx")
    result = CliRunner().invoke(
        app, ["expose-layers", str(model), str(tmp_path / "o.onnx"), "-l", "y", "--ort-opt", "max"]
    )
    assert result.exit_code == 2
    assert result.output == "error: unknown --ort-opt 'max'; choose one of all, extended, basic, none\n"


def test_invalid_model_is_one_line_error(relu: onnx.ModelProto) -> None:
    broken = onnx.parser.parse_model(RELU.replace("Relu", "NoSuchOp"))
    with pytest.raises(OnnxDreamError) as info:
        make_session(broken, "cpu", source="broken.onnx")
    assert str(info.value).startswith("broken.onnx: ONNX Runtime cannot load the model: ")
    assert "NoSuchOp" in str(info.value)
    assert "\n" not in str(info.value)


def test_models_past_the_protobuf_limit_are_saved_once_and_cached(monkeypatch) -> None:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from onnxdream import runtime

    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    monkeypatch.setattr(runtime, "PROTO_LIMIT", 10)
    runtime.clear_cache()
    first = runtime.make_session(model, device="cpu")
    second = runtime.make_session(model, device="cpu")
    assert first is second
    out = first.run({"x": np.ones((1, 2), np.float32)})["y"]
    np.testing.assert_array_equal(out, [[3.0, 5.0, 7.0]])


def test_session_cache_is_bounded(relu: onnx.ModelProto, monkeypatch: pytest.MonkeyPatch) -> None:
    """Least recently used sessions are dropped: each one holds its model's weights."""
    from onnxdream import runtime

    monkeypatch.setattr(runtime, "CACHE_SIZE", 2)
    clear_cache()
    models = []
    for k in range(3):
        variant = onnx.ModelProto()
        variant.CopyFrom(relu)
        variant.doc_string = f"variant {k}"
        models.append(variant)
    sessions = [make_session(m, "cpu") for m in models]
    assert len(runtime._cache) == 2
    assert make_session(models[2], "cpu") is sessions[2]
    assert make_session(models[1], "cpu") is sessions[1]
    assert make_session(models[0], "cpu") is not sessions[0]  # evicted, built again
