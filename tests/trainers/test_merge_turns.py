"""Turns that extend each other train as one sequence: fewer rows, the same loss and gradients."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from matpo_gym.core.messages import Role  # noqa: E402
from matpo_gym.core.trajectory import Trajectory, Turn  # noqa: E402
from matpo_gym.models.tiny import load_tiny  # noqa: E402
from matpo_gym.trainers.advantages import Credited  # noqa: E402
from matpo_gym.trainers.batch import (  # noqa: E402
    Sample,
    collate,
    merge_turns,
    samples_from_credit,
    token_logprobs,
)
from matpo_gym.trainers.loss import policy_loss  # noqa: E402


def turn(prompt: list[int], completion: list[int]) -> Turn:
    return Turn((), "text", "tool_call", prompt, completion, [-0.1 * (i + 1) for i in range(len(completion))])


def conversation() -> Trajectory:
    """Three turns: the second extends the first (a tool result appended), the third was cut
    from the middle (its prompt no longer starts with the earlier ones)."""
    first = turn([5, 6, 7, 8], [20, 21, 22])
    second = turn([5, 6, 7, 8, 20, 21, 22, 9, 10], [23, 24])
    third = turn([5, 6, 11, 12], [25, 26, 27])
    return Trajectory("t0", "e0", Role.SINGLE, turns=[first, second, third])


def test_only_extending_turns_merge():
    samples = samples_from_credit([Credited(conversation(), 0.7, 1.0, "q")], merge=True)
    assert [s.length for s in samples] == [11, 7]
    merged, cut = samples
    assert merged.completion_ids == [20, 21, 22, 9, 10, 23, 24]
    assert merged.generated == (True, True, True, False, False, True, True)
    assert merged.generated_tokens == 5 and cut.generated is None and cut.generated_tokens == 3
    assert len(samples_from_credit([Credited(conversation(), 0.7, 1.0, "q")], merge=False)) == 3


def test_turns_of_different_advantage_or_with_token_rows_are_not_merged():
    a = Sample([1, 2], [3], [-0.1], 1.0, "worker")
    b = Sample([1, 2, 3], [4], [-0.1], -1.0, "worker")
    assert len(merge_turns([a, b])) == 2
    with pytest.raises(ValueError, match="per turn"):
        merge_turns([Sample([1], [2], [-0.1], 1.0, "worker", token_advantages=(1.0,))])


def test_merged_rows_give_the_per_turn_loss_and_gradients(tiny_model_dir):
    model, _ = load_tiny(tiny_model_dir)
    credited = [Credited(conversation(), 0.7, 1.0, "q")]
    results = []
    for merge in (False, True):
        model.zero_grad()
        batch = collate(samples_from_credit(credited, merge=merge), pad_id=0)
        logprobs = token_logprobs(model, batch.input_ids, batch.attention_mask, positions=batch.loss_mask.bool())
        loss, stats = policy_loss(logprobs, batch.old_logprobs, batch.advantages, batch.loss_mask)
        loss.backward()
        results.append((batch.input_ids.shape[0], float(loss.detach()), stats.tokens,
                        [p.grad.clone() for p in model.parameters()]))
    (rows, loss, tokens, grads), (merged_rows, merged_loss, merged_tokens, merged_grads) = results
    assert (rows, merged_rows) == (3, 2) and tokens == merged_tokens == 8
    assert merged_loss == pytest.approx(loss, rel=1e-5)
    for a, b in zip(grads, merged_grads):
        assert torch.allclose(a, b, atol=1e-5)
