"""``onnxdream dream``: Deep Dream an image (or a folder of images) by layer name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    MatchOption,
    MaxPixelsOption,
    MeanOption,
    ModelOption,
    QuietOption,
    RangeOption,
    StdOption,
    TrustPickleOption,
)
from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.images import MAX_PIXELS

if TYPE_CHECKING:
    from onnxdream.dream.engine import DreamResult

_EXAMPLES = """

Examples:

  onnxdream dream --demo out.png

  onnxdream dream photo.jpg out.png --layer _blocks.8 --octaves 4 --steps 10

  onnxdream dream photo.jpg out.png --param pixels --optimizer ascent --no-decorrelate

  onnxdream dream photo.jpg out.png --layer "_blocks.8*1" --layer "_blocks.11:17*0.5"

  onnxdream dream big.tif out.tif --tile 512 --max-size 4000

  onnxdream dream photo.jpg anim.gif --frames 30 --zoom 1.05

  onnxdream dream photo.jpg atlas.png --atlas --match "_blocks.*" --depth 2

  onnxdream dream photos/ dreamed/ --model googlenet.onnx --layer inception_4c
"""


def _check_paths(
    image: str | None, out: str, guide: Path | None, model_files: list[Path], frames: int | None, folder: bool
) -> None:
    """Refuse, before any work, outputs that would replace an input (image, guide, model files)."""
    from onnxdream.dream.animate import frame_paths
    from onnxdream.dream.batch import folder_outputs
    from onnxdream.paths import check_writes

    reads: list[Path] = ([guide] if guide is not None else []) + model_files
    if folder:
        outputs = folder_outputs(image, out)  # type: ignore[arg-type]
        check_writes(reads + list(outputs), list(outputs.values()))
        return
    if image is not None:
        reads.append(Path(image))
    if frames is not None:
        paths, gif = frame_paths(out, frames)
        check_writes(reads, [*paths, gif])
    else:
        check_writes(reads, [out])


@guarded
def dream_command(
    image: str = typer.Argument(None, help="Input image or folder (with --demo: the output path)."),
    out: str = typer.Argument(
        None, help="Output image (.png/.jpg/.webp/.tif; .gif with --frames) or folder."
    ),
    model: ModelOption = None,
    layer: Annotated[
        list[str] | None,
        typer.Option("--layer", "-l", metavar="SPEC", help="NAME, NAME:C1,C2, NAME*W (repeatable)."),
    ] = None,
    demo: bool = typer.Option(False, "--demo", help="Dream on a built-in generated image."),
    loss: str = typer.Option("l2", help="l2 (mean of squares) or mean."),
    guide: Annotated[
        Path | None, typer.Option(help="Guide image: match its features (guided Deep Dream).")
    ] = None,
    octaves: int = typer.Option(4, help="Number of octaves (scales)."),
    octave_scale: float = typer.Option(1.4, help="Size ratio between octaves."),
    steps: int = typer.Option(10, help="Gradient steps per octave."),
    lr: float = typer.Option(
        None, help="Step size: Adam's lr (default 0.03); ascent: mean pixel change per step (default 0.01)."
    ),
    grad_norm: str = typer.Option(
        "mean", help="Gradient normalisation: mean (|g|) or lap (Laplacian pyramid)."
    ),
    param: str = typer.Option("fft", help="Image parameterisation: fft (1/f-scaled spectrum) or pixels."),
    decorrelate: bool = typer.Option(
        True,
        "--decorrelate/--no-decorrelate",
        help="Optimise decorrelated colour (ImageNet colour statistics).",
    ),
    optimizer: str = typer.Option("adam", help="adam, or ascent (normalised gradient ascent)."),
    jitter: int = typer.Option(32, help="Random roll in pixels before each step."),
    scale: float = typer.Option(0.1, help="Random zoom before each step, within 1 +- this (0 to 0.5)."),
    rotate: float = typer.Option(10.0, help="Random rotation before each step, within +- this many degrees."),
    pad: int = typer.Option(0, help="Reflect-pad each side by this many pixels before each step."),
    tile: int = typer.Option(None, help="Compute gradients in tiles of this size (bounded memory)."),
    seed: int = typer.Option(0, help="Random seed, 0 to 2**32-1 (same seed, same output on the CPU)."),
    max_size: int = typer.Option(None, help="Shrink the input so its longer side is at most this."),
    mean: MeanOption = None,
    std: StdOption = None,
    value_range: RangeOption = None,
    channel_order: ChannelOrderOption = None,
    layout: LayoutOption = None,
    device: DeviceOption = "auto",
    check: bool = typer.Option(True, "--check/--no-check", help="Forward checks by ONNX Runtime."),
    check_every: int = typer.Option(None, help="Also check every N steps (default: once per octave)."),
    on_mismatch: str = typer.Option("error", help="error (exit 1) or warn."),
    frames: int = typer.Option(None, help="Zoom animation: number of frames (writes frames and a GIF)."),
    zoom: float = typer.Option(1.05, help="Zoom factor between animation frames."),
    atlas: bool = typer.Option(False, "--atlas", help="One dream per layer, as a labelled grid."),
    match: MatchOption = None,
    depth: int = typer.Option(None, help="Atlas: use scopes of this many name components."),
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    trust_pickle: TrustPickleOption = False,
    max_pixels: MaxPixelsOption = MAX_PIXELS,
) -> None:
    """Deep Dream an IMAGE into OUT by layer name, on any ONNX CNN (default: built-in EfficientNet-Lite0).

    --atlas dreams each layer that --match and --depth choose, and lays the dreams out as a grid.
    """
    from onnxdream.dream.animate import animate, save_animation
    from onnxdream.dream.api import as_array, layer_specs
    from onnxdream.dream.atlas import atlas_layers
    from onnxdream.dream.batch import dream_atlas, dream_folder, summary
    from onnxdream.dream.demo import demo_image
    from onnxdream.dream.engine import DreamOptions
    from onnxdream.inputs.images import output_format, save_image

    if demo:
        if out is None and image is not None:
            image, out = None, image
        if image is not None:
            raise OnnxDreamError("--demo takes only the output path (it makes its own input image)")
    if out is None:
        raise OnnxDreamError("give an input IMAGE (or --demo) and an OUT path")
    folder = image is not None and Path(image).is_dir()
    if sum([frames is not None, atlas, folder]) > 1:
        raise OnnxDreamError("--frames, --atlas and a folder input cannot be combined")
    if atlas and not match and depth is None:
        raise OnnxDreamError("--atlas needs --match GLOB or --depth N to choose the layers")
    if not folder and not frames:
        output_format(out)
    if not 0 <= seed < 2**32:
        raise OnnxDreamError(f"--seed must be between 0 and 2**32-1, got {seed}")
    opened = open_model_with_status(model, trust_pickle)
    _check_paths(image, out, guide, opened.files, frames, folder)

    dreamer = open_dreamer_from_flags(opened, device, mean, std, value_range, channel_order, layout)
    options = DreamOptions(
        loss=loss,
        octaves=octaves,
        octave_scale=octave_scale,
        steps=steps,
        lr=lr,
        grad_norm=grad_norm,
        param=param,
        decorrelate=decorrelate,
        optimizer=optimizer,
        jitter=jitter,
        scale=scale,
        rotate=rotate,
        pad=pad,
        tile=tile,
        seed=seed,
        guide=as_array(guide, max_pixels=max_pixels) if guide is not None else None,
        check=check,
        check_every=check_every,
        on_mismatch=on_mismatch,
        progress=not quiet and err_console.is_terminal,
    )
    summaries: list[dict] = []

    def report(result: DreamResult, target: Path | str) -> None:
        for warning in result.warnings:
            warn(warning)
        err_console.print(f"{result.summary()} -> {target}", highlight=False)
        summaries.append(summary(result, target))

    def skip(message: str) -> None:
        warn(f"skipping {message}")

    if folder:
        specs = layer_specs(dreamer, layer, model)
        dream_folder(
            dreamer,
            image,
            out,
            specs,
            options,
            max_size=max_size,
            max_pixels=max_pixels,
            on_result=report,
            on_skip=skip,
        )
    else:
        pixels = demo_image(seed=seed) if image is None else as_array(image, max_size, max_pixels)
        if max_size is not None and image is None:
            pixels = as_array(pixels, max_size)
        if atlas:
            names = atlas_layers(dreamer.layer_names(), match, depth)
            target, cells = dream_atlas(dreamer, pixels, names, options, out, on_result=report, on_skip=skip)
            err_console.print(f"atlas of {cells} layers -> {target}", highlight=False)
        elif frames is not None:
            pictures = animate(
                dreamer,
                pixels,
                layer_specs(dreamer, layer, model),
                options,
                frames,
                zoom,
                on_frame=lambda i, _p, r: report(r, f"frame {i + 1}/{frames}"),
            )
            paths, gif = save_animation(pictures, out)
            err_console.print(
                f"{len(paths)} frames -> {paths[0].parent}, animation -> {gif}", highlight=False
            )
        else:
            picture, result = dreamer.run(pixels, layer_specs(dreamer, layer, model), options)
            report(result, save_image(picture, out))
    if json_out:
        print_json(summaries[0] if len(summaries) == 1 and not folder and not atlas else summaries)


dream_command.__doc__ = (dream_command.__doc__ or "") + _EXAMPLES
