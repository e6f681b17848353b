"""From a ``--model`` argument to a ready :class:`Dreamer`: ONNX file, zoo name, or torch module."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import onnx
import torch
from torch import nn

from onnxdream.dream.activations import Activation, ActivationModel, TorchActivations, as_tensors
from onnxdream.dream.checks import ForwardChecker
from onnxdream.dream.engine import Dreamer
from onnxdream.dream.static_shapes import StaticShapes
from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.graph import GraphIndex
from onnxdream.inputs.normalize import preprocess_for
from onnxdream.layout import NCHW, NHWC, TO_NCHW, InputLayout, looks_channels_last, tensor_layouts
from onnxdream.model import Model, open_model
from onnxdream.zoo import BUILTIN

if TYPE_CHECKING:
    from onnxdream.mirror import Mirror

DEFAULT_LAYERS = {BUILTIN: ["_blocks.10"]}
"""Layers that give good-looking dreams, per built-in model (chosen by looking at renders)."""

ModelArg = Model | str | os.PathLike[str] | onnx.ModelProto | nn.Module | ActivationModel | None


def torch_device(device: str) -> torch.device:
    """Map ``auto|cpu|cuda`` to the torch device that will run the mirror.

    Raises:
        OnnxDreamError: unknown device, or ``cuda`` where torch has no GPU.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(
                "device 'cuda' requested but torch sees no CUDA GPU here; use {device} cpu", "device"
            )
        return torch.device("cuda")
    raise OnnxDreamError(f"unknown device {device!r}; choose one of auto, cpu, cuda")


class MirrorActivations:
    """:class:`ActivationModel` over the torch mirror of an ONNX graph; names resolved on the graph.

    Activations the graph keeps channels-last (``layouts``: tensor -> layout) are returned as
    NCHW, so channels, centre neurons and sizes mean the same on every model.
    """

    def __init__(self, mirror: Mirror, index: GraphIndex, layouts: dict[str, str] | None = None) -> None:
        self.mirror = mirror
        self.index = index
        self.layouts = layouts or {}

    def layer_names(self) -> list[str]:
        return self.index.layer_names()

    def validate(self, layers: Sequence[str]) -> None:
        self.index.resolve_many(layers)

    def __call__(self, x: torch.Tensor, layers: list[str]) -> dict[str, Activation]:
        if x.dim() == 4 and x.device.type == "cpu":
            # oneDNN's convolutions run faster on channels-last memory, and the layout carries
            # through the graph (same values; EfficientNet-Lite0 on 2 cores: a 2-octave dream
            # 0.51 -> 0.37 s, a microscope channel 81 -> 58 ms).
            x = x.contiguous(memory_format=torch.channels_last)
        acts = self.mirror(x, layers=layers)
        if not self.layouts:
            return acts
        return {name: self._as_nchw(name, value) for name, value in acts.items()}

    def _as_nchw(self, name: str, value: Activation) -> Activation:
        tensors = self.mirror.layer_tensors(name)  # resolved once, then cached by the mirror
        values = as_tensors(value)
        turned = [
            v.permute(*TO_NCHW) if v.dim() == 4 and self.layouts.get(t) == NHWC else v
            for v, t in zip(values, tensors, strict=True)
        ]
        return turned[0] if torch.is_tensor(value) else tuple(turned)


def _require_image_input(proto: onnx.ModelProto, label: str, layout: InputLayout) -> None:
    """Refuse, before any run, a model whose one data input is not a float rank-4 image, or whose
    input looks channels-last while nothing says so.

    Raises:
        OnnxDreamError: no data input or several, an integer input, a rank other than 4, or an
            input shaped like NHWC (``1x224x224x3``) that the model does not transpose to NCHW.
    """
    from onnxdream.inputs.feeds import input_spec

    try:
        spec = input_spec(proto)
    except OnnxDreamError as exc:
        raise OnnxDreamError(f"{label}: {exc}") from None
    if spec.dims is None:
        raise OnnxDreamError(
            f"{label}: dream needs a float image input (N, C, H, W or N, H, W, C); input "
            f"{spec.name!r} declares no rank (give the model a 4-D input shape, e.g. with "
            "onnx.tools.update_model_dims)"
        )
    if spec.dtype.kind != "f" or len(spec.dims) != 4:
        raise OnnxDreamError(
            f"{label}: dream needs a float image input (N, C, H, W or N, H, W, C); input {spec.name!r} is "
            f"{spec.dtype} of rank {'unknown' if spec.dims is None else len(spec.dims)}"
        )
    if layout.found == "default" and looks_channels_last(spec.dims):
        shape = "x".join("?" if d is None else str(d) for d in spec.dims)
        raise OptionError(
            f"{label}: input {spec.name!r} of shape {shape} looks channels-last, but the model does not "
            "say so (no Transpose to NCHW after it, no recorded layout); give {layout} nhwc, or "
            "{layout} nchw if it really is channels-first",
            "layout",
        )


def default_layers(model: ModelArg, dreamer: Dreamer) -> list[str]:
    """The layers to dream on when none is given.

    Raises:
        OnnxDreamError: the model is not built in; the message lists some layer names.
    """
    key = BUILTIN if model is None else model
    if isinstance(key, str) and key in DEFAULT_LAYERS:
        return list(DEFAULT_LAYERS[key])
    from onnxdream.names.lost import is_generated

    names = dreamer.layer_names()
    middle = names[len(names) // 3 : len(names) // 3 + 3]
    hint = "`onnxdream layers MODEL` lists them all"
    if names and sum(map(is_generated, names)) > len(names) // 2:
        hint += "; its names look generated: `onnxdream rename MODEL OUT` gives meaningful ones"
    where = f"{os.fspath(model)}: " if isinstance(model, str | os.PathLike) else ""
    raise OptionError(
        f"{where}choose a layer with {{layer}} for this model (e.g. "
        + ", ".join(repr(n) for n in middle)
        + f"; {hint})",
        layer="layers",
    )


def open_dreamer(
    model: ModelArg = None,
    device: str = "auto",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    value_range: Sequence[float] | None = None,
    channels: str | None = None,
    trust_pickle: bool = False,
    precision: str = "fp32",
    compile: bool = False,
    channels_last: bool | None = None,
    layout: str | None = None,
) -> Dreamer:
    """Build the network, its preprocessing and (for ONNX models) the forward checker factory.

    A torch module or :class:`ActivationModel` dreams directly (nothing to check it against);
    an ONNX model dreams through its torch mirror, checked by ONNX Runtime. ``precision``,
    ``compile`` and ``channels_last`` (None: on CUDA) speed the network up: see
    :mod:`onnxdream.dream.accel`. ``layout`` (``nchw`` / ``nhwc``) overrides the input layout
    found from the model.

    Raises:
        BadModelError: unreadable model file.
        UnsupportedOpError: the mirror cannot convert an op.
        OnnxDreamError: unknown zoo name or device, malformed preprocessing.
    """
    from onnxdream.dream.accel import TOLERANCES, Accelerated, check_precision

    target = torch_device(device)
    check_precision(precision, target)

    def fast(net: ActivationModel) -> ActivationModel:
        if precision == "fp32" and not compile and not (channels_last or target.type == "cuda"):
            return net
        return Accelerated(net, target, precision, compile, channels_last)

    if isinstance(model, nn.Module) and not hasattr(model, "layer_names"):
        model.to(target).eval().requires_grad_(False)
        return Dreamer(
            fast(TorchActivations(model)),
            preprocess_for(None, mean, std, value_range, channels, layout),
            target,
        )
    if isinstance(model, ActivationModel) and not isinstance(model, (str, os.PathLike)):
        return Dreamer(fast(model), preprocess_for(None, mean, std, value_range, channels, layout), target)
    opened = open_model(BUILTIN if model is None else model, trust_pickle=trust_pickle)  # type: ignore[arg-type]
    preprocess = preprocess_for(opened.proto, mean, std, value_range, channels, layout)
    _require_image_input(opened.proto, opened.source, preprocess.layout)
    from onnxdream.mirror import Mirror

    mirror = Mirror(opened).to(target).eval().requires_grad_(False)
    index = opened.index
    found = preprocess.layout.layout
    layouts = tensor_layouts(index, found) if found != NCHW else {}
    layouts = {t: v for t, v in layouts.items() if v == NHWC}

    atol, rtol = TOLERANCES[precision]

    def checker(layers: list[str]) -> ForwardChecker:
        mapping = {name: list(index.resolve(name).outputs) for name in layers}
        return ForwardChecker(
            opened.proto,
            mapping,
            device=device,
            atol=atol,
            rtol=rtol,
            source=opened.source,
            layouts=layouts,
        )

    from onnxdream.inputs.feeds import input_spec

    static = StaticShapes(opened.proto, index, input_spec(opened.proto).name, found, layouts)
    return Dreamer(fast(MirrorActivations(mirror, index, layouts)), preprocess, target, checker, static)
