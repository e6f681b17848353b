"""The video branch of ``onnxdream dream``: a video file (or a folder of frames) into a video or frames."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from onnxdream.commands.common import err_console, print_json, warn
from onnxdream.errors import OnnxDreamError

if TYPE_CHECKING:
    from onnxdream.dream.engine import Dreamer, DreamOptions
    from onnxdream.dream.folder_job import DreamerRecipe
    from onnxdream.dream.objectives import LayerSpec
    from onnxdream.executors import Executor


def wants_video(image: str | None, out: str | None) -> bool:
    """Whether ``dream IMAGE OUT`` is a video job: a video input, or a video output."""
    from onnxdream.dream.video import is_video

    return is_video(image) or (image is not None and is_video(out))


def check_video_paths(image: str, out: str, reads: list[Path]) -> None:
    """Refuse outputs (the video or frames, and the checkpoint folder) that would replace an input.

    Raises:
        OnnxDreamError: the output is the input or another file read, or cannot be written.
    """
    from onnxdream.dream.video import require_video_extra
    from onnxdream.dream.video.checkpoint import checkpoint_folder
    from onnxdream.dream.video.encode import CONTAINERS, is_folder_output
    from onnxdream.paths import check_writes

    require_video_extra()
    source = Path(image)
    if source.is_dir():
        reads = reads + [p for p in source.iterdir() if p.is_file()]
        if Path(out).resolve() == source.resolve():
            raise OnnxDreamError(f"{out}: refusing to write into the input folder")
    else:
        reads = [*reads, source]
    if not is_folder_output(out) and Path(out).suffix.lower() not in CONTAINERS:
        raise OnnxDreamError(
            f"{out}: a video output must end in one of {', '.join(sorted(CONTAINERS))}, or be a folder"
        )
    target = Path(out) / "frame_000001.png" if is_folder_output(out) else Path(out)
    check_writes(reads, [target, checkpoint_folder(out) / "frame.png"])


def run_video(
    dreamer: Dreamer,
    specs: list[LayerSpec],
    options: DreamOptions,
    image: str,
    out: str,
    model_files: list[Path],
    *,
    flow: bool,
    flow_blend: float,
    flow_smooth: float,
    blend: float | None,
    scene_cut: float,
    start: str | None,
    end: str | None,
    every: int,
    crf: int,
    preset: str,
    json_out: bool,
    parallel: tuple[Executor, DreamerRecipe, tuple[float, int]] | None = None,
) -> None:
    """Dream ``image`` (a video or a folder of frames) into ``out`` and report as the command does.

    ``parallel``: an executor, the workers' dreamer recipe and (piece seconds, overlap frames) to
    dream the video in pieces (:mod:`onnxdream.dream.video.parallel`).
    """
    from onnxdream.dream.video.coherence import Coherence
    from onnxdream.dream.video.decode import Selection, parse_bound
    from onnxdream.dream.video.run import VideoSettings, dream_video

    if blend is not None and not flow:
        raise OnnxDreamError("--blend and --no-flow cannot be combined (--blend is its own mode)")
    mode = "blend" if blend is not None else ("flow" if flow else "none")
    settings = VideoSettings(
        coherence=Coherence(
            mode=mode, flow_blend=flow_blend, flow_smooth=flow_smooth, blend=blend or 0.0, scene_cut=scene_cut
        ),
        selection=Selection(parse_bound(start, "start"), parse_bound(end, "end"), every),
        crf=crf,
        preset=preset,
    )
    if parallel is not None:
        from onnxdream.dream.video.parallel import Pieces, dream_video_parallel

        executor, recipe, (seconds, overlap) = parallel
        if not seconds > 0 or not 0 <= overlap:
            raise OnnxDreamError(
                f"--piece-seconds must be > 0 and --piece-overlap >= 0, got {seconds}, {overlap}"
            )
        summary = dream_video_parallel(
            dreamer,
            specs,
            options,
            image,
            out,
            settings,
            executor,
            recipe,
            Pieces(seconds, overlap),
            model_files=model_files,
            progress=options.progress,
        )
    else:
        summary = dream_video(
            dreamer, specs, options, image, out, settings, model_files=model_files, progress=options.progress
        )
    for message in summary.warnings:
        warn(message)
    err_console.print(
        f"dreamed {summary.frames} frames ({summary.resumed} from checkpoints, {summary.scene_cuts} scene "
        f"cuts) {summary.size[0]}x{summary.size[1]} at {summary.fps:g} fps in {summary.seconds:.1f}s, "
        f"flow {summary.flow_seconds:.1f}s; temporal error {_fmt(summary.temporal_error)} -> {out}",
        highlight=False,
    )
    if json_out:
        print_json(summary.as_json())


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
