"""``onnxdream.inputs`` sits below the verbs: it imports none of them, and reading inputs loads no dream."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
INPUTS = ROOT / "onnxdream" / "inputs"
VERBS = (
    "onnxdream.dream",
    "onnxdream.commands",
    "onnxdream.check",
    "onnxdream.zoo",
    "onnxdream.export",
    "onnxdream.cli",
)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(INPUTS.glob("*.py")), ids=lambda p: p.name)
def test_inputs_import_no_verb(path: Path) -> None:
    above = sorted(n for n in _imports(path) if n in VERBS or n.startswith(tuple(v + "." for v in VERBS)))
    assert above == [], f"{path.name} imports {above}"


_SCRIPT = """
import json, sys
from typer.testing import CliRunner
from onnxdream.cli import app

before = sorted(m for m in sys.modules if m.startswith("onnxdream.dream"))
runner = CliRunner()
tiny, image, out = sys.argv[1:4]
runs = [
    runner.invoke(app, ["check", tiny, "--input", image, "--device", "cpu", "--json"]),
    runner.invoke(app, ["expose-layers", tiny, out, "-l", "stem.1", "--run", image, "--device", "cpu"]),
]
print(json.dumps({
    "codes": [r.exit_code for r in runs],
    "before": before,
    "after": sorted(m for m in sys.modules if m.startswith("onnxdream.dream")),
}))
"""


def test_check_input_and_expose_run_load_no_dream(tmp_path: Path) -> None:
    """Both commands read a real image through the CLI in a fresh interpreter, dream untouched."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [
        str(ROOT / "fixtures" / "tiny_cnn.onnx"),
        str(ROOT / "fixtures" / "pattern.png"),
        str(tmp_path / "o.onnx"),
    ]
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"codes": [0, 0], "before": [], "after": []}
    assert (tmp_path / "o.onnx").is_file()


def test_zoo_metadata_needs_no_torch() -> None:
    """The zoo takes its ImageNet statistics from ``inputs.normalize`` without loading torch."""
    code = "import sys, onnxdream.zoo as z; print(z.EFFICIENTNET_PREPROCESS['std'], 'torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "[0.229, 0.224, 0.225] False"
