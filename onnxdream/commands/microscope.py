"""``onnxdream microscope``: a static, offline atlas of every named layer of a model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from onnxdream.commands.common import err_console, guarded, print_json, warn
from onnxdream.commands.options import (
    DeviceOption,
    GpusPerWorkerOption,
    JsonOption,
    MatchOption,
    MaxPixelsOption,
    ModelArgument,
    QuietOption,
    RayOption,
    TrustPickleOption,
    WorkersOption,
)
from onnxdream.inputs.limits import MAX_PIXELS

_EXAMPLES = """

Examples:

  onnxdream microscope zoo:efficientnet-lite0 -o site/ --images photos/ --match '_blocks.1*'

  onnxdream microscope googlenet.onnx -o site/ --images photos/ --layer inception_4c --channels 32

  onnxdream microscope model.onnx -o site/ --images photos/ --json   # rerun: only what is missing

  onnxdream microscope model.onnx -o site/ --images photos/ --ray auto --workers 8
"""


@contextmanager
def _progress(enabled: bool) -> Iterator[tuple]:
    """``(on_total, advance)`` callbacks driving a progress bar with an ETA over all items."""
    if not enabled:
        yield None, None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.fields[kind]:>7}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    task = bar.add_task("items", total=None, kind="items")
    with bar:
        yield (
            lambda total: bar.update(task, total=total),
            lambda kind, count: bar.update(task, advance=count, kind=kind),
        )


@guarded
def microscope_command(
    model: ModelArgument,
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="SITE", help="Site folder (created; reruns reuse it).")
    ],
    images: Annotated[
        Path | None,
        typer.Option(
            "--images", metavar="DIR", help="Images for statistics, top images and the dream's reference."
        ),
    ] = None,
    layer: Annotated[
        list[str] | None,
        typer.Option("--layer", "-l", metavar="NAME", help="Layer (node or scope) to show; repeatable."),
    ] = None,
    match: MatchOption = None,
    channels: int = typer.Option(16, help="Channels visualised per layer (the first N; 0: all)."),
    top_k: int = typer.Option(8, "--top-k", help="Strongest images shown per channel."),
    size: int = typer.Option(128, help="Side of each feature visualisation in pixels."),
    steps: int = typer.Option(128, help="Optimisation steps per feature visualisation."),
    batch: int = typer.Option(
        16, help="Channels visualised at once (one image per channel, one pass per step)."
    ),
    image_batch: int = typer.Option(16, help="Images per ONNX Runtime run of the dataset pass."),
    image_size: int = typer.Option(224, help="Image side for a model whose input size is not fixed."),
    dream_steps: int = typer.Option(10, help="Steps per octave of each layer's dream."),
    dream_octaves: int = typer.Option(3, help="Octaves of each layer's dream."),
    dream_size: int = typer.Option(224, help="Side of the dream's reference image."),
    seed: int = typer.Option(0, help="Random seed (same seed, same site on the CPU)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Check the mirror against ONNX Runtime."),
    device: DeviceOption = "auto",
    max_pixels: MaxPixelsOption = MAX_PIXELS,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    trust_pickle: TrustPickleOption = False,
    ray: RayOption = None,
    workers: WorkersOption = None,
    gpus: GpusPerWorkerOption = None,
) -> None:
    """Build a static, offline site of MODEL's layers: statistics, dreams and every channel's picture.

    The site opens from file:// with no server or network. Work is cached in SITE/.microscope:
    a rerun (after Ctrl-C, or with more layers) computes only what is missing. With --ray the
    items run on a Ray cluster's workers (they read --images at the same paths); this process
    writes every item and page.
    """
    from onnxdream.executors.choose import open_executor
    from onnxdream.microscope import MicroscopeOptions, build_site

    options = MicroscopeOptions(
        channels=channels,
        size=size,
        steps=steps,
        batch=batch,
        top_k=top_k,
        image_batch=image_batch,
        image_size=image_size,
        dream_steps=dream_steps,
        dream_octaves=dream_octaves,
        dream_size=dream_size,
        seed=seed,
        check=check,
        device=device,
        max_pixels=max_pixels,
    )
    executor = open_executor(ray, workers, gpus, device)
    with _progress(not quiet and err_console.is_terminal) as (on_total, advance):
        result = build_site(
            model,
            out,
            images=images,
            layers=layer or (),
            match=match or (),
            options=options,
            trust_pickle=trust_pickle,
            # In-process, each phase gets an executor of its own (its models go before the next).
            executor=None if ray is None else executor,
            progress=advance,
            on_total=on_total,
        )
    for line in result.skipped_layers:
        warn(f"layer {line}")
    for line in result.skipped_images:
        warn(f"skipped {line}")
    err_console.print(result.summary(), highlight=False)
    if json_out:
        print_json(result.to_json())


microscope_command.__doc__ = (microscope_command.__doc__ or "") + _EXAMPLES
