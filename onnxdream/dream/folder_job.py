"""The folder dream as an executor :class:`~onnxdream.executors.Job`: one dreamer per worker, one
image per item, the picture back to the driver (which writes it).

What travels to a worker is plain data: the model as ONNX bytes (so workers need onnxdream, not
the user's model files, weights or torch code), the preprocessing flags, the layer specs and the
:class:`DreamOptions`. The driver reads each image and sends its pixels, so workers need no view
of the driver's files either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from onnxdream.dream.engine import DreamOptions, DreamResult
from onnxdream.dream.objectives import LayerSpec
from onnxdream.errors import OnnxDreamError

if TYPE_CHECKING:
    from onnxdream.dream.engine import Dreamer
    from onnxdream.model import Model


@dataclass(frozen=True)
class DreamerRecipe:
    """How to build the driver's :class:`Dreamer` again on a worker (picklable).

    ``threads`` fixes torch's intra-op thread count on the worker (``None``: torch's default).
    """

    model: bytes
    source: str
    device: str = "auto"
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    value_range: Sequence[float] | None = None
    channel_order: str | None = None
    precision: str = "fp32"
    compile: bool = False
    threads: int | None = None

    @classmethod
    def of(cls, model: Model, **settings: Any) -> DreamerRecipe:
        """The recipe of ``model`` (its ONNX bytes and label) with the given settings."""
        return cls(model.proto.SerializeToString(), model.source, **settings)

    def open(self) -> Dreamer:
        """The dreamer, built here."""
        import onnx
        import torch

        from onnxdream.dream.source import open_dreamer
        from onnxdream.model import Model

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        model = Model(onnx.load_model_from_string(self.model), self.source)
        return open_dreamer(
            model,
            self.device,
            self.mean,
            self.std,
            self.value_range,
            self.channel_order,
            precision=self.precision,
            compile=self.compile,
        )


@dataclass
class Dreamed:
    """One image's outcome: the picture and its result, or why it was skipped."""

    source: str
    picture: Image.Image | None = None
    result: DreamResult | None = None
    skipped: str | None = None


class FolderDreamJob:
    """Dream one image per item ``(source label, pixels)`` with the same specs and options.

    Given a ``dreamer`` (in-process), the job uses it; pickled to a worker it leaves it behind and
    builds its own from ``recipe`` in :meth:`setup`. An error about one image (exit code 2) makes
    a skipped item; any other error stops the run.
    """

    def __init__(
        self,
        recipe: DreamerRecipe | None,
        specs: Sequence[LayerSpec],
        options: DreamOptions,
        dreamer: Dreamer | None = None,
    ) -> None:
        if recipe is None and dreamer is None:
            raise ValueError("a folder job needs a recipe or a dreamer")
        self.recipe, self.specs, self.options = recipe, list(specs), options
        self._dreamer = dreamer

    def __getstate__(self) -> dict[str, Any]:
        # A worker builds its own dreamer; progress bars belong to the driver.
        return {**self.__dict__, "_dreamer": None, "options": replace(self.options, progress=False)}

    def setup(self) -> None:
        if self._dreamer is None:
            assert self.recipe is not None
            self._dreamer = self.recipe.open()

    def run(self, item: tuple[str, np.ndarray]) -> Dreamed:
        source, pixels = item
        assert self._dreamer is not None, "setup() first"
        try:
            picture, result = self._dreamer.run(pixels, self.specs, self.options)
        except OnnxDreamError as exc:
            if exc.exit_code != 2:
                raise
            return Dreamed(source, skipped=str(exc) if str(exc).startswith(source) else f"{source}: {exc}")
        return Dreamed(source, picture, result)
