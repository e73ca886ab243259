"""Batched rollout: many episodes at once, every pending turn in one generate call.

Each step gathers the prompt of every active episode, planner and worker turns alike, into one
batch for the policy (one engine, one copy of the weights), then applies the completions in a
thread pool so that tool calls of different episodes run concurrently. A finished episode's slot
takes the next task at once, so the batch stays full.
"""

from __future__ import annotations

import concurrent.futures
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from matpo_gym.core.trajectory import EpisodeResult
from matpo_gym.data.tasks import Task
from matpo_gym.envs.gym_env import MatpoEnv
from matpo_gym.policies.base import Completion, Policy, generate_checked


@dataclass(frozen=True, slots=True)
class EpisodeRequest:
    """One episode to play: the task and a unique episode id."""

    task: Task
    episode_id: str


def _advance(env: MatpoEnv, completion: Completion) -> EpisodeResult | None:
    """Step ``env`` with ``completion``; the result when the episode ended (an error ends it too)."""
    assert env.episode is not None
    try:
        _, _, terminated, truncated, info = env.step(completion)
    except Exception:
        env.episode.abort(traceback.format_exc(limit=3))
        return env.episode.result()
    return info["result"] if (terminated or truncated) else None


def rollout(
    make_env: Callable[[], MatpoEnv],
    policy: Policy,
    requests: Iterable[EpisodeRequest],
    *,
    batch_size: int = 16,
    threads: int = 8,
) -> Iterator[EpisodeResult]:
    """Play every request; yields results in completion order."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of episodes, got {batch_size!r}")
    queue = iter(requests)
    envs = [make_env() for _ in range(batch_size)]
    active: list[MatpoEnv] = []
    idle = list(envs)

    def refill() -> list[EpisodeResult]:
        """Start episodes on idle envs; the results of any that ended before their first turn (a
        question over a context cap)."""
        ended = []
        while idle:
            request = next(queue, None)
            if request is None:
                break
            env = idle.pop()
            env.reset(options={"task": request.task, "episode_id": request.episode_id})
            assert env.episode is not None
            if env.episode.done:
                ended.append(env.episode.result())
                idle.append(env)
            else:
                active.append(env)
        return ended

    yield from refill()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        while active:
            prompts = [env.prompt() for env in active]
            completions = generate_checked(policy, prompts)
            results = list(pool.map(_advance, active, completions))
            still_active = []
            for env, result in zip(active, results):
                if result is None:
                    still_active.append(env)
                else:
                    idle.append(env)
                    yield result
            active = still_active
            yield from refill()
