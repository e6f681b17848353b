"""``--weights FILE``: a torch SPEC's architecture with a file's weights, in every format users save.

The network is the founding example's shape (``tests/weights_nets.py``): a small pretrained CNN
with ``fine_tune_block`` added by ``add_module``, fine-tuned for a few seeded steps. Every export
is checked against the fine-tuned torch module itself (ONNX Runtime on the written file), and
against the factory's own weights (so a file that was not loaded would fail).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.errors import OptionError
from onnxdream.metadata import WEIGHTS_KEY, get_json
from onnxdream.model import open_model
from onnxdream.runtime import make_session
from onnxdream.torch_export import export_model
from onnxdream.torch_weights import WeightsMismatchError, guess_prefix, load_weights, read_weights
from tests import transfer_variants
from tests.weights_nets import FINE_TUNED, OTHER, CustomLayer, fine_tune, fine_tuned, other, pretrained

runner = CliRunner()
SHAPE = "1,3,32,32"


class RunsCode:
    """Unpickling this runs code: it would create the folder named ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


@pytest.fixture(scope="module")
def tuned() -> torch.nn.Module:
    return fine_tune(fine_tuned())


@pytest.fixture(scope="module")
def files(tuned, tmp_path_factory) -> dict[str, Path]:
    """The fine-tuned weights saved the ways people save them, and bad files."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("weights")
    state = tuned.state_dict()
    saved = {
        "plain.pth": state,
        "dataparallel.pt": {f"module.{k}": v for k, v in state.items()},
        "compiled.bin": {f"module._orig_mod.{k}": v for k, v in state.items()},
        "checkpoint.pth": {"epoch": 3, "model_state_dict": state, "optimizer_state_dict": {"lr": 0.1}},
        "model-entry.pth": {"model": state, "ema": {"decay": 0.99}},
        "lightning.ckpt": {
            "epoch": 0,
            "global_step": 3,
            "pytorch-lightning_version": "2.6.6",
            "state_dict": {f"model.{k}": v for k, v in state.items()} | {"loss_fn.weight": torch.ones(2)},
            "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 1}}}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}],
            "hyper_parameters": {"lr": 0.1, "name": "tiny"},
        },
        "other.pth": other().state_dict(),
        "note.pth": dict(state) | {"note": "fine-tuned on cats"},
        "namespace.ckpt": {"state_dict": state, "hparams": argparse.Namespace(lr=0.1)},
        "code.pth": dict(state) | {"payload": RunsCode(folder / "code-ran")},
    }
    for name, value in saved.items():
        torch.save(value, folder / name)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "tuned.safetensors")
    plain = (folder / "plain.pth").read_bytes()
    (folder / "truncated.pth").write_bytes(plain[: len(plain) // 2])
    tensors = (folder / "tuned.safetensors").read_bytes()
    (folder / "truncated.safetensors").write_bytes(tensors[:-64])
    (folder / "junk.bin").write_bytes(b"not weights at all\n" * 10)
    return {path.name: path for path in folder.iterdir()}


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    session = make_session(onnx.load(str(path)), device="cpu")
    return session.run({session.input_names[0]: x})[session.output_names[0]]


# file, what the metadata says held it, the prefix stripped, entries left out
FORMATS = [
    ("plain.pth", "state dict", "", 0),
    ("dataparallel.pt", "state dict", "module.", 0),
    ("compiled.bin", "state dict", "module._orig_mod.", 0),
    ("checkpoint.pth", "checkpoint 'model_state_dict'", "", 0),
    ("model-entry.pth", "checkpoint 'model'", "", 0),
    ("lightning.ckpt", "Lightning checkpoint", "model.", 1),
    ("tuned.safetensors", "safetensors", "", 0),
]


@pytest.mark.parametrize(("name", "held", "prefix", "ignored"), FORMATS, ids=[f[0] for f in FORMATS])
def test_export_with_weights_computes_what_the_fine_tuned_module_computes(
    name, held, prefix, ignored, files, tuned, tmp_path
):
    out = tmp_path / "ft.onnx"
    result = runner.invoke(
        app, ["export", FINE_TUNED, str(out), "--weights", str(files[name]), "--input-shape", SHAPE]
    )
    assert result.exit_code == 0, result.output
    assert f"weights {name} ({held}" in result.stderr
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    got = _ort(out, x)
    with torch.no_grad():
        expected = tuned(torch.from_numpy(x)).numpy()
        untuned = fine_tuned().eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.abs(untuned - expected).max() > 1e-2  # the factory's own weights would fail this test
    model = onnx.load(str(out))
    assert {"fine_tune_block.conv", "fine_tune_block.act"} <= {n.name for n in model.graph.node}
    assert get_json(model, WEIGHTS_KEY) == {
        "file": name,
        "sha256": hashlib.sha256(files[name].read_bytes()).hexdigest(),
        "format": held,
        "prefix": prefix,
        "tensors": len(tuned.state_dict()),
        "ignored": ignored,
    }


BAD = [
    ("other.pth", "weights do not fit tests.weights_nets:fine_tuned: 8 missing ('1.weight', '1.bias',"),
    ("truncated.pth", "a torch.save archive cut short or corrupt"),
    ("truncated.safetensors", "not a readable safetensors file"),
    ("code.pth", "holds pickled objects that need code to load (os.makedirs)"),
    ("namespace.ckpt", "holds pickled objects that need code to load (argparse.Namespace)"),
    ("note.pth", "entry 'note' holds a str, not a tensor"),
    ("junk.bin", "not a weights file (neither a torch.save file nor safetensors"),
    ("missing[v2].pth", "weights file not found"),  # brackets are text, not markup
]


@pytest.mark.parametrize(("name", "says"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_weights_file_exits_2_with_one_line_and_writes_nothing(name, says, files, tmp_path):
    path = files.get(name, tmp_path / name)
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["export", FINE_TUNED, str(out / "m.onnx"), "--weights", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr
    assert says in lines[0]
    if "pickled" in says:
        assert lines[0].endswith("if you trust this file, pass --trust-pickle")
    assert not list(out.iterdir())
    assert not (path.parent / "code-ran").exists()  # nothing in the file ran


def test_trust_pickle_reads_a_checkpoint_whose_extras_need_code(files, tmp_path):
    out = tmp_path / "m.onnx"
    args = ["export", FINE_TUNED, str(out), "--weights", str(files["namespace.ckpt"]), "--input-shape", SHAPE]
    assert runner.invoke(app, [*args, "--trust-pickle"]).exit_code == 0
    assert get_json(onnx.load(str(out)), WEIGHTS_KEY)["format"] == "checkpoint 'state_dict'"


def test_a_mismatch_names_counts_first_keys_and_the_nearest_model_key(tuned, tmp_path):
    state = dict(tuned.state_dict())
    state["fine_tune_block.conv.bais"] = state.pop("fine_tune_block.conv.bias")
    state["0.weight"] = state["0.weight"][:4]
    del state["3.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsMismatchError) as caught:
        load_weights(fine_tuned(), tmp_path / "bad.pth", target="net")
    assert str(caught.value) == (
        f"{tmp_path / 'bad.pth'}: weights do not fit net: "
        "2 missing ('3.bias', 'fine_tune_block.conv.bias'); "
        "1 unexpected ('fine_tune_block.conv.bais' (nearest 'fine_tune_block.conv.bias')); "
        "1 of another shape ('0.weight' (file 4x3x3x3, model 8x3x3x3)); 8 of 11 model keys fit"
    )


def test_weights_prefix_overrides_the_guess(files, tmp_path):
    dataparallel = str(files["dataparallel.pt"])
    base = ["export", FINE_TUNED, str(tmp_path / "m.onnx"), "--weights", dataparallel, "--input-shape", SHAPE]
    assert runner.invoke(app, [*base, "--weights-prefix", "module"]).exit_code == 0
    none = runner.invoke(app, [*base, "--weights-prefix", ""])
    assert none.exit_code == 2
    assert (
        "10 missing ('0.weight', '0.bias', '1.weight', +7 more); 11 unexpected ('module.0.weight'"
        in none.stderr
    )
    wrong = runner.invoke(app, [*base, "--weights-prefix", "model."])
    assert wrong.exit_code == 2
    assert wrong.stderr.strip() == (
        f"error: {dataparallel}: no key starts with --weights-prefix 'model.'; keys start with 'module.'"
    )
    alone = runner.invoke(app, ["export", FINE_TUNED, str(tmp_path / "n.onnx"), "--weights-prefix", "m."])
    assert alone.exit_code == 2
    assert (
        alone.stderr.strip()
        == "error: --weights-prefix strips a prefix from the keys of --weights; give the file"
    )


@pytest.mark.parametrize(
    ("keys", "prefix"),
    [
        (["module.conv.weight", "module.conv.bias", "module.fc.weight"], "module."),
        (
            ["model._orig_mod.conv.weight", "model._orig_mod.conv.bias", "model._orig_mod.fc.weight"],
            "model._orig_mod.",
        ),
        (["conv.weight", "conv.bias", "fc.weight"], ""),
        (["module.a.weight", "module.b.weight", "module.conv.weight"], ""),  # fits 1 of 3: no guess
    ],
    ids=["dataparallel", "lightning-compiled", "none", "too-few"],
)
def test_guess_prefix_strips_only_what_makes_the_keys_fit(keys, prefix):
    expected = {"conv.weight": 0, "conv.bias": 0, "fc.weight": 0}
    assert guess_prefix(keys, expected) == prefix


def test_a_file_without_batchnorm_step_counters_still_loads(tuned, tmp_path):
    state = {k: v for k, v in tuned.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    model = fine_tuned()
    source = load_weights(model, tmp_path / "old.pth")
    assert source.tensors == len(tuned.state_dict())
    assert torch.equal(model.state_dict()["0.weight"], tuned.state_dict()["0.weight"])
    assert read_weights(tmp_path / "old.pth")[1] == "state dict"


def test_open_model_takes_weights_only_for_a_torch_spec(files, tmp_path):
    model = open_model(FINE_TUNED, weights=files["tuned.safetensors"])
    assert model.kind == "torch" and files["tuned.safetensors"] in model.files
    assert get_json(model.proto, WEIGHTS_KEY)["format"] == "safetensors"
    onnx.save(model.proto, tmp_path / "m.onnx")
    with pytest.raises(
        OptionError, match=r"^weights loads weights into a torch SPEC .* not into '.*m\.onnx'$"
    ):
        open_model(tmp_path / "m.onnx", weights=files["plain.pth"])
    with pytest.raises(OptionError, match=r"^weights_prefix strips a prefix from the keys of weights"):
        export_model(FINE_TUNED, weights_prefix="module.")


def test_outputs_never_replace_the_weights_file(files):
    before = files["plain.pth"].read_bytes()
    result = runner.invoke(
        app, ["export", FINE_TUNED, str(files["plain.pth"]), "--weights", str(files["plain.pth"])]
    )
    assert result.exit_code == 2 and "refusing to write over the input" in result.stderr
    assert files["plain.pth"].read_bytes() == before


def test_dream_visualize_and_check_take_the_weights(files, tmp_path):
    weights = ["--weights", str(files["dataparallel.pt"])]
    dream_args = "--layer fine_tune_block --octaves 1 --steps 2 --max-size 64 --device cpu".split()
    dream = runner.invoke(
        app, ["dream", "--demo", str(tmp_path / "d.png"), "--model", FINE_TUNED, *weights, *dream_args]
    )
    assert dream.exit_code == 0, dream.output
    assert "on fine_tune_block" in dream.stderr and (tmp_path / "d.png").stat().st_size > 0
    look = "-l fine_tune_block:3 --size 32 --steps 2 --device cpu".split()
    visualize = runner.invoke(app, ["visualize", FINE_TUNED, *weights, *look, "-o", str(tmp_path / "v.png")])
    assert visualize.exit_code == 0, visualize.output
    check = runner.invoke(app, ["check", FINE_TUNED, *weights, "--device", "cpu", "--json"])
    assert check.exit_code == 0, check.output
    assert "fine_tune_block.conv" in {row["name"] for row in json.loads(check.stdout)["layers"]}
    wrong = runner.invoke(app, ["check", FINE_TUNED, "--weights", str(files["other.pth"]), "--device", "cpu"])
    assert wrong.exit_code == 2 and "weights do not fit" in wrong.stderr


def test_rename_reference_with_weights_gives_a_stripped_export_its_names_back(files, tmp_path):
    exported = export_model(FINE_TUNED, weights=files["plain.pth"], input_shape=(1, 3, 32, 32)).model
    names = [n.name for n in exported.graph.node]
    stripped = tmp_path / "stripped.onnx"
    onnx.save(transfer_variants.strip(exported), stripped)
    assert not any(n.name for n in onnx.load(str(stripped)).graph.node)
    out = tmp_path / "named.onnx"
    args = [
        "rename",
        str(stripped),
        str(out),
        "--reference",
        FINE_TUNED,
        "--weights",
        str(files["lightning.ckpt"]),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    named = onnx.load(str(out))
    assert [n.name for n in named.graph.node] == names
    assert "fine_tune_block.conv" in names
    alone = runner.invoke(
        app, ["rename", str(stripped), str(tmp_path / "x.onnx"), "--weights", str(files["plain.pth"])]
    )
    assert alone.exit_code == 2
    assert (
        alone.stderr.strip() == "error: --weights loads weights into the --reference SPEC; give --reference"
    )


def test_another_architecture_spec_refuses_the_fine_tuned_weights(files, tmp_path):
    result = runner.invoke(
        app, ["export", OTHER, str(tmp_path / "o.onnx"), "--weights", str(files["plain.pth"])]
    )
    assert result.exit_code == 2
    assert "weights do not fit tests.weights_nets:other: 2 missing ('2.weight', '2.bias');" in result.stderr
    assert not (tmp_path / "o.onnx").exists()


def test_a_real_lightning_checkpoint_exports_what_the_lightning_module_computed(tmp_path):
    """``fixtures/weights/lightning_tiny.ckpt`` is ``Trainer.save_checkpoint`` output (made by
    ``tools/make_lightning_checkpoint.py``): hyper-parameters, loops, callbacks and optimizer
    states beside ``state_dict``, whose ``model.*`` keys sit next to the module's own buffer."""
    folder = Path(__file__).resolve().parent.parent / "fixtures" / "weights"
    out = tmp_path / "l.onnx"
    args = [
        "export",
        FINE_TUNED,
        str(out),
        "--weights",
        str(folder / "lightning_tiny.ckpt"),
        "--input-shape",
        SHAPE,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    io = np.load(folder / "lightning_tiny_io.npz")
    np.testing.assert_allclose(_ort(out, io["input"]), io["output"], rtol=0, atol=1e-5)
    recorded = get_json(onnx.load(str(out)), WEIGHTS_KEY)
    assert (recorded["format"], recorded["prefix"], recorded["ignored"]) == (
        "Lightning checkpoint",
        "model.",
        1,
    )


def test_weights_of_a_part_are_told_apart_from_the_whole(tmp_path):
    torch.save(pretrained().state_dict(), tmp_path / "pretrained.pth")
    whole = torch.nn.Sequential(pretrained(), CustomLayer())
    with pytest.raises(WeightsMismatchError) as caught:
        load_weights(whole, tmp_path / "pretrained.pth", target="net")
    assert str(caught.value).endswith(
        "0 of 11 model keys fit; 9 of the file's keys fit under '0.': weights of that part only, not of the whole"
    )


def test_safetensors_without_its_package_names_the_extra(files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    path = files["tuned.safetensors"]
    result = runner.invoke(app, ["export", FINE_TUNED, str(tmp_path / "m.onnx"), "--weights", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path}: reading .safetensors needs the safetensors package: pip install 'onnxdream[weights]'"
    )
    assert not (tmp_path / "m.onnx").exists()
