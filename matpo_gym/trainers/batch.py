"""From trajectories to padded tensors, and the log-probabilities of generated tokens.

Every model turn is one training sequence: the exact prompt ids the model saw, then the ids it
generated. Only the generated ids are scored (mask = 1); the prompt carries the environment's
text (system prompt, question, tool results, worker summaries) and gets no gradient.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from matpo_gym.trainers.advantages import Credited


@dataclass(frozen=True, slots=True)
class Sample:
    """One model turn ready for the loss."""

    prompt_ids: list[int]
    completion_ids: list[int]
    old_logprobs: list[float]
    advantage: float
    role: str

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def samples_from_credit(credited: Sequence[Credited], *, skip_zero_advantage: bool = True) -> list[Sample]:
    """One sample per generated turn that carries token ids.

    Turns with zero advantage contribute no gradient under the clipped loss (without a KL term),
    so they are skipped by default to save compute.
    """
    samples = []
    for item in credited:
        if skip_zero_advantage and item.advantage == 0.0:
            continue
        for turn in item.trajectory.turns:
            if not turn.completion_ids or turn.prompt_ids is None:
                continue
            logprobs = turn.completion_logprobs or [0.0] * len(turn.completion_ids)
            samples.append(
                Sample(list(turn.prompt_ids), list(turn.completion_ids), list(logprobs), item.advantage,
                       item.trajectory.role.value)
            )
    return samples


@dataclass
class Batch:
    """Right-padded tensors of a micro-batch."""

    input_ids: torch.Tensor       # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    loss_mask: torch.Tensor       # [B, T-1]: 1 where token t+1 was generated
    old_logprobs: torch.Tensor    # [B, T-1]
    advantages: torch.Tensor      # [B]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.loss_mask,
                                                self.old_logprobs, self.advantages)))


def collate(samples: Sequence[Sample], pad_id: int) -> Batch:
    """Pad a list of samples into a :class:`Batch` (targets are shifted by one)."""
    width = max(s.length for s in samples)
    size = len(samples)
    input_ids = torch.full((size, width), pad_id, dtype=torch.long)
    attention = torch.zeros((size, width), dtype=torch.long)
    loss_mask = torch.zeros((size, width - 1), dtype=torch.float32)
    old = torch.zeros((size, width - 1), dtype=torch.float32)
    for row, sample in enumerate(samples):
        ids = sample.prompt_ids + sample.completion_ids
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        start = len(sample.prompt_ids) - 1  # position whose next token is the first generated one
        end = start + len(sample.completion_ids)
        loss_mask[row, start:end] = 1.0
        old[row, start:end] = torch.tensor(sample.old_logprobs, dtype=torch.float32)
    advantages = torch.tensor([s.advantage for s in samples], dtype=torch.float32)
    return Batch(input_ids, attention, loss_mask, old, advantages)


def token_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    """log p(token t+1 | tokens <= t) for every position: [B, T-1]."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]  # [B, T-1, V]
    if temperature != 1.0:
        logits = logits / temperature
    logprobs = torch.log_softmax(logits.float(), dim=-1)                                # [B, T-1, V]
    return logprobs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)              # [B, T-1]


def micro_batches(samples: Sequence[Sample], max_tokens: int) -> Iterator[list[Sample]]:
    """Length-sorted micro-batches whose padded size stays under ``max_tokens``."""
    ordered = sorted(samples, key=lambda s: s.length)
    batch: list[Sample] = []
    for sample in ordered:
        width = max([sample.length] + [s.length for s in batch])
        if batch and width * (len(batch) + 1) > max_tokens:
            yield batch
            batch = []
        batch.append(sample)
    if batch:
        yield batch
