"""Model I/O: round trips, external data, bad input, unsafe locations, atomic writes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxdream import io as model_io
from onnxdream.errors import BadModelError, OnnxDreamError, WriteError
from onnxdream.paths import check_writes


def small_model() -> onnx.ModelProto:
    """y = relu(x @ W + b) with a 64x32 weight (large enough to go external)."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(64, 32)).astype(np.float32), "fc.weight")
    bias = numpy_helper.from_array(rng.normal(size=(32,)).astype(np.float32), "fc.bias")
    nodes = [
        helper.make_node("MatMul", ["x", "fc.weight"], ["h"], name="fc/MatMul"),
        helper.make_node("Add", ["h", "fc.bias"], ["z"], name="fc"),
        helper.make_node("Relu", ["z"], ["y"], name="act"),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])],
        [weight, bias],
        doc_string="graph doc",
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], doc_string="model doc")
    model.metadata_props.add(key="author", value="tests")
    return model


def test_round_trip_is_byte_identical(tmp_path: Path) -> None:
    model = small_model()
    path = model_io.save_model(model, tmp_path / "m.onnx")
    loaded, data_files = model_io.load_model_and_data_files(path)
    assert loaded.SerializeToString() == model.SerializeToString()
    assert data_files == []


def test_external_data_round_trip(tmp_path: Path) -> None:
    model = small_model()
    path = model_io.save_model(model, tmp_path / "m.onnx", external_data=True)
    assert (tmp_path / "m.onnx.data").stat().st_size >= 64 * 32 * 4
    loaded, data_files = model_io.load_model_and_data_files(path)
    assert data_files == [tmp_path / "m.onnx.data"]
    for before, after in zip(model.graph.initializer, loaded.graph.initializer, strict=True):
        np.testing.assert_array_equal(numpy_helper.to_array(before), numpy_helper.to_array(after))
    assert loaded.doc_string == "model doc" and loaded.metadata_props[0].value == "tests"


def test_big_models_switch_to_external_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_io, "PROTO_LIMIT", 1000)
    path = model_io.save_model(small_model(), tmp_path / "m.onnx")
    assert model_io.load_model_and_data_files(path)[1] == [tmp_path / "m.onnx.data"]
    assert (tmp_path / "m.onnx.data").exists()


def test_missing_file() -> None:
    with pytest.raises(BadModelError, match=r"nope\.onnx: file not found"):
        model_io.load_model("nope.onnx")


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a protobuf at all \x00\xff")
    with pytest.raises(BadModelError, match=r"notes\.onnx: not an ONNX model"):
        model_io.load_model(path)


def test_truncated_file(tmp_path: Path) -> None:
    data = small_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadModelError, match=r"cut\.onnx: not an ONNX model or truncated"):
        model_io.load_model(path)


def test_missing_external_data_file_is_named(tmp_path: Path) -> None:
    path = model_io.save_model(small_model(), tmp_path / "m.onnx", external_data=True)
    (tmp_path / "m.onnx.data").unlink()
    with pytest.raises(BadModelError, match=r"external data file 'm\.onnx\.data' .* is missing"):
        model_io.load_model(path)


def _point_external_data(path: Path, location: str) -> None:
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(model.SerializeToString())


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd"], ids=["dotdot", "absolute"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    folder = tmp_path / "models"
    path = model_io.save_model(small_model(), folder / "m.onnx", external_data=True)
    (tmp_path / "secret.bin").write_bytes(b"\0" * 10000)
    _point_external_data(path, location)
    with pytest.raises(BadModelError, match=r"unsafe external data location|outside the model folder"):
        model_io.load_model(path)


def test_external_data_through_a_link_leading_out_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    path = model_io.save_model(small_model(), folder / "m.onnx", external_data=True)
    outside = tmp_path / "outside.data"
    os.replace(folder / "m.onnx.data", outside)
    (folder / "m.onnx.data").symlink_to(outside)
    with pytest.raises(BadModelError, match="outside the model folder"):
        model_io.load_model(path)


@pytest.mark.parametrize("what", ["ir", "opset"])
def test_unsupported_versions(tmp_path: Path, what: str) -> None:
    model = small_model()
    if what == "ir":
        model.ir_version = onnx.IR_VERSION + 5
    else:
        model.opset_import[0].version = onnx.defs.onnx_opset_version() + 5
    path = tmp_path / "future.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(BadModelError, match=f"future.onnx: {'IR version' if what == 'ir' else 'opset'}"):
        model_io.load_model(path)


def test_checker_failure_names_the_file() -> None:
    model = small_model()
    model.graph.node[1].input[0] = "undefined_tensor"
    with pytest.raises(BadModelError, match=r"m\.onnx: invalid model"):
        model_io.check_model(model, "m.onnx")


def test_interrupted_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.onnx"
    target.write_bytes(b"previous content")

    def explode(self: Path, data: bytes) -> int:
        with open(self, "wb") as handle:
            handle.write(data[:10])  # a partial write, then the failure
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", explode)
    with pytest.raises(KeyboardInterrupt):
        model_io.save_model(small_model(), target)
    assert target.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"]


def test_full_disk_during_external_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(onnx.external_data_helper, "write_external_data_tensors", explode)
    with pytest.raises(WriteError, match=r"m\.onnx: cannot write \(No space left on device\)"):
        model_io.save_model(small_model(), tmp_path / "m.onnx", external_data=True)
    assert list(tmp_path.iterdir()) == []


def test_refuse_to_overwrite_the_input(tmp_path: Path) -> None:
    path = model_io.save_model(small_model(), tmp_path / "m.onnx")
    with pytest.raises(OnnxDreamError, match="refusing to write over the input"):
        check_writes([path], [path])
    check_writes([path], [path], in_place=[path])
    check_writes([path], [tmp_path / "other.onnx"])


def _bad_model_file(tmp_path: Path, kind: str) -> Path:
    """A model file broken in one of the ways users meet."""
    model = small_model()
    path = tmp_path / f"{kind}.onnx"
    if kind == "truncated":
        data = model.SerializeToString()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "missing-data":
        model_io.save_model(model, path, external_data=True)
        (tmp_path / f"{kind}.onnx.data").unlink()
    elif kind == "unsafe-data":
        model_io.save_model(model, path, external_data=True)
        _point_external_data(path, "../../etc/passwd")
    elif kind == "future-ir":
        model.ir_version = onnx.IR_VERSION + 5
        path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncated", "not an ONNX model or truncated"),
        ("missing-data", "external data file 'missing-data.onnx.data'"),
        ("unsafe-data", "outside the model folder"),
        ("future-ir", "IR version"),
    ],
)
def test_cli_reports_bad_models_in_one_line_with_exit_2(tmp_path: Path, kind: str, message: str) -> None:
    from typer.testing import CliRunner

    from onnxdream.cli import app

    path = _bad_model_file(tmp_path, kind)
    result = CliRunner().invoke(app, ["layers", str(path)])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", "")
    assert str(path) in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = model_io.save_model(small_model(), tmp_path / "m.onnx")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    model_io.save_model(small_model(), path)  # rewriting keeps the file's own mode
    assert path.stat().st_mode & 0o777 == 0o600
