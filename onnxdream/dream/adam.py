"""Adam on one tensor, without ``torch.optim``.

``torch.optim.Optimizer`` imports ``torch._dynamo`` the first time a parameter group is added
(its ``add_param_group`` is wrapped to keep dynamo out): one to two seconds of every dream's
fixed cost for one tensor's update. This is the same update as ``torch.optim.Adam``'s
single-tensor path (defaults: betas 0.9/0.999, eps 1e-8, no weight decay), step for step.
"""

from __future__ import annotations

import torch


class Adam:
    """Adam updates of ``param`` in place (``maximize`` ascends the gradient)."""

    def __init__(
        self,
        param: torch.Tensor,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        self.param, self.lr, self.betas, self.eps, self.maximize = param, lr, betas, eps, maximize
        self.steps = 0
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        """One update from ``grad`` (the gradient of the objective w.r.t. ``param``)."""
        beta1, beta2 = self.betas
        grad = -grad if self.maximize else grad
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1**self.steps)
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2**self.steps) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)
