"""The dream loop: octaves of randomly transformed gradient steps on an image parameterisation,
with detail carried between octaves, forward checks and progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from onnxdream.dream.activations import Activation, ActivationModel
from onnxdream.dream.checks import CheckSummary, ForwardChecker
from onnxdream.dream.objectives import LOSSES, LayerSpec, Objective, guide_features
from onnxdream.dream.octaves import minimum_size, octave_sizes, pad_to_multiple, resize
from onnxdream.dream.optim import Optimizer, check_optimizer, take_step
from onnxdream.dream.param import ImageParam, check_param
from onnxdream.dream.progress import ProgressBar
from onnxdream.dream.static_shapes import StaticShapes
from onnxdream.dream.step import GRAD_NORMS
from onnxdream.dream.tiling import Gradient, compute_gradient, objective_value
from onnxdream.dream.transforms import Transforms
from onnxdream.errors import MismatchError, OnnxDreamError, OptionError
from onnxdream.inputs.images import fit_size, resize_array, to_pil
from onnxdream.inputs.normalize import Preprocess
from onnxdream.sizes import required_multiple

GUIDE_SIZE = 512
"""A guide image is shrunk so its longer side is at most this many pixels."""


def check_step_options(options: Any) -> None:
    """Checks the options every gradient-ascent loop shares (dream and visualize): loss, gradient
    normalisation, mismatch policy, steps, parameterisation and optimiser.

    Raises:
        OnnxDreamError: the first bad value, named as the Python API names it.
    """
    if options.loss not in LOSSES:
        raise OnnxDreamError(f"unknown loss {options.loss!r}; choose one of {', '.join(LOSSES)}")
    if options.grad_norm not in GRAD_NORMS:
        raise OnnxDreamError(
            f"unknown gradient normalisation {options.grad_norm!r}; choose one of {', '.join(GRAD_NORMS)}"
        )
    if options.on_mismatch not in ("error", "warn"):
        raise OptionError(
            f"{{on_mismatch}} must be 'error' or 'warn', got {options.on_mismatch!r}", "on_mismatch"
        )
    if options.steps < 1:
        raise OptionError(f"{{steps}} must be at least 1, got {options.steps}", "steps")
    check_param(options.param)
    check_optimizer(options.optimizer, options.lr)


@dataclass
class DreamOptions:
    """Everything that shapes one dream (the CLI options of the same names)."""

    loss: str = "l2"
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10
    lr: float | None = None
    grad_norm: str = "mean"
    # Defaults chosen by looking at renders on the built-in model (README, "Dream quality"): fft +
    # decorrelated colour + Adam grows object-level features where pixels + ascent gives RGB speckle.
    param: str = "fft"
    decorrelate: bool = True
    optimizer: str = "adam"
    jitter: int = 32
    scale: float = 0.1
    rotate: float = 10.0
    pad: int = 0
    tile: int | None = None
    seed: int = 0
    guide: np.ndarray | None = None
    check: bool = True
    check_every: int | None = None
    on_mismatch: str = "error"
    progress: bool = False

    def __post_init__(self) -> None:
        check_step_options(self)
        self.transforms()  # raises for out-of-range transforms
        if self.check_every is not None and self.check_every < 1:
            raise OptionError(f"{{check_every}} must be at least 1, got {self.check_every}", "check_every")

    def transforms(self) -> Transforms:
        """The per-step random transforms these options describe."""
        return Transforms(pad=self.pad, scale=self.scale, rotate=self.rotate, jitter=self.jitter)


@dataclass
class DreamResult:
    """What a dream did: sizes, objective before and after, time, checks and warnings."""

    layers: list[str]
    sizes: list[tuple[int, int]]
    steps: int
    objective_before: float
    objective_after: float
    seconds: float
    seed: int
    device: str
    checks: CheckSummary = field(default_factory=CheckSummary)
    warnings: list[str] = field(default_factory=list)

    @property
    def gain(self) -> float:
        """How many times the objective grew (``inf`` from a zero start)."""
        if self.objective_before == 0:
            return float("inf") if self.objective_after > 0 else 1.0
        return self.objective_after / self.objective_before

    def summary(self) -> str:
        h, w = self.sizes[-1]
        return (
            f"dreamed {w}x{h} on {', '.join(self.layers)}: {len(self.sizes)} octaves x {self.steps} steps "
            f"in {self.seconds:.1f}s on {self.device}; objective {self.objective_before:.4g} -> "
            f"{self.objective_after:.4g} (x{self.gain:.2f}); check {self.checks.describe()}; seed {self.seed}"
        )


CheckerFactory = Callable[[list[str]], ForwardChecker]


class Dreamer:
    """Dreams with one network; per-layer-set state (checker, minimum size) is built once and reused.

    ``static`` (ONNX models) reads activation shapes off the graph, so the size probes run the
    network only at sizes where shape inference cannot be sure.
    """

    def __init__(
        self,
        net: ActivationModel,
        preprocess: Preprocess,
        device: torch.device,
        checker_factory: CheckerFactory | None = None,
        static: StaticShapes | None = None,
    ) -> None:
        self.net = net
        self.static = static
        self.preprocess = preprocess
        self.device = device
        self.checker_factory = checker_factory
        self._checkers: dict[tuple[str, ...], ForwardChecker] = {}
        self._minimum: dict[tuple[str, ...], int] = {}
        self._multiple: dict[tuple[str, ...], int] = {}

    def layer_names(self) -> list[str]:
        return self.net.layer_names()

    def _forward(self, pixels: torch.Tensor, layers: list[str]) -> tuple[dict[str, Activation], torch.Tensor]:
        """Activations of ``layers`` and the model input, padded to the sides the network takes."""
        model_input = self.preprocess.to_model(pad_to_multiple(pixels, self.multiple(layers)))
        return self.net(model_input, layers), model_input

    def _evaluate(self, objective: Objective) -> Callable:
        layers = objective.layers

        def evaluate(pixels: torch.Tensor):
            acts, model_input = self._forward(pixels, layers)
            return objective(acts), acts, model_input

        return evaluate

    def multiple(self, layers: Sequence[str]) -> int:
        """What the image sides must be a multiple of for the graph up to ``layers`` (probed once).

        FPN/PAN necks concatenate upsampled deep features with skips, so they only run at sides
        divisible by the total stride; the image is padded to such sides for every forward pass
        (1 when the network takes any size, or when probing cannot tell).
        """
        key = tuple(layers)
        if key not in self._multiple:

            @torch.no_grad()
            def probe(height: int, width: int) -> None:
                if self.static is not None and self.static.shapes(layers, height, width) is not None:
                    return
                x = torch.zeros(1, 3, height, width, device=self.device)
                self.net(self.preprocess.to_model(x), list(layers))

            self._multiple[key] = required_multiple(probe) or 1
        return self._multiple[key]

    def minimum_size(self, layers: Sequence[str]) -> int:
        """Smallest square side the target layers can dream at (probed once per layer set)."""
        key = tuple(layers)
        if key not in self._minimum:

            @torch.no_grad()
            def probe(side: int) -> list[tuple[int, ...]]:
                if self.static is not None:
                    padded = -(-side // self.multiple(layers)) * self.multiple(layers)
                    shapes = self.static.shapes(layers, padded, padded)
                    if shapes is not None:
                        return shapes
                acts, _ = self._forward(torch.zeros(1, 3, side, side, device=self.device), list(layers))
                return [tuple(t.shape) for v in acts.values() for t in ([v] if torch.is_tensor(v) else v)]

            self._minimum[key] = minimum_size(probe)
        return self._minimum[key]

    def checker(self, layers: Sequence[str]) -> ForwardChecker | None:
        if self.checker_factory is None:
            return None
        key = tuple(layers)
        if key not in self._checkers:
            self._checkers[key] = self.checker_factory(list(layers))
        return self._checkers[key]

    def _guides(self, objective: Objective, guide: np.ndarray) -> dict[str, torch.Tensor]:
        guide = resize_array(guide, fit_size(guide.shape[0], guide.shape[1], GUIDE_SIZE))
        minimum = self.minimum_size(objective.layers)
        if min(guide.shape[:2]) < minimum:
            raise OnnxDreamError(
                f"guide image is {guide.shape[1]}x{guide.shape[0]}, too small for the target layers "
                f"(at least {minimum}x{minimum})"
            )
        pixels = _to_tensor(guide, self.device)
        with torch.no_grad():
            acts, _ = self._forward(pixels, objective.layers)
            return {key: guide_features(value) for key, value in objective.select(acts).items()}

    def run(
        self, image: np.ndarray, specs: Sequence[LayerSpec], options: DreamOptions
    ) -> tuple[Image.Image, DreamResult]:
        """Dream on an HxWx3 float image in [0, 1]; returns the dreamed image and what happened.

        Raises:
            UnknownLayerError: a layer the network does not have (exit 2, nearest names suggested).
            OnnxDreamError: bad options, an image too small for the layers, a layer without gradient.
            MismatchError: a forward check failed and ``on_mismatch`` is ``"error"``.
        """
        start = time.perf_counter()
        self.net.validate([s.layer for s in specs])
        objective = Objective(list(specs), options.loss)
        layers = objective.layers
        minimum = self.minimum_size(layers)
        if options.tile is not None and options.tile < minimum:
            raise OptionError(
                f"{{tile}} {options.tile} is below the smallest size the layers take ({minimum})", "tile"
            )
        if options.guide is not None:
            objective.guides = self._guides(objective, options.guide)
        height, width = image.shape[:2]
        sizes = octave_sizes(height, width, options.octaves, options.octave_scale, minimum)
        checker = self.checker(layers) if options.check else None
        check_every = options.check_every or options.steps
        rng = np.random.default_rng(options.seed)
        transforms = options.transforms()
        evaluate = self._evaluate(objective)
        result = DreamResult(
            [str(s) for s in specs], sizes, options.steps, 0.0, 0.0, 0.0, options.seed, str(self.device)
        )

        original = _to_tensor(image, self.device)
        result.objective_before = objective_value(evaluate, original, options.tile)
        bases = [resize(original, size) for size in sizes]
        detail = torch.zeros_like(bases[0])
        with ProgressBar(options.progress, len(sizes) * options.steps) as bar:
            for octave, base in enumerate(bases):
                detail = resize(detail, tuple(base.shape[-2:]))
                param = ImageParam.from_pixels(
                    (base + detail).clamp_(0.0, 1.0), options.param, options.decorrelate
                )
                optimizer = Optimizer(param, options.optimizer, options.lr, options.grad_norm)
                for step in range(options.steps):
                    keep = checker is not None and step % check_every == 0
                    found = take_step(
                        optimizer,
                        transforms,
                        lambda x, keep=keep: compute_gradient(
                            evaluate, x, options.tile, rng, keep_sample=keep
                        ),
                        rng,
                    )
                    if checker is not None and found.sample is not None:
                        self._check(checker, found, result, options, octave)
                    bar(f"{octave + 1}/{len(sizes)} step {step + 1}/{options.steps}", found.objective)
                pixels = param.image()
                detail = pixels - base
        result.objective_after = objective_value(evaluate, pixels, options.tile)
        result.seconds = time.perf_counter() - start
        return to_pil(pixels[0].permute(1, 2, 0).cpu().numpy()), result

    @staticmethod
    def _check(
        checker: ForwardChecker, grad: Gradient, result: DreamResult, options: DreamOptions, octave: int
    ) -> None:
        assert grad.sample is not None
        report = checker.check(grad.sample.model_input, grad.sample.activations)
        result.checks.reports.append(report)
        if report.passed:
            return
        message = (
            f"forward check failed at octave {octave + 1}: {report.failed} of {report.total} values of "
            f"{report.worst_layer!r} differ from ONNX Runtime (max |diff| {report.max_abs:.3g}, "
            f"atol {checker.atol:g} x max(1, max|ref|), rtol {checker.rtol:g})"
        )
        if options.on_mismatch == "error":
            raise MismatchError(message)
        if message not in result.warnings:
            result.warnings.append(message)


def _to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
