"""Benchmark reference matching: speed on ~1,000-node graphs, accuracy per transfer variant.

Speed: ``match_reference`` on DenseNet-121 (910 nodes, light zoo, seeded weights, 30% drift,
shuffled, stripped) and on the legacy export of fine-tuned EfficientNet-Lite0 with BatchNorm kept
(606 nodes), against a baseline measured in the same run: parsing the serialized model and
running ``onnx.checker`` on it. Accuracy: each transfer variant of ``tools/transfer_variants.py``
against the pretrained network exported with the current exporter (``--full`` for the whole grid).

    PYTHONPATH=$PWD python tools/bench_reference.py [--full] [--repeat 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

import transfer_variants as tv

from onnxdream.names.reference import match_reference
from onnxdream.zoo import light_zoo_model

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


def _zoo_pair(name: str) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    reference = light_zoo_model(name)
    for node in reference.graph.node:
        node.name = node.output[0]
    target = copy.deepcopy(reference)
    rng = np.random.default_rng(1)
    for init in target.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 1:
            drifted = a + 0.3 * a.std() * rng.standard_normal(a.shape)
            init.CopyFrom(numpy_helper.from_array(drifted.astype(np.float32), init.name))
    return tv.strip(tv.shuffle(target, 3)[0]), reference


def speed(variants: tv.Variants, reference: onnx.ModelProto, repeat: int) -> None:
    """Print match time, baseline time and their ratio for the two ~1,000-node-class graphs."""
    pairs = {
        "densenet121 (zoo, drifted)": _zoo_pair("densenet121"),
        "efficientnet legacy-opset20-bn": (
            tv.lose_names(variants.case("finetuned", "legacy-opset20-bn"), "empty", 1).model,
            reference,
        ),
    }
    print(f"{'graph':34s} {'nodes':>6s} {'match':>9s} {'load+check':>11s} {'ratio':>7s}")
    for label, (target, ref) in pairs.items():
        match_reference(target, ref)  # warm caches (imports, numpy)
        matched = _median_seconds(lambda t=target, r=ref: match_reference(t, r), repeat)
        base = _median_seconds(_baseline(target), repeat)
        print(
            f"{label:34s} {len(target.graph.node):6d} {matched * 1e3:7.1f}ms {base * 1e3:9.1f}ms "
            f"{matched / base:6.2f}x"
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
    speed(variants, reference[0], args.repeat)
    accuracy(variants, reference, args.full)


if __name__ == "__main__":
    main()
