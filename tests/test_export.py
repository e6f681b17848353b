"""Export of torch models with module names kept (the export naming contract)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from onnxdream import torch_export as export_module
from onnxdream.cli import app
from onnxdream.compare import compare
from onnxdream.io import load_model
from onnxdream.metadata import ORIGIN_KEY, PREPROCESS_KEY, get_json, get_prop
from onnxdream.zoo import EFFICIENTNET_PREPROCESS, efficientnet_lite0

runner = CliRunner()


@pytest.fixture(scope="module")
def module_kinds() -> dict[str, str]:
    """Qualified module name -> class name for the built-in model."""
    return {name: type(m).__name__ for name, m in efficientnet_lite0().named_modules()}


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_conv_and_gemm_nodes_are_named_after_their_modules(
    builtin_exports: dict[str, Path], module_kinds: dict[str, str], exporter: str
) -> None:
    model = load_model(builtin_exports[exporter])
    weighted = sorted(n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm"))
    expected = sorted(name for name, kind in module_kinds.items() if "Conv2d" in kind or kind == "Linear")
    assert weighted == expected  # exactly the Conv2d/Linear modules, BatchNorm folded in


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_names_are_unique_and_origin_recorded(builtin_exports: dict[str, Path], exporter: str) -> None:
    model = load_model(builtin_exports[exporter])
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == len(names) and all(names)
    assert {get_prop(n, ORIGIN_KEY) for n in model.graph.node} == {"export"}
    assert get_json(model, PREPROCESS_KEY) == EFFICIENTNET_PREPROCESS


def test_dynamo_export_keeps_the_exporters_metadata(builtin_exports: dict[str, Path]) -> None:
    model = load_model(builtin_exports["dynamo"])
    stem = next(n for n in model.graph.node if n.name == "_conv_stem")
    scopes = ast.literal_eval(get_prop(stem, "pkg.torch.onnx.name_scopes"))
    # The optimiser fused BatchNorm into the Conv and copied the BatchNorm's scope onto it;
    # the contract names it after the Conv module all the same.
    assert scopes[1] == "_bn0"


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_block_outputs_and_helpers_follow_the_contract(
    builtin_exports: dict[str, Path], exporter: str
) -> None:
    model = load_model(builtin_exports[exporter])
    by_name = {n.name: n for n in model.graph.node}
    # Residual blocks end in an Add that computes the block's output.
    assert by_name["_blocks.2"].op_type == "Add"
    # The shared activation module is called twice per block: name, name_1.
    assert by_name["_blocks.3._swish"].op_type == by_name["_blocks.3._swish_1"].op_type == "Clip"
    if exporter == "legacy":
        assert by_name["_blocks.3._depthwise_conv.static_padding"].op_type == "Pad"
        assert by_name["_blocks.3._depthwise_conv.static_padding/Reshape_1"].op_type == "Reshape"


def test_onnx_runtime_matches_torch() -> None:
    result = export_module.export_model("zoo:efficientnet-lite0", legacy=True, input_shape=(2, 3, 160, 160))
    assert result.ok
    assert result.max_abs_diff < 1e-4 * result.scale


def test_dynamic_batch_export_runs_any_batch(tmp_path: Path) -> None:
    from onnxdream.runtime import make_session

    result = export_module.export_model("zoo:efficientnet-lite0", legacy=True, dynamic_batch=True)
    dims = result.model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"
    session = make_session(result.model, device="cpu")
    out = session.run({session.input_names[0]: torch.rand(3, 3, 224, 224).numpy()})
    assert next(iter(out.values())).shape == (3, 1000)


class Tiny(torch.nn.Module):
    """A small CNN with a nested block, used for the SPEC forms."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def tiny_factory() -> torch.nn.Module:
    torch.manual_seed(0)
    return Tiny()


def _export(tmp_path: Path, spec: str, *extra: str) -> onnx.ModelProto:
    out = tmp_path / "out.onnx"
    result = runner.invoke(app, ["export", spec, str(out), "--input-shape", "1,3,16,16", *extra])
    assert result.exit_code == 0, result.output
    return load_model(out)


@pytest.mark.parametrize("form", ["torch-save", "torchscript", "factory"])
def test_spec_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    extra = ["--trust-pickle"] if form == "torch-save" else []  # a full pickled module runs code
    if form == "torch-save":
        spec = tmp_path / "tiny.pt"
        torch.save(tiny_factory(), spec)
        monkeypatch.syspath_prepend(str(Path(__file__).parent))
    elif form == "torchscript":
        spec = tmp_path / "tiny.ts"
        torch.jit.script(tiny_factory()).save(str(spec))
    else:
        monkeypatch.syspath_prepend(str(Path(__file__).parent))
        spec = "tests.test_export:tiny_factory"
    model = _export(tmp_path, str(spec), "--legacy", *extra)
    names = {n.name for n in model.graph.node}
    assert {"features.0", "head"} <= names


def test_mean_and_std_are_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    model = _export(
        tmp_path, "tests.test_export:tiny_factory", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25"
    )
    assert get_json(model, PREPROCESS_KEY) == {"mean": [0.5] * 3, "std": [0.25] * 3}
    assert {n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm")} == {"features.0", "head"}


def test_export_fails_with_exit_1_when_onnx_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    off_by_half = compare(np.array([1.5]), np.array([1.0]), rtol=0.0)
    monkeypatch.setattr(export_module, "_verify", lambda *args: (off_by_half, "cpu"))
    out = tmp_path / "bad.onnx"
    result = runner.invoke(
        app, ["export", "tests.test_export:tiny_factory", str(out), "--input-shape", "1,3,16,16"]
    )
    assert result.exit_code == 1
    assert "differs from torch by 0.5" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("zoo:resnet9000", "unknown built-in model 'resnet9000'"),
        ("missing.pt", "missing.pt: not found"),
        ("no_such_package_xyz:build", "cannot import 'no_such_package_xyz': ModuleNotFoundError"),
    ],
    ids=["unknown-zoo", "missing-file", "bad-import"],
)
def test_bad_specs_exit_2(tmp_path: Path, spec: str, message: str) -> None:
    result = runner.invoke(app, ["export", spec, str(tmp_path / "x.onnx")])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_json_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    out = tmp_path / "t.onnx"
    result = runner.invoke(
        app, ["export", "tests.test_export:tiny_factory", str(out), "--input-shape", "1,3,16,16", "--json"]
    )
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["max_abs_diff"] <= summary["limit"]
