"""Channels-first (NCHW) or channels-last (NHWC): the layout of a model's image input and tensors.

ONNX convolutions are NCHW, so converters of channels-last models (tf2onnx, Keras's own ONNX
export, a torch model that permutes its input) take an NHWC input and transpose it to NCHW
before the first convolution (perm 0,3,1,2). The input's layout is, in order of precedence:
an explicit ``--layout`` / ``layout=``; the ``layout`` the exporter recorded in the
``onnxdream.preprocess`` metadata; an image-like rank-4 input (last axis 1, 3 or 4, or free)
that reaches such a Transpose through element-wise ops only; else NCHW.

Inside the graph, :func:`tensor_layouts` follows the layout through Transposes, layout-keeping
ops and channels-first ops (Conv, pooling, normalisation), so an activation that a Keras-style
graph keeps channels-last can be turned to NCHW for the dream engine and back for comparisons.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import onnx

from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.graph import GraphIndex
from onnxdream.metadata import PREPROCESS_KEY, get_json
from onnxdream.shapes import input_dims

NCHW = "NCHW"
NHWC = "NHWC"
LAYOUTS = (NCHW, NHWC)
TO_NCHW = (0, 3, 1, 2)
"""Permutation that turns an NHWC tensor into NCHW (and an NCHW one into NWCH)."""
TO_NHWC = (0, 2, 3, 1)
"""Permutation that turns an NCHW tensor into NHWC."""
IMAGE_CHANNELS = (1, 3, 4)
"""Channel counts of image-like inputs: grey, RGB, RGBA."""

_CHANNELS_FIRST_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "ConvInteger",
        "QLinearConv",
        "MaxPool",
        "AveragePool",
        "LpPool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "GlobalLpPool",
        "MaxUnpool",
        "BatchNormalization",
        "InstanceNormalization",
        "LRN",
        "DepthToSpace",
        "SpaceToDepth",
        "MaxRoiPool",
        "DeformConv",
    }
)
"""Ops whose rank-4 output is NCHW whatever feeds them."""
_KEEPS_LAYOUT = frozenset(
    {
        "Identity",
        "Cast",
        "CastLike",
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Elu",
        "Selu",
        "Celu",
        "Gelu",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Softplus",
        "Softsign",
        "Mish",
        "ThresholdedRelu",
        "Clip",
        "Abs",
        "Neg",
        "Exp",
        "Log",
        "Sqrt",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Round",
        "Erf",
        "Sin",
        "Cos",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Max",
        "Min",
        "Sum",
        "Mean",
        "Where",
        "Dropout",
        "QuantizeLinear",
        "DequantizeLinear",
        "Concat",
        "Pad",
        "Resize",
        "Upsample",
        "Slice",
        "Split",
        "Softmax",
        "LogSoftmax",
    }
)
"""Ops whose rank-4 outputs have the layout of their rank-4 inputs (element-wise, and those that
only cut, pad, join or resize along axes they name)."""


_READS_SHAPE_ONLY = frozenset({"Shape", "Size"})


@dataclass(frozen=True)
class InputLayout:
    """The layout of a model's image input and where it was found.

    ``found`` is ``option``, ``metadata``, ``transpose`` (an input Transpose to NCHW) or
    ``default`` (nothing says channels-last).
    """

    layout: str = NCHW
    found: str = "default"

    @property
    def channels_last(self) -> bool:
        return self.layout == NHWC

    def describe(self) -> str:
        how = {
            "option": "as given",
            "metadata": "from the model's metadata",
            "transpose": "its input is transposed to NCHW",
            "default": "assumed",
        }[self.found]
        return f"{self.layout} ({how})"


def parse_layout(text: str | None) -> str | None:
    """``nchw`` / ``NHWC`` (any case) -> :data:`NCHW` / :data:`NHWC`; ``None`` stays ``None``.

    Raises:
        OptionError: any other value (names ``{layout}``).
    """
    if text is None:
        return None
    value = str(text).strip().upper()
    if value not in LAYOUTS:
        raise OptionError(f"{{layout}} must be nchw or nhwc, got {text!r}", "layout")
    return value


def _data_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    weights = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in weights]


def _transposed_to_nchw(index: GraphIndex, tensor: str) -> bool:
    """Whether ``tensor`` reaches a Transpose(0,3,1,2) through element-wise ops only, on every path
    (a Shape or Size of it, as exports with dynamic sizes take, reads no values)."""
    seen: set[str] = set()
    stack = [tensor]
    found = False
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for i in index.consumers.get(name, []):
            node = index.nodes[i]
            if node.op_type == "Transpose":
                if _perm(node) != TO_NCHW:
                    return False
                found = True
            elif node.op_type in _KEEPS_LAYOUT:
                stack.extend(x for x in node.output if x)
            elif node.op_type not in _READS_SHAPE_ONLY:
                return False
    return found


def _perm(node: onnx.NodeProto) -> tuple[int, ...] | None:
    for a in node.attribute:
        if a.name == "perm":
            return tuple(a.ints)
    return None


def recorded_layout(model: onnx.ModelProto) -> str | None:
    """The layout the exporter recorded (``"layout"`` in ``onnxdream.preprocess``), if any.

    Raises:
        OnnxDreamError: the recorded value is neither NCHW nor NHWC.
    """
    info = get_json(model, PREPROCESS_KEY)
    if not isinstance(info, dict) or info.get("layout") is None:
        return None
    value = str(info["layout"]).upper()
    if value not in LAYOUTS:
        raise OnnxDreamError(
            f"model metadata {PREPROCESS_KEY!r} is malformed: layout must be NCHW or NHWC, got {info['layout']!r}"
        )
    return value


def input_layout(
    model: onnx.ModelProto | None, layout: str | None = None, index: GraphIndex | None = None
) -> InputLayout:
    """The layout of the model's image input (see the module docstring for the precedence).

    Args:
        model: the model (``None``: a torch module, NCHW unless ``layout`` says otherwise).
        layout: an explicit choice (``nchw`` / ``nhwc``, any case) that overrides the model.
        index: the model's graph index, when the caller has one.

    Raises:
        OptionError: ``layout`` is not nchw or nhwc.
        OnnxDreamError: the recorded layout is malformed.
    """
    chosen = parse_layout(layout)
    if chosen is not None:
        return InputLayout(chosen, "option")
    if model is None:
        return InputLayout()
    recorded = recorded_layout(model)
    if recorded is not None:
        return InputLayout(recorded, "metadata")
    inputs = _data_inputs(model)
    if len(inputs) != 1:
        return InputLayout()
    dims = input_dims(inputs[0])
    if dims is None or len(dims) != 4 or dims[3] not in (*IMAGE_CHANNELS, None):
        return InputLayout()
    index = index or GraphIndex(model.graph)
    if _transposed_to_nchw(index, inputs[0].name):
        return InputLayout(NHWC, "transpose")
    return InputLayout()


def looks_channels_last(dims: Iterable[int | None] | None) -> bool:
    """Whether dims read as NCHW look like an NHWC image instead: a last axis of 1, 3 or 4 and a
    second axis that is free or no image's channel count (``1x224x224x3``, ``Nx?x?x3``)."""
    if dims is None:
        return False
    dims = tuple(dims)
    return len(dims) == 4 and dims[3] in IMAGE_CHANNELS and dims[1] not in IMAGE_CHANNELS


def image_axes(layout: str) -> tuple[int, int, int]:
    """The (channel, height, width) axes of a rank-4 tensor in ``layout``."""
    return (3, 1, 2) if layout == NHWC else (1, 2, 3)


def nchw_shape(shape: Iterable[int], layout: str) -> tuple[int, ...]:
    """A rank-4 shape in ``layout`` as (N, C, H, W)."""
    shape = tuple(shape)
    return tuple(shape[i] for i in TO_NCHW) if layout == NHWC else shape


def in_layout(shape_nchw: Iterable[int], layout: str) -> tuple[int, ...]:
    """An (N, C, H, W) shape in ``layout``."""
    shape = tuple(shape_nchw)
    return tuple(shape[i] for i in TO_NHWC) if layout == NHWC else shape


def tensor_layouts(index: GraphIndex, layout: str) -> dict[str, str]:
    """The layout of every tensor it can follow from the graph inputs (given ``layout``).

    Graph inputs have ``layout``; a Transpose maps NCHW <-> NHWC by its perm; channels-first
    ops give NCHW; element-wise ops keep their inputs' layout (when those agree). Tensors it
    cannot follow (after a Reshape, a MatMul, a reduction) are absent: they are used as they are.
    """
    known = {name: layout for name in index.graph_inputs}
    for i in index.order:
        node = index.nodes[i]
        result: str | None = None
        if node.op_type in _CHANNELS_FIRST_OPS:
            result = NCHW
        elif node.op_type == "Transpose" and node.input and node.input[0] in known:
            perm = _perm(node)
            if perm is not None and len(perm) == 4:
                letters = "".join(known[node.input[0]][p] for p in perm)
                result = letters if letters in LAYOUTS else None
        elif node.op_type in _KEEPS_LAYOUT:
            layouts = {known[x] for x in node.input if x in known}
            result = layouts.pop() if len(layouts) == 1 else None
        if result is not None:
            known.update((out, result) for out in node.output if out)
    return known
