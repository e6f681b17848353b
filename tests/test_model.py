"""The model handle: open_model on every kind of spec, and verbs that take any of them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from onnxdream.errors import BadModelError, OnnxDreamError
from onnxdream.io import save_model
from onnxdream.layers import list_layers
from onnxdream.mirror import to_torch
from onnxdream.mirror_check import check
from onnxdream.model import ANONYMOUS, Model, open_model
from onnxdream.names.apply import rename, undo
from onnxdream.runtime import make_session
from tests.dream_helpers import tiny_cnn, tiny_onnx

FACTORY = "tests.dream_helpers:tiny_cnn"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def external_model(tmp_path: Path) -> Path:
    """The tiny CNN saved with its weights in a side file."""
    path = tmp_path / "ext.onnx"
    save_model(tiny_onnx(), path, external_data=True)
    return path


def test_a_file_is_labelled_by_its_path_and_knows_its_data_files(external_model: Path) -> None:
    model = open_model(external_model)
    assert model.source == str(external_model)
    assert model.path == external_model
    assert model.external_data and model.kind == "file"
    assert model.files == [external_model, external_model.parent / "ext.onnx.data"]
    # The weights are loaded: the proto carries no external references any more.
    assert all(not t.external_data for t in model.proto.graph.initializer)


def test_graph_only_open_leaves_weights_on_disk(external_model: Path) -> None:
    model = open_model(external_model, external_data=False)
    assert model.external_data
    assert any(t.external_data for t in model.proto.graph.initializer)


def test_inline_file_has_no_data_files(tmp_path: Path) -> None:
    path = tmp_path / "inline.onnx"
    save_model(tiny_onnx(), path)
    model = open_model(path)
    assert not model.external_data and model.files == [path]


def test_a_proto_is_kept_as_it_is_and_labelled() -> None:
    proto = tiny_onnx()
    assert open_model(proto).proto is proto
    assert (open_model(proto).source, open_model(proto).kind) == (ANONYMOUS, "proto")
    assert open_model(proto, source="mine.onnx").source == "mine.onnx"
    handle = Model(proto, "x")
    assert open_model(handle) is handle


def test_index_and_opset_are_built_once() -> None:
    model = open_model(tiny_onnx())
    assert model.index is model.index
    assert model.index.source == ANONYMOUS
    assert model.opset == next(o.version for o in model.proto.opset_import if o.domain == "")


def test_zoo_names_open_and_unknown_ones_suggest() -> None:
    model = open_model("zoo:squeezenet")
    assert (model.source, model.path, model.kind) == ("zoo:squeezenet", None, "zoo")
    onnx.checker.check_model(model.proto)
    with pytest.raises(OnnxDreamError, match=r"unknown zoo model 'squeezenett'; did you mean 'squeezenet'"):
        open_model("zoo:squeezenett")


def test_a_torch_factory_is_exported_with_its_module_names() -> None:
    model = open_model(FACTORY)
    assert (model.source, model.path, model.kind) == (FACTORY, None, "torch")
    names = {n.name for n in model.proto.graph.node}
    modules = {name for name, _ in tiny_cnn().named_modules() if name}
    assert modules & names, "module paths become node names"
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))  # the default export shape
    session = make_session(model.proto, device="cpu")
    got = session.run({session.input_names[0]: x.numpy()})[session.output_names[0]]
    with torch.no_grad():
        expected = tiny_cnn()(x).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_pickled_torch_file_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(tiny_cnn(), path)
    with pytest.raises(BadModelError, match=r"whole\.pt: a pickled torch object"):
        open_model(path)
    model = open_model(path, trust_pickle=True)
    assert model.path == path and model.source == str(path)


def test_other_objects_are_refused() -> None:
    with pytest.raises(OnnxDreamError, match="cannot open a model from a int"):
        open_model(3)  # type: ignore[arg-type]


def test_errors_name_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(BadModelError, match=r"junk\.onnx: not an ONNX model"):
        open_model(junk)


def test_verbs_take_a_path_a_proto_and_a_torch_spec(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    save_model(tiny_onnx(), path)
    before = _digest(path)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    expected = to_torch(path)(x)
    for spec in (path, str(path), tiny_onnx(), open_model(path)):
        assert check(spec, device="cpu").ok
        assert [r.name for r in list_layers(spec)] == [r.name for r in list_layers(path)]
        torch.testing.assert_close(to_torch(spec)(x), expected)
    assert check(FACTORY, device="cpu").ok
    assert _digest(path) == before, "reading never writes"


def test_rename_leaves_a_callers_proto_and_handle_alone() -> None:
    proto = tiny_onnx()
    for node in proto.graph.node:
        node.name = ""
    original = proto.SerializeToString()
    handle = open_model(proto)
    renamed = rename(handle, rename_all=True).model
    assert proto.SerializeToString() == original
    assert all(n.name for n in renamed.graph.node)
    assert undo(renamed).model.graph.node[0].name == ""
    assert rename(proto, rename_all=True, inplace=True).model is proto


def test_check_labels_errors_with_the_handle_source() -> None:
    with pytest.raises(OnnxDreamError, match=r"^mine\.onnx: unknown layer"):
        check(open_model(tiny_onnx(), source="mine.onnx"), layers=["nosuch"], device="cpu")


def test_check_indexes_the_graph_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from onnxdream import graph

    model = tiny_onnx()
    built = []
    original = graph.GraphIndex.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(graph.GraphIndex, "__init__", counting)
    assert check(model, layers=["block1"], device="cpu").ok
    assert len(built) == 1


def test_every_model_command_reads_a_pickled_torch_file_only_when_trusted(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from onnxdream.cli import app

    path = tmp_path / "whole.pt"
    torch.save(tiny_cnn(), path)
    runner = CliRunner()
    commands = {
        "layers": ["layers", str(path)],
        "check": ["check", str(path), "--device", "cpu"],
        "expose-layers": ["expose-layers", str(path), str(tmp_path / "o.onnx"), "-l", "stem.0"],
        "rename": ["rename", str(path), str(tmp_path / "r.onnx")],
    }
    for name, args in commands.items():
        refused = runner.invoke(app, args)
        assert refused.exit_code == 2, (name, refused.output)
        assert refused.output == (
            f"error: {path}: a pickled torch object, which can run code when loaded; if you trust "
            "this file, pass --trust-pickle\n"
        ), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.pt"]
    trusted = runner.invoke(app, [*commands["layers"], "--trust-pickle", "--json"])
    assert trusted.exit_code == 0, trusted.output
    assert "stem.0" in trusted.output


def test_a_junk_torch_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_text("not a model")
    with pytest.raises(
        BadModelError, match=r"junk\.pt: not a torch file \(neither a torch\.save archive nor a pickle\)$"
    ):
        open_model(path)
