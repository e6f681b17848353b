"""Reference matching: names of a pretrained model back on its fine-tuned, re-exported copy.

Small hand-built graphs check each normalisation (fused BatchNorm, folded Pad, Flatten vs
Reshape, opset); model-zoo graphs check branching networks; EfficientNet-Lite0 transfer-learning
variants (tests/transfer_variants.py) check the targets of issue 7 against ground truth read from
the exporter's own metadata and parameter names.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxdream.graph import GraphIndex
from onnxdream.names.reference import Match, match_reference
from onnxdream.runtime import make_session
from tests import transfer_variants as tv

# ---------------------------------------------------------------------------------------------
# Hand-built graphs: one network, two exports
#
#   fused (opset 17):    x -> Conv(pads=1, W*s, b') -> Clip(0, 6) -> GlobalAveragePool -> Flatten -> Gemm
#   unfused (opset 9):   x -> Pad -> Conv(W) -> BatchNormalization -> Clip(min=0, max=6)
#                          -> ReduceMean(axes=[2, 3]) -> Reshape -> Gemm
#                                                  `-> Shape -> Gather -> Unsqueeze -> Concat -'^


def _bn_params(rng: np.random.Generator, channels: int) -> dict[str, np.ndarray]:
    gamma = rng.uniform(0.5, 1.5, channels) * rng.choice([-1.0, 1.0], channels)  # negative scales too
    return {
        "gamma": gamma.astype(np.float32),
        "beta": rng.normal(0, 0.1, channels).astype(np.float32),
        "mean": rng.normal(0, 0.1, channels).astype(np.float32),
        "var": rng.uniform(0.5, 2.0, channels).astype(np.float32),
    }


def _pair(seed: int = 0, head_out: int = 10, head_weight: np.ndarray | None = None):
    """(fused, unfused): the same function exported two ways; the Gemm can be swapped out."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    bn = _bn_params(rng, 8)
    fc = rng.normal(0, 0.3, (head_out, 8)).astype(np.float32) if head_weight is None else head_weight
    fc_b = np.zeros(head_out, np.float32)
    scale = bn["gamma"] / np.sqrt(bn["var"] + 1e-5)
    fused_w = (w * scale[:, None, None, None]).astype(np.float32)
    fused_b = (bn["beta"] - bn["mean"] * scale).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, head_out])
    fused = helper.make_model(
        helper.make_graph(
            [
                helper.make_node("Conv", ["x", "fw", "fb"], ["c"], "stem", pads=[1, 1, 1, 1]),
                helper.make_node("Clip", ["c", "lo", "hi"], ["a"], "stem_act"),
                helper.make_node("GlobalAveragePool", ["a"], ["p"], "pool"),
                helper.make_node("Flatten", ["p"], ["f"], "flatten"),
                helper.make_node("Gemm", ["f", "fc", "fc_b"], ["y"], "fc", transB=1),
            ],
            "fused",
            [x],
            [y],
            [
                numpy_helper.from_array(fused_w, "fw"),
                numpy_helper.from_array(fused_b, "fb"),
                numpy_helper.from_array(np.array(0, np.float32), "lo"),
                numpy_helper.from_array(np.array(6, np.float32), "hi"),
                numpy_helper.from_array(fc, "fc"),
                numpy_helper.from_array(fc_b, "fc_b"),
            ],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
    )
    unfused = helper.make_model(
        helper.make_graph(
            [
                helper.make_node("Pad", ["x"], ["xp"], "", pads=[0, 0, 1, 1, 0, 0, 1, 1]),
                helper.make_node("Conv", ["xp", "w"], ["c"], ""),
                helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"], "", epsilon=1e-5),
                helper.make_node("Clip", ["n"], ["a"], "", min=0.0, max=6.0),
                helper.make_node("ReduceMean", ["a"], ["p"], "", axes=[2, 3], keepdims=1),
                # x.view(x.size(0), -1) as the legacy exporter writes it with a dynamic batch
                helper.make_node("Shape", ["p"], ["p_shape"], ""),
                helper.make_node("Gather", ["p_shape", "zero"], ["batch"], "", axis=0),
                helper.make_node("Unsqueeze", ["batch"], ["batch_1d"], "", axes=[0]),
                helper.make_node("Concat", ["batch_1d", "minus_one"], ["shape"], "", axis=0),
                helper.make_node("Reshape", ["p", "shape"], ["f"], ""),
                helper.make_node("Gemm", ["f", "fc_t", "fc_b"], ["y"], ""),
            ],
            "unfused",
            [x],
            [y],
            [
                numpy_helper.from_array(w, "w"),
                numpy_helper.from_array(bn["gamma"], "g"),
                numpy_helper.from_array(bn["beta"], "b"),
                numpy_helper.from_array(bn["mean"], "m"),
                numpy_helper.from_array(bn["var"], "v"),
                numpy_helper.from_array(np.array(0, np.int64), "zero"),
                numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
                numpy_helper.from_array(np.ascontiguousarray(fc.T), "fc_t"),
                numpy_helper.from_array(fc_b, "fc_b"),
            ],
        ),
        opset_imports=[helper.make_opsetid("", 9)],
        ir_version=8,
    )
    onnx.checker.check_model(fused, full_check=True)
    onnx.checker.check_model(unfused, full_check=True)
    return fused, unfused


def _names(matches: list[Match], model: onnx.ModelProto) -> dict[str, str]:
    """``{op_type of the target node: reference name}``; the hand-built graphs have one of each."""
    return {model.graph.node[m.node].op_type: m.name for m in matches}


def test_pair_is_one_function():
    """The two hand-built exports compute the same thing: the test below compares like with like."""
    fused, unfused = _pair()
    x = np.random.default_rng(1).normal(size=(1, 3, 16, 16)).astype(np.float32)
    a = make_session(fused, device="cpu").run({"x": x})["y"]
    b = make_session(unfused, device="cpu").run({"x": x})["y"]
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_unfused_legacy_style_export_gets_fused_names():
    """Pad + Conv + BatchNormalization (opset 9 attributes) vs one fused Conv (opset 17 inputs)."""
    fused, unfused = _pair()
    matches = match_reference(unfused, fused)
    assert _names(matches, unfused) == {
        "Conv": "stem",
        "Clip": "stem_act",
        "ReduceMean": "pool",
        "Reshape": "flatten",
        "Gemm": "fc",
    }
    by_op = {unfused.graph.node[m.node].op_type: m for m in matches}
    assert "weights cos 1.000" in by_op["Conv"].why  # BN scale (with negative gammas) is invisible
    assert "weights cos 1.000" in by_op["Gemm"].why  # Gemm transB=0 vs transB=1: same matrix


def test_fused_export_gets_unfused_names():
    """The other direction: the reference keeps BatchNormalization, the target fused it."""
    fused, unfused = _pair()
    for i, node in enumerate(unfused.graph.node):
        node.name = f"{node.op_type.lower()}_{i}"
    assert _names(match_reference(fused, unfused), fused) == {
        "Conv": "conv_1",
        "Clip": "clip_3",
        "GlobalAveragePool": "reducemean_4",
        "Flatten": "reshape_9",
        "Gemm": "gemm_10",
    }


def test_linear_as_matmul_plus_add_gets_the_gemm_name():
    """A Linear exported as MatMul + Add (bias absorbed) is the reference's Gemm."""
    fused, unfused = _pair()
    gemm = unfused.graph.node[-1]
    weight = next(t for t in unfused.graph.initializer if t.name == gemm.input[1])
    weight.name = "fc_matmul"  # Gemm(transB=0) and MatMul read the same (in, out) matrix
    matmul = helper.make_node("MatMul", [gemm.input[0], "fc_matmul"], ["mm"], "")
    add = helper.make_node("Add", ["mm", gemm.input[2]], list(gemm.output), "")
    unfused.graph.node.pop()
    unfused.graph.node.extend([matmul, add])
    onnx.checker.check_model(unfused, full_check=True)
    matches = {unfused.graph.node[m.node].op_type: m for m in match_reference(unfused, fused)}
    assert matches["MatMul"].name == "fc"
    assert "weights cos 1.000" in matches["MatMul"].why
    assert "Add" not in matches  # the bias Add has no node of its own in the reference


@pytest.mark.parametrize(
    ("head_out", "new_weights"),
    [(10, False), (7, True), (10, True)],
    ids=["same-head", "new-head-other-shape", "new-head-same-shape"],
)
def test_new_head_never_gets_the_pretrained_name(head_out, new_weights):
    """A classifier replaced (other shape, or same shape re-initialised) stays unmatched."""
    fused, _ = _pair(seed=0)
    weight = np.random.default_rng(5).normal(0, 0.3, (head_out, 8)).astype(np.float32)
    target, _ = _pair(seed=0, head_out=head_out, head_weight=weight if new_weights else None)
    names = _names(match_reference(target, fused), target)
    assert names.get("Conv") == "stem"
    assert ("Gemm" in names) == (not new_weights)


def test_scores_in_range_sorted_and_filtered():
    fused, unfused = _pair()
    matches = match_reference(unfused, fused, min_score=0.0)
    assert [m.node for m in matches] == sorted(m.node for m in matches)
    assert all(0.0 <= m.score <= 1.0 for m in matches)
    strict = match_reference(unfused, fused, min_score=0.9)
    assert {(m.node, m.name) for m in strict} <= {(m.node, m.name) for m in matches}
    assert all(m.score >= 0.9 for m in strict)
    assert match_reference(unfused, fused, min_score=1.01) == []


def test_unnamed_reference_nodes_give_no_names():
    fused, unfused = _pair()
    for node in fused.graph.node:
        node.name = ""
    assert match_reference(unfused, fused) == []


def test_names_the_reference_repeats_are_not_given():
    fused, unfused = _pair()
    fused.graph.node[1].name = fused.graph.node[2].name = "twice"  # Clip and GlobalAveragePool
    assert _names(match_reference(unfused, fused), unfused) == {
        "Conv": "stem",
        "Reshape": "flatten",
        "Gemm": "fc",
    }


# ---------------------------------------------------------------------------------------------
# Model-zoo graphs: branches (GoogLeNet, Inception-v2), skips (ResNet), concatenations (DenseNet)


def _drifted_stripped_shuffled(model: onnx.ModelProto, noise: float, seed: int) -> onnx.ModelProto:
    target = copy.deepcopy(model)
    rng = np.random.default_rng(seed)
    for init in target.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 1:
            drifted = a + noise * a.std() * rng.standard_normal(a.shape)
            init.CopyFrom(numpy_helper.from_array(drifted.astype(np.float32), init.name))
    target, _ = tv.shuffle(target, seed)
    return target


@pytest.mark.parametrize(
    "name", ["googlenet", "inception-v2", "resnet50", "squeezenet", "shufflenet", "densenet121"]
)
def test_zoo_graph_matches_itself_after_drift_shuffle_and_strip(zoo, name):
    """Every non-constant node gets its own name back: 30% weight noise, shuffled, stripped."""
    reference = zoo(name)
    for node in reference.graph.node:
        node.name = node.output[0]  # light-zoo node names are empty; output names are unique
    shuffled = _drifted_stripped_shuffled(reference, noise=0.3, seed=3)
    index = GraphIndex(shuffled.graph)
    truth = {i: n.name for i, n in enumerate(shuffled.graph.node) if not index.is_constant(i)}
    target = tv.strip(shuffled)
    got = {m.node: m.name for m in match_reference(target, reference)}
    assert {i: got.get(i) for i in truth} == truth
    assert set(got) <= set(truth)  # constants (Unsqueeze of initializers) stay unnamed


def test_shuffled_target_gets_the_same_names(zoo):
    """Canonical order: listing the target's nodes in another order changes nothing."""
    reference = zoo("googlenet")
    for node in reference.graph.node:
        node.name = node.output[0]
    target = _drifted_stripped_shuffled(reference, noise=0.1, seed=1)
    other, perm = tv.shuffle(target, seed=7)

    def by_output(model: onnx.ModelProto) -> dict[str, tuple[str, float]]:
        matches = match_reference(model, reference)
        return {model.graph.node[m.node].output[0]: (m.name, m.score) for m in matches}

    assert by_output(target) == by_output(other)
    assert perm != list(range(len(perm)))


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0 transfer learning (issue 7)


@pytest.fixture(scope="module")
def variants() -> tv.Variants:
    """Fine-tuned models and exports, built once for this file (and freed after it)."""
    return tv.Variants()


@pytest.fixture(scope="module")
def reference() -> tuple[onnx.ModelProto, dict[str, str]]:
    """The pretrained network exported with the current exporter, named; key -> name."""
    return tv.reference_model()


def _check_targets(case: tv.Case, reference) -> tv.Accuracy:
    model, names = reference
    accuracy = tv.accuracy(case, match_reference(case.model, model), names)
    assert accuracy.conv_total >= 49, accuracy.row()  # every backbone Conv has a counterpart
    assert accuracy.conv_correct >= 0.99 * accuracy.conv_total, accuracy.row()
    assert accuracy.correct >= 0.95 * accuracy.total, accuracy.row()
    assert accuracy.head_named == 0, accuracy.row()
    assert accuracy.wrong == 0, accuracy.row()
    return accuracy


DEFAULT_CASES = [
    pytest.param("finetuned", "dynamo", "none", "empty", 1, id="finetuned-dynamo-stripped-shuffled"),
    pytest.param("finetuned", "legacy-opset17", "none", "generated", None, id="finetuned-legacy17-folded"),
    pytest.param("sequential", "legacy-opset20-bn", "large", "empty", 2, id="sequential-legacy20-bn-large"),
]


@pytest.mark.parametrize(("kind", "exporter", "level", "style", "shuffle_seed"), DEFAULT_CASES)
def test_transfer_variant(variants, reference, kind, exporter, level, style, shuffle_seed):
    """A representative subset: each exporter family, fused and unfused BN, prefix, drift."""
    case = tv.lose_names(variants.case(kind, exporter, level), style, shuffle_seed)
    accuracy = _check_targets(case, reference)
    assert accuracy.correct == accuracy.total, accuracy.row()  # measured: exact on these three


@pytest.mark.parametrize(
    ("kind", "exporter", "level"),
    [("finetuned", "dynamo", "none"), ("sequential", "legacy-opset20-bn", "large")],
    ids=["finetuned-dynamo", "sequential-legacy20-bn-large"],
)
def test_reference_from_the_legacy_exporter(variants, kind, exporter, level):
    """The other way round: a legacy-exported reference (separate Pads, folded BN) names a target."""
    case = tv.lose_names(variants.case(kind, exporter, level), "empty", 3)
    accuracy = _check_targets(case, tv.reference_model(legacy=True))
    assert accuracy.correct == accuracy.total, accuracy.row()


def test_ground_truth_reads_the_exporters_names(variants, reference):
    """The truth itself: dynamo's fused Conv carries its parameter stem behind the prefix."""
    case = variants.case("finetuned", "dynamo")
    keys = dict(zip((n.name for n in case.model.graph.node), case.truth.keys, strict=True))
    heads = {n.name for n, h in zip(case.model.graph.node, case.truth.head, strict=True) if h}
    stem = next(n for n in case.model.graph.node if n.input[1:2] == ["backbone._conv_stem.weight"])
    assert keys[stem.name] == "_conv_stem|conv|0"
    assert reference[1]["_conv_stem|conv|0"] == "_conv_stem"
    assert {n.op_type for n in case.model.graph.node if n.name in heads} == {
        "Conv",
        "Relu",
        "ReduceMean",
        "Reshape",
        "Gemm",
    }


def test_reference_with_other_weights_matches_by_structure(variants, reference):
    """A reference whose weights are unrelated (e.g. trained from scratch): structure alone."""
    model, names = reference
    other = copy.deepcopy(model)
    rng = np.random.default_rng(0)
    for init in other.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.ndim >= 2:
            init.CopyFrom(numpy_helper.from_array(rng.normal(0, 0.1, a.shape).astype(np.float32), init.name))
    case = tv.lose_names(variants.case("finetuned", "dynamo"), "empty", 4)
    accuracy = tv.accuracy(case, match_reference(case.model, other), names)
    assert accuracy.conv_correct == accuracy.conv_total, accuracy.row()
    assert accuracy.head_named == 0, accuracy.row()


SLOW_CASES = [
    pytest.param(kind, exporter, "none", style, seed, id=f"{kind}-{exporter}-{tag}")
    for kind in tv.MODEL_KINDS
    for exporter in tv.EXPORTERS
    for style, seed, tag in ((None, None, "as-exported"), ("generated", 5, "stripped-shuffled"))
] + [
    pytest.param("finetuned", exporter, level, "empty", 6, id=f"finetuned-{exporter}-drift-{level}")
    for exporter in ("dynamo", "legacy-opset17", "legacy-opset20-bn")
    for level in ("small", "large")
]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "exporter", "level", "style", "shuffle_seed"), SLOW_CASES)
def test_transfer_variant_grid(variants, reference, kind, exporter, level, style, shuffle_seed):
    """Every model kind with every exporter, as exported and stripped + shuffled; drift levels."""
    _check_targets(tv.lose_names(variants.case(kind, exporter, level), style, shuffle_seed), reference)


# ---------------------------------------------------------------------------------------------
# Through the rename driver, and the demo of issue 7


def test_rename_with_reference_restores_names_and_keeps_outputs(variants, reference):
    """``onnxdream.rename(..., reference=...)``: pretrained names back, head apart, same outputs."""
    from onnxdream import rename
    from onnxdream.metadata import ORIGIN_KEY, SCORE_KEY, get_prop

    model, names = reference
    case = variants.case("finetuned", "dynamo")
    result = rename(case.model, reference=model)
    after = result.model.graph.node
    expected = {i: names[k] for i, k in enumerate(case.truth.keys) if k in names}
    assert {i: after[i].name for i in expected} == expected
    for i, node in enumerate(after):
        if i in expected:
            assert get_prop(node, ORIGIN_KEY) == "reference"
            assert 0.5 <= float(get_prop(node, SCORE_KEY)) <= 1.0
        else:
            assert get_prop(node, ORIGIN_KEY) != "reference"
    head = {after[i].name for i, h in enumerate(case.truth.head) if h}
    assert {"fine_tune_conv1", "classifier"} <= head
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(np.float32)
    feed = {case.model.graph.input[0].name: x}
    before = make_session(case.model, device="cpu").run(feed)
    renamed = make_session(result.model, device="cpu").run(feed)
    assert all(np.array_equal(before[k], renamed[k]) for k in before)


@pytest.mark.slow
def test_transfer_demo_end_to_end(tmp_path):
    """tools/transfer_demo.py at small scale, through the CLI (layers, rename --reference)."""
    from onnxdream.builtin import builtin_model_path
    from tools import transfer_demo

    result = transfer_demo.run(tmp_path, steps=1, size=32, reference=str(builtin_model_path()), dream=False)
    assert "node_Conv_877" in result.layers_before
    assert not set(result.layers_before) & {"_conv_stem", "_blocks.3._depthwise_conv", "_conv_head"}
    after = {n.name for n in onnx.load(str(result.renamed)).graph.node}
    assert {"_conv_stem", "_blocks.3._depthwise_conv", "_conv_head", "fine_tune_conv1"} <= after
    assert result.accuracy.conv_correct == result.accuracy.conv_total == 49, result.accuracy.row()
    assert result.accuracy.head_named == 0
    assert result.max_output_diff == 0.0
    assert result.report["counts"]["reference"] == result.accuracy.correct


def test_both_exporters_give_one_skeleton():
    """The built-in network from either exporter: the same units, in the same canonical order."""
    from onnxdream.builtin import builtin_model_path
    from onnxdream.names.reference_units import build_skeleton

    skeletons = [build_skeleton(onnx.load(str(builtin_model_path(legacy))).graph) for legacy in (False, True)]
    # dynamo: 94 nodes, one a Reshape (transparent); legacy: 450 with Pads and constants
    signatures = [[sk.units[u].signature for u in sk.order] for sk in skeletons]
    assert len(signatures[0]) == 93
    assert signatures[0] == signatures[1]
