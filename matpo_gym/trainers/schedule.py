"""Learning-rate schedules as pure functions of the step, so a resumed run needs no scheduler state.

No torch at import time: the config (and so ``train --dry-run``) names :data:`Schedule`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

Schedule = Literal["constant", "cosine"]


def learning_rate(step: int, total: int, peak: float, schedule: Schedule = "constant", warmup: int = 0,
                  final_fraction: float = 0.1) -> float:
    """The learning rate of 0-based ``step`` of ``total``: a linear warmup over ``warmup`` steps to
    ``peak``, then ``peak`` (constant) or a cosine decay to ``final_fraction * peak`` at the last step.

    >>> [round(learning_rate(s, 5, 1.0, "cosine", warmup=1), 3) for s in range(5)]
    [0.5, 1.0, 0.775, 0.325, 0.1]
    """
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    if schedule == "constant":
        return peak
    if schedule != "cosine":
        raise ValueError(f"Unknown learning-rate schedule {schedule!r}; use constant or cosine.")
    span = max(1, total - 1 - warmup)
    progress = min(1.0, (step - warmup) / span)
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = value


__all__ = ["Schedule", "learning_rate", "set_learning_rate"]
