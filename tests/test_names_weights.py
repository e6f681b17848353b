"""The weights strategy: names from the common stem of a node's parameters."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper

from onnxdream.graph import GraphIndex
from onnxdream.names.weights import names_from_weights, parameter_stem, stem_of
from tests.names_helpers import make_model


@pytest.mark.parametrize(
    ("parameter", "stem"),
    [
        ("layer1.0.conv1.weight", "layer1.0.conv1"),
        ("_blocks.3._depthwise_conv.weight_bias", "_blocks.3._depthwise_conv"),
        ("0._blocks.3._bn1.running_var", "0._blocks.3._bn1"),
        ("inception_4c/3x3_w_0", "inception_4c/3x3"),
        ("gpu_0/res2_0_branch1_bn_riv_0", "gpu_0/res2_0_branch1_bn"),
        ("conv1/bn_scale_0", "conv1/bn"),
        ("conv1/7x7_s2_b_0", "conv1/7x7_s2"),
        ("fc6_w_0", "fc6"),
        ("gpu_0/conv3_0_w_0", "gpu_0/conv3_0"),
        # paddle2onnx: '<layer>.w_<k>' / '.b_<k>' and PaddleOCR's '<layer>_weights', '_bn_offset'
        ("conv2d_53.w_0", "conv2d_53"),
        ("conv2d_53.b_0", "conv2d_53"),
        ("batch_norm_3.w_2", "batch_norm_3"),
        ("conv1_weights", "conv1"),
        ("conv1_bn_offset", "conv1_bn"),
        ("conv1_bn_variance", "conv1_bn"),
    ],
)
def test_parameter_stem(parameter: str, stem: str) -> None:
    assert parameter_stem(parameter) == stem


@pytest.mark.parametrize(
    ("parameters", "stem"),
    [
        (["inception_4c/3x3_w_0", "inception_4c/3x3_b_0"], "inception_4c/3x3"),
        ([f"gpu_0/res2_0_branch1_bn_{r}_0" for r in ("s", "b", "rm", "riv")], "gpu_0/res2_0_branch1_bn"),
        (
            ["_blocks.3._depthwise_conv.weight", "_blocks.3._depthwise_conv.weight_bias"],
            "_blocks.3._depthwise_conv",
        ),
        (["layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean"], "layer1.0.bn1"),
        (["head_alpha_0", "head_beta_0"], "head"),
        (["fc.weight", "other.bias"], "fc"),
        ([], ""),
    ],
    ids=["caffe2-conv", "caffe2-bn", "dynamo-fused-bn", "torch-bn", "unknown-roles", "disagree", "none"],
)
def test_common_stem(parameters: list[str], stem: str) -> None:
    assert stem_of(parameters) == stem


def test_layers_take_the_stem_and_helpers_hang_below_it() -> None:
    # x -> Conv(conv1_w_0) -> BN(conv1/bn_*) -> Mul(Unsqueeze(conv1/bn_w_0)) -> Relu -> y
    model = make_model(
        [
            ("Conv", ["x", "conv1_w_0"], ["c"]),
            ("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["b"]),
            ("Unsqueeze", ["conv1/bn_w_0", "axes"], ["w"]),
            ("Mul", ["b", "w"], ["m"]),
            ("Relu", ["m"], ["y"]),
        ],
        {
            "conv1_w_0": (4, 3, 1, 1),
            "bn_s": (4,),
            "bn_b": (4,),
            "bn_m": (4,),
            "bn_v": (4,),
            "conv1/bn_w_0": (4,),
        },
    )
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 2]), "axes"))
    names = names_from_weights(GraphIndex(model.graph))
    # BN's parameters here have no common stem: the first one's stem is used.
    assert names == {0: "conv1", 1: "bn", 2: "conv1/bn/Unsqueeze", 3: "conv1/bn/Mul"}


def test_generated_and_scalar_initializers_are_not_parameters() -> None:
    # Legacy exporter folds BN into 'onnx::Conv_909'; dynamo shares scalar Clip bounds.
    model = make_model(
        [
            ("Conv", ["x", "onnx::Conv_909", "onnx::Conv_910"], ["c"]),
            ("Clip", ["c", "min_val", "max_val"], ["y"]),
        ],
        {"onnx::Conv_909": (4, 3, 1, 1), "onnx::Conv_910": (4,), "min_val": (), "max_val": ()},
    )
    assert names_from_weights(GraphIndex(model.graph)) == {}
