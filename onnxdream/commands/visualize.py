"""``onnxdream visualize``: feature visualisation from noise, by layer, channel or neuron."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from onnxdream.commands.common import (
    err_console,
    guarded,
    open_dreamer_from_flags,
    open_model_with_status,
    print_json,
    warn,
)
from onnxdream.commands.options import (
    ChannelOrderOption,
    DeviceOption,
    JsonOption,
    LayoutOption,
    MeanOption,
    ModelArgument,
    QuietOption,
    RangeOption,
    StdOption,
    TrustPickleOption,
)

_EXAMPLES = """

Examples:

  onnxdream visualize zoo:efficientnet-lite0 --layer _blocks.10:7 -o ch7.png

  onnxdream visualize zoo:efficientnet-lite0 --layer "_blocks.10:7@center" --steps 128

  onnxdream visualize model.onnx --layer "_blocks.8:3*2" --layer "_blocks.10:5" --size 160

  onnxdream visualize model.onnx --layer _blocks.10:7 --batch 4 --diversity 100 -o div.png

  onnxdream visualize model.onnx --layer _blocks.10 --channels 0-15 -o atlas.png

  onnxdream visualize model.onnx --layer _blocks.10 --top 8 --image photo.jpg -o top.png
"""


def _numbered(out: Path, i: int, count: int) -> Path:
    width = len(str(count))
    return out.with_name(f"{out.stem}_{i + 1:0{width}d}{out.suffix}")


@guarded
def visualize_command(
    model: ModelArgument,
    layer: Annotated[
        list[str] | None,
        typer.Option(
            "--layer",
            "-l",
            metavar="SPEC",
            help="NAME (whole layer), NAME:C (channel), NAME:C@center (its centre neuron), *W weights; repeat to sum.",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output image; a batch writes OUT_1, OUT_2, ...")
    ] = Path("visualize.png"),
    size: int = typer.Option(224, help="Image side in pixels."),
    steps: int = typer.Option(256, help="Optimisation steps."),
    lr: float = typer.Option(0.05, help="Step size (Adam's lr; mean pixel change for ascent)."),
    batch: int = typer.Option(1, help="Images grown at once for the same objective."),
    diversity: float = typer.Option(0.0, help="Weight of the term that pushes a batch's images apart."),
    channels: str = typer.Option(None, help="Channel atlas: one image per channel, e.g. 0-15 or 3,7,20-23."),
    top: int = typer.Option(None, help="Channel atlas of the K channels most active on --image."),
    image: Annotated[Path | None, typer.Option(help="Image for --top.")] = None,
    loss: str = typer.Option("mean", help="mean (activation) or l2 (mean of squares)."),
    param: str = typer.Option("fft", help="Parameterisation: fft (1/f spectrum) or pixels."),
    decorrelate: bool = typer.Option(True, "--decorrelate/--no-decorrelate", help="Decorrelated colour."),
    optimizer: str = typer.Option("adam", help="adam or ascent (normalised gradient ascent)."),
    grad_norm: str = typer.Option("mean", help="Gradient normalisation: mean or lap."),
    pad: int = typer.Option(12, help="Reflect-pad each side by this many pixels per step."),
    scale: float = typer.Option(0.1, help="Random zoom per step within 1 +- this."),
    rotate: float = typer.Option(10.0, help="Random rotation per step within +- this many degrees."),
    jitter: int = typer.Option(8, help="Random roll per step in pixels."),
    seed: int = typer.Option(0, help="Random seed (same seed, same output on the CPU)."),
    mean: MeanOption = None,
    std: StdOption = None,
    value_range: RangeOption = None,
    channel_order: ChannelOrderOption = None,
    layout: LayoutOption = None,
    device: DeviceOption = "auto",
    check: bool = typer.Option(
        True, "--check/--no-check", help="Forward check of the final images by ONNX Runtime."
    ),
    on_mismatch: str = typer.Option("error", help="error (exit 1) or warn."),
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    trust_pickle: TrustPickleOption = False,
) -> None:
    """Grow images from noise that maximise a layer, channel or neuron of MODEL (feature visualisation)."""
    from onnxdream.dream.api import layer_specs
    from onnxdream.dream.atlas import make_grid
    from onnxdream.dream.visualize import run
    from onnxdream.inputs.images import output_format, save_image
    from onnxdream.paths import check_writes

    output_format(out)
    grid = channels is not None or top is not None
    if image is not None and not grid:
        warn("--image is only used with --top; ignored")
        image = None
    opened = open_model_with_status(model, trust_pickle)
    reads = ([image] if image is not None else []) + opened.files
    numbered = not grid and batch > 1
    check_writes(reads, [_numbered(out, i, batch) for i in range(batch)] if numbered else [out])
    dreamer = open_dreamer_from_flags(opened, device, mean, std, value_range, channel_order, layout)
    images, result = run(
        dreamer,
        layer_specs(dreamer, layer, model),
        channels=channels,
        top=top,
        image=image,
        size=size,
        steps=steps,
        lr=lr,
        batch=batch,
        diversity=diversity,
        loss=loss,
        param=param,
        decorrelate=decorrelate,
        optimizer=optimizer,
        grad_norm=grad_norm,
        pad=pad,
        scale=scale,
        rotate=rotate,
        jitter=jitter,
        seed=seed,
        check=check,
        on_mismatch=on_mismatch,
        progress=not quiet and err_console.is_terminal,
    )
    for warning in result.warnings:
        warn(warning)
    if grid:
        paths = [save_image(make_grid(images, result.targets), out)]
        outputs = [str(out)] * len(images)
    elif len(images) == 1:
        paths = [save_image(images[0], out)]
        outputs = [str(out)]
    else:
        paths = [save_image(im, _numbered(out, i, len(images))) for i, im in enumerate(images)]
        outputs = [str(p) for p in paths]
    err_console.print(f"{result.summary()} -> {', '.join(map(str, paths))}", highlight=False)
    if json_out:
        print_json(result.to_json(model, [str(p) for p in paths], outputs))


visualize_command.__doc__ = (visualize_command.__doc__ or "") + _EXAMPLES
