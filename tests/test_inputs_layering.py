"""``onnxdream.inputs`` sits below the verbs (see test_import_layers): reading inputs loads no dream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent

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
