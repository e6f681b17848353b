"""The one message for a name that matches nothing: ``unknown``."""

from __future__ import annotations

import pytest

from onnxdream import zoo
from onnxdream.errors import OnnxDreamError, unknown
from onnxdream.model import open_model

LAYERS = ["stem.conv", "stem.relu", "head"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"kind": "layer", "name": "stem.cnv", "choices": LAYERS},
            "unknown layer 'stem.cnv'; did you mean 'stem.conv', 'stem.relu'?",
            id="suggests",
        ),
        pytest.param(
            {"kind": "layer", "name": "zzz", "choices": LAYERS, "where": "m.onnx"},
            "m.onnx: unknown layer 'zzz'",
            id="nothing-close",
        ),
        pytest.param(
            {"kind": "layer", "name": "he*", "choices": LAYERS, "lead": "no layer matches"},
            "no layer matches 'he*'; did you mean 'head'?",
            id="lead",
        ),
        pytest.param(
            {"kind": "zoo model", "name": "alexnt", "choices": ["alexnet", "vgg19"], "listing": "available:"},
            "unknown zoo model 'alexnt'; did you mean 'alexnet'? (available: alexnet, vgg19)",
            id="listing-with-colon",
        ),
        pytest.param(
            {"kind": "strategy", "name": "wieghts", "choices": ["auto", "weights"], "listing": "choose from"},
            "unknown strategy 'wieghts'; did you mean 'weights'? (choose from auto, weights)",
            id="listing",
        ),
        pytest.param(
            {"kind": "node", "name": "st", "choices": (n for n in LAYERS)},
            "unknown node 'st'; did you mean 'stem.conv', 'stem.relu'?",
            id="prefix-from-an-iterator",
        ),
    ],
)
def test_unknown_message(kwargs, message):
    assert unknown(**kwargs) == message


@pytest.mark.parametrize(
    ("call", "choices"),
    [
        pytest.param(lambda: open_model("zoo:alexnt"), [zoo.EFFICIENTNET, *zoo.LIGHT_ZOO], id="zoo-spec"),
        pytest.param(lambda: zoo.light_zoo_path("alexnt"), list(zoo.LIGHT_ZOO), id="light-zoo"),
    ],
)
def test_unknown_zoo_model_suggests_and_lists_all(call, choices):
    with pytest.raises(OnnxDreamError) as caught:
        call()
    message = str(caught.value)
    assert message.startswith("unknown zoo model 'alexnt'; did you mean 'alexnet'")
    assert message.endswith(f"(available: {', '.join(choices)})")
