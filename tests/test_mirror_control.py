"""If, Loop and Scan against ONNX Runtime, with subgraphs that read the enclosing graph's tensors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from onnxdream.errors import UnsupportedOpError
from onnxdream.mirror import to_torch
from tests.mirror_helpers import assert_matches_ort

F, B, I64 = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64


def _model(nodes, inputs, outputs, opset: int = 16) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _vi(name: str, t: int, shape=None):
    return helper.make_tensor_value_info(name, t, shape)


def _if_model() -> onnx.ModelProto:
    # then: relu(x) * 2 ; else: x - 1   (x comes from the enclosing graph)
    two = helper.make_node("Constant", [], ["two"], value=helper.make_tensor("t", F, [], [2.0]))
    then_g = helper.make_graph(
        [two, helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "two"], ["t_out"])],
        "then",
        [],
        [_vi("t_out", F)],
    )
    one = helper.make_node("Constant", [], ["one"], value=helper.make_tensor("o", F, [], [1.0]))
    else_g = helper.make_graph(
        [one, helper.make_node("Sub", ["x", "one"], ["e_out"])], "else", [], [_vi("e_out", F)]
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)
    return _model([node], [_vi("c", B, []), _vi("x", F, [3, 4])], [_vi("y", F)])


@pytest.mark.parametrize("cond", [True, False], ids=["then", "else"])
def test_if_reads_the_enclosing_scope(cond: bool):
    feeds = {"c": np.array(cond), "x": np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)}
    assert_matches_ort(_if_model(), feeds)


def _loop_model() -> onnx.ModelProto:
    # acc <- acc * w + i (w from the enclosing graph); scan output: acc at each step
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Mul", ["acc_in", "w"], ["m"]),
            helper.make_node("Cast", ["i"], ["fi"], to=F),
            helper.make_node("Add", ["m", "fi"], ["acc_out"]),
            helper.make_node("Identity", ["acc_out"], ["each"]),
        ],
        "body",
        [_vi("i", I64, []), _vi("cond_in", B, []), _vi("acc_in", F, [2])],
        [_vi("cond_out", B, []), _vi("acc_out", F, [2]), _vi("each", F, [2])],
    )
    node = helper.make_node("Loop", ["n", "", "a0"], ["acc", "steps"], body=body)
    inputs = [_vi("n", I64, []), _vi("a0", F, [2]), _vi("w", F, [2])]
    return _model([node], inputs, [_vi("acc", F), _vi("steps", F)])


def test_loop_carries_state_and_stacks_scan_outputs():
    feeds = {
        "n": np.array(4, np.int64),
        "a0": np.array([1.0, -2.0], np.float32),
        "w": np.array([0.5, 1.5], np.float32),
    }
    assert_matches_ort(_loop_model(), feeds)


def test_scan_reverse_input_and_output_axis():
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
            helper.make_node("Mul", ["s_out", "k"], ["y_t"]),
        ],
        "body",
        [_vi("s_in", F, [3]), _vi("x_t", F, [3])],
        [_vi("s_out", F, [3]), _vi("y_t", F, [3])],
    )
    node = helper.make_node(
        "Scan",
        ["s0", "xs"],
        ["s", "ys"],
        body=body,
        num_scan_inputs=1,
        scan_input_directions=[1],
        scan_output_axes=[1],
    )
    model = _model(
        [node], [_vi("s0", F, [3]), _vi("xs", F, [5, 3]), _vi("k", F, [3])], [_vi("s", F), _vi("ys", F)]
    )
    rng = np.random.default_rng(1)
    feeds = {
        "s0": rng.standard_normal(3).astype(np.float32),
        "xs": rng.standard_normal((5, 3)).astype(np.float32),
        "k": rng.standard_normal(3).astype(np.float32),
    }
    assert_matches_ort(model, feeds)


def test_loop_passes_gradients_through_iterations():
    mirror = to_torch(_loop_model())
    a0 = torch.tensor([1.0, -2.0], requires_grad=True)
    acc, _ = mirror(torch.tensor(3), a0, torch.tensor([0.5, 1.5]))
    acc.sum().backward()
    np.testing.assert_allclose(a0.grad.numpy(), [0.5**3, 1.5**3], rtol=1e-6)


def test_unsupported_op_in_a_branch_is_refused_when_building():
    then_g = helper.make_graph(
        [helper.make_node("StringNormalizer", ["x"], ["t"])], "then", [], [_vi("t", F)]
    )
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [_vi("e", F)])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)
    model = _model([node], [_vi("c", B, []), _vi("x", F, [3])], [_vi("y", F)])
    with pytest.raises(UnsupportedOpError, match=r"its then_branch has .*StringNormalizer"):
        to_torch(model)
