"""Environment and tool speed: env steps per second with the scripted policy, search latency.

Run with ``pytest benchmarks/ --benchmark-only``; ``python benchmarks/report.py`` writes the
figures to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import functools

import pytest

from matpo_gym.data.world import WorldConfig, build_world
from matpo_gym.envs import MatpoEnv
from matpo_gym.policies.scripted import SearchReadPolicy
from matpo_gym.rollout import EpisodeRequest, rollout
from matpo_gym.tools.search import LocalSearch


@functools.lru_cache(maxsize=1)
def big_world():
    """A world of more than 10,000 pages."""
    world = build_world(WorldConfig(seed=1, num_entities=8000, filler_paragraphs=1))
    assert len(world.store) >= 10_000
    return world


@functools.lru_cache(maxsize=1)
def big_index() -> LocalSearch:
    return LocalSearch(big_world().store)


@pytest.mark.parametrize("mode", ["single", "matpo"])
def test_env_steps_per_second(benchmark, mode):
    """Steps of one episode at a time (scripted policy, offline tools)."""
    env = MatpoEnv("world-frames", mode=mode)
    policy = SearchReadPolicy()
    tasks = list(env.tasks[:20])
    steps = {"count": 0}

    def play_all():
        for task in tasks:
            env.reset(options={"task": task})
            done = False
            while not done:
                _, _, terminated, truncated, _ = env.step(policy.act(env.prompt()))
                steps["count"] += 1
                done = terminated or truncated

    benchmark.pedantic(play_all, rounds=3, iterations=1)
    per_round = steps["count"] / 3
    benchmark.extra_info["steps_per_round"] = per_round
    benchmark.extra_info["steps_per_second"] = per_round / benchmark.stats.stats.mean


def test_batched_rollout_episodes_per_second(benchmark):
    """32 episodes at once through the batched rollout (tools run in threads)."""
    env = MatpoEnv("world-frames", mode="matpo")
    tasks = list(env.tasks[:32])
    policy = SearchReadPolicy()

    def play():
        requests = [EpisodeRequest(task, f"{task.id}/b") for task in tasks]
        return list(rollout(lambda: MatpoEnv("world-frames", mode="matpo"), policy, requests, batch_size=32))

    results = benchmark.pedantic(play, rounds=3, iterations=1)
    assert len(results) == 32
    benchmark.extra_info["episodes_per_second"] = 32 / benchmark.stats.stats.mean


def test_search_latency_10k_pages(benchmark):
    """One BM25 query over a world of >= 10,000 pages."""
    index = big_index()
    questions = [t.question for t in big_world().tasks("frames", split="test")[:50]]
    counter = {"i": 0}

    def query():
        counter["i"] += 1
        return index(query=questions[counter["i"] % len(questions)])

    text = benchmark(query)
    assert text.startswith("1. ")
    benchmark.extra_info["pages"] = len(big_world().store)


def test_world_build_10k_pages(benchmark):
    """Generating and rendering a world of >= 10,000 pages."""
    world = benchmark.pedantic(
        lambda: build_world(WorldConfig(seed=2, num_entities=8000, filler_paragraphs=1)), rounds=1, iterations=1
    )
    benchmark.extra_info["pages"] = len(world.store)
