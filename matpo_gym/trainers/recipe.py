"""The recipe protocol every trainer follows, and the shared environment setup."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Protocol

from matpo_gym.data.tasks import Task
from matpo_gym.envs.gym_env import MatpoEnv
from matpo_gym.envs.spec import EnvSpec, Mode, load_env_spec
from matpo_gym.trainers.config import TrainConfig


class Recipe(Protocol):
    """A training job: ``setup`` loads everything, ``train`` runs (resuming), ``save`` checkpoints."""

    def setup(self) -> None: ...

    def train(self) -> dict[str, float]: ...

    def save(self, step: int) -> None: ...

    def cleanup(self) -> None: ...


def env_spec_for(config: TrainConfig, name: str) -> EnvSpec:
    """The env spec with the config's limit and reward overrides applied."""
    spec = load_env_spec(name)
    limits = spec.limits
    for field in ("planner_turns", "worker_turns", "single_turns"):
        value = getattr(config, field)
        if value is not None:
            limits = replace(limits, **{field: value})
    if config.context_tokens is not None:
        limits = replace(limits, context_tokens=config.context_tokens)
    scoring = spec.scoring
    if config.format_weight is not None:
        scoring = replace(scoring, format_weight=config.format_weight)
    return replace(spec, limits=limits, scoring=scoring)


def held_out_tasks(spec: EnvSpec, mode: Mode, count: int, seed: int) -> list[Task]:
    """A fixed sample of test-split questions (never seen in training)."""
    tasks = list(MatpoEnv(spec, mode=mode, split="test").tasks)
    random.Random(seed).shuffle(tasks)
    return tasks[:count]
