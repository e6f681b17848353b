"""Other exporters' graphs: paddle2onnx-style counters and weights held in ``Constant`` nodes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxdream.graph import GraphIndex
from onnxdream.names.apply import rename
from onnxdream.names.lost import is_generated
from onnxdream.runtime import make_session


def _constant(name: str, shape: tuple[int, ...], rng: np.random.Generator, node_name: str) -> onnx.NodeProto:
    value = numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
    return helper.make_node("Constant", [], [name], name=node_name, value=value)


def paddle_like() -> onnx.ModelProto:
    """A paddle2onnx-style CNN: counter node names, weights in Constant nodes, two kept names.

    x -> Conv(conv1_weights) -> BN(conv1_bn_*) -> Relu -> Conv(conv2d_53.w_0, .b_0)
      -> Mul(head_scale) -> Conv 'layer3.0.conv1' -> Relu 'Conv2d_3x3'
      -> GlobalAveragePool -> Flatten -> MatMul(fc_0.w_0) -> y
    """
    rng = np.random.default_rng(0)
    bn = [f"conv1_bn_{role}" for role in ("scale", "offset", "mean", "variance")]
    nodes = [
        _constant("conv1_weights", (4, 3, 3, 3), rng, "p2o.Constant.0"),
        helper.make_node("Conv", ["x", "conv1_weights"], ["c1"], name="p2o.Conv.12", pads=[1, 1, 1, 1]),
        *[_constant(p, (4,), rng, f"Constant@{k + 1}") for k, p in enumerate(bn)],
        helper.make_node("BatchNormalization", ["c1", *bn], ["b1"], name="BatchNormalization_0"),
        helper.make_node("Relu", ["b1"], ["val_1"], name="n4_2"),
        _constant("conv2d_53.w_0", (4, 4, 1, 1), rng, "p2o.Constant.5"),
        _constant("conv2d_53.b_0", (4,), rng, "p2o.Constant.6"),
        helper.make_node("Conv", ["val_1", "conv2d_53.w_0", "conv2d_53.b_0"], ["c2"], name="Conv@0"),
        _constant("head_scale", (4, 1, 1), rng, "Constant_7"),
        helper.make_node("Mul", ["c2", "head_scale"], ["m"], name="p2o.Mul.7"),
        helper.make_node("Conv", ["m", "w3"], ["c3"], name="layer3.0.conv1"),
        helper.make_node("Relu", ["c3"], ["r3"], name="Conv2d_3x3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["val_2"], name="node_GlobalAveragePool_877"),
        helper.make_node("Flatten", ["val_2"], ["val_3"], name="Flatten:3"),
        _constant("fc_0.w_0", (4, 5), rng, "p2o.Constant.8"),
        helper.make_node("MatMul", ["val_3", "fc_0.w_0"], ["y"], name="MatMul@3"),
    ]
    inits = [numpy_helper.from_array(rng.standard_normal((4, 4, 1, 1)).astype(np.float32), "w3")]
    graph = helper.make_graph(
        nodes,
        "paddle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_counters_become_layer_names_from_constant_weights_and_real_names_stay() -> None:
    model = paddle_like()
    onnx.checker.check_model(model, full_check=True)
    result = rename(model)
    names = {e.old: (e.new, e.origin if e.renamed else "kept") for e in result.plan.entries}

    assert names["p2o.Conv.12"] == ("conv1", "weights")
    assert names["BatchNormalization_0"] == ("conv1_bn", "weights")
    assert names["Conv@0"] == ("conv2d_53", "weights")
    assert names["p2o.Mul.7"] == ("head/Mul", "weights")
    assert names["MatMul@3"] == ("fc_0", "weights")
    assert names["layer3.0.conv1"] == ("layer3.0.conv1", "kept")
    assert names["Conv2d_3x3"] == ("Conv2d_3x3", "kept")
    # Constant nodes take the name of the weight they hold.
    assert names["p2o.Constant.0"] == ("conv1_weights", "tensor")
    assert names["p2o.Constant.5"] == ("conv2d_53.w_0", "tensor")
    # Nodes with no evidence of their own get a structural name, never another counter.
    for old in ("n4_2", "node_GlobalAveragePool_877", "Flatten:3"):
        new, origin = names[old]
        assert origin == "structure" and not is_generated(new), (old, new)

    # No counter is left to gather unrelated nodes into a scope ('p2o.Conv' at depth 2).
    assert not [scope for scope in GraphIndex(result.model.graph).scopes if scope.startswith("p2o")]

    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    before = make_session(model, device="cpu").run({"x": x})["y"]
    after = make_session(result.model, device="cpu").run({"x": x})["y"]
    assert before.tobytes() == after.tobytes()
