"""tools/measure.py: what .ci/run uses to print wall time and peak memory, keeping the exit code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "measure.py"


def _measure(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), sys.executable, "-c", code], capture_output=True, text=True
    )


def test_reports_peak_memory_of_the_tree_and_keeps_the_exit_code() -> None:
    # A child holding 200 MB of its own, inside the measured process: the tree is what counts.
    code = (
        "import subprocess, sys; "
        "sys.exit(subprocess.call([sys.executable, '-c', "
        "'import time; a = bytearray(200 * 2**20); a[::4096] = b\"x\" * len(a[::4096]); time.sleep(1)']) + 4)"
    )
    result = _measure(code)
    assert result.returncode == 4
    found = re.search(
        r"peak memory: largest process (\d+\.\d+) GiB, process tree at once (\d+\.\d+) GiB", result.stderr
    )
    assert found, result.stderr
    largest, tree = float(found[1]), float(found[2])
    assert 0.19 <= largest < 0.5
    assert largest <= tree + 0.05
    assert "wall time" in result.stderr


def test_failure_is_passed_on() -> None:
    assert _measure("raise SystemExit(1)").returncode == 1
