"""The dataset pass: batches of images through ONNX Runtime, the model cut after the layers and each
layer reduced in the graph to per-image, per-channel statistics (see :mod:`.reductions`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from onnxdream.errors import OnnxDreamError
from onnxdream.inputs.images import load_image, resize_array
from onnxdream.microscope.reductions import output_name, statistics_model
from onnxdream.microscope.stats import REDUCTIONS


def prepare_image(path: str | Path, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    """An image as the model sees it: centre-cropped to the input's aspect, resized to ``size`` (H, W).

    Raises:
        OnnxDreamError: the file is missing, unreadable or over ``max_pixels``.
    """
    rgb = load_image(path, max_pixels=max_pixels)
    height, width = rgb.shape[:2]
    want = size[1] / size[0]
    if width / height > want:
        keep = max(1, round(height * want))
        left = (width - keep) // 2
        rgb = rgb[:, left : left + keep]
    else:
        keep = max(1, round(width / want))
        top = (height - keep) // 2
        rgb = rgb[top : top + keep]
    return resize_array(rgb, size)


@dataclass(frozen=True)
class DatasetItem:
    """One batch of images and the layers (name -> tensor) still missing for it."""

    batch: int
    paths: tuple[str, ...]
    layers: tuple[tuple[str, str], ...]


@dataclass
class DatasetJob:
    """Runs :class:`DatasetItem` batches through ONNX Runtime (one session per set of layers).

    The model is cut after the requested tensors, so nothing past the deepest layer runs and
    every input dimension is symbolic: a model exported with batch 1 still takes a batch. A
    graph that cannot (a Reshape to a fixed batch inside the cut) is run one image at a time.
    The layers' activations never leave ONNX Runtime: only their (N, C) statistics do.
    ``model_bytes``: the model itself, for workers that cannot read ``model_path``.
    """

    model_path: str
    size: tuple[int, int]
    device: str = "auto"
    max_pixels: int = 0
    model_bytes: bytes | None = None
    _sessions: dict = field(default_factory=dict, repr=False)

    def setup(self) -> None:
        from onnxdream.inputs.feeds import input_spec
        from onnxdream.inputs.normalize import preprocess_for
        from onnxdream.microscope.job_model import open_job_model

        self._model = open_job_model(self.model_path, self.model_bytes)
        self._input = input_spec(self._model.proto).name
        self._preprocess = preprocess_for(self._model.proto)

    def _session(self, tensors: tuple[str, ...]):
        """The statistics model's session for ``tensors``, and whether it takes a batch."""
        if tensors not in self._sessions:
            from onnxdream.runtime import make_session

            model = statistics_model(self._model.proto, tensors)
            session = make_session(model, self.device, "all", source=self._model.source)
            probe = np.zeros((2, 3, *self.size), dtype=np.float32)
            try:
                session.run({self._input: probe}, quiet=True)
                batched = True
            except OnnxDreamError:
                batched = False
            self._sessions[tensors] = (session, batched)
        return self._sessions[tensors]

    def _feed(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        batch = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2)
        return self._preprocess.to_model(batch).numpy().astype(np.float32)

    def run(self, item: DatasetItem) -> dict:
        """Per layer, the reduced statistics of the readable images; which images were readable."""
        images, valid, errors = [], [], []
        for path in item.paths:
            try:
                images.append(prepare_image(path, self.size, self.max_pixels))
                valid.append(True)
            except OnnxDreamError as exc:
                valid.append(False)
                errors.append(str(exc))
        tensors = tuple(t for _, t in item.layers)
        result: dict = {"valid": np.array(valid), "errors": errors, "layers": {}}
        if not images:
            return result
        session, batched = self._session(tensors)
        feed = self._feed(np.stack(images))
        chunks = [feed] if batched else [feed[i : i + 1] for i in range(len(feed))]
        outputs = [session.run({self._input: chunk}) for chunk in chunks]
        for k, (name, _) in enumerate(item.layers):
            reduced = {
                stat: np.concatenate([o[output_name(k, stat)] for o in outputs], axis=0)
                for stat in REDUCTIONS
            }
            reduced["map_size"] = np.asarray(outputs[0][output_name(k, "shape")][2:], dtype=np.int64)
            result["layers"][name] = reduced
        return result


def batches(paths: Sequence[Path], size: int) -> list[tuple[str, ...]]:
    """``paths`` in consecutive batches of at most ``size``."""
    return [tuple(str(p) for p in paths[k : k + size]) for k in range(0, len(paths), size)]
