"""Credit assignment on hand-computed examples."""

import math

import pytest

from matpo_gym.core.messages import Role
from matpo_gym.core.trajectory import EpisodeResult, EpisodeStats, Trajectory, Turn
from matpo_gym.trainers.advantages import assign_credit, group_advantages
from matpo_gym.trainers.batch import samples_from_credit


def test_group_normalisation_matches_hand_computation():
    # group q: rewards 1, 0, 0 -> mean 1/3, sample std sqrt(1/3)
    advantages = group_advantages([1.0, 0.0, 0.0], ["q", "q", "q"])
    std = math.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2)
    assert advantages == pytest.approx([(2 / 3) / std, (-1 / 3) / std, (-1 / 3) / std], rel=1e-5)


def test_identical_rewards_give_zero_advantage():
    assert group_advantages([0.5, 0.5, 0.5], ["q"] * 3) == [0.0, 0.0, 0.0]
    assert group_advantages([1.0], ["q"]) == [0.0]


def test_groups_are_normalised_separately_and_unscaled_option():
    advantages = group_advantages([1.0, 0.0, 3.0, 1.0], ["a", "a", "b", "b"], scale="none")
    assert advantages == pytest.approx([0.5, -0.5, 1.0, -1.0])


def test_nan_rewards_get_zero_and_do_not_move_the_group():
    with_nan = group_advantages([1.0, 0.0, math.nan], ["q"] * 3)
    without = group_advantages([1.0, 0.0], ["q"] * 2)
    assert with_nan[:2] == pytest.approx(without) and with_nan[2] == 0.0


def episode(episode_id: str, reward: float, workers: int) -> EpisodeResult:
    planner = Trajectory(f"{episode_id}/planner-0", episode_id, Role.PLANNER)
    planner.turns.append(Turn((), "p", "tool_call", [1, 2], [3, 4], [-0.1, -0.2]))
    trajectories = [planner]
    for w in range(workers):
        worker = Trajectory(f"{episode_id}/worker-{w + 1}", episode_id, Role.WORKER, parent_id=planner.id)
        worker.turns.append(Turn((), "w", "answer", [5], [6, 7, 8], [-0.3, -0.4, -0.5]))
        trajectories.append(worker)
    return EpisodeResult(episode_id, "t", "q", "g", "p", reward, reward, "answer", trajectories, EpisodeStats())


def test_workers_inherit_their_planner_rollouts_advantage():
    results = [episode("a", 1.0, workers=2), episode("b", 0.0, workers=1)]
    credited = assign_credit(results, ["q", "q"], include_workers=True)
    by_id = {c.trajectory.id: c.advantage for c in credited}
    a, b = group_advantages([1.0, 0.0], ["q", "q"])
    assert by_id == {"a/planner-0": a, "a/worker-1": a, "a/worker-2": a, "b/planner-0": b, "b/worker-1": b}


def test_grpo_trains_only_the_root_trajectory():
    credited = assign_credit([episode("a", 1.0, 2), episode("b", 0.0, 0)], ["q", "q"], include_workers=False)
    assert [c.trajectory.role for c in credited] == [Role.PLANNER, Role.PLANNER]


def test_aborted_episodes_count_as_unscorable():
    broken = episode("c", 0.0, 0)
    broken.stop_reason = "error"
    credited = assign_credit([episode("a", 1.0, 0), episode("b", 0.0, 0), broken], ["q"] * 3, include_workers=True)
    assert credited[2].advantage == 0.0
    assert credited[0].advantage == pytest.approx(group_advantages([1.0, 0.0], ["q", "q"])[0])


def test_every_generated_token_gets_the_scalar_advantage():
    credited = assign_credit([episode("a", 1.0, 1), episode("b", 0.0, 1)], ["q", "q"], include_workers=True)
    samples = samples_from_credit(credited)
    assert [(s.role, len(s.completion_ids), s.advantage) for s in samples] == [
        ("planner", 2, credited[0].advantage),
        ("worker", 3, credited[0].advantage),
        ("planner", 2, credited[2].advantage),
        ("worker", 3, credited[2].advantage),
    ]
