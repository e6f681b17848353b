"""Benchmark variants, each run in a fresh subprocess so that each peak RSS (``ru_maxrss``) is its
own; variants alternate and the fastest run of each counts. Shared by ``tools.bench_dream`` and
``tools.bench_visualize``: the benchmark module re-runs itself with ``--child VARIANT``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_child(module: str, variant: str, argv: list[str]) -> dict:
    """``python -m module --child variant argv`` from the repository root: its last line, as JSON."""
    cmd = [sys.executable, "-m", module, "--child", variant, *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fastest(module: str, variants: Iterable[str], argv: list[str], repeat: int) -> dict[str, dict]:
    """Each variant ``repeat`` times, alternating; the fastest run (least ``seconds``) of each."""
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    for _ in range(repeat):
        for variant in runs:
            runs[variant].append(run_child(module, variant, argv))
    return {variant: min(done, key=lambda r: r["seconds"]) for variant, done in runs.items()}


def child(threads: int, measure: Callable[[], dict]) -> None:
    """In a child: ``measure()`` with ``threads`` torch threads (0: torch's default), printed as one
    JSON line with the process's peak RSS added."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    out = measure()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
