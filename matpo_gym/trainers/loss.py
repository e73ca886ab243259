"""The policy-gradient loss: PPO's clipped ratio over generated tokens only.

Shapes: B sequences (one per model turn, planner and worker turns mixed), T tokens each (right-
padded). ``mask`` is 1 on tokens the model generated and 0 on prompt, tool output and padding, so
environment tokens never receive gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from matpo_gym.trainers.config import Aggregation


class LossStats(NamedTuple):
    """Detached diagnostics of one loss computation."""

    loss: float
    clip_fraction: float
    """Fraction of generated tokens whose ratio was clipped."""
    approx_kl: float
    """Estimate of KL(old || new) over generated tokens (k3 estimator)."""
    ratio_mean: float
    ref_kl: float
    """Estimate of KL(new || reference), 0 without a reference model."""
    tokens: int


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    dual_clip: float | None = None,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    aggregation: Aggregation = "token-mean",
    max_tokens: int | None = None,
) -> tuple[torch.Tensor, LossStats]:
    """Clipped surrogate loss (to minimise) and its diagnostics.

    ``clip_eps_high`` gives an asymmetric upper clip (DAPO's clip-higher); ``dual_clip`` (c > 1)
    bounds the loss of negative-advantage tokens at ``c * |A|``. ``aggregation``
    ``"token-mean"`` averages over every generated token of the batch (planner and worker tokens
    weigh the same); ``"seq-mean-token-sum-norm"`` divides token sums by a constant
    ``max_tokens`` (Dr. GRPO) so that long and short answers are not weighted differently.
    """
    mask = mask.to(logprobs.dtype)                                     # [B, T]
    adv = advantages.to(logprobs.dtype).unsqueeze(-1)                  # [B, 1]
    log_ratio = logprobs - old_logprobs                                # [B, T]
    ratio = torch.exp(log_ratio)                                       # [B, T]
    high = clip_eps if clip_eps_high is None else clip_eps_high
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + high)               # [B, T]
    per_token = -torch.minimum(ratio * adv, clipped * adv)             # [B, T]
    if dual_clip is not None:
        bounded = torch.minimum(per_token, -dual_clip * adv)           # [B, T]
        per_token = torch.where(adv < 0, bounded, per_token)
    ref_kl = torch.zeros((), dtype=logprobs.dtype)
    if ref_logprobs is not None and kl_coef > 0:
        delta = ref_logprobs - logprobs                                # [B, T]
        kl = torch.exp(delta) - delta - 1                              # [B, T], k3 estimator
        per_token = per_token + kl_coef * kl
        ref_kl = masked_mean(kl, mask)
    if aggregation == "token-mean":
        loss = masked_mean(per_token, mask)
    else:
        norm = max_tokens or logprobs.shape[-1]
        loss = ((per_token * mask).sum(-1) / norm).mean()
    with torch.no_grad():
        clip_fraction = masked_mean(((ratio - clipped).abs() > 1e-8).to(mask.dtype), mask)
        approx_kl = masked_mean(ratio - 1 - log_ratio, mask)       # k3 with samples from the old policy
        stats = LossStats(
            loss=float(loss.detach()),
            clip_fraction=float(clip_fraction),
            approx_kl=float(approx_kl),
            ratio_mean=float(masked_mean(ratio, mask)),
            ref_kl=float(ref_kl),
            tokens=int(mask.sum()),
        )
    return loss, stats
