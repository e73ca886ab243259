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

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace

import torch

from matpo_gym.core.trajectory import Turn
from matpo_gym.trainers.advantages import Credited
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


def response_generated(turns: Sequence[Turn]) -> list[bool]:
    """Which tokens of a trajectory's response (everything after its first prompt) the model
    generated: the layout of the trajectory's row in the reference's batch.

    A turn's completion starts ``len(prompt_ids) - len(first prompt_ids)`` tokens into the
    response, exact while the conversation only grew (a context cut shifts later turns).

    >>> from matpo_gym.core.trajectory import Turn
    >>> response_generated([Turn((), "", "tool_call", [1, 2], [3]), Turn((), "", "answer", [1, 2, 3, 4], [5, 6])])
    [True, False, True, True]
    """
    turns = [t for t in turns if t.completion_ids and t.prompt_ids is not None]
    if not turns:
        return []
    first = len(turns[0].prompt_ids or [])
    flags: list[bool] = []
    for turn in turns:
        start = len(turn.prompt_ids or []) - first
        end = start + len(turn.completion_ids or [])
        if end <= 0:
            continue
        flags += [False] * (end - len(flags))
        flags[max(0, start):end] = [True] * (end - max(0, start))
    return flags


def parent_mask_advantages(offset: int, length: int, planner_generated: Sequence[bool],
                           advantage: float) -> tuple[float, ...]:
    """The reference's credit for one worker turn of ``length`` tokens starting ``offset`` tokens
    into the worker's response: the planner's advantage row, response position for response
    position, so ``advantage`` where the planner generated the token at that position and 0 where
    it holds environment text or lies past the planner's end.

    >>> parent_mask_advantages(1, 4, [True, True, False, True], 0.5)
    (0.5, 0.0, 0.5, 0.0)
    """
    return tuple(advantage if 0 <= j < len(planner_generated) and planner_generated[j] else 0.0
                 for j in range(offset, offset + length))


def samples_from_credit(credited: Sequence[Credited], *, skip_zero_advantage: bool = True,
                        worker_advantage: WorkerAdvantage = "scalar", merge: bool = False,
                        frozen_roles: Collection[str] = ()) -> list[Sample]:
    """One sample per generated turn that carries token ids (``merge``: per run of turns that
    extend each other, :func:`merge_turns`; not with ``parent_mask``, whose rows are per turn).

    Turns with zero advantage contribute no gradient under the clipped loss (without a KL term),
    so they are skipped by default to save compute; their tokens still count in the token mean
    (the trainer counts them from a second, unskipped call). With ``worker_advantage="parent_mask"``
    every worker sample gets :func:`parent_mask_advantages` against its planner's whole trajectory
    (:func:`response_generated`), and is kept even when that row is all zeros: its tokens still
    count in the token mean, as in the reference. Trajectories of ``frozen_roles`` give no samples
    (a frozen planner still gives its workers their rows).
    """
    planners = {c.trajectory.id: (response_generated(c.trajectory.turns), c.advantage)
                for c in credited if worker_advantage == "parent_mask" and c.trajectory.parent_id is None}
    samples = []
    for item in credited:
        if (skip_zero_advantage and item.advantage == 0.0) or item.trajectory.role.value in frozen_roles:
            continue
        parent = item.trajectory.parent_id
        turns: list[Sample] = []
        for turn in item.trajectory.turns:
            sample = turn_sample(turn, item.advantage, item.trajectory.role.value)
            if sample is None:
                continue
            if parent is not None and worker_advantage == "parent_mask":
                generated, advantage = planners.get(parent, ([], 0.0))
                offset = len(sample.prompt_ids) - (len(turns[0].prompt_ids) if turns else len(sample.prompt_ids))
                sample = replace(sample, token_advantages=parent_mask_advantages(
                    offset, len(sample.completion_ids), generated, advantage))
            turns.append(sample)
        samples += merge_turns(turns) if merge and worker_advantage != "parent_mask" else turns
    return samples


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
    logits = logits.float()  # divided in float32, as the rollout's sampling and log-probs are
    if temperature != 1.0:
        logits = logits / temperature
    picked = torch.log_softmax(logits, dim=-1).gather(-1, wanted.unsqueeze(-1)).squeeze(-1)
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
