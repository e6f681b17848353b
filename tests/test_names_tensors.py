"""The tensors strategy: names from meaningful output tensor names."""

from __future__ import annotations

import pytest

from onnxdream.graph import GraphIndex
from onnxdream.names.tensors import decode_legacy, names_from_tensors
from tests.names_helpers import make_model


@pytest.mark.parametrize(
    ("tensor", "decoded"),
    [
        ("/layer1/layer1.0/conv1/Conv_output_0", ("layer1.0.conv1", "Conv")),
        ("/_blocks.3/_depthwise_conv/Conv_output_0", ("_blocks.3._depthwise_conv", "Conv")),
        ("/_blocks.15/_swish_1/Clip_output_0", ("_blocks.15._swish_1", "Clip")),
        ("/_conv_stem/static_padding/Constant_1_output_0", ("_conv_stem.static_padding", "Constant_1")),
        ("/Reshape_output_0", None),
        ("inception_4c/output", None),
        ("r12", None),
    ],
)
def test_decode_legacy(tensor: str, decoded: tuple[str, str] | None) -> None:
    assert decode_legacy(tensor) == decoded


def test_module_output_node_takes_the_module_name_and_helpers_hang_below() -> None:
    # x -> Pad (conv.pad) -> Conv (conv) -> Relu "r12" -> Concat "inception_4c/output" -> "907"
    model = make_model(
        [
            ("Constant", [], ["/conv/Constant_output_0"]),
            ("Pad", ["x", "/conv/Constant_output_0"], ["/conv/Pad_output_0"]),
            ("Conv", ["/conv/Pad_output_0", "onnx::Conv_9"], ["/conv/Conv_output_0"]),
            ("Relu", ["/conv/Conv_output_0"], ["r12"]),
            ("Concat", ["r12", "x"], ["inception_4c/output"]),
            ("Relu", ["inception_4c/output"], ["y"]),
            ("Relu", ["y"], ["907"]),
            ("Relu", ["907"], ["getitem_3"]),
        ],
        {"onnx::Conv_9": (4, 3, 1, 1)},
    )
    assert names_from_tensors(GraphIndex(model.graph)) == {
        0: "conv/Constant",
        1: "conv/Pad",
        2: "conv",
        4: "inception_4c/output",
        5: "y",
    }
