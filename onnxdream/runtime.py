"""ONNX Runtime sessions: one place for provider choice (CUDA/CPU), quiet fallback and caching."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from onnxdream.errors import OnnxDreamError, OptionError, first_line
from onnxdream.io import PROTO_LIMIT, save_model

DEVICES = ("auto", "cpu", "cuda")
OPTIMIZATIONS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}
_PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence ONNX Runtime's loader chatter: C++ logging and printed hints on fds 1 and 2."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        with (
            open(os.devnull, "w") as devnull,
            warnings.catch_warnings(),
            # preload_dlls() prints through Python: where sys.stdout is not fd 1 (Jupyter,
            # pytest), redirecting the file descriptors alone would let it through.
            contextlib.redirect_stdout(devnull),
            contextlib.redirect_stderr(devnull),
        ):
            warnings.simplefilter("ignore")
            for fd in saved:
                os.dup2(devnull.fileno(), fd)
            yield
    finally:
        sys.stdout.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


def _probe_model() -> bytes:
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]).SerializeToString()


@cache
def cuda_available() -> bool:
    """Whether ONNX Runtime's CUDA provider really loads here (not merely listed)."""
    if _PROVIDERS["cuda"] not in ort.get_available_providers():
        return False
    with _quiet_stderr():
        if hasattr(ort, "preload_dlls"):
            # Finds the CUDA/cuDNN libraries shipped with torch's CUDA build (no system CUDA).
            with contextlib.suppress(Exception):
                ort.preload_dlls()
        options = ort.SessionOptions()
        options.log_severity_level = 4
        try:
            session = ort.InferenceSession(
                _probe_model(), options, providers=[_PROVIDERS["cuda"], _PROVIDERS["cpu"]]
            )
        except Exception:
            return False
    return session.get_providers()[0] == _PROVIDERS["cuda"]


def check_settings(device: str = "auto", optimization: str = "all") -> None:
    """Refuse an unknown device or optimisation level (cheap: nothing is probed).

    Raises:
        OnnxDreamError: the unknown value and the valid ones (an ``OptionError`` for the level,
            which the CLI calls ``--ort-opt``).
    """
    if device not in DEVICES:
        raise OnnxDreamError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if optimization not in OPTIMIZATIONS:
        raise OptionError(
            f"unknown {{ort_opt}} {optimization!r}; choose one of {', '.join(OPTIMIZATIONS)}",
            ort_opt="optimisation level",
        )


def resolve_device(device: str) -> str:
    """Map ``auto|cpu|cuda`` to the device that will really be used.

    Raises:
        OnnxDreamError: unknown device, or ``cuda`` asked for where it does not load.
    """
    check_settings(device)
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise OptionError(
            "device 'cuda' requested but ONNX Runtime's CUDA provider does not load here "
            "(needs an NVIDIA GPU with onnxruntime-gpu and CUDA libraries); use {device} cpu",
            "device",
        )
    return device


class RunError(OnnxDreamError):
    """ONNX Runtime failed to run a model; ``reason`` is the runtime's own first line."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: ONNX Runtime cannot run the model: {reason}")
        self.reason = reason


@dataclass
class Session:
    """An ONNX Runtime session and the device it really runs on."""

    session: ort.InferenceSession
    device: str
    source: str = "<model>"

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    def run(
        self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None, quiet: bool = False
    ) -> dict[str, np.ndarray]:
        """Run the model; returns ``{output name: array}``.

        ``quiet``: a failure raises without ONNX Runtime also logging it (for callers that
        report it themselves, or expect it while probing).

        Raises:
            RunError: ONNX Runtime refuses the feeds or fails while running (names the model).
        """
        names = list(outputs) if outputs is not None else self.output_names
        options = ort.RunOptions()
        if quiet:
            options.log_severity_level = 4
        try:
            values = self.session.run(names, dict(feeds), options)
        except Exception as exc:  # ORT raises several unrelated types (InvalidArgument, Fail, ...)
            raise RunError(self.source, first_line(exc)) from None
        return dict(zip(names, values, strict=True))


CACHE_SIZE = 4
"""Sessions kept for reuse, least recently used dropped first: a session holds its model's weights."""
_cache: OrderedDict[tuple[str, str, str, bool], Session] = OrderedDict()
_large_models: dict[str, tempfile.TemporaryDirectory] = {}
"""Models past the protobuf limit, saved once per content into folders removed at exit."""


def _large_model_digest(model: onnx.ModelProto) -> str:
    """Content hash of a model too big to serialise: the graph without weights, then each weight."""
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    digest = hashlib.sha256()
    for tensor in skeleton.graph.initializer:
        digest.update(tensor.raw_data)
        tensor.ClearField("raw_data")
    digest.update(skeleton.SerializeToString())
    return digest.hexdigest()


def _model_key(model: onnx.ModelProto | str | os.PathLike[str]) -> tuple[str, bytes | str]:
    if isinstance(model, onnx.ModelProto):
        if model.ByteSize() >= PROTO_LIMIT:
            key = _large_model_digest(model)
            if key not in _large_models:
                _large_models[key] = tempfile.TemporaryDirectory(prefix="onnxdream-ort-")
                save_model(model, Path(_large_models[key].name) / "model.onnx", external_data=True)
            return key, str(Path(_large_models[key].name) / "model.onnx")
        data = model.SerializeToString()
        return hashlib.sha256(data).hexdigest(), data
    path = Path(model).resolve()
    return f"{path}:{path.stat().st_mtime_ns}", str(path)


def _zero_dims_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model``, or a copy whose graph inputs declared with a dim of 0 have it symbolic.

    Some exporters write 0 for a dynamic batch; ONNX Runtime takes it literally (and -1 as
    dynamic), so no real input would fit.
    """
    zero = [
        (k, j)
        for k, value in enumerate(model.graph.input)
        for j, dim in enumerate(value.type.tensor_type.shape.dim)
        if dim.HasField("dim_value") and dim.dim_value == 0
    ]
    if not zero:
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for k, j in zero:
        copy.graph.input[k].type.tensor_type.shape.dim[j].dim_param = f"{copy.graph.input[k].name}_dim{j}"
    return copy


def make_session(
    model: onnx.ModelProto | str | os.PathLike[str],
    device: str = "auto",
    optimization: str = "all",
    spinning: bool = True,
    source: str | None = None,
) -> Session:
    """Create (or reuse) a session for ``model`` on ``device`` with the given graph optimisation.

    ``spinning=False`` stops idle intra-op threads from busy-waiting after each run: use it for
    occasional runs beside other CPU work (the dream's forward checks beside torch).
    ``source`` names the model in errors (default: its path, or ``<model>``).

    Raises:
        OnnxDreamError: bad device or optimisation level, or ONNX Runtime rejects the model.
    """
    check_settings(device, optimization)
    resolved = resolve_device(device)
    where = source or (str(model) if not isinstance(model, onnx.ModelProto) else "<model>")
    if isinstance(model, onnx.ModelProto):
        model = _zero_dims_dynamic(model)
    key, source = _model_key(model)
    cache_key = (key, resolved, optimization, spinning)
    if cache_key in _cache:
        _cache.move_to_end(cache_key)
    else:
        options = ort.SessionOptions()
        options.graph_optimization_level = OPTIMIZATIONS[optimization]
        options.log_severity_level = 3
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = [_PROVIDERS["cuda"], _PROVIDERS["cpu"]] if resolved == "cuda" else [_PROVIDERS["cpu"]]
        try:
            session = ort.InferenceSession(source, options, providers=providers)
        except Exception as exc:  # ORT raises several unrelated types for a bad model
            raise OnnxDreamError(f"{where}: ONNX Runtime cannot load the model: {first_line(exc)}") from None
        used = "cuda" if session.get_providers()[0] == _PROVIDERS["cuda"] else "cpu"
        _cache[cache_key] = Session(session, used, where)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return _cache[cache_key]


def clear_cache() -> None:
    """Forget cached sessions (frees their memory) and the saved copies of models past 2 GB."""
    _cache.clear()
    for folder in _large_models.values():
        folder.cleanup()
    _large_models.clear()
