"""Benchmark: onnxdream's dream (torch mirror of the exported ONNX, ONNX Runtime checks) against a
minimal hand-written Deep Dream loop on the native EfficientNet-Lite0 torch module.

    python -m tools.bench_dream [--size 512] [--layer _blocks.10] [--repeat 2] [--device cpu]

Every variant runs in its own subprocess, so each peak RSS (``ru_maxrss``) is its own; variants
alternate ``--repeat`` times and the fastest run of each counts. Printed: time per variant, the
ratio ours/native (target <= 1.0), the share of the run spent in forward checks (target < 10%),
peak memory, and the peak memory of a tiled 4000x3000 dream.
"""

from __future__ import annotations

import argparse
import time

from tools.bench_variants import child, fastest, run_child

MODULE = "tools.bench_dream"


def _native(args: argparse.Namespace) -> dict:
    """The baseline: the textbook loop (octaves, jitter, mean-|g| step, clip), forward hook on the layer."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from onnxdream.dream.demo import demo_image
    from onnxdream.zoo import EFFICIENTNET_PREPROCESS, efficientnet_lite0

    device = torch.device(args.device)
    model = efficientnet_lite0().to(device).eval().requires_grad_(False)
    module = dict(model.named_modules())[args.layer]
    captured = {}
    module.register_forward_hook(lambda _m, _i, out: captured.__setitem__("act", out))
    mean = torch.tensor(EFFICIENTNET_PREPROCESS["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(EFFICIENTNET_PREPROCESS["std"], device=device).view(1, 3, 1, 1)
    image = torch.from_numpy(demo_image(args.size)).permute(2, 0, 1)[None].to(device)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    sizes = [(round(args.size / 1.4**i), round(args.size / 1.4**i)) for i in range(args.octaves - 1, -1, -1)]
    bases = [
        F.interpolate(image, size=s, mode="bilinear", align_corners=False, antialias=True) for s in sizes
    ]
    detail = torch.zeros_like(bases[0])
    for base in bases:
        detail = F.interpolate(detail, size=base.shape[-2:], mode="bilinear", align_corners=False)
        x = (base + detail).clamp(0, 1)
        for _ in range(args.steps):
            dy, dx = (int(v) for v in rng.integers(-32, 33, size=2))
            rolled = torch.roll(x, (dy, dx), (-2, -1)).requires_grad_(True)
            model((rolled - mean) / std)
            loss = captured["act"].square().mean()
            (grad,) = torch.autograd.grad(loss, rolled)
            grad = torch.roll(grad / grad.abs().mean().clamp_min(1e-8), (-dy, -dx), (-2, -1))
            x = (x + 0.01 * grad).clamp(0, 1)
        detail = x - base
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - start}


def _ours(args: argparse.Namespace, check: bool) -> dict:
    import torch

    from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
    from onnxdream.dream.checks import ForwardChecker
    from onnxdream.dream.demo import demo_image

    begin = time.perf_counter()
    dreamer = open_dreamer(None, args.device)
    spent = {"check": 0.0}
    original = ForwardChecker.check

    def timed(self, *a, **kw):
        begin = time.perf_counter()
        try:
            return original(self, *a, **kw)
        finally:
            spent["check"] += time.perf_counter() - begin

    ForwardChecker.check = timed  # type: ignore[method-assign]
    size = (args.big[1], args.big[0]) if args.tile else (args.size, args.size)
    image = demo_image(max(size))[: size[0], : size[1]]
    # The native loop is classic Deep Dream: compare it with the same options on our side.
    options = DreamOptions(
        param="pixels",
        decorrelate=False,
        optimizer="ascent",
        scale=0.0,
        rotate=0.0,
        octaves=args.big_octaves if args.tile else args.octaves,
        steps=args.big_steps if args.tile else args.steps,
        tile=args.tile,
        check=check,
    )
    # Building the mirror, probing the minimum size and the checker's session: once per run, apart.
    dreamer.minimum_size([args.layer])
    if check:
        dreamer.checker([args.layer])
    setup = time.perf_counter() - begin
    _, result = dreamer.run(image, [parse_spec(args.layer)], options)
    if dreamer.device.type == "cuda":
        torch.cuda.synchronize()
    return {
        "seconds": result.seconds,
        "setup_seconds": setup,
        "check_seconds": spent["check"],
        "checks": len(result.checks.reports),
        "check_max_abs": result.checks.max_abs,
        "gain": result.gain,
        "device": result.device,
    }


def _child(args: argparse.Namespace) -> None:
    if args.child == "native":
        child(args.threads, lambda: _native(args))
    else:
        child(args.threads, lambda: _ours(args, check=args.child != "ours-nocheck"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--layer", default="_blocks.10")
    parser.add_argument("--octaves", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--big", type=int, nargs=2, default=(4000, 3000), metavar=("W", "H"))
    parser.add_argument("--big-tile", type=int, default=512)
    parser.add_argument("--big-octaves", type=int, default=1)
    parser.add_argument("--big-steps", type=int, default=1)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    common = [
        f"--size={args.size}",
        f"--layer={args.layer}",
        f"--octaves={args.octaves}",
        f"--steps={args.steps}",
        f"--device={args.device}",
        f"--threads={args.threads}",
    ]
    best = fastest(MODULE, ("native", "ours", "ours-nocheck"), common, args.repeat)
    native, ours, nocheck = best["native"], best["ours"], best["ours-nocheck"]
    print(
        f"dream {args.size}x{args.size}, {args.octaves} octaves x {args.steps} steps, layer {args.layer}, "
        f"device {ours['device']}, best of {args.repeat}"
    )
    print(f"  native torch loop      {native['seconds']:7.2f} s   peak RSS {native['peak_rss_mb']:7.0f} MB")
    print(
        f"  onnxdream (checks)     {ours['seconds']:7.2f} s   peak RSS {ours['peak_rss_mb']:7.0f} MB   "
        f"(+{ours['setup_seconds']:.2f} s once: mirror, size probe, ORT session)"
    )
    print(f"  onnxdream (no check)   {nocheck['seconds']:7.2f} s   peak RSS {nocheck['peak_rss_mb']:7.0f} MB")
    print(
        f"  ratio ours/native      {ours['seconds'] / native['seconds']:7.3f}   (no check: "
        f"{nocheck['seconds'] / native['seconds']:.3f}; target <= 1.0)"
    )
    print(
        f"  forward checks         {ours['check_seconds']:7.2f} s = {100 * ours['check_seconds'] / ours['seconds']:.1f}% "
        f"of the run ({ours['checks']} checks, max |diff| {ours['check_max_abs']:.2e}; target < 10%)"
    )
    if not args.skip_big:
        w, h = args.big
        big = run_child(
            MODULE,
            "ours",
            [
                *common,
                "--tile",
                str(args.big_tile),
                "--big",
                str(w),
                str(h),
                f"--big-octaves={args.big_octaves}",
                f"--big-steps={args.big_steps}",
            ],
        )
        print(
            f"  tiled {w}x{h} (tile {args.big_tile}, {args.big_octaves} octave(s) x {args.big_steps} step(s)): "
            f"{big['seconds']:.1f} s, peak RSS {big['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
