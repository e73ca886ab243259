"""Credit assignment: group-normalised advantages, and who inherits them.

GRPO and MATPO share everything but this file's second half. For each question, G rollouts are
sampled; rollout i's reward is normalised against the other rollouts of its question,
``A_i = (r_i - mean(r)) / (std(r) + eps)``. In single-agent GRPO the rollout is one trajectory.
In MATPO the rollout is the planner trajectory *and every worker trajectory it spawned*: all of
them get ``A_i``, so the worker is trained on the outcome its report led to. (How worker tokens
receive it, the scalar on all of them or the reference's parent-mask quirk, is decided where
samples are built: :func:`~matpo_gym.trainers.batch.samples_from_credit`.)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from matpo_gym.core.trajectory import EpisodeResult, Trajectory

Scaling = Literal["std", "none"]


def group_advantages(rewards: Sequence[float], groups: Sequence[str], *, scale: Scaling = "std",
                     eps: float = 1e-6) -> list[float]:
    """Per-rollout advantages normalised within each group.

    NaN rewards (unscorable rollouts) get advantage 0 and are left out of their group's mean and
    std. A group whose rewards are all equal gives 0 to every member: there is nothing to learn.
    ``scale="none"`` only subtracts the mean (Dr. GRPO), avoiding the bias of dividing by std.

    >>> group_advantages([1.0, 0.0, 1.0, 1.0], ["q", "q", "p", "p"])
    [0.7071..., -0.7071..., 0.0, 0.0]
    """
    by_group: dict[str, list[float]] = defaultdict(list)
    for reward, group in zip(rewards, groups, strict=True):
        if not math.isnan(reward):
            by_group[group].append(reward)
    stats = {}
    for group, values in by_group.items():
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        stats[group] = (mean, std)
    advantages = []
    for reward, group in zip(rewards, groups):
        if math.isnan(reward):
            advantages.append(0.0)
            continue
        mean, std = stats[group]
        if std < eps:
            advantages.append(0.0)
        else:
            advantages.append((reward - mean) / (std + eps) if scale == "std" else reward - mean)
    return advantages


@dataclass(frozen=True, slots=True)
class Credited:
    """A trajectory with the advantage its tokens are trained with."""

    trajectory: Trajectory
    advantage: float
    reward: float
    group: str


def assign_credit(results: Sequence[EpisodeResult], groups: Sequence[str], *, include_workers: bool,
                  scale: Scaling = "std") -> list[Credited]:
    """Advantages per trajectory: each rollout's planner and, with ``include_workers``, its workers.

    ``groups[i]`` is the question rollout ``i`` answered. With ``include_workers=False`` (GRPO)
    only the root trajectory of each rollout is trained.
    """
    rewards = [r.reward if r.stop_reason != "error" else math.nan for r in results]
    advantages = group_advantages(rewards, groups, scale=scale)
    credited = []
    for result, advantage, group, reward in zip(results, advantages, groups, rewards):
        for trajectory in result.trajectories:
            if trajectory.parent_id is None or include_workers:
                credited.append(Credited(trajectory, advantage, reward, group))
    return credited

