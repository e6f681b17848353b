"""Benchmark ``rename``: DenseNet121 and a synthetic 20,000-node residual network.

Prints time and peak Python memory of ``rename`` next to a baseline measured in the same run on
the same model: a plain proto copy plus ``onnx.checker`` (what any tool touching the model pays).

    python tools/bench_rename.py [--nodes 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxdream.names.apply import rename
from onnxdream.zoo import light_zoo_model, light_zoo_path


def synthetic(nodes: int, channels: int = 4) -> onnx.ModelProto:
    """Residual blocks (Conv, BatchNormalization, Relu, Conv, BatchNormalization, Add, Relu) with
    Caffe2-style parameter names and empty node names, until ``nodes`` nodes."""
    rng = np.random.default_rng(0)
    graph_nodes, inits = [], []
    count = iter(range(10**9))

    def add(op: str, inputs: list[str], **attrs) -> str:
        out = f"r{next(count)}"
        graph_nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def param(name: str, shape: tuple[int, ...]) -> str:
        inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name))
        return name

    def conv_bn(inp: str, stem: str) -> str:
        conv = add("Conv", [inp, param(f"{stem}_w_0", (channels, channels, 3, 3))], pads=[1, 1, 1, 1])
        bn = [param(f"{stem}_bn_{r}_0", (channels,)) for r in ("s", "b", "rm", "riv")]
        return add("BatchNormalization", [conv, *bn])

    x, block = "data", 0
    while len(graph_nodes) + 7 <= nodes:
        stem = f"gpu_0/res{block // 8 + 2}_{block % 8}"
        a = add("Relu", [conv_bn(x, f"{stem}_branch2a")])
        x = add("Relu", [add("Add", [conv_bn(a, f"{stem}_branch2b"), x])])
        block += 1
    graph = helper.make_graph(
        graph_nodes,
        "synthetic",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, channels, 8, 8])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, channels, 8, 8])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def baseline(model: onnx.ModelProto) -> None:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    onnx.checker.check_model(copy)


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall time over ``repeat`` runs (s) and peak traced memory of one more run (MiB)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return best, peak


def report(label: str, model: onnx.ModelProto, repeat: int) -> None:
    r_time, r_mem = measure(lambda: rename(model), repeat)
    b_time, b_mem = measure(lambda: baseline(model), repeat)
    print(
        f"{label:<34} {len(model.graph.node):>6} nodes  rename {r_time * 1000:8.1f} ms {r_mem:7.1f} MiB"
        f"  | copy+checker {b_time * 1000:8.1f} ms {b_mem:7.1f} MiB"
        f"  | ratio time {r_time / b_time:5.2f}x  memory {r_mem / max(b_mem, 1e-9):5.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    report("densenet121 (light file, as shipped)", onnx.load(str(light_zoo_path("densenet121"))), args.repeat)
    report("densenet121 (seeded weights)", light_zoo_model("densenet121"), args.repeat)
    report(f"synthetic residual ({args.nodes} nodes)", synthetic(args.nodes), args.repeat)


if __name__ == "__main__":
    main()
