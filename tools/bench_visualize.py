"""Benchmark: ``onnxdream visualize`` (torch mirror of the exported ONNX, ONNX Runtime check of the
final image) against the same feature-visualisation loop written directly on the native
EfficientNet-Lite0 torch module (same weights).

    python -m tools.bench_visualize [--size 224] [--steps 256] [--layer _blocks.10:7] [--repeat 2]

The loop, both sides: a 1/f-scaled Fourier latent, decorrelated colour, sigmoid; per step reflect
pad 12, random zoom 0.9-1.1 and rotation +-10 degrees, roll +-8; Adam (lr 0.05) maximising the
channel's mean activation. The native loop runs the whole network with a forward hook on the layer
(as hook-based tools do) and, as a second baseline, stops the forward pass at the layer. Every
variant runs in its own subprocess, so each peak RSS (``ru_maxrss``) is its own; variants alternate
``--repeat`` times and the fastest run of each counts. Printed: time per variant, the ratio
ours/native (target <= 1.2) and peak memory.
"""

from __future__ import annotations

import argparse
import math
import time

from tools.bench_variants import child, fastest

MODULE = "tools.bench_visualize"
# lucid's square root of ImageNet's colour covariance (rows R, G, B).
COLOR = ((0.26, 0.09, 0.02), (0.27, 0.00, -0.05), (0.27, -0.09, 0.03))


class _Stop(Exception):
    pass


def _native(args: argparse.Namespace, stop_early: bool) -> dict:
    """The baseline, written out in plain torch."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from onnxdream.zoo import EFFICIENTNET_PREPROCESS, efficientnet_lite0

    layer, channel = args.layer.rsplit(":", 1)
    model = efficientnet_lite0().eval().requires_grad_(False)
    captured = {}

    def hook(_module, _inputs, output):
        captured["act"] = output
        if stop_early:
            raise _Stop

    dict(model.named_modules())[layer].register_forward_hook(hook)
    mean = torch.tensor(EFFICIENTNET_PREPROCESS["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(EFFICIENTNET_PREPROCESS["std"]).view(1, 3, 1, 1)
    n = args.size
    fy = torch.fft.fftfreq(n)[:, None]
    fx = torch.fft.rfftfreq(n)[None, :]
    scale = 1.0 / (fy**2 + fx**2).sqrt().clamp_min(1.0 / n)
    scale = scale / scale.square().mean().sqrt()
    color = torch.tensor(COLOR)
    color = color / color.norm(dim=0).max()
    generator = torch.Generator().manual_seed(0)
    spectrum = (torch.randn(1, 3, n, n // 2 + 1, 2, generator=generator) * 0.01).requires_grad_(True)
    adam = torch.optim.Adam([spectrum], lr=0.05, maximize=True)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(args.steps):
        dy, dx = (int(v) for v in rng.integers(-8, 9, size=2))
        zoom = 1.0 + 0.1 * float(rng.uniform(-1, 1))
        angle = math.radians(10.0 * float(rng.uniform(-1, 1)))
        spatial = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(n, n), norm="ortho")
        image = torch.sigmoid(torch.einsum("rc,nchw->nrhw", color, spatial))
        x = F.pad(image, (12, 12, 12, 12), mode="reflect")
        c, s = math.cos(angle) / zoom, math.sin(angle) / zoom
        theta = torch.tensor([[[c, -s, 0.0], [s, c, 0.0]]])
        x = F.grid_sample(
            x,
            F.affine_grid(theta, list(x.shape), align_corners=False),
            padding_mode="reflection",
            align_corners=False,
        )
        x = torch.roll(x, (dy, dx), (-2, -1))
        try:
            model((x - mean) / std)
        except _Stop:
            pass
        loss = captured["act"][:, int(channel)].mean()
        adam.zero_grad()
        loss.backward()
        adam.step()
    return {"seconds": time.perf_counter() - start, "objective": float(loss)}


def _ours(args: argparse.Namespace) -> dict:
    from onnxdream.dream import open_dreamer, parse_spec
    from onnxdream.dream.visualize import VisualizeOptions, visualize_batch

    begin = time.perf_counter()
    dreamer = open_dreamer(None, "cpu")
    spec = parse_spec(args.layer)
    # Building the mirror, probing the minimum size and the checker's session: once per run, apart.
    dreamer.minimum_size([spec.layer])
    dreamer.checker([spec.layer])
    setup = time.perf_counter() - begin
    _, result = visualize_batch(dreamer, [[spec]], VisualizeOptions(size=args.size, steps=args.steps))
    return {
        "seconds": result.seconds,
        "setup_seconds": setup,
        "objective": result.objectives[0],
        "check": result.checks.describe(),
    }


def _child(args: argparse.Namespace) -> None:
    if args.child == "ours":
        child(args.threads, lambda: _ours(args))
    else:
        child(args.threads, lambda: _native(args, stop_early=args.child == "native-cut"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--layer", default="_blocks.10:7", help="NAME:CHANNEL")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    common = [
        f"--size={args.size}",
        f"--steps={args.steps}",
        f"--layer={args.layer}",
        f"--threads={args.threads}",
    ]
    best = fastest(MODULE, ("native", "native-cut", "ours"), common, args.repeat)
    native, cut, ours = best["native"], best["native-cut"], best["ours"]
    print(
        f"visualize {args.layer} at {args.size}x{args.size}, {args.steps} steps, cpu, best of {args.repeat}"
    )
    print(f"  {'variant':36s} {'seconds':>8s} {'peak RSS MB':>12s} {'objective':>10s}")
    print(
        f"  {'native torch, hook, whole network':36s} {native['seconds']:8.2f} {native['peak_rss_mb']:12.0f} {native['objective']:10.3f}"
    )
    print(
        f"  {'native torch, stops at the layer':36s} {cut['seconds']:8.2f} {cut['peak_rss_mb']:12.0f} {cut['objective']:10.3f}"
    )
    print(
        f"  {'onnxdream visualize (mirror + ORT)':36s} {ours['seconds']:8.2f} {ours['peak_rss_mb']:12.0f} {ours['objective']:10.3f}"
        f"   (+{ours['setup_seconds']:.2f} s once: mirror, size probe, ORT session; check {ours['check']})"
    )
    print(
        f"  ratio ours/native {ours['seconds'] / native['seconds']:.3f}, "
        f"ours/native-cut {ours['seconds'] / cut['seconds']:.3f}   (target <= 1.2)"
    )


if __name__ == "__main__":
    main()
