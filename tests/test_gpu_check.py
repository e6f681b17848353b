"""tools/gpu_check.py: one line and exit 0 without CUDA; its machinery, run on the CPU, in CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch

from tests.dream_helpers import tiny_onnx

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script runs for real")
def test_without_cuda_one_line_and_exit_0():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"no CUDA GPU: torch {torch.__version__} sees none, so there is no CUDA path to check"
    ]


def test_cpu_part_runs_every_path_and_prints_the_table(tmp_path, monkeypatch, capsys):
    from tools import gpu_check

    model = tmp_path / "tiny.onnx"
    onnx.save(tiny_onnx(), model)
    argv = ["gpu_check.py", "--device", "cpu", "--model", str(model), "--layer", "block2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--size", "32", "--steps", "2", "--no-compile"])
    assert gpu_check.main() == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {tuple(line.split()[:2]): line for line in lines[2:]}
    assert list(rows) == [
        ("ort", "session"), ("ort", "forward"), ("mirror", "forward"), ("mirror", "gradient"),
        ("dream", "fp32"), ("visualize", "fp32"), ("dream/visualize", "fp16"), ("dream", "bf16"),
        ("visualize", "bf16"), ("dream", "folder"), ("dream", "atlas"),
    ]  # fmt: skip
    assert "provider: cpu" in rows["ort", "session"]
    assert "refused: precision fp16 needs CUDA" in rows["dream/visualize", "fp16"]

    def diff(key: tuple[str, str]) -> str:
        return rows[key][38:50].strip()  # the "max |diff|" column

    for key in [("mirror", "gradient"), ("dream", "fp32"), ("dream", "folder")]:
        assert diff(key) == "0", rows[key]  # the CPU against itself: identical
    assert "ORT checks passed" in rows["dream", "bf16"]
    assert float(diff(("dream", "bf16"))) > 0  # bf16 really changes the image
