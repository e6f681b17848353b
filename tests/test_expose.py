"""expose(): named layers as extra outputs, checked against ORT, the reference evaluator and cut models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import pytest
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator
from typer.testing import CliRunner

from onnxdream import io
from onnxdream.cli import app
from onnxdream.commands.expose import npz_keys
from onnxdream.errors import OnnxDreamError, UnknownLayerError
from onnxdream.graph import GraphIndex
from onnxdream.inputs.feeds import input_spec
from onnxdream.metadata import EXPOSED_KEY, get_json, get_prop, set_json, set_prop
from onnxdream.model import Model
from onnxdream.runtime import clear_cache, make_session
from onnxdream.surgery import expose
from onnxdream.zoo import LIGHT_ZOO

runner = CliRunner()
BIG = {"alexnet", "vgg19", "zfnet512"}
ZOO = [pytest.param(n, id=n, marks=[pytest.mark.slow] if n in BIG else []) for n in LIGHT_ZOO]


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _batchnorm(node: onnx.NodeProto, x, scale, bias, mean, var) -> np.ndarray:
    eps = _attrs(node).get("epsilon", 1e-5)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * scale.reshape(
        shape
    ) + bias.reshape(shape)


def _lrn(node: onnx.NodeProto, x) -> np.ndarray:
    a = _attrs(node)
    size, channels = a["size"], x.shape[1]
    square = np.zeros_like(x)
    for c in range(channels):
        lo, hi = max(0, c - (size - 1) // 2), min(channels - 1, c + int(np.ceil((size - 1) / 2)))
        square[:, c] = (x[:, lo : hi + 1] ** 2).sum(1)
    return x / (a.get("bias", 1.0) + a.get("alpha", 1e-4) / size * square) ** a.get("beta", 0.75)


def _softmax_1(node: onnx.NodeProto, x) -> np.ndarray:
    axis = _attrs(node).get("axis", 1)
    flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
    e = np.exp(flat - flat.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).reshape(x.shape)


# Where onnx.reference (1.23) departs from the op spec at opset 9, the spec formula is used instead:
# its LRN differs from the spec by up to 4% (ORT matches the spec to 4e-6), it applies Softmax over
# the last axis (ignoring Softmax-1's flatten-to-2D), and BatchNormalization-9 applies the default
# momentum as in training.
SPEC_FORMULAS = {"BatchNormalization": _batchnorm, "LRN": _lrn, "Softmax": _softmax_1}


# The tiny graph; node names (set below) put c, r, g in scope "blk", s and y in scope "head":
#
#   x -> blk/conv -c-> blk/relu -r-+-------------> head/add -s-> head/out -> y
#                                  +-> blk/gate -g-^               ^
#                                             head/k (Constant) -k-+
TINY = """
<ir_version: 8, opset_import: ["" : 17], doc_string: "tiny model">
tiny (float[N,1,4,4] x) => (float[N,1,4,4] y)
<float[1,1,1,1] w = {2.0}>
{
  c = Conv (x, w)
  r = Relu (c)
  g = Sigmoid (r)
  s = Add (r, g)
  k = Constant <value = float {3.0}> ()
  y = Mul (s, k)
}
"""
TINY_NAMES = {
    "c": "blk/conv",
    "r": "blk/relu",
    "g": "blk/gate",
    "s": "head/add",
    "k": "head/k",
    "y": "head/out",
}


def tiny_model() -> onnx.ModelProto:
    model = onnx.parser.parse_model(TINY)
    for node in model.graph.node:
        node.name = TINY_NAMES[node.output[0]]
        node.doc_string = f"computes {node.output[0]}"
    set_prop(model.graph.node[0], "pkg.torch.onnx.name_scopes", '["", "blk", "blk.conv"]')
    set_prop(model, "producer.note", "kept")
    model.graph.doc_string = "graph doc"
    return model


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], opt: str = "none") -> dict[str, np.ndarray]:
    values = make_session(model, "cpu", opt).run(feeds)
    clear_cache()  # a zoo session holds up to 550 MB of weights: free it before the next one
    return values


def random_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    spec = input_spec(model)
    shape = [d if d is not None else 2 for d in spec.dims]
    return {spec.name: np.random.default_rng(seed).normal(size=shape).astype(spec.dtype)}


def shape_of(info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in info.type.tensor_type.shape.dim]


def cli(*args: str | Path):
    return runner.invoke(app, ["expose-layers", *map(str, args)])


# --- the tiny graph: selection, scopes, metadata, nothing else changes ---------------------------


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        pytest.param(["blk/conv"], {"blk/conv": ("c",)}, id="node"),
        pytest.param(["blk"], {"blk": ("r", "g")}, id="scope-boundary"),
        pytest.param(["head"], {"head": ("y",)}, id="scope-already-output"),
        pytest.param(["s"], {"s": ("s",)}, id="tensor"),
        pytest.param(["blk/relu", "blk", "blk/relu"], {"blk/relu": ("r",), "blk": ("r", "g")}, id="dedup"),
    ],
)
def test_tiny_layers(layers: list[str], expected: dict[str, tuple[str, ...]]) -> None:
    result = expose(tiny_model(), layers)
    assert result.exposed == expected
    outputs = [o.name for o in result.model.graph.output]
    new = list(dict.fromkeys(t for ts in expected.values() for t in ts if t != "y"))
    assert outputs == ["y", *new]
    assert result.added == tuple(new)


def test_tiny_values_match_reference_evaluator() -> None:
    model = tiny_model()
    result = expose(model, ["blk", "blk/conv"])
    feeds = random_feeds(model)
    reference = ReferenceEvaluator(model).run(None, feeds, intermediate=True)
    got = ort_run(result.model, feeds)
    assert set(got) == {"y", "r", "g", "c"}
    for tensor, value in got.items():
        np.testing.assert_allclose(value, reference[tensor], rtol=1e-6, atol=1e-6, err_msg=tensor)


def test_all_skips_constants() -> None:
    result = expose(tiny_model(), all=True)
    assert result.exposed == {
        "blk/conv": ("c",),
        "blk/relu": ("r",),
        "blk/gate": ("g",),
        "head/add": ("s",),
        "head/out": ("y",),
    }
    assert [o.name for o in result.model.graph.output] == ["y", "c", "r", "g", "s"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"match": ["blk/*"]}, ["blk/conv", "blk/relu", "blk/gate"], id="match"),
        pytest.param({"match": ["blk/*"], "exclude": ["*/gate"]}, ["blk/conv", "blk/relu"], id="exclude"),
        pytest.param({"op_types": ["Relu", "Add"]}, ["blk/relu", "head/add"], id="op-type"),
        pytest.param({"all": True, "exclude": ["blk*"]}, ["head/add", "head/out"], id="all-exclude"),
    ],
)
def test_tiny_selectors(kwargs: dict, expected: list[str]) -> None:
    assert list(expose(tiny_model(), **kwargs).exposed) == expected


def test_symbolic_dims_and_dtypes_from_shape_inference() -> None:
    result = expose(tiny_model(), ["blk/conv", "blk/gate"])
    for tensor in ("c", "g"):
        info = result.value_info(tensor)
        assert info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert shape_of(info) == ["N", 1, 4, 4]


def test_nothing_else_changes_and_input_untouched() -> None:
    model = tiny_model()
    set_json(model, EXPOSED_KEY, {"earlier": ["c"]})
    before = model.SerializeToString()
    result = expose(model, ["blk"])
    assert model.SerializeToString() == before
    out = result.model
    onnx.checker.check_model(out, full_check=True)
    assert get_json(out, EXPOSED_KEY) == {"earlier": ["c"], "blk": ["r", "g"]}
    assert get_prop(out, "producer.note") == "kept"
    assert get_prop(out.graph.node[0], "pkg.torch.onnx.name_scopes") == '["", "blk", "blk.conv"]'
    assert (out.ir_version, list(out.opset_import), out.doc_string) == (
        8,
        list(model.opset_import),
        "tiny model",
    )
    assert out.graph.doc_string == "graph doc"
    assert [n.SerializeToString() for n in out.graph.node] == [
        n.SerializeToString() for n in model.graph.node
    ]
    assert list(out.graph.initializer) == list(model.graph.initializer)
    assert list(out.graph.value_info) == list(model.graph.value_info)
    assert out.graph.output[0] == model.graph.output[0]


def test_exposing_twice_merges_the_record() -> None:
    once = expose(tiny_model(), ["blk/conv"]).model
    twice = expose(once, ["blk/conv", "blk/gate"])
    assert twice.added == ("g",)
    assert [o.name for o in twice.model.graph.output] == ["y", "c", "g"]
    assert get_json(twice.model, EXPOSED_KEY) == {"blk/conv": ["c"], "blk/gate": ["g"]}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {"layers": ["blk/conf"]},
            UnknownLayerError,
            "unknown layer 'blk/conf'; did you mean 'blk/conv'",
            id="layer",
        ),
        pytest.param({"match": ["blok*"]}, UnknownLayerError, "no layer matches 'blok*'", id="match"),
        pytest.param(
            {"op_types": ["Relu6"]},
            OnnxDreamError,
            "no node has op type 'Relu6'; did you mean 'Relu'",
            id="op",
        ),
        pytest.param({}, OnnxDreamError, "nothing to expose (no layer requested)", id="empty"),
        pytest.param(
            {"layers": ["blk"], "exclude": ["*"]}, OnnxDreamError, "are all excluded", id="excluded"
        ),
    ],
)
def test_bad_requests(kwargs: dict, error: type[Exception], message: str) -> None:
    model = tiny_model()
    # The good name first: validation happens before anything is changed, for every name.
    if "layers" in kwargs:
        kwargs = {**kwargs, "layers": ["blk/conv", *kwargs["layers"]]}
    with pytest.raises(error) as info:
        expose(Model(model, "tiny.onnx"), **kwargs)
    assert message in str(info.value)
    assert str(info.value).startswith("tiny.onnx: ")


def test_path_form_shape_inference_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Models past 2 GB go through infer_shapes_path; forced here by lowering the limit."""
    model = tiny_model()
    expected = [o.SerializeToString() for o in expose(model, ["blk"]).model.graph.output]
    monkeypatch.setattr(io, "PROTO_LIMIT", 16)
    result = expose(model, ["blk"])
    assert [o.SerializeToString() for o in result.model.graph.output] == expected


# --- the nine model-zoo graphs --------------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo_case(request: pytest.FixtureRequest):
    """(name, model, --all result) for one zoo model.

    Parametrised per module, so pytest runs the tests model by model and drops each model (and
    its exposed copy) before building the next: one model in memory at a time.
    """
    from onnxdream.zoo import light_zoo_model

    model = light_zoo_model(request.param, seed=0)  # its own: no cached copy kept beside it
    return request.param, model, expose(Model(model, request.param), all=True)


@pytest.mark.parametrize("zoo_case", ZOO, indirect=True)
def test_zoo_all_keeps_original_outputs(zoo_case, tmp_path: Path) -> None:
    _, model, result = zoo_case
    exposed = result.model
    # External data: the full check then infers shapes without loading the weights (memory).
    path = io.save_model(exposed, tmp_path / "all.onnx", external_data=True)
    io.check_model(exposed, path)
    onnx.checker.check_model(str(path), full_check=True)
    originals = [o.name for o in model.graph.output]
    assert [o.name for o in exposed.graph.output][: len(originals)] == originals
    assert list(exposed.graph.output)[: len(originals)] == list(model.graph.output)
    index = GraphIndex(model.graph)
    expected = {x for i in index.order if not index.is_constant(i) for x in index.activations(i)}
    assert set(result.added) | set(originals) == expected
    assert len(exposed.graph.output) == len(expected)

    feeds = random_feeds(model)
    plain, full = ort_run(model, feeds, "none"), ort_run(exposed, feeds, "none")
    for tensor in originals:
        assert np.array_equal(plain[tensor], full[tensor]), tensor
    for tensor in result.added:
        info = result.value_info(tensor)
        assert list(full[tensor].shape) == shape_of(info), tensor
        assert full[tensor].dtype == onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)


@pytest.mark.parametrize("zoo_case", ZOO, indirect=True)
def test_zoo_all_matches_cut_models(zoo_case, tmp_path: Path) -> None:
    """Each sampled exposed tensor equals the output of the model cut there by extract_model."""
    _, model, result = zoo_case
    source = io.save_model(model, tmp_path / "model.onnx", external_data=True)
    feeds = random_feeds(model)
    full = ort_run(result.model, feeds, "none")
    added = result.added
    for tensor in (added[0], added[len(added) // 2], added[-1]):
        cut = _cut(source, tmp_path / f"cut-{added.index(tensor)}.onnx", list(feeds), [tensor])
        value = make_session(cut, "cpu", "none").run(feeds)[tensor]
        clear_cache()
        np.testing.assert_allclose(full[tensor], value, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(value).max()))


def _cut(source: Path, target: Path, inputs: list[str], outputs: list[str]) -> Path:
    """onnx.utils.extract_model without loading the weights: the cut, saved beside ``source``, reads
    the source's external data file (a cut of vgg19 would otherwise copy 550 MB three times)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(source), load_external_data=False))
    # The cut keeps IR 3 but drops initializers from the inputs, which the checker refuses: not checked.
    onnx.save(onnx.utils.Extractor(model).extract_model(inputs, outputs), str(target))
    return target


def _node_reference(node: onnx.NodeProto, values: dict[str, np.ndarray], opset: int) -> np.ndarray:
    # Wrapped in a model: a bare NodeProto gets the newest op version, whatever `opsets` says.
    make = onnx.helper.make_empty_tensor_value_info
    inputs = [x for x in node.input if x]
    graph = onnx.helper.make_graph([node], "one", [make(x) for x in inputs], [make(node.output[0])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, {x: values[x] for x in inputs})[0]


@pytest.mark.parametrize(
    "zoo_case",
    ["squeezenet", "shufflenet", pytest.param("googlenet", marks=pytest.mark.slow)],
    indirect=True,
)
def test_zoo_all_matches_reference_per_node(zoo_case) -> None:
    """Every exposed tensor equals onnx.reference applied to its node's (exposed) inputs."""
    _, model, result = zoo_case
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    values.update(ort_run(result.model, random_feeds(model), "none"))
    values.update(random_feeds(model))
    index = GraphIndex(model.graph)
    checked = 0
    for tensor in result.added:
        node = index.nodes[index.producer[tensor]]
        missing = [x for x in node.input if x and x not in values]
        if missing:  # folded constants are not exposed, so their values are not at hand
            assert set(missing) <= index.constant_tensors, (tensor, missing)
            continue
        inputs = [values[x] for x in node.input if x]
        if node.op_type in SPEC_FORMULAS:
            expected = SPEC_FORMULAS[node.op_type](node, *inputs)
        else:
            expected = _node_reference(node, values, model.opset_import[0].version)
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(values[tensor], expected, rtol=1e-5, atol=1e-5 * scale, err_msg=tensor)
        checked += 1
    assert checked >= len(result.added) - 2


# googlenet's light file names nodes n0.. and tensors r0..; name the inception_4c module the way
# Caffe did (from its weights) so that scopes exist.
def _name_googlenet(model: onnx.ModelProto) -> None:
    index = GraphIndex(model.graph)
    for node in model.graph.node:
        if node.op_type == "Conv":
            node.name = node.input[1].removesuffix("_w_0")
    for node in model.graph.node:
        producers = [index.nodes[index.producer[x]] for x in node.input if x in index.producer]
        consumers = [index.nodes[c] for c in index.consumers.get(node.output[0], [])]
        if node.op_type == "Relu" and producers[0].op_type == "Conv":
            node.name = producers[0].name + "/relu"
        elif node.op_type == "MaxPool" and [c.name for c in consumers][-1:] == [
            consumers[-1].name.split("/")[0] + "/pool_proj"
        ]:
            node.name = consumers[-1].name.split("/")[0] + "/pool"
    for node in model.graph.node:
        if node.op_type == "Concat":
            scopes = {index.nodes[index.producer[x]].name.split("/")[0] for x in node.input}
            if len(scopes) == 1:
                node.name = scopes.pop() + "/output"


def test_googlenet_scopes(zoo) -> None:
    model = zoo("googlenet")
    _name_googlenet(model)
    index = GraphIndex(model.graph)
    concat = index.by_name["inception_4c/output"]
    result = expose(model, ["inception_4c", "inception_4c/3x3", "inception_4c/pool"])
    # The whole module leaves through its Concat only: branch tensors are internal.
    assert result.exposed["inception_4c"] == tuple(index.nodes[concat].output)
    assert len(index.scopes["inception_4c"]) == 6 + 6 + 1 + 1
    # A node name wins over the scope of the same name (the conv, not conv + relu).
    conv = index.by_name["inception_4c/3x3"]
    assert result.exposed["inception_4c/3x3"] == tuple(index.nodes[conv].output)
    pool = index.by_name["inception_4c/pool"]
    assert index.nodes[pool].op_type == "MaxPool"
    assert result.exposed["inception_4c/pool"] == tuple(index.nodes[pool].output)
    got = ort_run(result.model, random_feeds(model))
    output = index.nodes[concat].output[0]
    assert list(got[output].shape) == shape_of(result.value_info(output))
    assert got[output].shape[1] == 512  # inception_4c's four branches: 128 + 256 + 64 + 64


# --- EfficientNet-Lite0 (torch exports) ---------------------------------------------------------


def _photo(path: Path, size: tuple[int, int] = (300, 240)) -> Path:
    """A seeded synthetic photo: smooth colour gradients plus noise (no downloaded images)."""
    from PIL import Image

    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    noise = np.random.default_rng(3).normal(0, 20, (h, w, 3))
    rgb = np.stack([255 * xx, 255 * yy, 128 + 100 * np.sin(8 * xx * yy)], -1) + noise
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


def test_lite0_block8_run_save_matches_torch(builtin_exports: dict[str, Path], tmp_path: Path) -> None:
    """The done-when command on the built-in model; checked against a forward hook in torch."""
    lite0_onnx = builtin_exports["dynamo"]
    import torch

    from onnxdream.inputs.feeds import load_input
    from onnxdream.zoo import efficientnet_lite0

    photo, out, acts = _photo(tmp_path / "photo.png"), tmp_path / "out.onnx", tmp_path / "acts.npz"
    result = cli(lite0_onnx, out, "--layer", "_blocks.8", "--run", photo, "--save", acts, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "ran " in result.stderr and " on cpu " in result.stderr
    exposed = get_json(onnx.load(str(out)), EXPOSED_KEY)
    assert list(exposed) == ["_blocks.8"] and len(exposed["_blocks.8"]) == 1
    with np.load(acts) as archive:
        saved = dict(archive)
    assert list(saved) == ["_blocks.8"]

    feeds = load_input(photo, onnx.load(str(lite0_onnx)))
    (image,) = feeds.values()
    assert image.shape == (1, 3, 224, 224)
    module, captured = efficientnet_lite0(), {}
    module._blocks[8].register_forward_hook(lambda _m, _i, output: captured.setdefault("out", output))
    with torch.no_grad():
        module(torch.from_numpy(image))
    expected = captured["out"].numpy()
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(saved["_blocks.8"], expected, rtol=1e-4, atol=1e-4 * scale)


def test_npz_keys_for_scopes_with_several_outputs() -> None:
    assert npz_keys({"blk": ("r", "g"), "blk/conv": ("c",)}) == {"blk:0": "r", "blk:1": "g", "blk/conv": "c"}


def test_run_save_scope_with_two_outputs(tmp_path: Path) -> None:
    source, out, acts = tmp_path / "tiny.onnx", tmp_path / "out.onnx", tmp_path / "acts.npz"
    io.save_model(tiny_model(), source)
    x = np.random.default_rng(1).normal(size=(3, 1, 4, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = cli(source, out, "-l", "blk", "-l", "blk/conv", "--run", tmp_path / "x.npy", "--save", acts)
    assert result.exit_code == 0, result.output
    reference = ReferenceEvaluator(tiny_model()).run(None, {"x": x}, intermediate=True)
    with np.load(acts) as archive:
        assert sorted(archive.files) == ["blk/conv", "blk:0", "blk:1"]
        for key, tensor in {"blk:0": "r", "blk:1": "g", "blk/conv": "c"}.items():
            np.testing.assert_allclose(archive[key], reference[tensor], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("export", ["legacy", "dynamo"])
def test_lite0_ort_fusions_do_not_swallow_exposed_outputs(
    export: str, builtin_exports: dict[str, Path]
) -> None:
    """ORT (opt=all) fuses Conv+Clip/Add and rewrites layouts; exposed tensors must survive it.

    Finding: ORT never fuses a node whose output is a graph output, so exposed values agree with
    opt=none to float rounding (kernels differ), and originals are bit-identical only at opt=none.
    """
    model = onnx.load(str(builtin_exports[export]))
    result = expose(model, all=True)
    feeds = random_feeds(model)
    optimised, plain = ort_run(result.model, feeds, "all"), ort_run(result.model, feeds, "none")
    for tensor in result.added:
        scale = max(1.0, float(np.abs(plain[tensor]).max()))
        np.testing.assert_allclose(
            optimised[tensor], plain[tensor], rtol=1e-5, atol=1e-5 * scale, err_msg=tensor
        )
    original = model.graph.output[0].name
    assert np.array_equal(plain[original], ort_run(model, feeds, "none")[original])
    np.testing.assert_allclose(
        optimised[original], ort_run(model, feeds, "all")[original], rtol=1e-5, atol=1e-5
    )


def test_lite0_dynamo_node_metadata_kept(builtin_exports: dict[str, Path]) -> None:
    model = onnx.load(str(builtin_exports["dynamo"]))
    out = expose(model, all=True).model
    assert [list(n.metadata_props) for n in out.graph.node] == [
        list(n.metadata_props) for n in model.graph.node
    ]
    assert any(get_prop(n, "pkg.torch.onnx.name_scopes") for n in out.graph.node)


# A Conv exposed in front of a BatchNormalization: ORT's Conv+BN fusion must not swallow it.
#
#   x -> Conv -c-> BatchNormalization -b-> Relu -> y
CONV_BN = """
<ir_version: 8, opset_import: ["" : 15]>
convbn (float[1,2,5,5] x) => (float[1,3,5,5] y)
<float[3,2,3,3] w, float[3] scale = {1.5, 0.5, 2.0}, float[3] bias = {0.1, -0.2, 0.3},
 float[3] mean = {0.2, -0.1, 0.05}, float[3] var = {0.5, 1.5, 0.8}>
{
  c = Conv <pads = [1, 1, 1, 1]> (x, w)
  b = BatchNormalization (c, scale, bias, mean, var)
  y = Relu (b)
}
"""


def test_conv_bn_fusion_keeps_exposed_conv_output() -> None:
    model = onnx.parser.parse_model(
        CONV_BN.replace(
            "float[3,2,3,3] w",
            "float[3,2,3,3] w = {"
            + ", ".join(f"{v:.3f}" for v in np.random.default_rng(0).normal(size=54))
            + "}",
        )
    )
    result = expose(model, ["c"])
    feeds = random_feeds(model)
    reference = ReferenceEvaluator(model).run(None, feeds, intermediate=True)
    for opt in ("all", "none"):
        got = ort_run(result.model, feeds, opt)
        np.testing.assert_allclose(got["c"], reference["c"], rtol=1e-5, atol=1e-5, err_msg=opt)
        np.testing.assert_allclose(got["y"], reference["y"], rtol=1e-5, atol=1e-5, err_msg=opt)


# --- the command ----------------------------------------------------------------------------------


@pytest.fixture
def tiny_path(tmp_path: Path) -> Path:
    return io.save_model(tiny_model(), tmp_path / "tiny.onnx")


def test_cli_json_is_one_array(tiny_path: Path, tmp_path: Path) -> None:
    result = cli(tiny_path, tmp_path / "out.onnx", "--layer", "blk", "--layer", "head", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows == [
        {"layer": "blk", "tensor": "r", "dtype": "float32", "shape": ["N", 1, 4, 4], "added": True},
        {"layer": "blk", "tensor": "g", "dtype": "float32", "shape": ["N", 1, 4, 4], "added": True},
        {"layer": "head", "tensor": "y", "dtype": "float32", "shape": ["N", 1, 4, 4], "added": False},
    ]


def test_cli_table(tiny_path: Path, tmp_path: Path) -> None:
    result = cli(tiny_path, tmp_path / "out.onnx", "--match", "blk/*")
    assert result.exit_code == 0, result.output
    for text in ("blk/conv", "blk/gate", "float32", "(N, 1, 4, 4)"):
        assert text in result.stdout


def test_cli_unknown_layer_exit_2_and_nothing_written(tiny_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.onnx"
    result = cli(tiny_path, out, "--layer", "blk/conv", "--layer", "blk/relo")
    assert result.exit_code == 2
    hint = "did you mean 'blk/relu', 'blk/gate', 'blk/conv'?"
    assert result.stderr.strip() == f"error: {tiny_path}: unknown layer 'blk/relo'; {hint}"
    assert not out.exists()


def test_cli_failed_run_leaves_no_file(tiny_path: Path, tmp_path: Path) -> None:
    out, bad = tmp_path / "out.onnx", tmp_path / "x.npy"
    np.save(bad, np.zeros((1, 2, 4, 4), np.float32))
    result = cli(tiny_path, out, "--layer", "blk", "--run", bad, "--save", tmp_path / "a.npz")
    assert result.exit_code == 2
    assert "does not fit input 'x' (?x1x4x4)" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx", "x.npy"]


def test_cli_in_place_rules(tiny_path: Path) -> None:
    before = tiny_path.read_bytes()
    refused = cli(tiny_path, tiny_path, "--layer", "blk")
    assert refused.exit_code == 2
    assert "refusing to write over the input model (use --in-place)" in refused.stderr
    assert tiny_path.read_bytes() == before
    done = cli(tiny_path, tiny_path, "--layer", "blk", "--in-place")
    assert done.exit_code == 0, done.output
    assert [o.name for o in onnx.load(str(tiny_path)).graph.output] == ["y", "r", "g"]


def test_cli_warns_about_ignored_options(tiny_path: Path, tmp_path: Path) -> None:
    result = cli(
        tiny_path,
        tmp_path / "o.onnx",
        "-l",
        "blk",
        "--save",
        tmp_path / "a.npz",
        "--ort-opt",
        "none",
        "--in-place",
    )
    assert result.exit_code == 0, result.output
    assert "--save is ignored without --run" in result.stderr
    assert "--device/--ort-opt are ignored without --run" in result.stderr
    assert "--in-place is ignored" in result.stderr
    assert not (tmp_path / "a.npz").exists()


def test_cli_external_data_round_trip(zoo, tmp_path: Path) -> None:
    model = zoo("squeezenet")
    source = io.save_model(model, tmp_path / "in" / "squeezenet.onnx", external_data=True)
    assert io.load_model_and_data_files(source, external_data=False)[1]
    out = tmp_path / "out" / "exposed.onnx"
    result = cli(source, out, "--op-type", "Concat")
    assert result.exit_code == 0, result.output
    assert io.load_model_and_data_files(out, external_data=False)[1] == [out.parent / "exposed.onnx.data"]
    assert out.stat().st_size < 100_000
    loaded = io.load_model(out)
    expected = expose(model, op_types=["Concat"]).model
    assert [o.name for o in loaded.graph.output] == [o.name for o in expected.graph.output]
    feeds = random_feeds(model)
    got, want = ort_run(loaded, feeds), ort_run(expected, feeds)
    assert all(np.array_equal(got[k], want[k]) for k in want)
