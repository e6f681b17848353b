"""Figures for channels-last models: each model as it is (NCHW) and behind an NHWC input that a
Transpose(0,3,1,2) turns to NCHW (what tf2onnx and Keras exports write), run through check,
dream and visualize. The NCHW run is the reference the NHWC run must reproduce.

    python -m tools.nhwc_report [--model zoo:efficientnet-lite0 --layer _blocks.10 ...] [--size 160]

Printed per model: the layout found, check (layers compared, max |diff| mirror vs ONNX Runtime),
dream (objective gain, forward-check max |diff|, largest pixel difference NHWC vs NCHW) and
visualize (objective NCHW vs NHWC).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
from onnxdream.dream.demo import demo_image
from onnxdream.dream.visualize import run as visualize_run
from onnxdream.layout import input_layout
from onnxdream.mirror_check import check
from onnxdream.model import open_model
from tests.layout_models import channels_last

MODELS = [("zoo:efficientnet-lite0", "_blocks.10", "_blocks.10:7")]


def report(spec: str, layer: str, channel: str, size: int, steps: int) -> None:
    nchw = open_model(spec).proto
    nhwc = channels_last(nchw)
    print(f"\n{spec}: NHWC twin's input layout {input_layout(nhwc).describe()}")
    for label, model in (("NCHW", nchw), ("NHWC", nhwc)):
        start = time.perf_counter()
        found = check(model, device="cpu")
        worst = max(c.max_abs or 0.0 for c in found.layers)
        print(
            f"  check {label}: ok={found.ok} on {len(found.layers)} layers, max |diff| {worst:.2e} "
            f"({time.perf_counter() - start:.1f}s)"
        )
    image = demo_image(size)
    options = DreamOptions(octaves=2, steps=steps, seed=0)
    pictures, gains = [], []
    for label, model in (("NCHW", nchw), ("NHWC", nhwc)):
        dreamer = open_dreamer(model, device="cpu")
        picture, result = dreamer.run(image, [parse_spec(layer)], options)
        pictures.append(np.asarray(picture, dtype=np.int16))
        gains.append(result.gain)
        print(
            f"  dream {label} {layer}: objective x{result.gain:.3f}, check {result.checks.describe()}, "
            f"{result.seconds:.1f}s"
        )
    print(f"  dream NHWC vs NCHW: largest pixel difference {np.abs(pictures[0] - pictures[1]).max()} / 255")
    values = [
        visualize_run(model, channel, size=min(size, 128), steps=2 * steps, device="cpu")[1]
        for model in (nchw, nhwc)
    ]
    print(
        f"  visualize {channel}: objective NCHW {values[0].objectives[0]:.5g}, NHWC {values[1].objectives[0]:.5g}, "
        f"check {values[1].checks.describe()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="MODEL (repeatable; default: the built-in model)")
    parser.add_argument("--layer", action="append", help="dream layer per --model")
    parser.add_argument("--channel", action="append", help="visualize spec per --model")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    models = list(zip(args.model, args.layer, args.channel, strict=True)) if args.model else MODELS
    for spec, layer, channel in models:
        report(spec, layer, channel, args.size, args.steps)


if __name__ == "__main__":
    main()
