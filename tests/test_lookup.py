"""A layer by its own name: the last path component(s) of exactly one layer, in every verb."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.dream import open_dreamer
from onnxdream.dream.activations import TorchActivations
from onnxdream.dream.api import layer_specs
from onnxdream.dream.atlas import atlas_layers
from onnxdream.dream.objectives import LayerSpec
from onnxdream.errors import AmbiguousLayerError, UnknownLayerError
from onnxdream.graph import GraphIndex
from onnxdream.layers import list_layers
from onnxdream.lookup import NameLookup, glob_names, own_names
from onnxdream.mirror_check import check
from onnxdream.surgery import expose, select
from tests.dream_helpers import pattern
from tests.layout_models import tf2onnx_like, torch_nhwc, torch_nhwc_onnx

runner = CliRunner()
KERAS = "sequential/mobilenetv2_1.00_224"
FAST = ["--octaves", "1", "--steps", "2", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def keras_index() -> GraphIndex:
    return GraphIndex(tf2onnx_like(prefix=KERAS).graph, "keras.onnx")


@pytest.fixture(scope="module")
def torch_index() -> GraphIndex:
    return GraphIndex(torch_nhwc_onnx().graph, "torch.onnx")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lookup")
    paths = {"keras": folder / "keras.onnx", "torch": folder / "torch.onnx", "photo": folder / "photo.png"}
    onnx.save(tf2onnx_like(prefix=KERAS), paths["keras"])
    onnx.save(torch_nhwc_onnx(), paths["torch"])
    from onnxdream.inputs.images import to_pil

    to_pil(pattern(40, 48)).save(paths["photo"])
    return paths


def test_own_names_are_trailing_component_runs() -> None:
    assert own_names("layer1.0.conv1") == ["0.conv1", "conv1"]
    assert own_names("a/b_1/c") == ["b_1/c", "c"]
    assert own_names("/layer1/conv") == ["conv"]  # a leading separator starts no own name
    assert own_names("conv1") == []


@pytest.mark.parametrize(
    ("name", "full"),
    [
        ("block_1_expand", f"{KERAS}/block_1_expand"),  # the Keras layer name, as summary() prints it
        ("block_1_expand/Conv2D", f"{KERAS}/block_1_expand/Conv2D"),
        ("mobilenetv2_1.00_224/block_2_expand", f"{KERAS}/block_2_expand"),  # a '.' inside a name
        (f"{KERAS}/head", f"{KERAS}/head"),  # full names resolve as before
        ("head", f"{KERAS}/head"),
    ],
    ids=["keras-layer", "layer-and-op", "with-model-scope", "full", "head"],
)
def test_keras_layer_by_own_name(keras_index: GraphIndex, name: str, full: str) -> None:
    layer = keras_index.resolve(name)
    assert layer.name == full
    assert layer.outputs == keras_index.resolve(full).outputs


def test_torch_path_by_own_name(torch_index: GraphIndex) -> None:
    assert torch_index.resolve("0.conv1").name == "layer1.0.conv1"
    assert torch_index.resolve("1.conv2").outputs == torch_index.resolve("layer1.1.conv2").outputs
    with pytest.raises(AmbiguousLayerError) as info:
        torch_index.resolve("conv1")
    assert str(info.value) == (
        "torch.onnx: layer 'conv1' is ambiguous: it ends 2 layers ('layer1.0.conv1', 'layer1.1.conv1'); "
        "give more of its path"
    )


def test_ambiguous_keras_op_lists_every_layer(keras_index: GraphIndex) -> None:
    with pytest.raises(AmbiguousLayerError) as info:
        keras_index.resolve("Conv2D")
    message = str(info.value)
    assert message.startswith("keras.onnx: layer 'Conv2D' is ambiguous: it ends 3 layers (")
    for block in ("block_1_expand", "block_1_project", "block_2_expand"):
        assert f"'{KERAS}/{block}/Conv2D'" in message
    assert "\n" not in message


def test_unknown_own_name_suggests_the_nearest(keras_index: GraphIndex) -> None:
    with pytest.raises(UnknownLayerError) as info:
        keras_index.resolve("blok_1_expand")
    assert not isinstance(info.value, AmbiguousLayerError)
    assert "did you mean 'block_1_expand'" in str(info.value)


def test_long_ambiguity_is_cut_to_one_line() -> None:
    lookup = NameLookup([f"block_{i}/conv" for i in range(14)], "m.onnx")
    with pytest.raises(AmbiguousLayerError) as info:
        lookup.find("conv")
    assert str(info.value).count("'block_") == 10
    assert "and 4 more" in str(info.value)


def test_scope_and_its_only_node_are_one_layer() -> None:
    # 'x/conv1' (a scope) and 'x/conv1/conv1' (its one node) compute the same tensor: not ambiguous.
    lookup = NameLookup(["x/conv1", "x/conv1/conv1", "y"], activation=lambda n: "t" if "conv1" in n else n)
    assert lookup.find("conv1") == "x/conv1"


def test_globs_fall_back_to_own_names(keras_index: GraphIndex) -> None:
    names = keras_index.layer_names()
    assert glob_names(names, f"{KERAS}/block_1_*") == glob_names(names, "block_1_*")
    assert keras_index.match("block_2_expand*") == [
        f"{KERAS}/block_2_expand",
        f"{KERAS}/block_2_expand/Conv2D",
        f"{KERAS}/block_2_expand_relu",
        f"{KERAS}/block_2_expand_relu/Relu",
        f"{KERAS}/block_2_expand_relu/Relu__20",
    ]
    assert atlas_layers(names, "block_1_*", depth=4) == [
        f"{KERAS}/block_1_expand",
        f"{KERAS}/block_1_expand_relu",
        f"{KERAS}/block_1_project",
    ]


def test_select_and_exclude_by_own_name(keras_index: GraphIndex) -> None:
    chosen = select(keras_index, ["block_1_expand", f"{KERAS}/block_1_expand", "head"], exclude=["head"])
    assert [layer.name for layer in chosen] == [f"{KERAS}/block_1_expand"]


def test_expose_and_check_by_own_name() -> None:
    model = tf2onnx_like(prefix=KERAS)
    result = expose(model, ["block_2_expand", "head"])
    assert result.exposed == {f"{KERAS}/block_2_expand": ("e2",), f"{KERAS}/head": ("head_out",)}
    found = check(model, layers=["block_1_project"], device="cpu")
    assert found.ok and [c.name for c in found.layers] == [f"{KERAS}/block_1_project"]


def test_layers_listing_by_own_name(torch_index: GraphIndex) -> None:
    model = torch_nhwc_onnx()
    assert [r.name for r in list_layers(model, match="1.conv1")] == ["layer1.1.conv1"]
    assert [r.name for r in list_layers(model, match="layer1.0")] == [
        "layer1.0.conv1",
        "layer1.0/Relu",
        "layer1.0.conv2",
        "layer1.0",
    ]
    with pytest.raises(AmbiguousLayerError):
        list_layers(model, match="conv1")


def test_dream_specs_take_own_names_with_channels(files: dict[str, Path]) -> None:
    dreamer = open_dreamer(files["keras"], device="cpu")
    specs = layer_specs(dreamer, ["block_2_expand:3", "head:1,2*0.5", "1_project@center"], None)
    assert specs == [
        LayerSpec("block_2_expand", (3,)),
        LayerSpec("head", (1, 2), 0.5),
        LayerSpec("1_project", None, 1.0, True),
    ]
    _, result = dreamer.run(pattern(32, 40), specs[:2], _options())
    assert result.gain > 1.0 and result.checks.passed


def test_plain_torch_module_by_own_name() -> None:
    net = TorchActivations(torch_nhwc())
    x = torch.rand(1, 16, 16, 3)
    ours = net(x, ["0.conv1"])["0.conv1"]
    full = net(x, ["layer1.0.conv1"])["layer1.0.conv1"]
    assert torch.equal(ours, full)
    with pytest.raises(AmbiguousLayerError):
        net.validate(["conv1"])


@pytest.mark.parametrize(
    ("verb", "args"),
    [
        ("dream", ["{photo}", "{tmp}/d.png", "-m", "{torch}", "-l", "0.conv1:2", *FAST]),
        (
            "visualize",
            [
                "{torch}",
                "-l",
                "1.conv2:3",
                "-o",
                "{tmp}/v.png",
                "--size",
                "32",
                "--steps",
                "3",
                "--device",
                "cpu",
                "-q",
            ],
        ),
        ("check", ["{keras}", "--layer", "block_2_expand", "--device", "cpu", "--json"]),
        ("expose-layers", ["{keras}", "{tmp}/e.onnx", "-l", "block_1_project", "--json"]),
        ("layers", ["{keras}", "--match", "block_1_expand", "--json"]),
    ],
    ids=["dream", "visualize", "check", "expose-layers", "layers"],
)
def test_every_verb_takes_an_own_name(
    verb: str, args: list[str], files: dict[str, Path], tmp_path: Path
) -> None:
    values = {k: str(v) for k, v in files.items()} | {"tmp": str(tmp_path)}
    result = runner.invoke(app, [verb, *(a.format(**values) for a in args)])
    assert result.exit_code == 0, result.output
    if verb in ("check", "layers"):
        names = [
            row["name"]
            for row in (json.loads(result.stdout)["layers"] if verb == "check" else json.loads(result.stdout))
        ]
        assert (
            names
            == {"check": [f"{KERAS}/block_2_expand"], "layers": [f"{KERAS}/block_1_expand/Conv2D"]}[verb]
        )


@pytest.mark.parametrize("verb", ["dream", "visualize", "check", "expose-layers", "layers"])
def test_every_verb_refuses_an_ambiguous_name(verb: str, files: dict[str, Path], tmp_path: Path) -> None:
    model = str(files["torch"])
    args = {
        "dream": [str(files["photo"]), str(tmp_path / "d.png"), "-m", model, "-l", "conv1:1", *FAST],
        "visualize": [model, "-l", "conv1", "-o", str(tmp_path / "v.png"), "--size", "32", "--device", "cpu"],
        "check": [model, "--layer", "conv1", "--device", "cpu"],
        "expose-layers": [model, str(tmp_path / "e.onnx"), "-l", "conv1"],
        "layers": [model, "--match", "conv1"],
    }[verb]
    result = runner.invoke(app, [verb, *args])
    assert result.exit_code == 2
    assert (
        "layer 'conv1' is ambiguous: it ends 2 layers ('layer1.0.conv1', 'layer1.1.conv1')" in result.output
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "e.onnx").exists() and not (tmp_path / "d.png").exists()


def _options():
    from onnxdream.dream import DreamOptions

    return DreamOptions(octaves=1, steps=3, seed=0)
