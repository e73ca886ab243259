"""From trajectories to padded tensors, and the log-probabilities of generated tokens.

Every model turn is one training sequence: the exact prompt ids the model saw, then the ids it
generated. Only the generated ids are scored (mask = 1); the prompt carries the environment's
text (system prompt, question, tool results, worker summaries) and gets no gradient. When a turn's
prompt starts with the previous turn's prompt and generated ids, token for token (the usual case:
the conversation only grew), the two turns are one sequence (:func:`merge_turns`): the same tokens
scored under the same context, so the same loss, from one forward pass over the shared prefix
instead of one per turn.

Layout of a collated row (targets shifted by one): position ``t`` scores token ``t + 1``, so a
sample's generated tokens sit at positions ``len(prompt_ids) - 1`` to
``len(prompt_ids) + len(completion_ids) - 2`` (:attr:`Sample.completion_span`). A sample's advantage
is one scalar for all of them, except under ``worker_advantage="parent_mask"``, where a worker
sample carries a per-token row (:func:`parent_mask_advantages`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace

import torch

from matpo_gym.core.trajectory import Turn
from matpo_gym.trainers.advantages import Credited, spawning_turns
from matpo_gym.trainers.config import WorkerAdvantage


@dataclass(frozen=True, slots=True)
class Sample:
    """One model turn ready for the loss."""

    prompt_ids: list[int]
    completion_ids: list[int]
    old_logprobs: list[float]
    advantage: float
    role: str
    token_advantages: tuple[float, ...] | None = None
    """One advantage per generated token, when they are not all ``advantage`` (``parent_mask``)."""
    generated: tuple[bool, ...] | None = None
    """Per completion id, whether the model sampled it; None: all were. A merged sample's
    completion holds later turns' environment tokens too (``False``, old log-prob 0)."""

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)

    @property
    def generated_tokens(self) -> int:
        return len(self.completion_ids) if self.generated is None else sum(self.generated)

    @property
    def completion_span(self) -> tuple[int, int]:
        """``[start, end)`` of the row positions whose next token was generated (mask = 1)."""
        start = len(self.prompt_ids) - 1
        return start, start + len(self.completion_ids)


def turn_sample(turn: Turn, advantage: float, role: str) -> Sample | None:
    """The sample of one model turn; None when the policy recorded no token ids for it.

    The clipped ratio needs the sampling policy's log-prob of every generated token: a turn
    without them is refused, since any stand-in (say 0, probability 1) would clip every token.
    """
    if not turn.completion_ids or turn.prompt_ids is None:
        return None
    logprobs = turn.completion_logprobs
    if logprobs is None or len(logprobs) != len(turn.completion_ids):
        recorded = "no" if logprobs is None else str(len(logprobs))
        raise ValueError(f"A {role} turn has {len(turn.completion_ids)} generated token ids but {recorded} "
                         "log-probs; RL needs the sampling policy's log-prob of each (use a policy that "
                         "records them: hf or vllm).")
    return Sample(list(turn.prompt_ids), list(turn.completion_ids), list(logprobs), advantage, role)


def merge_turns(samples: Sequence[Sample]) -> list[Sample]:
    """Consecutive turns of one trajectory as one sample wherever the later prompt extends the
    earlier prompt and completion exactly (a context cut or a re-tokenised reply starts a new one).

    >>> a = Sample([1, 2], [3], [-0.1], 1.0, "single")
    >>> b = Sample([1, 2, 3, 4], [5, 6], [-0.2, -0.3], 1.0, "single")
    >>> merged, = merge_turns([a, b])
    >>> merged.completion_ids, merged.generated, merged.old_logprobs
    ([3, 4, 5, 6], (True, False, True, True), [-0.1, 0.0, -0.2, -0.3])
    """
    merged: list[Sample] = []
    for sample in samples:
        if sample.token_advantages is not None:
            raise ValueError("merge_turns: per-token advantages are defined per turn; merge scalar ones only.")
        last = merged[-1] if merged else None
        if last is not None and last.advantage == sample.advantage and last.role == sample.role:
            sequence = last.prompt_ids + last.completion_ids
            if sample.prompt_ids[: len(sequence)] == sequence and len(sample.prompt_ids) >= len(sequence):
                between = sample.prompt_ids[len(sequence):]
                flags = last.generated or (True,) * len(last.completion_ids)
                merged[-1] = replace(
                    last,
                    completion_ids=last.completion_ids + between + sample.completion_ids,
                    old_logprobs=last.old_logprobs + [0.0] * len(between) + sample.old_logprobs,
                    generated=flags + (False,) * len(between) + (True,) * len(sample.completion_ids),
                )
                continue
        merged.append(sample)
    return merged


def parent_mask_advantages(worker: Sample, parent: Sample | None) -> tuple[float, ...]:
    """The reference's worker credit, one value per generated worker token.

    The reference copies the parent planner's per-token advantage row onto the worker: the value
    at row position ``t`` is the parent's advantage where the parent sample generated the token
    scored at ``t`` (its mask is 1) and 0 elsewhere (prompt, tool output, padding, past its end).
    No parent sample (its turn has no token ids) gives zeros.
    """
    start, end = worker.completion_span
    if parent is None:
        return (0.0,) * (end - start)
    parent_start, parent_end = parent.completion_span
    row = parent.token_advantages or (parent.advantage,) * (parent_end - parent_start)
    return tuple(
        row[t - parent_start] if parent_start <= t < parent_end else 0.0 for t in range(start, end)
    )


def samples_from_credit(credited: Sequence[Credited], *, skip_zero_advantage: bool = True,
                        worker_advantage: WorkerAdvantage = "scalar", merge: bool = False,
                        frozen_roles: Collection[str] = ()) -> list[Sample]:
    """One sample per generated turn that carries token ids (``merge``: per run of turns that
    extend each other, :func:`merge_turns`; not with ``parent_mask``, whose rows are per turn).

    Turns with zero advantage contribute no gradient under the clipped loss (without a KL term),
    so they are skipped by default to save compute; their tokens still count in the token mean
    (the trainer counts them from a second, unskipped call). With ``worker_advantage="parent_mask"`` every
    worker sample gets :func:`parent_mask_advantages` against the planner turn that spawned its
    worker, and is kept even when that row is all zeros: its tokens still count in the token mean,
    as in the reference. Trajectories of ``frozen_roles`` give no samples (their planner turns
    still give parent_mask rows).
    """
    parents = _spawning_samples(credited) if worker_advantage == "parent_mask" else {}
    samples = []
    for item in credited:
        if (skip_zero_advantage and item.advantage == 0.0) or item.trajectory.role.value in frozen_roles:
            continue
        is_worker = item.trajectory.parent_id is not None
        turns = []
        for turn in item.trajectory.turns:
            sample = turn_sample(turn, item.advantage, item.trajectory.role.value)
            if sample is None:
                continue
            if is_worker and worker_advantage == "parent_mask":
                parent = parents.get(item.trajectory.id)
                sample = replace(sample, token_advantages=parent_mask_advantages(sample, parent))
            turns.append(sample)
        samples += merge_turns(turns) if merge and worker_advantage != "parent_mask" else turns
    return samples


def _spawning_samples(credited: Sequence[Credited]) -> dict[str, Sample | None]:
    """Worker trajectory id -> the sample of the planner turn that spawned it."""
    workers: dict[str, list[str]] = defaultdict(list)
    for item in credited:
        if item.trajectory.parent_id is not None:
            workers[item.trajectory.parent_id].append(item.trajectory.id)
    parents: dict[str, Sample | None] = {}
    for item in credited:
        planner = item.trajectory
        if planner.parent_id is not None or planner.id not in workers:
            continue
        for worker_id, index in zip(workers[planner.id], spawning_turns(planner)):
            turn = planner.turns[index]
            parents[worker_id] = turn_sample(turn, item.advantage, planner.role.value)
    return parents


@dataclass
class Batch:
    """Right-padded tensors of a micro-batch."""

    input_ids: torch.Tensor       # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    loss_mask: torch.Tensor       # [B, T-1]: 1 where token t+1 was generated
    old_logprobs: torch.Tensor    # [B, T-1]
    advantages: torch.Tensor      # [B]
    token_advantages: torch.Tensor | None = None  # [B, T-1], only when some sample has a row

    def to(self, device: torch.device | str) -> Batch:
        tokens = self.token_advantages.to(device) if self.token_advantages is not None else None
        return Batch(self.input_ids.to(device), self.attention_mask.to(device),
                     self.loss_mask.to(device), self.old_logprobs.to(device),
                     self.advantages.to(device), tokens)


def collate(samples: Sequence[Sample], pad_id: int) -> Batch:
    """Pad a list of samples into a :class:`Batch` (targets are shifted by one)."""
    width = max(s.length for s in samples)
    size = len(samples)
    input_ids = torch.full((size, width), pad_id, dtype=torch.long)
    attention = torch.zeros((size, width), dtype=torch.long)
    loss_mask = torch.zeros((size, width - 1), dtype=torch.float32)
    old = torch.zeros((size, width - 1), dtype=torch.float32)
    per_token = any(s.token_advantages is not None for s in samples)
    tokens = torch.zeros((size, width - 1), dtype=torch.float32) if per_token else None
    for row, sample in enumerate(samples):
        ids = sample.prompt_ids + sample.completion_ids
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        start, end = sample.completion_span
        loss_mask[row, start:end] = 1.0 if sample.generated is None else torch.tensor(sample.generated)
        old[row, start:end] = torch.tensor(sample.old_logprobs, dtype=torch.float32)
        if tokens is not None:
            values = sample.token_advantages or (sample.advantage,) * (end - start)
            tokens[row, start:end] = torch.tensor(values, dtype=torch.float32)
    advantages = torch.tensor([s.advantage for s in samples], dtype=torch.float32)
    return Batch(input_ids, attention, loss_mask, old, advantages, tokens)


def token_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   temperature: float = 1.0, positions: torch.Tensor | None = None) -> torch.Tensor:
    """log p(token t+1 | tokens <= t): [B, T-1].

    With a boolean ``positions`` mask [B, T-1] the LM head and softmax run on those positions
    only (the generated tokens, a small share of a multi-turn prompt) and the rest are 0.
    """
    targets = input_ids[:, 1:]
    decoder, head = getattr(model, "get_decoder", None), getattr(model, "get_output_embeddings", None)
    sparse = (positions is not None and decoder is not None and head is not None and head() is not None
              and head_gives_logits(model))
    if sparse:
        hidden = decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, :-1]
        logits, wanted = head()(hidden[positions]), targets[positions]                 # [N, V], [N]
    else:
        logits, wanted = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1], targets
    if temperature != 1.0:
        logits = logits / temperature
    picked = torch.log_softmax(logits.float(), dim=-1).gather(-1, wanted.unsqueeze(-1)).squeeze(-1)
    if positions is None:
        return picked                                                                   # [B, T-1]
    if not sparse:
        return picked * positions
    out = torch.zeros(targets.shape, dtype=picked.dtype, device=picked.device)
    out[positions] = picked
    return out


POST_HEAD_SETTINGS = {"final_logit_softcapping": None, "logit_scale": 1.0, "logits_scaling": 1.0}
"""Config fields of models whose forward transforms the LM head's output (Gemma 2/3 soft-capping,
Cohere's and Granite's scaling), with the value that leaves it alone."""


def head_gives_logits(model: torch.nn.Module) -> bool:
    """Whether the LM head's output is the model's logits, so scoring a few positions through the
    decoder and the head alone matches the full forward (and so the rollout's log-probs).

    >>> from types import SimpleNamespace
    >>> head_gives_logits(SimpleNamespace(config=SimpleNamespace(final_logit_softcapping=30.0)))
    False
    >>> head_gives_logits(SimpleNamespace(config=SimpleNamespace(final_logit_softcapping=None)))
    True
    """
    config = getattr(model, "config", None)
    return all(getattr(config, name, unset) in (None, unset) for name, unset in POST_HEAD_SETTINGS.items())


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
