"""Forward checks: ONNX Runtime agrees with a correct network and catches a corrupted one."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from onnxdream.dream import Dreamer, DreamOptions, parse_spec
from onnxdream.dream.activations import TorchActivations
from onnxdream.dream.checks import ForwardChecker
from onnxdream.errors import MismatchError
from onnxdream.graph import GraphIndex
from onnxdream.inputs.normalize import Preprocess
from onnxdream.surgery import cut_model
from tests.dream_helpers import pattern, tiny_cnn, tiny_onnx

FAST = {"octaves": 2, "steps": 3, "lr": 0.05}


@pytest.fixture(scope="module")
def exported():
    return tiny_onnx()


def _dreamer(exported: onnx.ModelProto, net: torch.nn.Module) -> Dreamer:
    index = GraphIndex(exported.graph)

    def checker(layers):
        return ForwardChecker(exported, {n: index.resolve(n).outputs for n in layers}, device="cpu")

    return Dreamer(TorchActivations(net.requires_grad_(False)), Preprocess(), torch.device("cpu"), checker)


def test_check_passes_on_correct_network_at_any_size(exported):
    # The export is fixed at 32x32; the check model's input is made dynamic.
    _, result = _dreamer(exported, tiny_cnn()).run(
        pattern(48, 64), [parse_spec("block2")], DreamOptions(**FAST)
    )
    assert result.checks.passed
    assert len(result.checks.reports) == 2  # once at the start of each octave
    assert result.checks.max_abs < 1e-5


def test_check_every_adds_checks(exported):
    options = DreamOptions(check_every=1, **FAST)
    _, result = _dreamer(exported, tiny_cnn()).run(pattern(), [parse_spec("block1")], options)
    assert len(result.checks.reports) == 6


def _corrupted() -> torch.nn.Module:
    net = tiny_cnn()
    with torch.no_grad():
        net.block1[0].weight[3, 1, 1, 1] += 0.5  # one weight changed
    return net


def test_check_catches_a_corrupted_network(exported):
    with pytest.raises(
        MismatchError, match=r"forward check failed at octave 1: \d+ of \d+ values of 'block2'"
    ) as info:
        _dreamer(exported, _corrupted()).run(pattern(), [parse_spec("block2")], DreamOptions(**FAST))
    assert info.value.exit_code == 1


def test_mismatch_can_warn_instead(exported):
    options = DreamOptions(on_mismatch="warn", **FAST)
    image, result = _dreamer(exported, _corrupted()).run(pattern(), [parse_spec("block2")], options)
    assert not result.checks.passed and result.checks.max_abs > 1e-3
    assert len(result.warnings) >= 1 and "forward check failed" in result.warnings[0]
    assert image.size == (64, 48)


def test_no_check(exported):
    options = DreamOptions(check=False, **FAST)
    _, result = _dreamer(exported, _corrupted()).run(pattern(), [parse_spec("block2")], options)
    assert result.checks.reports == [] and result.checks.describe() == "not checked"


def test_tiled_check_uses_one_tile(exported):
    options = DreamOptions(tile=32, **FAST)
    _, result = _dreamer(exported, tiny_cnn()).run(pattern(64, 80), [parse_spec("block2")], options)
    assert result.checks.passed and len(result.checks.reports) == 2


def test_cut_model_drops_later_nodes_and_fixed_sizes(exported):
    index = GraphIndex(exported.graph)
    out = index.resolve("block1").outputs[0]
    cut = cut_model(exported, [out])
    onnx.checker.check_model(cut, full_check=True)
    assert [o.name for o in cut.graph.output] == [out]
    assert [n.op_type for n in cut.graph.node] == ["Conv", "Relu", "Conv", "Relu"]
    assert {t.name for t in cut.graph.initializer} == {x for n in cut.graph.node for x in n.input[1:]}
    dims = cut.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["input_d0", "input_d1", "input_d2", "input_d3"]
    import onnxruntime as ort

    session = ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 40, 56)).astype(np.float32)
    (got,) = session.run(None, {"input": x})
    with torch.no_grad():
        net = tiny_cnn()
        want = net.block1(net.stem(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
