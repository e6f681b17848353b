"""Layer specs and losses."""

from __future__ import annotations

import pytest
import torch

from onnxdream.dream.objectives import LayerSpec, Objective, parse_spec
from onnxdream.errors import OnnxDreamError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("_blocks.8", LayerSpec("_blocks.8")),
        ("_blocks.11:17", LayerSpec("_blocks.11", (17,))),
        ("_blocks.11:3,17", LayerSpec("_blocks.11", (3, 17))),
        ("_blocks.8*2", LayerSpec("_blocks.8", None, 2.0)),
        ("_blocks.11:17*0.5", LayerSpec("_blocks.11", (17,), 0.5)),
        ("inception_4c/output*-1e-1", LayerSpec("inception_4c/output", None, -0.1)),
        ("a:1,1,2", LayerSpec("a", (1, 2))),
        ("_blocks.11:17@center*2", LayerSpec("_blocks.11", (17,), 2.0, neuron=True)),
        ("a@centre", LayerSpec("a", None, 1.0, neuron=True)),
    ],
    ids=[
        "name",
        "channel",
        "channels",
        "weight",
        "combo",
        "slash-name-negative-weight",
        "dedup",
        "neuron",
        "neuron-alias-no-channel",
    ],
)
def test_parse_valid(text, expected):
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a*x", r"weight 'x' is not a number"),
        ("a*inf", r"weight must be finite"),
        ("a:1,b", r"channels must be numbers like ':3' or ':3,17', got '1,b'"),
        ("a:", r"channels must be numbers"),
        (":3", r"no layer name"),
        ("*2", r"no layer name"),
        ("a:3@top", r"position must be '@center', got '@top'"),
    ],
    ids=[
        "bad-weight",
        "inf-weight",
        "bad-channel",
        "empty-channel",
        "no-name",
        "only-weight",
        "bad-position",
    ],
)
def test_parse_invalid(text, message):
    with pytest.raises(OnnxDreamError, match=message):
        parse_spec(text)


def test_name_with_colon_taken_whole_when_known():
    known = {"conv1:0"}.__contains__
    assert parse_spec("conv1:0", known) == LayerSpec("conv1:0")
    assert parse_spec("conv1:0*3", known) == LayerSpec("conv1:0", None, 3.0)
    assert parse_spec("conv2:0", known) == LayerSpec("conv2", (0,))


def test_losses_and_weighted_sum():
    a = torch.arange(24, dtype=torch.float32).reshape(1, 4, 2, 3)
    b = torch.ones(1, 2, 2, 2) * 3
    acts = {"a": a, "b": b}
    l2 = Objective([LayerSpec("a", (1, 3), 0.5), LayerSpec("b", None, 2.0)], "l2")(acts)
    expected = 0.5 * a[:, [1, 3]].square().mean() + 2.0 * 9.0
    torch.testing.assert_close(l2, expected)
    mean = Objective([LayerSpec("a")], "mean")(acts)
    torch.testing.assert_close(mean, torch.tensor(11.5))


def test_scope_with_several_outputs():
    acts = {"s": [torch.ones(1, 2, 2, 2), torch.full((1, 3, 1, 1), 2.0)]}
    value = Objective([LayerSpec("s")], "l2")(acts)
    torch.testing.assert_close(value, torch.tensor((8 * 1 + 3 * 4) / 11))
    with pytest.raises(OnnxDreamError, match=r"layer 's' has 2 outputs; channel selection needs"):
        Objective([LayerSpec("s", (0,))], "l2")(acts)


def test_channel_out_of_range():
    with pytest.raises(
        OnnxDreamError, match=r"layer 'a' has 4 channels \(0\.\.3\); channel 9 does not exist"
    ):
        Objective([LayerSpec("a", (1, 9))])({"a": torch.zeros(1, 4, 2, 2)})


def test_unknown_loss():
    with pytest.raises(OnnxDreamError, match=r"unknown loss 'l3'; choose one of l2, mean"):
        Objective([LayerSpec("a")], "l3")


def test_guided_loss_picks_best_matching_guide_feature():
    guide = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # (C=2, 2 guide positions)
    x = torch.tensor([[[[3.0, 0.0]], [[1.0, 1.0]]]])  # (1, C=2, 1, 2): positions (3,1) and (0,1)
    value = Objective([LayerSpec("a")], guides={"a": guide})({"a": x})
    # position (3,1): dots 3 and 2 -> 3; position (0,1): dots 0 and 2 -> 2; mean 2.5
    torch.testing.assert_close(value, torch.tensor(2.5))


def test_neuron_takes_the_centre_of_the_feature_map():
    act = torch.arange(2 * 3 * 5 * 4, dtype=torch.float32).reshape(2, 3, 5, 4)
    value = Objective([parse_spec("a:1@center")], "mean")({"a": act})
    torch.testing.assert_close(value, act[:, 1, 2, 2].mean())  # centre of 5x4 is (2, 2)
    assert str(parse_spec("a:1@centre*2")) == "a:1@center*2"
    with pytest.raises(OnnxDreamError, match=r"layer 'a' has no feature map for @center"):
        Objective([parse_spec("a@center")], "mean")({"a": torch.ones(2, 3)})
