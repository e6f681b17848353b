"""Benchmark: start-up of the CLI, before and after, as ratios against baselines run in the same run.

    python tools/bench_startup.py [--before DIR] [--repeat 5]

Every case is a fresh interpreter (``sys.executable``), run ``--repeat`` times with the cases
interleaved; the fastest run of each counts (the machine is shared: the minimum is the least noisy
estimate). Baselines: ``python -c pass`` and ``python -c "import torch"``. Cases: ``--help`` of the
CLI and of every command, ``layers`` on a small ONNX file, and dream's fixed cost on the built-in
model, both as a whole process (a 1-octave, 1-step dream of 64x64 pixels) and by phase (imports,
model from the cache, mirror, size probes, ONNX Runtime session).

``--before DIR`` is a source tree of an older onnxdream (e.g. ``git archive 060ab88 | tar -x -C DIR``):
its cases run with ``PYTHONPATH=DIR`` in the same interpreter and virtual environment, and the
table shows before, after and after/before.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["export", "layers", "rename", "expose-layers", "check", "dream", "visualize"]
HEAVY = ("torch", "onnx", "onnxruntime", "numpy", "PIL")
CLI = "import sys; from onnxdream.cli import main; sys.argv[0] = 'onnxdream'; main()"

_PHASES = """
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import torch, onnx
from onnxdream.dream.source import open_dreamer
from onnxdream.model import open_model
mark("imports")
opened = open_model("zoo:efficientnet-lite0")
mark("model from the cache")
dreamer = open_dreamer(opened, "cpu")
mark("mirror")
layers = ["_blocks.10"]
dreamer.minimum_size(layers); dreamer.multiple(layers)
mark("size probes")
checker = dreamer.checker(layers)
mark("ONNX Runtime session")
print(json.dumps({b[0]: b[1] - a[1] for a, b in zip(marks, marks[1:])}))
"""


def _run(argv: list[str], source: Path, cwd: Path) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(source), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    begin = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - begin
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def _cases(work: Path) -> dict[str, list[str]]:
    py = sys.executable
    tiny = str(ROOT / "fixtures" / "tiny_cnn.onnx")
    cases = {
        "python -c pass": [py, "-c", "pass"],
        'python -c "import torch"': [py, "-c", "import torch"],
        "onnxdream --help": [py, "-c", CLI, "--help"],
    }
    cases |= {f"{name} --help": [py, "-c", CLI, name, "--help"] for name in COMMANDS}
    cases["layers tiny_cnn.onnx"] = [py, "-c", CLI, "layers", tiny]
    dream = ["dream", "--demo", str(work / "d.png"), "-q", "--max-size", "64", "--octaves", "1"]
    cases["dream 64px 1x1 step"] = [py, "-c", CLI, *dream, "--steps", "1", "--device", "cpu"]
    return cases


def _heavy_modules(source: Path) -> list[str]:
    code = (
        "import sys\nfrom onnxdream.cli import app\ntry:\n    app(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n    pass\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules} & "
        f"set({HEAVY!r}))))"
    )
    return _run([sys.executable, "-c", code], source, Path(tempfile.gettempdir()))[1].splitlines()[-1].split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="source tree of the onnxdream to compare against")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    trees = {"after": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = _cases(work)
        for source in trees.values():  # warm the built-in model's cache and the .pyc files
            _run(cases["dream 64px 1x1 step"], source, work)
        best: dict[tuple[str, str], float] = {}
        phases: dict[str, dict[str, float]] = {}
        for _ in range(args.repeat):
            for case, argv in cases.items():
                for tree, source in trees.items():
                    seconds = _run(argv, source, work)[0]
                    best[tree, case] = min(best.get((tree, case), seconds), seconds)
            for tree, source in trees.items():
                found = json.loads(_run([sys.executable, "-c", _PHASES], source, work)[1])
                total = sum(found.values())
                if tree not in phases or total < sum(phases[tree].values()):
                    phases[tree] = found
    names = list(trees)
    print(f"fastest of {args.repeat} fresh processes; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 2)}")
    header = f"{'case':34}" + "".join(f"{t + ' s':>10}" for t in names)
    header += f"{'after/before':>14}" if args.before else ""
    print(header + f"{'after/pass':>12}{'after/torch':>13}")
    base, torch_base = best["after", "python -c pass"], best["after", 'python -c "import torch"']
    for case in cases:
        row = f"{case:34}" + "".join(f"{best[t, case]:10.2f}" for t in names)
        if args.before:
            row += f"{best['after', case] / best['before', case]:14.2f}"
        print(row + f"{best['after', case] / base:12.1f}{best['after', case] / torch_base:13.2f}")
    print("\ndream's fixed cost on the built-in model, by phase (seconds, in one process):")
    print(f"{'phase':34}" + "".join(f"{t + ' s':>10}" for t in names))
    for phase in phases["after"]:
        print(f"{phase:34}" + "".join(f"{phases[t][phase]:10.2f}" for t in names))
    after_rest = sum(v for k, v in phases["after"].items() if k != "imports")
    print(f"{'after imports (target < 1.5 s)':34}" + "".join(
        f"{sum(v for k, v in phases[t].items() if k != 'imports'):10.2f}" for t in names
    ))  # fmt: skip
    print(f"\nfixed cost after imports / import torch: {after_rest / torch_base:.2f}")
    for tree, source in trees.items():
        print(
            f"{tree}: modules `onnxdream --help` loads of {', '.join(HEAVY)}: {_heavy_modules(source) or 'none'}"
        )


if __name__ == "__main__":
    main()
