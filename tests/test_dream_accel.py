"""``--precision``, ``--compile`` and channels-last (onnxdream.dream.accel) on a tiny CNN, on the CPU.

CUDA paths are exercised by ``tools/gpu_check.py`` (its CPU part runs here, in test_gpu_check.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.dream import DreamOptions, open_dreamer, parse_spec
from onnxdream.dream.accel import TOLERANCES, Accelerated
from onnxdream.errors import OptionError
from tests.dream_helpers import FAST, pattern, tiny_cnn

runner = CliRunner()


def _gradient(net, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    act = net(x, [layer])[layer]
    (grad,) = torch.autograd.grad(act.square().mean(), x)
    return act.detach(), grad


def test_bf16_on_cpu_is_float32_out_and_close_to_fp32(tiny):
    plain = open_dreamer(str(tiny), "cpu")
    half = open_dreamer(str(tiny), "cpu", precision="bf16")
    assert isinstance(half.net, Accelerated) and not isinstance(plain.net, Accelerated)
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    act32, grad32 = _gradient(plain.net, x, "block2")
    act16, grad16 = _gradient(half.net, x, "block2")
    assert act16.dtype == torch.float32 and grad16.dtype == torch.float32
    scale = act32.abs().max().item()
    error = (act16 - act32).abs().max().item()
    assert 0 < error <= TOLERANCES["bf16"][0] * max(1.0, scale)  # autocast really ran in bf16
    assert torch.nn.functional.cosine_similarity(grad16.flatten(), grad32.flatten(), dim=0) > 0.99


def test_bf16_dream_passes_its_forward_checks(tiny):
    dreamer = open_dreamer(str(tiny), "cpu", precision="bf16")
    _, result = dreamer.run(pattern(), [parse_spec("block2")], DreamOptions(octaves=2, steps=3, lr=0.05))
    assert result.checks.passed and len(result.checks.reports) == 2
    assert result.checks.max_abs > 1e-4  # compared at bf16's tolerance, not float32's
    assert result.objective_after > result.objective_before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precision", "fp16"], "--precision fp16 needs CUDA; on the CPU use fp32 (default) or bf16"),
        (["--precision", "fp8"], "unknown --precision 'fp8'; choose one of fp32, fp16, bf16"),
    ],
    ids=["fp16-on-cpu", "unknown"],
)
@pytest.mark.parametrize("command", ["dream", "visualize"])
def test_bad_precision_exits_2_with_one_line(tiny, photo, tmp_path, command, args, message):
    out = str(tmp_path / "o.png")
    argv = (
        ["dream", str(photo), out, "--model", str(tiny), "--layer", "block2", *FAST]
        if command == "dream"
        else [
            "visualize",
            str(tiny),
            "-l",
            "block2",
            "--size",
            "32",
            "--steps",
            "2",
            "-o",
            out,
            "--device",
            "cpu",
        ]
    )
    result = runner.invoke(app, [*argv, *args])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {message}"]
    assert not Path(out).exists()


def test_channels_last_gives_the_same_gradients(tiny):
    mirror_net = open_dreamer(str(tiny), "cpu").net
    fast = Accelerated(open_dreamer(str(tiny), "cpu").net, torch.device("cpu"), channels_last=True)
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    act, grad = _gradient(mirror_net, x, "block2")
    act_cl, grad_cl = _gradient(fast, x, "block2")
    torch.testing.assert_close(act_cl, act, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_cl, grad, atol=1e-6, rtol=1e-4)


def test_compile_refuses_a_plain_torch_module():
    with pytest.raises(OptionError, match=r"compile works on ONNX models"):
        open_dreamer(tiny_cnn(), "cpu", compile=True)


@pytest.mark.slow
def test_compiled_mirror_matches_eager_and_skips_no_grad_passes(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    eager = open_dreamer(str(tiny), "cpu")
    compiled = open_dreamer(str(tiny), "cpu", compile=True)
    x = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(2))  # pattern()'s size: one compile
    with torch.no_grad():  # probes and objective values run eagerly: nothing compiled
        compiled.net(x, ["block1"])
    assert compiled.net._compiled == {}
    act, grad = _gradient(eager.net, x, "block2")
    act_c, grad_c = _gradient(compiled.net, x, "block2")
    torch.testing.assert_close(act_c, act, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grad_c, grad, atol=1e-6, rtol=1e-4)
    assert list(compiled.net._compiled) == [("block2",)]
    options = DreamOptions(octaves=1, steps=2, lr=0.05)
    image, result = compiled.run(pattern(), [parse_spec("block2")], options)
    reference, _ = eager.run(pattern(), [parse_spec("block2")], options)
    assert result.checks.passed  # ONNX Runtime checks the compiled graph's activations
    difference = np.abs(np.asarray(image, np.float32) - np.asarray(reference, np.float32))
    assert difference.max() <= 2  # 8-bit pixels: rounding apart
