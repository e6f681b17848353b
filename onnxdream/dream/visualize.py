"""Feature visualisation: grow images from noise that maximise a layer, channel or neuron.

The same machinery as a dream (objectives, parameterisation, transforms, optimiser, forward
checks) without an input image: each image of a batch starts as seeded noise around grey in a
Fourier-space, colour-decorrelated latent squashed by a sigmoid, and every image has its own
objective, so one batch can show one channel per image (a channel atlas). A diversity term pushes
the images of a batch apart (the cosine similarity of their Gram matrices is subtracted).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch
from PIL import Image

from onnxdream.dream.activations import Activation, as_tensors
from onnxdream.dream.api import ImageArg, api_dreamer, as_array, check_option_names, layer_specs
from onnxdream.dream.channels import channel_count, check_channels, parse_channels, top_channels
from onnxdream.dream.checks import CheckSummary
from onnxdream.dream.engine import Dreamer, check_step_options
from onnxdream.dream.objectives import LayerSpec, Objective
from onnxdream.dream.octaves import MIN_FEATURE
from onnxdream.dream.optim import Optimizer, take_step
from onnxdream.dream.param import ImageParam
from onnxdream.dream.progress import ProgressBar
from onnxdream.dream.source import ModelArg
from onnxdream.dream.tiling import Gradient, compute_gradient
from onnxdream.dream.transforms import Transforms
from onnxdream.errors import MismatchError, OptionError, first_line
from onnxdream.inputs.images import to_pil


@dataclass
class VisualizeOptions:
    """Everything that shapes one visualisation (the CLI options of the same names)."""

    size: int = 224
    steps: int = 256
    lr: float | None = 0.05
    loss: str = "mean"
    param: str = "fft"
    decorrelate: bool = True
    optimizer: str = "adam"
    grad_norm: str = "mean"
    pad: int = 12
    scale: float = 0.1
    rotate: float = 10.0
    jitter: int = 8
    batch: int = 1
    diversity: float = 0.0
    seed: int = 0
    check: bool = True
    on_mismatch: str = "error"
    progress: bool = False

    def __post_init__(self) -> None:
        if self.size < 1:
            raise OptionError(f"{{size}} must be at least 1, got {self.size}", "size")
        if self.batch < 1:
            raise OptionError(f"{{batch}} must be at least 1, got {self.batch}", "batch")
        if self.diversity < 0:
            raise OptionError(f"{{diversity}} must be 0 or more, got {self.diversity}", "diversity")
        check_step_options(self)
        self.transforms()  # raises for out-of-range transforms

    def transforms(self) -> Transforms:
        """The per-step random transforms these options describe."""
        return Transforms(pad=self.pad, scale=self.scale, rotate=self.rotate, jitter=self.jitter)


@dataclass
class VisualizeResult:
    """What a visualisation did: per image its target and final objective, time and checks."""

    targets: list[str]
    objectives: list[float]
    size: int
    steps: int
    seconds: float
    seed: int
    device: str
    similarity: float | None = None
    checks: CheckSummary = field(default_factory=CheckSummary)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        values = ", ".join(f"{v:.4g}" for v in self.objectives[:8]) + (
            ", ..." if len(self.objectives) > 8 else ""
        )
        div = f"; Gram similarity {self.similarity:.3f}" if self.similarity is not None else ""
        return (
            f"visualised {len(self.targets)} image(s) {self.size}x{self.size} of {', '.join(dict.fromkeys(self.targets))}: "
            f"{self.steps} steps in {self.seconds:.1f}s on {self.device}; objective {values}{div}; "
            f"check {self.checks.describe()}; seed {self.seed}"
        )

    def to_json(self, model: str, files: Sequence[str], outputs: Sequence[str]) -> dict[str, Any]:
        """The JSON summary: ``files`` written, and per image its target, objective and output file."""
        return {
            "model": model,
            "outputs": list(files),
            "images": [
                {"target": t, "objective": v, "output": o}
                for t, v, o in zip(self.targets, self.objectives, outputs, strict=True)
            ],
            "size": [self.size, self.size],
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "gram_similarity": self.similarity,
            "check": {
                "passed": self.checks.passed,
                "checks": len(self.checks.reports),
                "max_abs_diff": self.checks.max_abs,
            },
            "seed": self.seed,
            "device": self.device,
        }


def _image_slice(acts: dict[str, Activation], i: int) -> dict[str, Activation]:
    """The activations of image ``i`` of a batch (each keeps a batch dimension of 1)."""
    return {
        k: [t[i : i + 1] for t in as_tensors(v)] if not torch.is_tensor(v) else v[i : i + 1]
        for k, v in acts.items()
    }


def gram_similarity(features: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity between the Gram matrices of different images of an NCHW batch."""
    n = features.shape[0]
    flat = features.flatten(2)
    grams = (flat @ flat.transpose(1, 2)).flatten(1) / flat.shape[-1]
    grams = grams / grams.norm(dim=1, keepdim=True).clamp_min(1e-12)
    similarity = grams @ grams.T
    return (similarity.sum() - similarity.diagonal().sum()) / (n * (n - 1))


class _Targets:
    """One objective per image of the batch, plus the diversity term; ``layers`` is their union."""

    def __init__(self, targets: Sequence[Sequence[LayerSpec]], loss: str, diversity: float) -> None:
        self.objectives = [Objective(list(specs), loss) for specs in targets]
        self.layers = list(dict.fromkeys(layer for o in self.objectives for layer in o.layers))
        self.diversity = diversity if len(self.objectives) > 1 else 0.0

    def part(self, start: int, stop: int) -> _Targets:
        """The objectives of images ``start:stop`` alone; without the diversity term, which couples
        the images (so only a batch without it is split)."""
        part = copy.copy(self)
        part.objectives, part.diversity = self.objectives[start:stop], 0.0
        return part

    def per_image(self, acts: dict[str, Activation]) -> list[torch.Tensor]:
        return [objective(_image_slice(acts, i)) for i, objective in enumerate(self.objectives)]

    def similarity(self, acts: dict[str, Activation]) -> torch.Tensor | None:
        """Gram similarity of the images on the first target layer (``None`` without a feature map)."""
        features = as_tensors(acts[self.objectives[0].layers[0]])[0]
        return gram_similarity(features) if features.dim() == 4 and features.shape[0] > 1 else None

    def __call__(self, acts: dict[str, Activation]) -> torch.Tensor:
        total = torch.stack(self.per_image(acts)).sum()
        if self.diversity:
            similarity = self.similarity(acts)
            if similarity is None:
                raise OptionError(
                    f"{{diversity}} needs a layer with a feature map; {self.objectives[0].layers[0]!r} has none",
                    "diversity",
                )
            total = total - self.diversity * similarity
        return total


CPU_PIXELS_PER_PASS = 65536
"""On the CPU a batch runs its forward and backward passes this many pixels at a time (the images'
objectives are independent, so the gradient is the same): past it the activations spill out of
the cache and each image costs more. EfficientNet-Lite0 up to ``_blocks.5`` on 2 cores (4 MiB L2),
ms per channel and step of a microscope item of 1 / best / 16 channels, --pad 12: 96 px 8.4 /
4.9 (4 a pass) / 6.6; 128 px 10.4 / 7.5 (2) / 10.2 (4); 64 px 5.9 / 2.7 (8). Each best fits here."""


def _images_per_pass(pixels: torch.Tensor, goal: _Targets) -> int:
    """How many images of ``pixels`` go through the network together (all of them on a GPU)."""
    if goal.diversity or pixels.device.type != "cpu":
        return pixels.shape[0]
    return max(1, CPU_PIXELS_PER_PASS // (pixels.shape[-2] * pixels.shape[-1]))


def _check_size(dreamer: Dreamer, layers: list[str], size: int) -> None:
    """Raise unless the target layers run at ``size`` with feature maps of ``MIN_FEATURE`` cells a side.

    Raises:
        OnnxDreamError: the graph fails at that size (fixed shapes, pooling) or it is too small.
    """
    try:
        with torch.no_grad():
            x = torch.full((1, 3, size, size), 0.5, device=dreamer.device)
            acts = dreamer.net(dreamer.preprocess.to_model(x), layers)
    except RuntimeError as exc:
        raise OptionError(
            f"{{size}} {size} does not fit the graph up to {', '.join(map(repr, layers))} ({first_line(exc)}); "
            "try the size the model was exported at",
            "size",
        ) from None
    shapes = [t.shape for v in acts.values() for t in as_tensors(v)]
    if any(len(s) == 4 and min(s[-2:]) < MIN_FEATURE for s in shapes):
        raise OptionError(
            f"{{size}} {size} is too small for the target layers: they need at least {dreamer.minimum_size(layers)}",
            "size",
        )


def _takes_padded(dreamer: Dreamer, layers: list[str], size: int, pad: int) -> bool:
    """Whether the graph up to ``layers`` runs on the ``--pad``-ed image (fixed-size graphs do not)."""
    if pad <= 0:
        return True
    side = size + 2 * min(pad, size - 1)
    try:
        with torch.no_grad():
            dreamer.net(
                dreamer.preprocess.to_model(torch.full((1, 3, side, side), 0.5, device=dreamer.device)),
                layers,
            )
    except RuntimeError:
        return False
    return True


def _centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[..., top : top + size, left : left + size]


def visualize_batch(
    dreamer: Dreamer, targets: Sequence[Sequence[LayerSpec]], options: VisualizeOptions
) -> tuple[list[Image.Image], VisualizeResult]:
    """Grow one image per entry of ``targets`` (each a list of specs summed as in a dream).

    Raises:
        UnknownLayerError: a layer the network does not have (nearest names suggested).
        OnnxDreamError: bad options, a size too small for the layers, a bad channel.
        MismatchError: the final images' forward check failed and ``on_mismatch`` is ``"error"``.
    """
    start = time.perf_counter()
    goal = _Targets(targets, options.loss, options.diversity)
    dreamer.net.validate(goal.layers)
    _check_size(dreamer, goal.layers, options.size)
    generator = torch.Generator().manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    size = (options.size, options.size)
    param = ImageParam.noise(
        len(goal.objectives),
        size,
        generator,
        options.param,
        options.decorrelate,
        "sigmoid",
        device=dreamer.device,
    )
    optimizer = Optimizer(param, options.optimizer, options.lr, options.grad_norm)
    transforms = options.transforms()
    # A graph that takes only its own size (a constant Reshape, pooled branches that must agree)
    # sees the padded, zoomed and rotated image cropped back to that size.
    crop = not _takes_padded(dreamer, goal.layers, options.size, transforms.pad)

    def evaluate(pixels: torch.Tensor, targets: _Targets = goal):
        if crop:
            pixels = _centre_crop(pixels, options.size)
        model_input = dreamer.preprocess.to_model(pixels)
        acts = dreamer.net(model_input, targets.layers)
        return targets(acts), acts, model_input

    def gradient(pixels: torch.Tensor) -> Gradient:
        count, per_pass = pixels.shape[0], _images_per_pass(pixels, goal)
        if per_pass >= count:
            return compute_gradient(evaluate, pixels, None, rng)
        parts = []
        for start in range(0, count, per_pass):
            part = goal.part(start, start + per_pass)
            parts.append(
                compute_gradient(partial(evaluate, targets=part), pixels[start : start + per_pass], None, rng)
            )
        return Gradient(torch.cat([p.grad for p in parts]), sum(p.objective for p in parts), None)

    with ProgressBar(options.progress, options.steps, label="step") as bar:
        for step in range(options.steps):
            found = take_step(optimizer, transforms, gradient, rng)
            bar(f"{step + 1}/{options.steps}", found.objective)

    pixels = param.image()
    with torch.no_grad():
        model_input = dreamer.preprocess.to_model(pixels)
        acts = dreamer.net(model_input, goal.layers)
        values = [float(v) for v in goal.per_image(acts)]
        similarity = goal.similarity(acts)
    result = VisualizeResult(
        targets=[" + ".join(str(s) for s in specs) for specs in targets],
        objectives=values,
        size=options.size,
        steps=options.steps,
        seconds=0.0,
        seed=options.seed,
        device=str(dreamer.device),
        similarity=None if similarity is None else float(similarity),
    )
    checker = dreamer.checker(goal.layers) if options.check else None
    if checker is not None:
        report = checker.check(model_input, acts)
        result.checks.reports.append(report)
        if not report.passed:
            message = (
                f"forward check failed: {report.failed} of {report.total} values of {report.worst_layer!r} "
                f"differ from ONNX Runtime (max |diff| {report.max_abs:.3g})"
            )
            if options.on_mismatch == "error":
                raise MismatchError(message)
            result.warnings.append(message)
    result.seconds = time.perf_counter() - start
    images = [to_pil(p.permute(1, 2, 0).cpu().numpy()) for p in pixels]
    return images, result


GRID_BATCH = 16
"""A channel atlas grows at most this many images at once (memory stays bounded)."""


def _merge(results: list[VisualizeResult]) -> VisualizeResult:
    merged = results[0]
    for more in results[1:]:
        merged.targets += more.targets
        merged.objectives += more.objectives
        merged.seconds += more.seconds
        merged.checks.reports += more.checks.reports
        merged.warnings += [w for w in more.warnings if w not in merged.warnings]
    merged.similarity = None if len(results) > 1 else merged.similarity
    return merged


def run(
    model: ModelArg | Dreamer = None,
    layers: str | Sequence[str | LayerSpec] | None = None,
    *,
    channels: str | Sequence[int] | None = None,
    top: int | None = None,
    image: ImageArg | None = None,
    device: str = "auto",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    value_range: Sequence[float] | None = None,
    channel_order: str | None = None,
    precision: str = "fp32",
    compile: bool = False,
    layout: str | None = None,
    **options: object,
) -> tuple[list[Image.Image], VisualizeResult]:
    """Like :func:`visualize`, and also return the :class:`VisualizeResult`."""
    check_option_names("visualize", options, VisualizeOptions)
    settings = VisualizeOptions(**options)  # type: ignore[arg-type]
    dreamer, source = api_dreamer(
        model,
        device=device,
        mean=mean,
        std=std,
        value_range=value_range,
        channels=channel_order,
        precision=precision,
        compile=compile,
        layout=layout,
    )
    specs = layer_specs(dreamer, layers, source)
    dreamer.net.validate([s.layer for s in specs])
    if channels is None and top is None:
        if image is not None:
            raise OptionError("an image is only used with {top} (the most active channels on it)", "top")
        return visualize_batch(dreamer, [specs] * settings.batch, settings)
    if channels is not None and top is not None:
        raise OptionError("give {channels} or {top}, not both", "channels", "top")
    if len(specs) != 1 or specs[0].channels is not None:
        raise OptionError(
            "{channels}/{top} take one {layer} NAME without channels (e.g. '_blocks.10')",
            "channels",
            "top",
            layer="layers",
        )
    if settings.batch != 1:
        raise OptionError(
            "{batch} does not combine with {channels}/{top} (one image per channel)",
            "batch",
            "channels",
            "top",
        )
    spec = specs[0]
    if top is not None:
        if image is None:
            raise OptionError("{top} K needs {image}: the channels most active on that image", "top", "image")
        chosen = top_channels(dreamer, spec, as_array(image, max_size=settings.size), top)
    else:
        chosen = parse_channels(channels) if isinstance(channels, str) else list(dict.fromkeys(channels))
        check_channels(chosen, channel_count(dreamer, spec, settings.size), spec.layer)
    targets = [[replace(spec, channels=(c,))] for c in chosen]
    images: list[Image.Image] = []
    results = []
    for k in range(0, len(targets), GRID_BATCH):
        chunk = replace(settings, seed=settings.seed + k // GRID_BATCH)
        found, result = visualize_batch(dreamer, targets[k : k + GRID_BATCH], chunk)
        images += found
        results.append(result)
    return images, _merge(results)


def visualize(
    model: ModelArg | Dreamer = None,
    layers: str | Sequence[str | LayerSpec] | None = None,
    **options: object,
) -> list[Image.Image]:
    """Feature visualisation: images grown from noise that maximise ``layers`` of ``model``.

    Args:
        model: an ONNX path or ``ModelProto``, ``"zoo:NAME"`` (``None``: the built-in
            EfficientNet-Lite0), a torch module, or a :class:`Dreamer`.
        layers: specs as for dream: ``"_blocks.10"`` (whole layer), ``"_blocks.10:3"`` (channel),
            ``"_blocks.10:3@center"`` (the channel's centre neuron), ``"a:1*2"`` weighted, several summed.
        **options: ``channels`` (``"0-15"`` or a list: one image per channel of one layer), ``top``
            with ``image`` (the K channels most active on it), ``device``, ``mean``, ``std``,
            ``value_range``, ``channel_order``, ``layout`` (``"nchw"`` / ``"nhwc"``; default: found
            from the model), and every field of :class:`VisualizeOptions`
            (``size``, ``steps``, ``batch``, ``diversity``, ``seed``, ``param``, ...).

    Returns:
        One RGB image per batch entry or per channel.

    Raises:
        UnknownLayerError: a layer the model does not have (nearest names suggested).
        MismatchError: the final forward check failed (unless ``on_mismatch="warn"``).
        OnnxDreamError: any other bad input.
    """
    return run(model, layers, **options)[0]  # type: ignore[arg-type]
