"""onnxdream's one-tensor Adam is torch.optim.Adam's update, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from onnxdream.dream.adam import Adam


@pytest.mark.parametrize("maximize", [True, False], ids=["maximize", "minimize"])
def test_adam_matches_torch_optim_adam_step_for_step(maximize: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(2, 3, 8, 5, generator=generator)
    ours, theirs = start.clone(), start.clone().requires_grad_(True)
    adam = Adam(ours, lr=0.03, maximize=maximize)
    reference = torch.optim.Adam([theirs], lr=0.03, maximize=maximize)
    for _ in range(12):
        grad = torch.randn(start.shape, generator=generator) * 5
        adam.step(grad)
        theirs.grad = grad.clone()
        reference.step()
        torch.testing.assert_close(ours, theirs.detach(), rtol=0, atol=1e-7)
    assert not torch.equal(ours, start)


def test_a_dream_step_does_not_import_dynamo() -> None:
    code = (
        "import sys, torch\n"
        "from onnxdream.dream.optim import Optimizer\n"
        "from onnxdream.dream.param import ImageParam\n"
        "param = ImageParam.from_pixels(torch.rand(1, 3, 16, 16), 'fft', True)\n"
        "opt = Optimizer(param, 'adam')\n"
        "view = param.pixels()\n"
        "opt.apply(view, torch.ones_like(view))\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
