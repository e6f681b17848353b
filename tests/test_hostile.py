"""Hostile and careless input, generated here: every case ends cleanly.

Known bad input: exit 2 and one line on stderr naming the file (or flag); every input keeps its
bytes; nothing is left behind, temp files included. A bug: exit 3 and one ``internal error`` line.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.errors import BadModelError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
runner = CliRunner()


# --- the corpus ----------------------------------------------------------------------------------


def _parse(text: str) -> onnx.ModelProto:
    return onnx.parser.parse_model(textwrap.dedent(text))


def small_external_model() -> onnx.ModelProto:
    """MatMul + Relu + ReduceMean whose ``axes`` is a small int64 initializer (what ORT needs inline)."""
    model = _parse(
        """
        <ir_version: 8, opset_import: ["" : 18]>
        g (float[1,16] x) => (float[1,1] y) {
          h = MatMul(x, w)
          r = Relu(h)
          y = ReduceMean<keepdims=1>(r, axes)
        }
        """
    )
    weights = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)
    model.graph.initializer.extend(
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array([1]), "axes")]
    )
    for node, name in zip(model.graph.node, ["fc", "act", "mean"], strict=True):
        node.name = name
    return model


def save_external(model: onnx.ModelProto, path: Path, location: str) -> Path:
    """Save as the torch exporter does: every initializer in one external file, whatever its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path), save_as_external_data=True, location=location, size_threshold=0)
    return path


def bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


ODD_MODELS = {
    "int64": "(int64[1,3,8,8] x) => (int64[1,3,8,8] y) { y = Relu(x) }",
    "one_d": "(float[16] x) => (float[16] y) { y = Relu(x) }",
    "huge": "(float[1,3,2147483648,2147483648] x) => (float[1,3,2147483648,2147483648] y) { y = Relu(x) }",
    "no_inputs": "() => (float[2] y) { y = Constant<value = float[2] {1.0, 2.0}>() }",
    "cyclic": "(float[1,3,8,8] x) => (float[1,3,8,8] y) { a = Add(x, b)\n b = Relu(a)\n y = Identity(b) }",
    "unknown_domain": "(float[1,3,8,8] x) => (float[1,3,8,8] y) { a = Relu(x)\n y = my.domain.Foo(a) }",
    "no_rank": "(float x) => (float y) { a = Relu(x)\n y = Sigmoid(a) }",
}


def odd_model(folder: Path, kind: str) -> Path:
    """A one-line model of a kind users stumble on (see :data:`ODD_MODELS`)."""
    domains = ', "my.domain": 1' if kind == "unknown_domain" else ""
    model = _parse(f'<ir_version: 8, opset_import: ["" : 17{domains}]>\ng {ODD_MODELS[kind]}')
    if kind == "no_rank":
        for value in (*model.graph.input, *model.graph.output):
            value.type.tensor_type.ClearField("shape")
    path = folder / f"{kind}.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture
def d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder (also the CWD) with the inputs the cases read."""
    shutil.copy(FIXTURES / "tiny_cnn.onnx", tmp_path / "m.onnx")
    shutil.copy(FIXTURES / "pattern.png", tmp_path / "in.png")
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    (tmp_path / "names.json").write_text('{"stem.0": "first"}', encoding="utf-8")
    save_external(small_external_model(), tmp_path / "ext" / "m.onnx", "m.data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden temp files included) -> sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def refused(folder: Path, args: list[object], named: object, code: int = 2) -> str:
    """Run the CLI; assert exit ``code``, one stderr line naming ``named``, and no file changed or added."""
    before = snapshot(folder)
    result = runner.invoke(app, [str(a) for a in args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1, result.stderr
    assert str(named) in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert snapshot(folder) == before
    return lines[0]


def ok(args: list[object]) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


# --- inputs are never overwritten ------------------------------------------------------------------


def _hard_link(d: Path) -> list[object]:
    os.link(d / "m.onnx", d / "hard.onnx")
    return ["rename", "m.onnx", "hard.onnx"]


def _symlink(d: Path) -> list[object]:
    (d / "link.onnx").symlink_to(d / "m.onnx")
    return ["rename", "m.onnx", "link.onnx"]


def _data_named_like_output(d: Path) -> list[object]:
    save_external(small_external_model(), d / "e2" / "m.onnx", "o.onnx.data")
    return ["rename", "e2/m.onnx", "e2/o.onnx"]


def _guide(d: Path) -> list[object]:
    shutil.copy(d / "in.png", d / "guide.png")
    return ["dream", "in.png", "guide.png", "--guide", "guide.png", "--model", "m.onnx", "-l", "stem.1"]


def _frame(d: Path) -> list[object]:
    shutil.copy(d / "in.png", d / "anim_0001.png")
    return ["dream", "anim_0001.png", "anim.gif", "--frames", "2", "--model", "m.onnx", "-l", "stem.1"]


def _folder_output_linked(d: Path) -> list[object]:
    (d / "photos").mkdir()
    shutil.copy(d / "in.png", d / "photos" / "a.png")
    (d / "out").mkdir()
    (d / "out" / "a.png").symlink_to(d / "photos" / "a.png")
    return ["dream", "photos", "out", "--model", "m.onnx", "-l", "stem.1"]


def _dream_model(d: Path) -> list[object]:
    return ["dream", "in.png", "m.onnx.png", "--model", "m.onnx", "-l", "stem.1"]


OVERWRITES: dict[str, tuple[Callable[[Path], list[object]], str]] = {
    "rename-report-over-model": (lambda d: ["rename", "m.onnx", "out.onnx", "--report", "m.onnx"], "m.onnx"),
    "rename-report-over-map": (
        lambda d: ["rename", "m.onnx", "out.onnx", "--map", "names.json", "--report", "names.json"],
        "names.json",
    ),
    "rename-report-over-output": (
        lambda d: ["rename", "m.onnx", "out.onnx", "--report", "out.onnx"],
        "the same file as the output",
    ),
    "rename-over-model": (lambda d: ["rename", "m.onnx", "m.onnx"], "use --in-place"),
    "rename-over-hard-link": (_hard_link, "hard.onnx"),
    "rename-over-symlink": (_symlink, "link.onnx"),
    "rename-over-input-data": (lambda d: ["rename", "ext/m.onnx", "ext/m.data"], "ext/m.data"),
    "rename-data-file-is-input-data": (_data_named_like_output, "e2/o.onnx.data"),
    "expose-save-over-model": (
        lambda d: [
            "expose-layers",
            "m.onnx",
            "out.onnx",
            "-l",
            "stem.0",
            "--run",
            "in.png",
            "--save",
            "m.onnx",
        ],
        "m.onnx",
    ),
    "expose-save-over-run-input": (
        lambda d: [
            "expose-layers",
            "m.onnx",
            "out.onnx",
            "-l",
            "stem.0",
            "--run",
            "x.npy",
            "--save",
            "x.npy",
        ],
        "x.npy",
    ),
    "expose-over-input-data": (
        lambda d: ["expose-layers", "ext/m.onnx", "ext/m.data", "-l", "act"],
        "ext/m.data",
    ),
    "dream-over-guide": (_guide, "guide.png"),
    "dream-frame-over-input": (_frame, "anim_0001.png"),
    "dream-folder-output-links-to-input": (_folder_output_linked, "out/a.png"),
    "export-over-its-spec": (lambda d: ["export", "x.npy", "x.npy"], "x.npy"),
}


@pytest.mark.parametrize("case", list(OVERWRITES))
def test_outputs_never_replace_inputs(d: Path, case: str) -> None:
    build, named = OVERWRITES[case]
    line = refused(d, build(d), named)
    assert "refusing to write over" in line or "the same file as the output" in line


def test_dream_model_file_is_an_input(d: Path) -> None:
    """A model's own path cannot be the dream's output, by symlink either."""
    (d / "m.onnx.png").symlink_to(d / "m.onnx")
    refused(d, _dream_model(d), "m.onnx.png")


def test_in_place_is_allowed_and_repeatable_with_external_data(d: Path) -> None:
    for _ in range(2):
        ok(["expose-layers", "ext/m.onnx", "ext/m.onnx", "-l", "r", "--in-place"])  # tensor r stays
        ok(["rename", "ext/m.onnx", "--in-place", "--overwrite-names"])
    # The in-place output keeps its data in ext/m.onnx.data; the old m.data is left as it was.
    expected = _ort_outputs(small_external_model())["y"]
    np.testing.assert_array_equal(_ort_outputs(d / "ext" / "m.onnx")["y"], expected)


# --- outputs load in ONNX Runtime ------------------------------------------------------------------


def _ort_outputs(model: Path | onnx.ModelProto) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    x = np.linspace(-1, 1, 16, dtype=np.float32)[None]
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"x": x}), strict=True))


@pytest.mark.parametrize("command", ["rename", "expose-layers"])
def test_outputs_of_external_data_models_load_in_ort(d: Path, command: str, monkeypatch) -> None:
    extra = ["--overwrite-names"] if command == "rename" else ["-l", "act"]
    ok([command, "ext/m.onnx", "out/r.onnx", *extra])
    written = onnx.load(str(d / "out" / "r.onnx"), load_external_data=False)
    inline = {t.name for t in written.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL}
    assert inline == {"axes"}  # small tensors stay inline; the 4 KiB weight goes external
    expected = _ort_outputs(small_external_model())["y"]
    np.testing.assert_array_equal(_ort_outputs(d / "out" / "r.onnx")["y"], expected)
    monkeypatch.chdir("/")  # ONNX Runtime finds the data beside the model, not in the CWD
    np.testing.assert_array_equal(_ort_outputs(d / "out" / "r.onnx")["y"], expected)


def test_rerun_from_the_output_folder_replaces_its_data_file(d: Path, monkeypatch) -> None:
    (d / "out").mkdir()
    monkeypatch.chdir(d / "out")
    ok(["rename", "../ext/m.onnx", "r.onnx"])
    (d / "out" / "r.onnx.data").write_bytes(b"stale")
    ok(["rename", "../ext/m.onnx", "r.onnx"])
    assert (d / "out" / "r.onnx.data").read_bytes() != b"stale"
    expected = _ort_outputs(small_external_model())["y"]
    np.testing.assert_array_equal(_ort_outputs(d / "out" / "r.onnx")["y"], expected)
    assert sorted(p.name for p in (d / "out").iterdir()) == ["r.onnx", "r.onnx.data"]


def test_external_data_through_an_in_folder_symlink_is_one_line(d: Path) -> None:
    save_external(small_external_model(), d / "e3" / "m.onnx", "m.data")
    (d / "e3" / "m.data").rename(d / "e3" / "real.data")
    (d / "e3" / "m.data").symlink_to("real.data")
    line = refused(d, ["rename", "e3/m.onnx", "o.onnx"], "e3/m.onnx")
    assert "symbolic link" in line


# --- untrusted code --------------------------------------------------------------------------------


def _evil_pickle(d: Path) -> tuple[Path, Path]:
    """A torch.save file whose unpickling would create a marker file."""
    import torch

    marker = d / "PWNED"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"model": Evil()}, d / "evil.pt")
    return d / "evil.pt", marker


@pytest.mark.parametrize(
    "args",
    [["export", "evil.pt", "o.onnx"], ["rename", "m.onnx", "o.onnx", "--reference", "evil.pt"]],
    ids=["export", "rename-reference"],
)
def test_pickles_run_no_code_without_trust(d: Path, args: list[str]) -> None:
    _, marker = _evil_pickle(d)
    line = refused(d, args, "evil.pt")
    assert "--trust-pickle" in line
    assert not marker.exists()


def test_python_api_refuses_pickles_too(d: Path) -> None:
    from onnxdream.torch_export import export_model

    path, marker = _evil_pickle(d)
    with pytest.raises(BadModelError, match=r"evil\.pt: .*trust_pickle=True"):
        export_model(str(path))
    assert not marker.exists()


def test_state_dict_is_read_safely_and_named(d: Path) -> None:
    import torch

    torch.save(torch.nn.Linear(2, 2).state_dict(), d / "sd.pt")
    refused(
        d,
        ["export", "sd.pt", "o.onnx"],
        "sd.pt: holds a OrderedDict of weights, not a torch.nn.Module; give the architecture as SPEC "
        "(package.module:factory) and this file as --weights",
    )


@pytest.mark.parametrize(
    ("source", "spec", "cause"),
    [
        ('raise RuntimeError("boom at import")\n', "f", "RuntimeError: boom at import"),
        ("def f(:\n", "f", "SyntaxError: invalid syntax"),
        (
            'def f():\n    raise ValueError("factory says no\\nsecond line")\n',
            "f",
            "f() raised ValueError: factory says no",
        ),
        ("x = 1\n", "f", "has no callable 'f'"),
    ],
    ids=["raises-on-import", "syntax-error", "factory-raises", "no-factory"],
)
def test_factory_failures_name_the_spec(d: Path, monkeypatch, source: str, spec: str, cause: str) -> None:
    name = f"hostile_{hashlib.md5(source.encode()).hexdigest()[:8]}"
    (d / "pkg").mkdir()
    (d / "pkg" / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(d / "pkg"))
    line = refused(d, ["export", f"{name}:{spec}", "o.onnx"], f"{name}:{spec}")
    assert cause in line and "second line" not in line


# --- write errors ----------------------------------------------------------------------------------


def test_output_that_is_a_folder(d: Path) -> None:
    (d / "outdir").mkdir()
    (d / "outdir.png").mkdir()
    for args in (
        ["rename", "m.onnx", "outdir"],
        ["expose-layers", "m.onnx", "outdir", "-l", "stem.0"],
        ["export", "zoo:efficientnet-lite0", "outdir"],
    ):
        assert "is a folder" in refused(d, args, "outdir")
    refused(d, ["dream", "in.png", "outdir.png", "--model", "m.onnx", "-l", "stem.1"], "outdir.png")


def test_read_only_folder(d: Path, monkeypatch) -> None:
    (d / "ro").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != d / "ro" and real_access(p, mode))
    assert "read-only" in refused(d, ["rename", "m.onnx", "ro/out.onnx"], "ro/out.onnx")


@pytest.mark.parametrize("code", [errno.EPERM, errno.EROFS, errno.EACCES])
def test_folder_refusing_temp_files(d: Path, monkeypatch, code: int) -> None:
    """An immutable folder or a read-only mount that access() does not reveal: found at write time."""
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    line = refused(d, ["rename", "m.onnx", "out.onnx", "--report", "r.json"], "out.onnx")
    assert os.strerror(code) in line


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("method", ["write_bytes", "write_text"])
def test_disk_full_writes_all_outputs_or_none(d: Path, monkeypatch, method: str) -> None:
    """The model or its report fails: neither appears (write_text is the report, after the model)."""
    monkeypatch.setattr(Path, method, _disk_full)
    line = refused(d, ["rename", "m.onnx", "out.onnx", "--report", "r.json"], "No space left on device")
    assert ("r.json" if method == "write_text" else "out.onnx") in line


def test_disk_full_for_external_data(d: Path, monkeypatch) -> None:
    monkeypatch.setattr(onnx.external_data_helper, "write_external_data_tensors", _disk_full)
    refused(d, ["rename", "ext/m.onnx", "out/r.onnx"], "out/r.onnx: cannot write (No space left on device)")


def test_disk_full_for_an_image(d: Path, monkeypatch) -> None:
    from PIL import Image

    monkeypatch.setattr(Image.Image, "save", _disk_full)
    args = ["dream", "in.png", "o.png", "--model", "m.onnx", "-l", "stem.1", "--octaves", "1", "--steps", "1"]
    refused(d, args, "o.png: cannot write (No space left on device)")


# --- images ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["dream", "bomb.png", "o.png", "--model", "m.onnx", "-l", "stem.1"],
        ["dream", "in.png", "o.png", "--guide", "bomb.png", "--model", "m.onnx", "-l", "stem.1"],
        ["check", "m.onnx", "--input", "bomb.png"],
        ["expose-layers", "m.onnx", "o.onnx", "-l", "stem.0", "--run", "bomb.png"],
    ],
    ids=["dream", "dream-guide", "check", "expose-run"],
)
def test_decompression_bomb_is_refused_with_the_limit(d: Path, args: list[str]) -> None:
    bomb_png(d / "bomb.png")
    line = refused(d, args, "bomb.png")
    assert "20000x20000" in line and "--max-pixels" in line


def test_pixel_limit_is_a_flag(d: Path) -> None:
    line = refused(d, ["check", "m.onnx", "--input", "in.png", "--max-pixels", "1000"], "in.png")
    assert "over the limit of 1000" in line
    ok(["check", "m.onnx", "--input", "in.png", "--max-pixels", "0"])


# --- models and options that cannot work -------------------------------------------------------------


ODD_CASES = {
    "dream-int64-input": (["dream", "in.png", "o.png", "--model", "{int64}", "-l", "y"], "int64 of rank 4"),
    "dream-1d-input": (["dream", "in.png", "o.png", "--model", "{one_d}", "-l", "y"], "float32 of rank 1"),
    "check-2^31-dims": (["check", "{huge}"], "more than the 2147483647 supported"),
    "expose-run-2^31-dims": (["expose-layers", "{huge}", "o.onnx", "-l", "y", "--run", "in.png"], "elements"),
    "check-no-rank": (["check", "{no_rank}"], "declares no shape"),
    "check-no-inputs": (["check", "{no_inputs}"], "has no inputs"),
    "check-cyclic": (["check", "{cyclic}"], "not acyclic"),
    "expose-run-unknown-domain": (
        ["expose-layers", "{unknown_domain}", "o.onnx", "-l", "a", "--run", "x8.npy"],
        "my.domain",
    ),
    "dream-model-errors-name-the-file": (["dream", "in.png", "o.png", "--model", "{cyclic}", "-l", "a"], ""),
}


@pytest.mark.parametrize("case", list(ODD_CASES))
def test_odd_models_exit_2_naming_the_file(d: Path, case: str) -> None:
    args, message = ODD_CASES[case]
    paths = {kind: odd_model(d, kind) for kind in ODD_MODELS}
    np.save(d / "x8.npy", np.zeros((1, 3, 8, 8), np.float32))
    args = [a.format(**{k: str(p) for k, p in paths.items()}) for a in args]
    model = next(a for a in args if a.endswith(".onnx") and a != "o.onnx")
    line = refused(d, args, model)
    assert message in line and "<model>" not in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dream", "in.png", "o.png", "--seed", "-1"], "--seed must be between 0 and 2**32-1"),
        (["check", "m.onnx", "--atol", "nan"], "--atol must be a finite number"),
        (["check", "m.onnx", "--rtol", "inf"], "--rtol must be a finite number"),
        (
            ["export", "zoo:efficientnet-lite0", "o.onnx", "--input-shape", "1,3,2147483647,2"],
            "at most 2147483647",
        ),
    ],
    ids=["dream-seed", "check-atol-nan", "check-rtol-inf", "export-input-shape"],
)
def test_bad_numbers(d: Path, args: list[str], message: str) -> None:
    refused(d, args, message)


# --- internal errors ------------------------------------------------------------------------------------


def _bug(*args, **kwargs):
    raise ZeroDivisionError("a bug deep inside")


def test_unexpected_error_is_one_line_exit_3_with_the_traceback_saved(d: Path, monkeypatch) -> None:
    import onnxdream.layers as layers_module  # the command imports it when it runs

    monkeypatch.setattr(layers_module, "list_layers", _bug)
    monkeypatch.delenv("ONNXDREAM_DEBUG", raising=False)
    line = refused(d, ["layers", "m.onnx"], "internal error: ZeroDivisionError: a bug deep inside", code=3)
    saved = Path(line.split("traceback saved to ")[1].split(";")[0])
    try:
        assert "Traceback" in saved.read_text() and "_bug" in saved.read_text()
    finally:
        saved.unlink()


def test_debug_shows_the_traceback(d: Path, monkeypatch) -> None:
    import onnxdream.layers as layers_module  # the command imports it when it runs

    monkeypatch.setattr(layers_module, "list_layers", _bug)
    monkeypatch.setenv("ONNXDREAM_DEBUG", "1")
    result = runner.invoke(app, ["layers", "m.onnx"])
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "ZeroDivisionError: a bug deep inside" in result.stderr


def test_ctrl_c_is_one_line_exit_130(d: Path, monkeypatch) -> None:
    import onnxdream.layers as layers_module  # the command imports it when it runs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(layers_module, "list_layers", interrupted)
    refused(d, ["layers", "m.onnx"], "interrupted by SIGINT", code=130)


def test_help_documents_exit_codes() -> None:
    text = runner.invoke(app, ["--help"]).output
    for code in ("0 success", "1 a check found a difference", "2 bad input", "3 an internal error"):
        assert code in " ".join(text.split())


# --- signals ------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_inside_an_atomic_write_leaves_no_temp_file(tmp_path: Path, signum: int) -> None:
    """The CLI's handlers turn the signal into an unwind: the write's ``finally`` removes its temp file."""
    target = tmp_path / "out.onnx"
    target.write_bytes(b"previous")
    script = textwrap.dedent(
        f"""
        import sys, time
        from onnxdream.commands.common import install_signal_handlers, Interrupted
        from onnxdream.io import atomic_path
        install_signal_handlers()
        try:
            with atomic_path({str(target)!r}) as tmp:
                tmp.write_bytes(b"partial" * 1000)
                print("writing", flush=True)
                time.sleep(60)
        except Interrupted as exc:
            sys.exit(128 + exc.signum)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=_env(), text=True)
    assert process.stdout.readline().strip() == "writing"
    assert len(list(tmp_path.glob(".out.onnx.*.tmp"))) == 1
    process.send_signal(signum)
    assert process.wait(timeout=30) == 128 + signum
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"]
    assert target.read_bytes() == b"previous"


def test_signal_during_the_commit_waits_until_every_output_is_in_place(tmp_path: Path) -> None:
    """SIGTERM as the first of two outputs lands: the second lands too, then the run stops."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from onnxdream import io
        from onnxdream.commands.common import install_signal_handlers, Interrupted
        install_signal_handlers()
        real_replace = os.replace
        def replace_then_signal(src, dst):
            real_replace(src, dst)
            os.kill(os.getpid(), signal.SIGTERM)
        io.os.replace = replace_then_signal
        try:
            with io.staged() as staging:
                staging.path({str(tmp_path / "m.onnx.data")!r}).write_bytes(b"data")
                staging.path({str(tmp_path / "m.onnx")!r}).write_bytes(b"model")
        except Interrupted as exc:
            sys.exit(128 + exc.signum)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], env=_env(), timeout=60)
    assert result.returncode == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    assert (tmp_path / "m.onnx").read_bytes() == b"model"


def test_sigterm_stops_a_command_with_one_line(tmp_path: Path) -> None:
    """A real CLI run, blocked reading its map file (a FIFO): SIGTERM gives exit 143 and one line."""
    shutil.copy(FIXTURES / "tiny_cnn.onnx", tmp_path / "m.onnx")
    fifo = tmp_path / "names.json"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [sys.executable, "-m", "onnxdream", "rename", "m.onnx", "out.onnx", "--map", "names.json"],
        cwd=tmp_path,
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = _open_when_read(fifo, deadline=time.monotonic() + 60)  # the command is past start-up
    try:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        os.close(writer)
    assert process.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines() == ["interrupted by SIGTERM (unfinished outputs removed)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "names.json"]


def _open_when_read(fifo: Path, deadline: float) -> int:
    """Open ``fifo`` for writing once a reader has it open (non-blocking open fails with ENXIO before)."""
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_stale_temp_files_of_dead_runs_are_swept(d: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale_file = d / f".out.onnx.{dead.pid}-abc123.tmp"
    stale_dir = d / f".out.onnx.{dead.pid}-def456.tmp"
    live = d / f".out.onnx.{os.getppid()}-live.tmp"  # a running process: not ours to remove
    other = d / f".other.onnx.{dead.pid}-x.tmp"  # another output's: left alone
    stale_file.write_bytes(b"partial")
    stale_dir.mkdir()
    (stale_dir / "out.onnx.data").write_bytes(b"partial")
    live.write_bytes(b"in progress")
    other.write_bytes(b"partial")
    ok(["rename", "m.onnx", "out.onnx"])
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and other.exists()
