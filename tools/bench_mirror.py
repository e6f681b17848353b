"""Benchmark the torch mirror against native EfficientNet-Lite0 (same weights) on the CPU.

Prints, for 224x224 and 512x512 inputs, the median time of forward + backward of a mid-network
objective (mean square of ``_blocks.8``) for: the native module (full forward), the mirror running
the full graph, and the mirror cut after ``_blocks.8``; ratios are against native measured in the
same process. Peak memory (``ru_maxrss`` growth over the model's own footprint) is measured in
one fresh subprocess per variant. Also prints the time to build the mirror of the built-in model.

Usage: ``python tools/bench_mirror.py [--repeat 5] [--sizes 224 512]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

LAYER = "_blocks.8"
VARIANTS = ("native", "mirror-full", "mirror-cut")


def _step_fn(variant: str):
    """A function running one forward + backward of the objective for ``variant``."""
    from onnxdream.builtin import builtin_model_path
    from onnxdream.mirror import to_torch
    from onnxdream.zoo import efficientnet_lite0

    if variant == "native":
        model = efficientnet_lite0()
        for p in model.parameters():
            p.requires_grad_(False)
        captured = {}
        model._blocks[8].register_forward_hook(lambda _m, _i, out: captured.__setitem__("act", out))

        def native(x: torch.Tensor) -> None:
            model(x)
            captured["act"].pow(2).mean().backward()

        return native
    mirror = to_torch(builtin_model_path(legacy=False))
    layers = [LAYER] if variant == "mirror-cut" else [LAYER, *mirror.output_names]

    def run(x: torch.Tensor) -> None:
        mirror(x, layers=layers)[LAYER].pow(2).mean().backward()

    return run


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5), so that it measures only what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def one(variant: str, size: int) -> None:
    """Subprocess mode: peak RSS growth of two steps after building the model (kB, JSON on stdout)."""
    step = _step_fn(variant)
    x = torch.randn(1, 3, size, size, requires_grad=True)
    if _reset_peak():
        before, peak_field = _status_kb("VmRSS"), "VmHWM"
    else:  # without clear_refs the peak may include building the model
        before, peak_field = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, None
    for _ in range(2):
        step(x)
        x.grad = None
    peak = _status_kb(peak_field) if peak_field else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "peak_kb": peak}))


def _memory(variant: str, size: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--one", variant, "--sizes", str(size)],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    return (doc["peak_kb"] - doc["before_kb"]) / 1024


def _build_time(legacy: bool, repeat: int) -> float:
    import onnx

    from onnxdream.builtin import builtin_model_path
    from onnxdream.mirror import to_torch

    model = onnx.load(str(builtin_model_path(legacy=legacy)))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        to_torch(model)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 512])
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.sizes[0])
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for legacy in (False, True):
        name = "legacy" if legacy else "dynamo"
        print(f"build mirror of the built-in model ({name} export): {1000 * _build_time(legacy, 5):.0f} ms")
    steps = {v: _step_fn(v) for v in VARIANTS}
    for size in args.sizes:
        x = torch.randn(1, 3, size, size, requires_grad=True)
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for v in VARIANTS:  # warm-up
            steps[v](x)
            x.grad = None
        for _ in range(args.repeat):
            for v in VARIANTS:  # interleaved, so drift in a shared machine hits all alike
                start = time.perf_counter()
                steps[v](x)
                times[v].append(time.perf_counter() - start)
                x.grad = None
        base = statistics.median(times["native"])
        print(f"\n{size}x{size}: forward + backward of mean(_blocks.8 ** 2), median of {args.repeat}")
        for v in VARIANTS:
            t = statistics.median(times[v])
            mem = _memory(v, size)
            print(f"  {v:12} {1000 * t:8.1f} ms  ratio {t / base:5.2f}  peak RSS growth {mem:7.1f} MiB")


if __name__ == "__main__":
    main()
