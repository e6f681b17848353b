"""``onnxdream dream``: Deep Dream an image (or a folder of images) by layer name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from PIL import Image

from onnxdream.commands.common import MaxPixelsOption, err_console, guarded, print_json, spec_files, warn
from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.images import MAX_PIXELS

_EXAMPLES = """

Examples:

  onnxdream dream --demo out.png

  onnxdream dream photo.jpg out.png --layer _blocks.8 --octaves 4 --steps 10

  onnxdream dream photo.jpg out.png --param pixels --no-decorrelate --optimizer ascent --scale 0 --rotate 0

  onnxdream dream photo.jpg out.png --layer "_blocks.8*1" --layer "_blocks.11:17*0.5"

  onnxdream dream big.tif out.tif --tile 512 --max-size 4000

  onnxdream dream photo.jpg anim.gif --frames 30 --zoom 1.05

  onnxdream dream photo.jpg atlas.png --atlas --match "_blocks.*" --depth 2

  onnxdream dream photos/ dreamed/ --model googlenet.onnx --layer inception_4c
"""


def _floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise OnnxDreamError(f"{option} takes comma-separated numbers, got {text!r}") from None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _check_paths(
    image: str | None, out: str, guide: Path | None, model: str | None, frames: int | None, folder: bool
) -> None:
    """Refuse, before any work, outputs that would replace an input (image, guide, model files)."""
    from onnxdream.dream.animate import frame_paths
    from onnxdream.paths import check_writes

    reads: list[Path] = ([guide] if guide is not None else []) + spec_files(model)
    if folder:
        sources = _images_in(Path(image))  # type: ignore[arg-type]
        check_writes(reads + sources, [_out_name(s, Path(out)) for s in sources])
        return
    if image is not None:
        reads.append(Path(image))
    if frames is not None:
        paths, gif = frame_paths(out, frames)
        check_writes(reads, [*paths, gif])
    else:
        check_writes(reads, [out])


def _out_name(source: Path, out_dir: Path) -> Path:
    from onnxdream.inputs.images import FORMATS

    suffix = source.suffix.lower() if source.suffix.lower() in FORMATS else ".png"
    return out_dir / f"{source.stem}{suffix}"


@guarded
def dream_command(
    image: str = typer.Argument(None, help="Input image or folder (with --demo: the output path)."),
    out: str = typer.Argument(
        None, help="Output image (.png/.jpg/.webp/.tif; .gif with --frames) or folder."
    ),
    model: str = typer.Option(
        None, "--model", "-m", help="ONNX file or zoo:NAME (default: zoo:efficientnet-lite0)."
    ),
    layer: Annotated[
        list[str] | None, typer.Option("--layer", "-l", help="NAME, NAME:C1,C2, NAME*W (repeatable).")
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
        None, help="Step size: Adam's lr [default 0.03]; ascent: mean pixel change per step [default 0.01]."
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
    mean: str = typer.Option(None, help="Override the model's mean, e.g. 0.485,0.456,0.406."),
    std: str = typer.Option(None, help="Override the model's std, e.g. 0.229,0.224,0.225."),
    value_range: str = typer.Option(None, "--range", help="Override the model's input range, e.g. 0,255."),
    channels: str = typer.Option(None, help="Override the model's channel order: RGB or BGR."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (torch mirror and ONNX Runtime)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Forward checks by ONNX Runtime."),
    check_every: int = typer.Option(None, help="Also check every N steps [default: once per octave]."),
    on_mismatch: str = typer.Option("error", help="error (exit 1) or warn."),
    frames: int = typer.Option(None, help="Zoom animation: number of frames (writes frames and a GIF)."),
    zoom: float = typer.Option(1.05, help="Zoom factor between animation frames."),
    atlas: bool = typer.Option(False, "--atlas", help="One dream per layer, as a labelled grid."),
    match: str = typer.Option(None, help="Atlas: glob over layer names, e.g. '_blocks.*'."),
    depth: int = typer.Option(None, help="Atlas: use scopes of this many name components."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    max_pixels: MaxPixelsOption = MAX_PIXELS,
) -> None:
    """Deep Dream an IMAGE into OUT by layer name, on any ONNX CNN (default: built-in EfficientNet-Lite0)."""
    from onnxdream.dream.animate import animate, save_animation
    from onnxdream.dream.api import as_array, layer_specs
    from onnxdream.dream.atlas import atlas_layers, make_grid
    from onnxdream.dream.demo import demo_image
    from onnxdream.dream.engine import DreamOptions
    from onnxdream.dream.objectives import parse_spec
    from onnxdream.dream.source import open_dreamer
    from onnxdream.inputs.images import output_format, save_image

    if demo:
        if out is None and image is not None:
            image, out = None, image
        if image is not None:
            raise OnnxDreamError("--demo takes only the output path (it makes its own input image)")
    if out is None:
        raise OnnxDreamError("give an input IMAGE (or --demo) and an OUT path")
    if sum([frames is not None, atlas, image is not None and Path(image).is_dir()]) > 1:
        raise OnnxDreamError("--frames, --atlas and a folder input cannot be combined")
    folder = image is not None and Path(image).is_dir()
    if not folder and not frames:
        output_format(out)
    if not 0 <= seed < 2**32:
        raise OnnxDreamError(f"--seed must be between 0 and 2**32-1, got {seed}")
    if folder:
        out_dir = Path(out)
        if out_dir.exists() and not out_dir.is_dir():
            raise OnnxDreamError(f"{out_dir}: input is a folder, so OUT must be a folder too")
        if out_dir.resolve() == Path(image).resolve():
            raise OnnxDreamError(f"{out_dir}: refusing to write into the input folder")
    _check_paths(image, out, guide, model, frames, folder)

    # The built-in model is exported on first use (several seconds), then read from the cache.
    with err_console.status("loading the model and building its torch mirror"):
        dreamer = open_dreamer(
            model,
            device,
            _floats(mean, "--mean"),
            _floats(std, "--std"),
            _floats(value_range, "--range"),
            channels,
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

    def report(result, target: Path | str) -> None:
        for warning in result.warnings:
            warn(warning)
        err_console.print(f"{result.summary()} -> {target}", highlight=False)
        summaries.append(
            {
                "output": str(target),
                "layers": result.layers,
                "size": list(result.sizes[-1][::-1]),
                "octaves": len(result.sizes),
                "steps": result.steps,
                "seconds": round(result.seconds, 3),
                "objective_before": result.objective_before,
                "objective_after": result.objective_after,
                "check": {
                    "passed": result.checks.passed,
                    "checks": len(result.checks.reports),
                    "max_abs_diff": result.checks.max_abs,
                },
                "seed": result.seed,
                "device": result.device,
            }
        )

    if folder:
        out_dir = Path(out)
        specs = layer_specs(dreamer, layer, model)
        done = 0
        dreamer.net.validate([s.layer for s in specs])  # a bad layer fails once, before any image
        for source in _images_in(Path(image)):
            try:
                pixels = as_array(source, max_size, max_pixels)
                picture, result = dreamer.run(pixels, specs, options)
            except OnnxDreamError as exc:
                if exc.exit_code != 2:
                    raise
                text = str(exc) if str(exc).startswith(str(source)) else f"{source}: {exc}"
                warn(f"skipping {text}")
                continue
            target = save_image(picture, _out_name(source, out_dir))
            report(result, target)
            done += 1
        if done == 0:
            raise OnnxDreamError(f"{image}: no image in the folder could be dreamed")
    else:
        pixels = demo_image(seed=seed) if image is None else as_array(image, max_size, max_pixels)
        if max_size is not None and image is None:
            pixels = as_array(pixels, max_size)
        if atlas:
            names = atlas_layers(dreamer.layer_names(), match, depth)
            cells, labels = [], []
            for name in names:
                try:
                    picture, result = dreamer.run(pixels, [parse_spec(name, lambda _n: True)], options)
                except OnnxDreamError as exc:
                    if exc.exit_code != 2:
                        raise
                    warn(f"skipping layer {name!r}: {exc}")
                    continue
                cells.append(picture)
                labels.append(name)
                report(result, f"atlas cell {name}")
            target = save_image(make_grid(cells, labels), out)
            err_console.print(f"atlas of {len(cells)} layers -> {target}", highlight=False)
        elif frames is not None:
            specs = layer_specs(dreamer, layer, model)
            pictures: list[Image.Image] = animate(
                dreamer,
                pixels,
                specs,
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
            specs = layer_specs(dreamer, layer, model)
            picture, result = dreamer.run(pixels, specs, options)
            report(result, save_image(picture, out))
    if json_out:
        print_json(summaries[0] if len(summaries) == 1 and not folder and not atlas else summaries)


dream_command.__doc__ = (dream_command.__doc__ or "") + _EXAMPLES
