"""Benchmark: the microscope's two heavy passes against their baselines, ratios from one run.

    python tools/bench_microscope.py [--model zoo:efficientnet-lite0] [--repeat 3]

1. Feature visualisation, channels per minute: one :class:`MirrorJob` item that grows
   ``--channels`` images at once (one channel objective per image, one forward and backward
   per step for the whole batch) against the same channels grown one item at a time
   (goal >= 3x).
2. Dataset pass, images per second: :class:`DatasetJob` (model cut after the layers, layers as
   outputs, batches of ``--image-batch``, activations reduced to per-channel statistics)
   against plain ONNX Runtime inference of the whole model, one image per run as the model
   declares (goal >= 0.7x). Run for every feature-map layer of the model and for a few, each
   with its floor: the same images through the model cut after the layers, their activations
   returned as outputs and nothing computed on them (no dataset pass can beat it).

Same process, same settings; variants alternate ``--repeat`` times and the medians count (the
machine is shared). Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _images(folder: Path, count: int, side: int) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        yy, xx = np.mgrid[0:side, 0:side] / side
        phase = rng.uniform(0, 6.3, 3)
        pixels = np.stack([0.5 + 0.4 * np.sin(7 * xx + 5 * yy * (c + 1) + phase[c]) for c in range(3)], -1)
        path = folder / f"image{i}.jpg"
        Image.fromarray((pixels * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _median_time(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_visualize(model_path: str, args: argparse.Namespace) -> tuple[float, float]:
    """Channels per minute: batched, one at a time."""
    from onnxdream.microscope.mirror_items import MirrorJob, MirrorSettings, VisualItem

    job = MirrorJob(model_path, MirrorSettings(size=args.size, steps=args.steps), device="cpu")
    job.setup()
    channels = tuple(range(args.channels))
    job.run(VisualItem(args.layer, (0,), 0))  # warm-up: the checker's session, first-call costs
    batched, single = [], []
    for _ in range(args.repeat):
        batched.append(_median_time(lambda: job.run(VisualItem(args.layer, channels, 0)), 1))
        single.append(_median_time(lambda: [job.run(VisualItem(args.layer, (c,), 0)) for c in channels], 1))
    per_minute = 60 * args.channels
    return per_minute / statistics.median(batched), per_minute / statistics.median(single)


def bench_dataset(
    model_path: str, paths: list[str], layers: list, args: argparse.Namespace
) -> tuple[float, float, float]:
    """Images per second: the dataset pass over ``layers``; plain inference of the whole model; and
    the floor: the same batches through the model cut after ``layers``, their activations as
    outputs and no statistics.

    Plain inference runs once with ONNX Runtime's threads spinning between runs (its default) and
    once without, and the faster counts: with image decoding between runs, spinning threads
    compete with it for the two cores and the default's speed varies by 3x from run to run.
    """
    from onnxdream.inputs.feeds import load_input
    from onnxdream.microscope.dataset import DatasetItem, DatasetJob, batches, prepare_image
    from onnxdream.model import open_model
    from onnxdream.runtime import make_session
    from onnxdream.surgery import cut_model

    proto = open_model(model_path).proto
    job = DatasetJob(model_path, (args.side, args.side), "cpu")
    job.setup()
    items = [
        DatasetItem(b, batch, tuple((layer.name, layer.tensor) for layer in layers))
        for b, batch in enumerate(batches([Path(p) for p in paths], args.image_batch))
    ]
    job.run(items[0])  # warm-up: session creation
    sessions = [make_session(proto, "cpu", "all", spinning=spinning) for spinning in (True, False)]
    exposed = make_session(cut_model(proto, [layer.tensor for layer in layers]), "cpu", "all")

    def plain(session) -> None:
        for path in paths:
            session.run(load_input(path, proto))

    def floor_pass() -> None:  # the dataset pass's batches and image preparation, no statistics
        for item in items:
            pixels = np.stack([prepare_image(path, job.size, 0) for path in item.paths])
            exposed.run({job._input: job._feed(pixels)})

    ours, plains, floor = [], ([], []), []
    for _ in range(args.repeat):
        ours.append(_median_time(lambda: [job.run(item) for item in items], 1))
        for times, session in zip(plains, sessions, strict=True):
            times.append(_median_time(lambda session=session: plain(session), 1))
        floor.append(_median_time(floor_pass, 1))
    best_plain = min(statistics.median(times) for times in plains)
    return tuple(len(paths) / t for t in (statistics.median(ours), best_plain, statistics.median(floor)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="zoo:efficientnet-lite0")
    parser.add_argument("--layer", default="_blocks.5._project_conv")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--image-batch", type=int, default=16)
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--few", default="_blocks.[25]._project_conv", help="Glob of the few-layers case.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("visualise", "dataset"), help="Run one of the two benchmarks.")
    args = parser.parse_args()

    import onnx

    from onnxdream.inputs.feeds import input_spec
    from onnxdream.microscope.plan import plan_layers
    from onnxdream.model import open_model

    with tempfile.TemporaryDirectory(prefix="bench-microscope-") as tmp:
        opened = open_model(args.model)
        model_path = opened.path or Path(tmp) / "model.onnx"
        if opened.path is None:
            onnx.save(opened.proto, model_path)
        model_path = str(model_path)
        name = input_spec(opened.proto).name
        every, _ = plan_layers(opened, name)
        few, _ = plan_layers(opened, name, match=[args.few])
        paths = _images(Path(tmp), args.images, args.side)

        rows = []
        if args.only != "dataset":
            batched, single = bench_visualize(model_path, args)
            rows.append(
                (f"visualise {args.channels} channels of {args.layer} ({args.size}px, {args.steps} steps)",
                 "channels/min", batched, single, "batched / one at a time", 3.0)
            )  # fmt: skip
        cases = (
            ()
            if args.only == "visualise"
            else ((f"all {len(every)} feature-map layers", every), (f"{len(few)} layers", few))
        )
        for label, layers in cases:
            ours, plain, floor = bench_dataset(model_path, paths, layers, args)
            rows.append(
                (f"dataset pass, {label}, {args.images} images, batch {args.image_batch}",
                 "images/s", ours, plain, "ours / plain ORT (batch 1)", 0.7)
            )  # fmt: skip
            rows.append(
                (f"floor: {label} exposed as outputs, no statistics",
                 "images/s", floor, plain, "exposed / plain ORT (batch 1)", None)
            )  # fmt: skip

    print(f"model {args.model}; medians of {args.repeat} runs\n")
    print("| case | unit | ours | baseline | ratio | goal |\n|---|---|---|---|---|---|")
    for label, unit, ours, base, what, goal in rows:
        ratio = ours / base
        verdict = "-" if goal is None else f">= {goal}x {'ok' if ratio >= goal else 'MISSED'}"
        print(f"| {label} | {unit} | {ours:.1f} | {base:.1f} | {ratio:.2f}x ({what}) | {verdict} |")


if __name__ == "__main__":
    main()
