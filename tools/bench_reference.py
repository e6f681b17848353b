"""Benchmark reference matching: speed on ~1,000-node graphs, accuracy per transfer variant.

Speed: ``match_reference`` on DenseNet-121 (910 nodes, light zoo, seeded weights), on a synthetic
ResNet-like chain of 170 identical blocks (1,191 nodes, 340 Conv of one shape: the worst case for
pairwise kernel comparison) and on the legacy export of fine-tuned EfficientNet-Lite0 with
BatchNorm kept (606 nodes). Zoo and synthetic targets carry 30% weight noise and are shuffled and
stripped. The baseline is measured in the same run: parsing the serialized target and running
``onnx.checker`` on it. Accuracy: each transfer variant of ``tests/transfer_variants.py``
against the pretrained network exported with the current exporter (``--full`` for the whole grid).

    python -m tools.bench_reference [--full] [--repeat 5]   # from the repository root
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxdream.graph import GraphIndex
from onnxdream.names.reference import match_reference
from onnxdream.zoo import light_zoo_model
from tests import transfer_variants as tv

QUICK = [
    ("finetuned", "dynamo", "none"),
    ("finetuned", "legacy-opset17", "none"),
    ("finetuned", "legacy-opset20-bn", "none"),
    ("sequential", "dynamo", "none"),
    ("inserted", "legacy-opset11", "none"),
    ("reinit", "dynamo-opset18", "none"),
    ("finetuned", "dynamo", "small"),
    ("finetuned", "dynamo", "large"),
]


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _baseline(model: onnx.ModelProto) -> Callable[[], object]:
    data = model.SerializeToString()

    def load_and_check() -> None:
        onnx.checker.check_model(onnx.load_from_string(data))

    return load_and_check


def _residual_chain(blocks: int, channels: int = 64, seed: int = 0) -> onnx.ModelProto:
    """Stem Conv, then ``blocks`` x (Conv-BN-Relu-Conv-BN-Add-Relu), every Conv 3x3 of one shape."""
    rng = np.random.default_rng(seed)
    conv = {"pads": [1, 1, 1, 1]}
    nodes = [helper.make_node("Conv", ["x", "stem.weight"], ["b0"], "stem", **conv)]
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.2, (channels, 3, 3, 3)).astype(np.float32), "stem.weight")
    ]
    x = "b0"
    for b in range(blocks):
        p = f"blocks.{b}"
        for j in (1, 2):
            std = np.sqrt(2 / (channels * 9))
            inits.append(
                numpy_helper.from_array(
                    rng.normal(0, std, (channels, channels, 3, 3)).astype(np.float32), f"{p}.conv{j}.weight"
                )
            )
            stats = (rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.1, channels))
            stats += (rng.normal(0, 0.1, channels), rng.uniform(0.5, 2, channels))
            for key, value in zip("gbmv", stats, strict=True):
                inits.append(numpy_helper.from_array(value.astype(np.float32), f"{p}.bn{j}.{key}"))
        bn = [[f"{p}.bn{j}.{k}" for k in "gbmv"] for j in (1, 2)]
        nodes += [
            helper.make_node("Conv", [x, f"{p}.conv1.weight"], [f"{p}/c1"], f"{p}.conv1", **conv),
            helper.make_node("BatchNormalization", [f"{p}/c1", *bn[0]], [f"{p}/n1"], f"{p}.bn1"),
            helper.make_node("Relu", [f"{p}/n1"], [f"{p}/r1"], f"{p}.relu1"),
            helper.make_node("Conv", [f"{p}/r1", f"{p}.conv2.weight"], [f"{p}/c2"], f"{p}.conv2", **conv),
            helper.make_node("BatchNormalization", [f"{p}/c2", *bn[1]], [f"{p}/n2"], f"{p}.bn2"),
            helper.make_node("Add", [f"{p}/n2", x], [f"{p}/a"], f"{p}.add"),
            helper.make_node("Relu", [f"{p}/a"], [f"{p}/out"], f"{p}.relu2"),
        ]
        x = f"{p}/out"
    graph = helper.make_graph(
        nodes,
        "residual_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, channels, 32, 32])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _drifted_pair(reference: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto, list[str | None]]:
    """(target, reference, truth): the target is the reference with 30% noise, shuffled and
    stripped; truth is each target node's own name (None for constants)."""
    target = copy.deepcopy(reference)
    rng = np.random.default_rng(1)
    for init in target.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 1:
            drifted = a + 0.3 * a.std() * rng.standard_normal(a.shape)
            init.CopyFrom(numpy_helper.from_array(drifted.astype(np.float32), init.name))
    target = tv.shuffle(target, 3)[0]
    index = GraphIndex(target.graph)
    truth = [None if index.is_constant(i) else n.name for i, n in enumerate(target.graph.node)]
    return tv.strip(target), reference, truth


def speed(variants: tv.Variants, reference: tuple[onnx.ModelProto, dict[str, str]], repeat: int) -> None:
    """Print match time, baseline time, their ratio, and exact names, on ~1,000-node graphs."""
    densenet = light_zoo_model("densenet121")
    for node in densenet.graph.node:
        node.name = node.output[0]
    efficientnet = tv.lose_names(variants.case("finetuned", "legacy-opset20-bn"), "empty", 1)
    model, names = reference
    pairs = {
        "densenet121 (zoo, drifted)": _drifted_pair(densenet),
        "residual chain x170 (synthetic)": _drifted_pair(_residual_chain(170)),
        "efficientnet legacy-opset20-bn": (
            efficientnet.model,
            model,
            [names.get(k) if k else None for k in efficientnet.truth.keys],
        ),
    }
    print(f"{'graph':34s} {'nodes':>6s} {'match':>9s} {'load+check':>11s} {'ratio':>7s}  exact names")
    for label, (target, ref, truth) in pairs.items():
        given = {m.node: m.name for m in match_reference(target, ref)}  # also warms caches
        exact = sum(t is not None and given.get(i) == t for i, t in enumerate(truth))
        wrong = sum(given.get(i, t) != t for i, t in enumerate(truth))
        matched = _median_seconds(lambda t=target, r=ref: match_reference(t, r), repeat)
        base = _median_seconds(_baseline(target), repeat)
        print(
            f"{label:34s} {len(target.graph.node):6d} {matched * 1e3:7.1f}ms {base * 1e3:9.1f}ms "
            f"{matched / base:6.2f}x  {exact}/{sum(t is not None for t in truth)} (wrong {wrong})"
        )


def accuracy(variants: tv.Variants, reference: tuple[onnx.ModelProto, dict[str, str]], full: bool) -> None:
    """Print the accuracy table over the variants, as exported and stripped + shuffled."""
    model, names = reference
    exporters = ("dynamo", "legacy-opset17", "legacy-opset20-bn")
    drifted = [("finetuned", e, d) for e in exporters for d in tv.DRIFTS[1:]]
    grid = [(k, e, "none") for k in tv.MODEL_KINDS for e in tv.EXPORTERS] + drifted if full else QUICK
    print(f"\n{'variant':54s} {'nodes':>5s}  accuracy")
    for kind, exporter, level in grid:
        case = variants.case(kind, exporter, level)
        for tag, style, seed in (("as-exported", None, None), ("stripped+shuffled", "empty", 1)):
            target = tv.lose_names(case, style, seed)
            result = tv.accuracy(target, match_reference(target.model, model), names)
            label = f"{kind}/{exporter}/drift-{level}/{tag}"
            print(f"{label:54s} {len(target.model.graph.node):5d}  {result.row()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="every model kind x exporter, and drift levels")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (median reported)")
    args = parser.parse_args()
    variants = tv.Variants()
    reference = tv.reference_model()
    speed(variants, reference, args.repeat)
    accuracy(variants, reference, args.full)


if __name__ == "__main__":
    main()
