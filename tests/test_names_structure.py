"""The structure strategy and the canonical order it counts in."""

from __future__ import annotations

import random

import onnx
import pytest

from onnxdream.graph import GraphIndex
from onnxdream.names.apply import rename
from onnxdream.names.canonical import canonical_order
from onnxdream.names.plan import plan_names
from tests.names_helpers import make_model

CONV = (4, 4, 1, 1)


def _anonymous(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """A copy whose activations have zoo-style generated names ``r<k>``, and the renaming used."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    renamed = {out: f"r{k}" for k, out in enumerate(o for n in copy.graph.node for o in n.output)}
    for node in copy.graph.node:
        node.input[:] = [renamed.get(x, x) for x in node.input]
        node.output[:] = [renamed[x] for x in node.output]
    for value in copy.graph.output:
        value.name = renamed.get(value.name, value.name)
    return copy, renamed


def _names(model: onnx.ModelProto) -> dict[str, str]:
    """Planned name per node, keyed by the node's first output in ``model``.

    Activations are renamed ``r<k>`` first, so that only the structure and weights speak.
    """
    anonymous, renamed = _anonymous(model)
    back = {v: k for k, v in renamed.items()}
    plan = plan_names(anonymous)
    return {back[anonymous.graph.node[e.node].output[0]]: e.new for e in plan.entries}


def test_inception_block() -> None:
    r"""
                 x
        /        |          \
    1x1 conv  3x3_reduce   MaxPool
       |        |            |
     Relu     Relu       pool_proj conv
       |        |            |
       |      3x3 conv      Relu
       |        |            |
       |      Relu           |
        \       |           /
              Concat -> y
    """
    model = make_model(
        [
            ("Conv", ["x", "blk/1x1_w_0"], ["a"]),
            ("Relu", ["a"], ["a1"]),
            ("Conv", ["x", "blk/3x3_reduce_w_0"], ["b"]),
            ("Relu", ["b"], ["b1"]),
            ("Conv", ["b1", "blk/3x3_w_0"], ["b2"]),
            ("Relu", ["b2"], ["b3"]),
            ("MaxPool", ["x"], ["p"]),
            ("Conv", ["p", "blk/pool_proj_w_0"], ["p1"]),
            ("Relu", ["p1"], ["p2"]),
            ("Concat", ["a1", "b3", "p2"], ["y"]),
        ],
        {"blk/1x1_w_0": CONV, "blk/3x3_reduce_w_0": CONV, "blk/3x3_w_0": CONV, "blk/pool_proj_w_0": CONV},
    )
    assert _names(model) == {
        "a": "blk/1x1",
        "a1": "blk/1x1/Relu",
        "b": "blk/3x3_reduce",
        "b1": "blk/3x3_reduce/Relu",
        "b2": "blk/3x3",
        "b3": "blk/3x3/Relu",
        "p": "blk/MaxPool",
        "p1": "blk/pool_proj",
        "p2": "blk/pool_proj/Relu",
        "y": "blk/Concat",
    }
    anonymous, renamed = _anonymous(model)
    layer = GraphIndex(rename(anonymous).model.graph).resolve("blk")
    assert (layer.kind, layer.outputs) == ("scope", (renamed["y"],))


def test_residual_block_skips_the_shortcut_and_pooling_leaves_the_block() -> None:
    r"""
    x -> stem -> Relu --------------------.
                   \-> layer1.1.conv1 -> Relu -> layer1.1.bn3 -> Add -> Relu -> GlobalAveragePool -> fc -> y
    """
    model = make_model(
        [
            ("Conv", ["x", "stem.weight"], ["s"]),
            ("Relu", ["s"], ["s1"]),
            ("Conv", ["s1", "layer1.1.conv1.weight"], ["c"]),
            ("Relu", ["c"], ["c1"]),
            ("Conv", ["c1", "layer1.1.bn3.weight"], ["d"]),
            ("Add", ["d", "s1"], ["e"]),
            ("Relu", ["e"], ["e1"]),
            ("GlobalAveragePool", ["e1"], ["g"]),
            ("Flatten", ["g"], ["f"]),
            ("Gemm", ["f", "head.fc.weight"], ["y"]),
        ],
        {
            "stem.weight": CONV,
            "layer1.1.conv1.weight": CONV,
            "layer1.1.bn3.weight": CONV,
            "head.fc.weight": (2, 4),
        },
    )
    names = _names(model)
    assert [names[t] for t in ("s1", "c1", "e", "e1", "g", "f")] == [
        "stem/Relu",
        "layer1.1.conv1/Relu",
        "layer1.1/Add",
        "layer1.1/Relu",
        "head/GlobalAveragePool",
        "head/Flatten",
    ]


def test_nothing_named_nearby_counts_op_types_in_canonical_order() -> None:
    # x -> Relu -> Sigmoid -> Relu -> y
    model = make_model([("Relu", ["x"], ["a"]), ("Sigmoid", ["a"], ["b"]), ("Relu", ["b"], ["y"])])
    assert _names(model) == {"a": "Relu_0", "b": "Sigmoid_0", "y": "Relu_1"}


def test_counters_skip_names_that_kept_nodes_hold() -> None:
    # x -> MyOp -> MyOp -> MyOp -> Relu "MyOp_1" -> y ('MyOp_1' is no ONNX op: a kept name)
    model = make_model(
        [("MyOp", ["x"], ["a"]), ("MyOp", ["a"], ["b"]), ("MyOp", ["b"], ["c"]), ("Relu", ["c"], ["y"])],
        names={3: "MyOp_1"},
    )
    assert _names(model) == {"a": "MyOp_0", "b": "MyOp_2", "c": "MyOp_3", "y": "MyOp_1"}


def test_constants_belong_to_the_layer_that_reads_them() -> None:
    model = make_model(
        [("Constant", [], ["k"]), ("Reshape", ["x", "k"], ["r"]), ("Gemm", ["r", "head.fc.weight"], ["y"])],
        {"head.fc.weight": (2, 4)},
    )
    model.graph.node[0].attribute.append(onnx.helper.make_attribute("value_ints", [1, -1]))
    assert _names(model) == {"k": "head/Constant", "r": "head/Reshape", "y": "head.fc"}


def _shuffled_topological(model: onnx.ModelProto, seed: int) -> onnx.ModelProto:
    """The same graph with its nodes listed in a random other valid topological order."""
    index = GraphIndex(model.graph)
    rng = random.Random(seed)
    remaining = {
        i: {index.producer[x] for x in n.input if x in index.producer} for i, n in enumerate(index.nodes)
    }
    order: list[int] = []
    while remaining:
        ready = sorted(i for i, deps in remaining.items() if not deps)
        pick = rng.choice(ready)
        order.append(pick)
        del remaining[pick]
        for deps in remaining.values():
            deps.discard(pick)
    shuffled = onnx.ModelProto()
    shuffled.CopyFrom(model)
    del shuffled.graph.node[:]
    shuffled.graph.node.extend(model.graph.node[i] for i in order)
    assert order != list(range(len(order)))
    return shuffled


@pytest.mark.parametrize("name", ["googlenet", "resnet50", "squeezenet"])
def test_names_do_not_depend_on_node_order(zoo, name: str) -> None:
    model = zoo(name)
    expected = _names(model)
    for seed in (1, 2):
        assert _names(_shuffled_topological(model, seed)) == expected


def test_symmetric_branches_are_ordered_by_structure_not_position() -> None:
    r"""
    x -> Relu -> Sigmoid \
    x -> Relu ----------- Add -> y     (the two Relus look alike upstream, not downstream)
    """
    nodes = [
        ("Relu", ["x"], ["a"]),
        ("Sigmoid", ["a"], ["b"]),
        ("Relu", ["x"], ["c"]),
        ("Add", ["b", "c"], ["y"]),
    ]
    model = make_model(nodes)
    flipped = make_model([nodes[2], nodes[0], nodes[1], nodes[3]])
    order = [model.graph.node[i].output[0] for i in canonical_order(GraphIndex(model.graph))]
    flipped_order = [flipped.graph.node[i].output[0] for i in canonical_order(GraphIndex(flipped.graph))]
    assert order == flipped_order
    assert _names(model) == _names(flipped)
