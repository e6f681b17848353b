"""Dream jobs beyond one image: a folder of images, an atlas of layers; their JSON summaries.

Each job reports every finished dream through ``on_result(result, target)`` and every input it
skips through ``on_skip(message)``, so that a caller can print progress as it happens.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from onnxdream.dream.engine import Dreamer, DreamOptions, DreamResult
from onnxdream.dream.objectives import LayerSpec
from onnxdream.errors import OnnxDreamError

if TYPE_CHECKING:
    from onnxdream.dream.folder_job import DreamerRecipe
    from onnxdream.executors import Executor

OnResult = Callable[[DreamResult, "Path | str"], None]
OnSkip = Callable[[str], None]


def images_in(folder: str | os.PathLike[str]) -> list[Path]:
    """The files a folder job reads, sorted by name (hidden files left out)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))


def out_name(source: Path, out_dir: str | os.PathLike[str]) -> Path:
    """Where a folder job writes ``source``: same stem in ``out_dir``, same format if writable, else PNG."""
    from onnxdream.inputs.images import FORMATS

    suffix = source.suffix.lower() if source.suffix.lower() in FORMATS else ".png"
    return Path(out_dir) / f"{source.stem}{suffix}"


def folder_outputs(folder: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> dict[Path, Path]:
    """Input image -> output image of a folder job.

    Raises:
        OnnxDreamError: ``out_dir`` is a file, or the input folder itself.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OnnxDreamError(f"{out}: the input is a folder, so the output must be a folder too")
    if out.resolve() == Path(folder).resolve():
        raise OnnxDreamError(f"{out}: refusing to write into the input folder")
    return {source: out_name(source, out) for source in images_in(folder)}


def dream_folder(
    dreamer: Dreamer,
    folder: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    specs: Sequence[LayerSpec],
    options: DreamOptions,
    *,
    max_size: int | None,
    max_pixels: int,
    on_result: OnResult,
    on_skip: OnSkip,
    executor: Executor | None = None,
    recipe: DreamerRecipe | None = None,
) -> int:
    """Dream every image of ``folder`` into ``out_dir``; an image that cannot be read or dreamed is skipped.

    The images run on ``executor`` (default: here, one after another, on ``dreamer``); an executor
    with workers elsewhere builds each worker's dreamer from ``recipe``. This process reads every
    image and writes every output (atomically), whatever runs the dreams.

    Returns:
        How many images were dreamed.

    Raises:
        OnnxDreamError: a bad layer (once, before any image), no image dreamed, or an error that is
            not about one image (exit code other than 2, e.g. a failed check).
    """
    from onnxdream.dream.folder_job import FolderDreamJob
    from onnxdream.dream.progress import ProgressBar
    from onnxdream.executors import InProcessExecutor
    from onnxdream.inputs.images import save_image

    dreamer.net.validate([s.layer for s in specs])
    outputs = folder_outputs(folder, out_dir)
    if executor is None or isinstance(executor, InProcessExecutor):
        executor, job = executor or InProcessExecutor(), FolderDreamJob(recipe, specs, options, dreamer)
    else:
        if recipe is None:
            raise ValueError("a folder dream on remote workers needs the dreamer's recipe")
        job = FolderDreamJob(recipe, specs, options)
    done = 0
    results = executor.map_unordered(job, _readable(outputs, max_size, max_pixels, on_skip))
    # Remote workers show no per-step bars: the driver shows one over the images instead.
    remote = not isinstance(executor, InProcessExecutor)
    try:
        with ProgressBar(options.progress and remote, len(outputs), "image") as bar:
            for _item, dreamed in results:
                bar(Path(dreamed.source).name, dreamed.result.objective_after if dreamed.result else 0.0)
                if dreamed.skipped is not None:
                    on_skip(dreamed.skipped)
                    continue
                on_result(dreamed.result, save_image(dreamed.picture, outputs[Path(dreamed.source)]))
                done += 1
    finally:
        results.close()  # an interrupted run cancels what is still queued or running
    if done == 0:
        raise OnnxDreamError(f"{folder}: no image in the folder could be dreamed")
    return done


def _readable(
    outputs: dict[Path, Path], max_size: int | None, max_pixels: int, on_skip: OnSkip
) -> Iterator[tuple[str, np.ndarray]]:
    """``(source, pixels)`` of each input that reads as an image, read only when asked for."""
    from onnxdream.dream.api import as_array

    for source in outputs:
        try:
            pixels = as_array(source, max_size, max_pixels)
        except OnnxDreamError as exc:
            if exc.exit_code != 2:
                raise
            on_skip(str(exc) if str(exc).startswith(str(source)) else f"{source}: {exc}")
            continue
        yield str(source), pixels


def dream_atlas(
    dreamer: Dreamer,
    pixels: np.ndarray,
    names: Sequence[str],
    options: DreamOptions,
    out: str | os.PathLike[str],
    *,
    on_result: OnResult,
    on_skip: OnSkip,
) -> tuple[Path, int]:
    """One dream per layer of ``names``, saved to ``out`` as a labelled grid; a layer that fails is skipped.

    Returns:
        The path written and the number of cells.
    """
    from onnxdream.dream.atlas import make_grid
    from onnxdream.dream.objectives import parse_spec
    from onnxdream.inputs.images import save_image

    cells, labels = [], []
    for name in names:
        try:
            picture, result = dreamer.run(pixels, [parse_spec(name, lambda _n: True)], options)
        except OnnxDreamError as exc:
            if exc.exit_code != 2:
                raise
            on_skip(f"layer {name!r}: {exc}")
            continue
        cells.append(picture)
        labels.append(name)
        on_result(result, f"atlas cell {name}")
    return save_image(make_grid(cells, labels), out), len(cells)


def summary(result: DreamResult, target: Path | str) -> dict[str, Any]:
    """The JSON summary of one dream written to ``target``."""
    return {
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
