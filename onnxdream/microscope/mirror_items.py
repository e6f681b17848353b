"""Items that run the torch mirror: a batch of channel visualisations of one layer (one image
per channel objective, one forward and backward per step for the whole batch), and one layer's
Deep Dream of the reference image."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from onnxdream.errors import OnnxDreamError


@dataclass(frozen=True)
class VisualItem:
    """Channels of one layer visualised together (the batch's noise is seeded by ``seed``)."""

    layer: str
    channels: tuple[int, ...]
    seed: int


@dataclass(frozen=True)
class DreamItem:
    """One layer's dream of the reference image."""

    layer: str


@dataclass(frozen=True)
class MirrorSettings:
    """What shapes the pictures: visualisation size and steps, the dream's octaves and steps."""

    size: int = 128
    steps: int = 128
    dream_steps: int = 10
    dream_octaves: int = 3
    check: bool = True


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


@dataclass
class MirrorJob:
    """Builds the torch mirror once per worker and turns items into uint8 pictures.

    ``model_bytes`` (the model itself, for workers that cannot read ``model_path``) and ``threads``
    (torch's thread count): see :func:`~onnxdream.microscope.job_model.open_job_model`.

    A layer the mirror cannot visualise or dream (no gradient, a size too small for it) gives
    an ``error`` result, kept like any other so that a rerun does not try again.
    """

    model_path: str
    settings: MirrorSettings
    reference: np.ndarray | None = None
    device: str = "auto"
    model_bytes: bytes | None = None
    threads: int | None = None

    def setup(self) -> None:
        from onnxdream.dream.source import open_dreamer
        from onnxdream.microscope.job_model import open_job_model

        model = open_job_model(self.model_path, self.model_bytes, self.threads)
        self._dreamer = open_dreamer(model, self.device)
        self._known = set(self._dreamer.layer_names())

    def run(self, item: VisualItem | DreamItem) -> dict:
        try:
            if isinstance(item, VisualItem):
                return self._visualize(item)
            return self._dream(item)
        except OnnxDreamError as exc:
            if exc.exit_code != 2:
                raise
            return {"error": str(exc)}

    def _visualize(self, item: VisualItem) -> dict:
        from onnxdream.dream.objectives import LayerSpec
        from onnxdream.dream.visualize import VisualizeOptions, visualize_batch

        options = VisualizeOptions(
            size=self.settings.size,
            steps=self.settings.steps,
            seed=item.seed,
            check=self.settings.check,
            on_mismatch="warn",
        )
        spec = LayerSpec(item.layer)
        targets = [[replace(spec, channels=(c,))] for c in item.channels]
        images, result = visualize_batch(self._dreamer, targets, options)
        return {
            "images": np.stack([_pixels(im) for im in images]),
            "objectives": np.array(result.objectives, dtype=np.float64),
            "warnings": list(result.warnings),
        }

    def _dream(self, item: DreamItem) -> dict:
        from onnxdream.dream.engine import DreamOptions
        from onnxdream.dream.objectives import LayerSpec

        if self.reference is None:
            raise OnnxDreamError("no reference image to dream on")
        options = DreamOptions(
            steps=self.settings.dream_steps,
            octaves=self.settings.dream_octaves,
            check=self.settings.check,
            on_mismatch="warn",
        )
        image, result = self._dreamer.run(self.reference, [LayerSpec(item.layer)], options)
        return {"image": _pixels(image), "gain": result.gain, "warnings": list(result.warnings)}
