"""AdamW for the joint step, without ``torch.optim``.

``torch.optim``'s first step imports torch's compiler stack (0.9 s, a twentieth of a banking77
run, though nothing here is compiled). This is the same update — decoupled weight decay, bias
correction, one step count per parameter, parameters without a gradient skipped — through the
same fused CPU kernel ``torch.optim.AdamW(fused=True)`` calls, so it gives the same weights bit
for bit.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8


class AdamW:
    """AdamW over parameter groups (dicts with ``params``, ``lr`` and optionally
    ``weight_decay``); each group's ``lr`` may be changed between steps."""

    def __init__(self, groups: list[dict[str, Any]], weight_decay: float) -> None:
        self.param_groups = [
            {
                **group,
                "params": list(group["params"]),
                "weight_decay": group.get("weight_decay", weight_decay),
            }
            for group in groups
        ]
        params = [p for group in self.param_groups for p in group["params"]]
        sizes = [len(group["params"]) for group in self.param_groups]
        ends = itertools.accumulate(sizes)
        self._slots = [range(end - size, end) for size, end in zip(sizes, ends, strict=True)]
        self.state = {
            "exp_avg": [torch.zeros_like(p) for p in params],
            "exp_avg_sq": [torch.zeros_like(p) for p in params],
            "step": [torch.zeros((), dtype=torch.float32) for _ in params],
        }

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group, slots in zip(self.param_groups, self._slots, strict=True):
            live = [
                (p, i) for p, i in zip(group["params"], slots, strict=True) if p.grad is not None
            ]
            if not live:
                continue
            params = [p for p, _ in live]
            steps = [self.state["step"][i] for _, i in live]
            torch._foreach_add_(steps, 1)
            torch._fused_adamw_(
                params,
                [p.grad for p in params],
                [self.state["exp_avg"][i] for _, i in live],
                [self.state["exp_avg_sq"][i] for _, i in live],
                [],
                steps,
                lr=group["lr"],
                beta1=BETAS[0],
                beta2=BETAS[1],
                weight_decay=group["weight_decay"],
                eps=EPS,
                amsgrad=False,
                maximize=False,
            )

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def state_dict(self) -> dict[str, Any]:
        """The moments and step counts, and each group's rate: tensors and plain values."""
        return {**self.state, "lr": [group["lr"] for group in self.param_groups]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, tensors in self.state.items():
            for mine, saved in zip(tensors, state[name], strict=True):
                mine.copy_(saved)
        for group, lr in zip(self.param_groups, state["lr"], strict=True):
            group["lr"] = lr
