"""``onnxdream dream``: Deep Dream an image (or a folder of images) by layer name."""

from __future__ import annotations

import os
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
    CompileOption,
    DeviceOption,
    GpusPerWorkerOption,
    JsonOption,
    LayoutOption,
    MatchOption,
    MaxPixelsOption,
    MeanOption,
    ModelOption,
    PrecisionOption,
    QuietOption,
    RangeOption,
    RayOption,
    StdOption,
    TrustPickleOption,
    WeightsOption,
    WeightsPrefixOption,
    WorkersOption,
)
from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.limits import MAX_PIXELS

if TYPE_CHECKING:
    from onnxdream.dream.engine import DreamResult
    from onnxdream.dream.folder_job import DreamerRecipe
    from onnxdream.model import Model

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

  onnxdream dream photo.jpg out.png --model mypkg.nets:build --weights ft.pth -l fine_tune_block

  onnxdream dream clip.mp4 dreamed.mp4 --octaves 2 --steps 5 --start 0:10 --end 0:20
"""


def _require_input(image: str | None) -> None:
    """Refuse a missing IMAGE (image, folder or video) first: before OUT is judged by what the
    input would be, and before a model is opened or a Ray cluster contacted.

    Raises:
        OnnxDreamError: ``image`` does not exist.
    """
    if image is None or Path(image).exists():
        return
    from onnxdream.dream.video import is_video
    from onnxdream.inputs.images import FORMATS

    if is_video(image):
        raise OnnxDreamError(f"{image}: no such video file")
    if Path(image).suffix.lower() in FORMATS:
        raise OnnxDreamError(f"{image}: image not found")
    if image.endswith(("/", os.sep)):
        raise OnnxDreamError(f"{image}: input folder not found")
    raise OnnxDreamError(f"{image}: no such image, folder or video")


def _check_paths(
    image: str | None,
    out: str,
    guide: Path | None,
    model_files: list[Path],
    frames: int | None,
    folder: bool,
    video: bool = False,
) -> None:
    """Refuse, before any work, outputs that would replace an input (image, guide, model files)."""
    from onnxdream.dream.animate import frame_paths
    from onnxdream.dream.batch import folder_outputs
    from onnxdream.paths import check_writes

    reads: list[Path] = ([guide] if guide is not None else []) + model_files
    if video:
        from onnxdream.commands.dream_video import check_video_paths

        check_video_paths(image, out, reads)  # type: ignore[arg-type]
        return
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
    precision: PrecisionOption = "fp32",
    compile: CompileOption = False,
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
    weights: WeightsOption = None,
    weights_prefix: WeightsPrefixOption = None,
    flow: bool = typer.Option(
        True,
        "--flow/--no-flow",
        help="Video: start each frame from the previous dream warped by optical flow.",
    ),
    flow_blend: float = typer.Option(0.7, help="Video: weight of the warped previous dream (0 to 1)."),
    flow_smooth: float = typer.Option(
        0.5, help="Video: share of the warped previous dream mixed into each finished dream (0 to 1)."
    ),
    blend: float = typer.Option(None, help="Video: classic mix with the previous dream, no motion (0 to 1)."),
    scene_cut: float = typer.Option(0.3, help="Video: new scene below this share of trackable pixels."),
    start: str = typer.Option(None, help="Video: first frame, as seconds (12.5), 1:02.5 or a frame (120f)."),
    end: str = typer.Option(None, help="Video: stop before this time or frame (as --start)."),
    every: int = typer.Option(1, help="Video: dream every N-th frame (quick previews)."),
    crf: int = typer.Option(18, help="Video: encoder quality, 0 (lossless) to 51 (H.264 CRF)."),
    preset: str = typer.Option("medium", help="Video: encoder speed preset (ultrafast ... veryslow)."),
    piece_seconds: float = typer.Option(
        4.0, help="Video with --ray: cut shots longer than this into pieces dreamed in parallel."
    ),
    piece_overlap: int = typer.Option(
        6, help="Video with --ray: frames each piece of a shot starts early, crossfaded at the join."
    ),
    ray: RayOption = None,
    workers: WorkersOption = None,
    gpus: GpusPerWorkerOption = None,
) -> None:
    """Deep Dream an IMAGE into OUT by layer name, on any ONNX CNN (default: built-in EfficientNet-Lite0).

    --atlas dreams each layer that --match and --depth choose, and lays the dreams out as a grid.
    A video IMAGE (or a folder with a video OUT) dreams frame by frame into a video or a folder.
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
    _require_input(image)
    from onnxdream.commands.dream_video import wants_video

    video = wants_video(image, out)
    folder = image is not None and Path(image).is_dir() and not video
    if video and (frames is not None or atlas or max_size is not None):
        raise OnnxDreamError("--frames, --atlas and --max-size do not apply to videos (use --tile)")
    if sum([frames is not None, atlas, folder]) > 1:
        raise OnnxDreamError("--frames, --atlas and a folder input cannot be combined")
    if atlas and not match and depth is None:
        raise OnnxDreamError("--atlas needs --match GLOB or --depth N to choose the layers")
    if not folder and not frames and not video:
        output_format(out)
    if not 0 <= seed < 2**32:
        raise OnnxDreamError(f"--seed must be between 0 and 2**32-1, got {seed}")
    if ray is not None and not folder and not video:
        raise OnnxDreamError("--ray runs a folder of images or a video (give one as IMAGE)")
    if video:
        from onnxdream.dream.video import require_video_extra

        require_video_extra()
    opened = open_model_with_status(model, trust_pickle, weights, weights_prefix)
    _check_paths(image, out, guide, opened.files, frames, folder, video)

    dreamer = open_dreamer_from_flags(
        opened, device, mean, std, value_range, channel_order, precision, compile, layout
    )
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

    from onnxdream.executors.choose import open_executor

    if video:
        from onnxdream.commands.dream_video import run_video

        run_video(
            dreamer,
            layer_specs(dreamer, layer, model),
            options,
            image,
            out,
            opened.files,
            flow=flow,
            flow_blend=flow_blend,
            flow_smooth=flow_smooth,
            blend=blend,
            scene_cut=scene_cut,
            start=start,
            end=end,
            every=every,
            crf=crf,
            preset=preset,
            json_out=json_out,
            parallel=None
            if ray is None
            else (
                open_executor(ray, workers, gpus, device),
                _recipe(opened, device, mean, std, value_range, channel_order, precision, compile),
                (piece_seconds, piece_overlap),
            ),
        )
        return
    if folder:
        executor = open_executor(ray, workers, gpus, device)
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
            executor=executor,
            recipe=None
            if ray is None
            else _recipe(opened, device, mean, std, value_range, channel_order, precision, compile),
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


def _recipe(
    opened: Model,
    device: str,
    mean: str | None,
    std: str | None,
    value_range: str | None,
    channel_order: str | None,
    precision: str,
    compile: bool,
) -> DreamerRecipe:
    """How workers build this command's dreamer: the same model, flags and torch thread count.

    Workers use the driver's thread count so that their pictures are the driver's bit for bit
    (a different count can change the order of float sums, hence the last bits).
    """
    import torch

    from onnxdream.commands.options import float_list
    from onnxdream.dream.folder_job import DreamerRecipe

    return DreamerRecipe.of(
        opened,
        device=device,
        mean=float_list(mean, "--mean"),
        std=float_list(std, "--std"),
        value_range=float_list(value_range, "--range"),
        channel_order=channel_order,
        precision=precision,
        compile=compile,
        threads=torch.get_num_threads(),
    )


dream_command.__doc__ = (dream_command.__doc__ or "") + _EXAMPLES
