"""How a microscope job opens the model on its worker: from the driver's path, or from its ONNX
bytes carried by the job (workers on other machines, which cannot see the driver's files)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onnxdream.model import Model


def open_job_model(path: str, data: bytes | None, threads: int | None = None) -> Model:
    """The model at ``path``, or parsed from ``data`` (labelled ``path``) when given.

    ``threads`` fixes torch's intra-op thread count here (``None``: torch's default): workers use
    the driver's count so that their pictures are the driver's bit for bit.
    """
    from onnxdream.model import open_model

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if data is None:
        return open_model(path)
    import onnx

    return open_model(onnx.load_model_from_string(data), source=path)
