"""What the GPU checks share: the prompts they generate for, and how far a rollout's log-probs are
from the trainer's recomputation of them."""

from __future__ import annotations

from typing import Any

from matpo_gym.core.messages import Message, Prompt, Role

PROMPTS = [
    Prompt(Role.PLANNER, (Message("user", "Who founded the company that built the Verdant Bridge?"),), "p0"),
    Prompt(Role.WORKER, (Message("user", "Find the year the Amber Library opened."),), "w0"),
    Prompt(Role.SINGLE, (Message("user", "Which river is longer, the Sable or the Orin?"),), "s0"),
]


def recomputation_gap(model: Any, tokenizer: Any, completions: list, device: str, plan: Any) -> Any:
    """|trainer log-prob - rollout log-prob| of every generated token: the rollout's log-probs are
    the PPO ratio's denominator, so the trainer's forward pass (under ``plan``'s precision) must
    give them back."""
    import torch

    from matpo_gym.trainers.batch import Sample, collate, token_logprobs

    samples = [Sample(list(c.prompt_ids), list(c.token_ids), list(c.logprobs), 1.0, "single") for c in completions]
    batch = collate(samples, tokenizer.pad_token_id).to(device)
    mask = batch.loss_mask.bool()
    with torch.no_grad(), plan.autocast(torch.device(device)):
        again = token_logprobs(model, batch.input_ids, batch.attention_mask, 1.0, mask)
    return (again[mask] - batch.old_logprobs[mask]).abs()
