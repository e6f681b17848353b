"""Graphs in the shapes other exporters give, built by code (no binary fixtures).

FPN neck (total stride 8 with the default stem), as detection necks are: features upsampled x2 by Resize and
concatenated with the skip connection of the same stride::

    x -> stem (s2) -> down1 (s2) -> down2 (s2)
                  \\            \\           |
                   \\            `-- Concat <- Resize x2
                    \\                 |
                     \\           neck.reduce
                      \\               |
                       `-- Concat <- Resize x2
                             |
                          neck.out -> y
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Dim = int | str | None


def _conv(name: str, x: str, out: str, cin: int, cout: int, stride: int, rng: np.random.Generator):
    weight = numpy_helper.from_array(
        (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32), f"{name}.weight"
    )
    bias = numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32) * 0.1, f"{name}.bias")
    conv = helper.make_node(
        "Conv", [x, weight.name, bias.name], [f"{name}_conv"], name=name, pads=[1] * 4, strides=[stride] * 2
    )
    relu = helper.make_node("Relu", [f"{name}_conv"], [out], name=f"{name}/Relu")
    return [conv, relu], [weight, bias]


def fpn_model(dims: list[Dim] | None = None, stem_stride: int = 2, seed: int = 0) -> onnx.ModelProto:
    """The FPN neck above: total stride ``4 * stem_stride``; ``dims`` declares the input."""
    rng = np.random.default_rng(seed)
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = [scales]

    def conv(name: str, x: str, out: str, cin: int, stride: int = 1) -> None:
        new_nodes, new_inits = _conv(name, x, out, cin, 8, stride, rng)
        nodes.extend(new_nodes)
        inits.extend(new_inits)

    def up_and_concat(level: int, deep: str, skip: str) -> None:
        up = helper.make_node(
            "Resize", [deep, "", "scales"], [f"up{level}"], name=f"neck.up{level}", mode="nearest"
        )
        cat = helper.make_node(
            "Concat", [f"up{level}", skip], [f"cat{level}"], name=f"neck.cat{level}", axis=1
        )
        nodes.extend([up, cat])

    conv("stem", "x", "c1", 3, stem_stride)
    conv("down1", "c1", "c2", 8, 2)
    conv("down2", "c2", "c3", 8, 2)
    up_and_concat(2, "c3", "c2")
    conv("neck.reduce", "cat2", "p2", 16)
    up_and_concat(1, "p2", "c1")
    conv("neck.out", "cat1", "y", 16)
    graph = helper.make_graph(
        nodes,
        "fpn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims or ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, "Hy", "Wy"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def line_recogniser(width: int | None = None) -> onnx.ModelProto:
    """A text-line recogniser of input ``1 x 3 x 48 x ?`` (as OCR exports declare).

    Conv (s2) -> mean over the height -> per-column classes. With ``width``, a Reshape fixes the
    width the way some exports bake it in, though the input still declares it free.
    """
    rng = np.random.default_rng(0)
    nodes, inits = _conv("backbone", "x", "f", 3, 8, 2, rng)
    nodes.append(helper.make_node("ReduceMean", ["f"], ["col"], name="pool", axes=[2], keepdims=0))
    feature = "col"
    if width is not None:
        inits.append(numpy_helper.from_array(np.array([1, 8, width // 2], np.int64), "fixed"))
        nodes.append(helper.make_node("Reshape", ["col", "fixed"], ["colr"], name="fix"))
        feature = "colr"
    inits.append(numpy_helper.from_array(rng.standard_normal((8, 5)).astype(np.float32), "head.weight"))
    nodes.append(helper.make_node("Transpose", [feature], ["seq"], name="seq", perm=[0, 2, 1]))
    nodes.append(helper.make_node("MatMul", ["seq", "head.weight"], ["y"], name="head"))
    graph = helper.make_graph(
        nodes,
        "rec",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 48, "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "T", 5])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def inference_resistant(dims: list[Dim] | None = None, op_domain: str = "com.microsoft") -> onnx.ModelProto:
    """A CNN whose middle tensors ONNX shape inference cannot type or shape::

        x -> conv -> act (com.microsoft Gelu: no schema in onnx) -> relu -> pool
          -> flat (Reshape to [N, -1], the shape's length computed at run time) -> fc (MatMul)
          -> softmax -> y

    The Reshape's shape is ``Slice(Shape(pool), 0, 1 + sum(relu(-|x|)))``: always ``[N]`` plus
    ``-1``, but inference cannot know its length, so not even the rank of ``flat`` and ``fc``.
    ``op_domain`` other than com.microsoft gives an op ONNX Runtime cannot run either.
    """
    rng = np.random.default_rng(0)

    def init(name: str, array: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(array, name)

    inits = [
        init("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        init("fc.weight", rng.standard_normal((4, 5)).astype(np.float32)),
        init("zero", np.array([0], np.int64)),
        init("one", np.array([1], np.int64)),
        init("minus_one", np.array([-1], np.int64)),
    ]
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "conv.weight"], ["c"], name="conv", pads=[1] * 4),
        node("Gelu", ["c"], ["g"], name="act", domain=op_domain),
        node("Relu", ["g"], ["r"], name="relu"),
        node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        node("Abs", ["x"], ["ax"], name="len/abs"),
        node("Neg", ["ax"], ["nx"], name="len/neg"),
        node("Relu", ["nx"], ["zx"], name="len/relu"),
        node("ReduceSum", ["zx"], ["s"], name="len/sum", keepdims=0),
        node("Cast", ["s"], ["si"], name="len/cast", to=TensorProto.INT64),
        node("Unsqueeze", ["si", "zero"], ["s1"], name="len/unsqueeze"),
        node("Add", ["s1", "one"], ["end"], name="len/end"),
        node("Shape", ["p"], ["ps"], name="shape/of"),
        node("Slice", ["ps", "zero", "end"], ["lead"], name="shape/lead"),
        node("Concat", ["lead", "minus_one"], ["new_shape"], name="shape/new", axis=0),
        node("Reshape", ["p", "new_shape"], ["flat"], name="flat"),
        node("MatMul", ["flat", "fc.weight"], ["logits"], name="fc"),
        node("Softmax", ["logits"], ["y"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "resistant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims or ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(op_domain, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)
