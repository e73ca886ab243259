"""The clipped loss on hand-computed examples, and its token mask."""

import math

import pytest
import torch

from matpo_gym.core.trajectory import Turn
from matpo_gym.trainers.batch import Sample, collate, micro_batches, turn_sample
from matpo_gym.trainers.loss import policy_loss


def test_on_policy_loss_is_minus_mean_advantage_over_generated_tokens():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    advantages = torch.tensor([2.0, -1.0])
    loss, stats = policy_loss(logprobs, logprobs.clone(), advantages, mask)
    # tokens: (2, 2) from row 0 and (-1) from row 1 -> -(2 + 2 - 1) / 3
    assert float(loss) == pytest.approx(-1.0)
    assert stats.tokens == 3 and stats.clip_fraction == 0.0 and stats.approx_kl == pytest.approx(0.0)


def test_ratio_is_clipped_for_positive_and_negative_advantages():
    old = torch.zeros(1, 2)
    new = torch.tensor([[math.log(1.5), math.log(0.5)]])
    mask = torch.ones(1, 2)
    loss_pos, stats = policy_loss(new, old, torch.tensor([1.0]), mask, clip_eps=0.2)
    # A > 0: min(1.5, 1.2) * 1 = 1.2 and min(0.5, 0.8) = 0.5 -> loss -(1.2 + 0.5) / 2
    assert float(loss_pos) == pytest.approx(-(1.2 + 0.5) / 2)
    assert stats.clip_fraction == pytest.approx(1.0)
    loss_neg, _ = policy_loss(new, old, torch.tensor([-1.0]), mask, clip_eps=0.2)
    # A < 0: min(-1.5, -1.2) = -1.5 and min(-0.5, -0.8) = -0.8 -> loss (1.5 + 0.8) / 2
    assert float(loss_neg) == pytest.approx((1.5 + 0.8) / 2)


def test_approx_kl_estimates_kl_from_the_sampling_policy_to_the_new_one():
    # tokens drawn from old = [0.5, 0.5] in equal numbers, new = [0.9, 0.1]: the k3 estimate over both
    # tokens is exactly KL(old || new) = 0.5 log(0.5/0.9) + 0.5 log(0.5/0.1)
    old = torch.log(torch.tensor([[0.5, 0.5]]))
    new = torch.log(torch.tensor([[0.9, 0.1]]))
    _, stats = policy_loss(new, old, torch.tensor([1.0]), torch.ones(1, 2))
    assert stats.approx_kl == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1), abs=1e-6)


def test_a_turn_without_rollout_logprobs_is_refused():
    # a stand-in log-prob (0: probability 1) would make the ratio p_new and clip every token
    turn = Turn((), "x", "answer", prompt_ids=[1, 2], completion_ids=[3, 4], completion_logprobs=None)
    with pytest.raises(ValueError, match="2 generated token ids but no log-probs"):
        turn_sample(turn, 1.0, "worker")
    short = Turn((), "x", "answer", prompt_ids=[1, 2], completion_ids=[3, 4], completion_logprobs=[-0.1])
    with pytest.raises(ValueError, match="but 1 log-probs"):
        turn_sample(short, 1.0, "worker")


def test_dual_clip_bounds_negative_advantage_loss():
    old = torch.zeros(1, 1)
    new = torch.tensor([[math.log(5.0)]])
    loss, _ = policy_loss(new, old, torch.tensor([-1.0]), torch.ones(1, 1), dual_clip=3.0)
    assert float(loss) == pytest.approx(3.0)  # min(5 * 1, 3 * 1)


def test_masked_tokens_get_zero_gradient():
    logits = torch.zeros(1, 4, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    loss, _ = policy_loss(logits, torch.zeros(1, 4), torch.tensor([1.0]), mask)
    loss.backward()
    assert logits.grad[0, 1] == 0 and logits.grad[0, 3] == 0
    assert logits.grad[0, 0] != 0 and logits.grad[0, 2] != 0


def test_zero_advantage_gives_zero_gradient():
    logprobs = torch.zeros(2, 3, requires_grad=True)
    loss, _ = policy_loss(logprobs, torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3))
    loss.backward()
    assert torch.count_nonzero(logprobs.grad) == 0


def test_reference_kl_is_added_when_asked():
    logprobs = torch.tensor([[-1.0]])
    loss, stats = policy_loss(logprobs, logprobs.clone(), torch.tensor([0.0]), torch.ones(1, 1),
                              ref_logprobs=torch.tensor([[-2.0]]), kl_coef=0.5)
    kl = math.exp(-1.0) + 1.0 - 1  # exp(ref - new) - (ref - new) - 1
    assert stats.ref_kl == pytest.approx(kl) and float(loss) == pytest.approx(0.5 * kl)


def test_collate_masks_only_the_completion():
    batch = collate(
        [Sample([1, 2, 3], [4, 5], [-0.1, -0.2], 1.0, "planner"), Sample([1], [9], [-0.3], -1.0, "worker")], pad_id=0
    )
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5], [1, 9, 0, 0, 0]]
    # targets are input_ids[1:]; tokens 4 and 5 (positions 2, 3) and 9 (position 0) are scored
    assert batch.loss_mask.tolist() == [[0, 0, 1, 1], [1, 0, 0, 0]]
    assert batch.old_logprobs[0, 2:].tolist() == pytest.approx([-0.1, -0.2])
    assert batch.advantages.tolist() == [1.0, -1.0]


def test_micro_batches_respect_the_token_budget():
    samples = [Sample([1] * n, [2] * n, [0.0] * n, 1.0, "single") for n in (5, 50, 10, 40, 20)]
    chunks = list(micro_batches(samples, max_tokens=120))
    assert sorted(len(s.prompt_ids) for c in chunks for s in c) == [5, 10, 20, 40, 50]
    for chunk in chunks:
        assert len(chunk) == 1 or max(s.length for s in chunk) * len(chunk) <= 120
