"""Benchmark: ``--compile`` (torch.compile of the mirror's cut graph) against eager, per image size.

    python tools/bench_compile.py [--sizes 224,512] [--layer _blocks.10] [--repeat 5] [--device cpu]

For each size, one fresh process (its own, empty torch.compile cache) times the dream's gradient
pass (preprocess, forward to the layer, backward to the pixels) on the built-in model:

- compile: the first compiled pass minus an eager pass (tracing, inductor, C++ build);
- cached compile: the same after ``torch._dynamo.reset()``, served by torch's on-disk caches
  (what a second run of the same dream pays);
- steps/s eager and compiled, alternating ``--repeat`` times, the fastest of each counting;
- break-even: the number of steps after which compiling has paid for itself, cold and cached
  (``never`` when the compiled step is not faster).

A dream changes size at every octave: torch recompiles once at the second size with dynamic
shapes, so a 4-octave dream pays about two compiles.
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


def _measure(args: argparse.Namespace) -> dict:
    import torch

    from onnxdream.dream.source import open_dreamer

    eager = open_dreamer(None, args.device)
    compiled = open_dreamer(None, args.device, compile=True)
    layers = [args.layer]
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(eager.device)

    def step(dreamer) -> float:
        begin = time.perf_counter()
        pixels = x.clone().requires_grad_(True)
        act = dreamer.net(dreamer.preprocess.to_model(pixels), layers)[args.layer]
        (grad,) = torch.autograd.grad(act.square().mean(), pixels)
        grad.sum().item()  # waits for the device
        return time.perf_counter() - begin

    step(eager)  # warm-up: first-call costs belong to neither side
    first_eager = step(eager)
    first_compiled = step(compiled)
    torch._dynamo.reset()
    compiled.net._compiled.clear()
    first_cached = step(compiled)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.repeat):
        times["eager"].append(step(eager))
        times["compiled"].append(step(compiled))
    return {
        "compile": first_compiled - first_eager,
        "cached": first_cached - first_eager,
        "eager": min(times["eager"]),
        "compiled": min(times["compiled"]),
    }


def _break_even(overhead: float, eager: float, compiled: float) -> str:
    saved = eager - compiled
    return "never" if saved <= 0 else f"{max(overhead, 0.0) / saved:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="224,512")
    parser.add_argument("--layer", default="_blocks.10")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)  # one measurement (child process)
    args = parser.parse_args()
    if args.size is not None:
        print(json.dumps(_measure(args)))
        return
    rows = {}
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
            argv = [sys.executable, __file__, "--size", str(size), "--layer", args.layer]
            argv += ["--repeat", str(args.repeat), "--device", args.device]
            done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            rows[size] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"built-in model, layer {args.layer}, {args.device}, fastest of {args.repeat} alternating steps")
    print(
        f"{'size':>6}{'eager steps/s':>15}{'compiled steps/s':>18}{'speed-up':>10}"
        f"{'compile s':>11}{'cached s':>10}{'break-even steps':>18}{'(cached)':>10}"
    )
    for size, r in rows.items():
        print(
            f"{size:>6}{1 / r['eager']:15.2f}{1 / r['compiled']:18.2f}{r['eager'] / r['compiled']:10.2f}"
            f"{r['compile']:11.1f}{r['cached']:10.1f}"
            f"{_break_even(r['compile'], r['eager'], r['compiled']):>18}"
            f"{_break_even(r['cached'], r['eager'], r['compiled']):>10}"
        )


if __name__ == "__main__":
    main()
