"""Start-up: ``--help`` of the CLI and of every command imports none of the heavy libraries.

The rule is written in ``onnxdream/commands/__init__.py``; timing lives in ``tools/bench_startup.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "onnx", "onnxruntime", "onnxscript", "numpy", "PIL")
"""Modules the help must not load (each one costs from 0.1 s to seconds on import)."""

_PROBE = """
import json, sys
import typer.main
from onnxdream.cli import app

names = sorted(typer.main.get_command(app).commands)
helps = {}
for argv in [[]] + [[name] for name in names]:
    try:
        app(argv + ["--help"], prog_name="onnxdream", standalone_mode=False)
    except SystemExit:
        pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"commands": names, "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def probe() -> dict:
    """Build the help of the app and of every registered command in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(HEAVY)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    report["help"] = "\n".join(lines[:-1])
    return report


def test_help_of_every_command_imports_nothing_heavy(probe: dict) -> None:
    assert probe["heavy"] == []


def test_probe_really_built_every_help(probe: dict) -> None:
    """The probe is not vacuous: it saw the known commands and printed their usage lines."""
    assert {"export", "layers", "rename", "expose-layers", "check", "dream", "visualize"} <= set(
        probe["commands"]
    )
    for name in probe["commands"]:
        assert f"Usage: onnxdream {name} " in probe["help"], name


def test_probe_detects_a_heavy_import() -> None:
    """The same check flags onnx once a command's library is loaded (a passing test means something)."""
    code = "import sys, onnxdream.cli, onnxdream.model; print('onnx' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True", done.stderr
