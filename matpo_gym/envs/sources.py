"""Task sources: turn an env spec's ``[source]`` into tasks and the pages local tools read."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from matpo_gym.data import benchmarks
from matpo_gym.data.benchmarks import DatasetUnavailable
from matpo_gym.data.jsonl import load_tasks_jsonl
from matpo_gym.data.tasks import PageStore, Task
from matpo_gym.data.world import World, WorldConfig, build_world
from matpo_gym.envs.spec import EnvSpec, WorldSpec


@dataclass(frozen=True)
class TaskSource:
    """The tasks of one env and the offline site its local tools read, if any."""

    tasks: tuple[Task, ...]
    site: PageStore | None


@functools.lru_cache(maxsize=8)
def world_for(spec: WorldSpec) -> World:
    """The world an env spec describes; cached so that every env of a run shares one."""
    return build_world(
        WorldConfig(
            seed=spec.seed,
            num_entities=spec.num_entities,
            distractors_per_entity=spec.distractors_per_entity,
            filler_paragraphs=spec.filler_paragraphs,
        )
    )


def load_source(spec: EnvSpec, *, split: str | None = None) -> TaskSource:
    """Tasks for ``spec``; raises :class:`DatasetUnavailable` with instructions when data is missing."""
    source = spec.source
    split = split or source.split
    if source.kind == "world":
        world = world_for(spec.world)
        tasks = world.tasks(source.family, split=split, difficulty=source.difficulty)
        return TaskSource(tuple(tasks), world.store)
    if source.kind == "jsonl":
        if source.path is None:
            raise DatasetUnavailable(f"Env {spec.name!r}: source.kind 'jsonl' needs source.path.")
        return TaskSource(load_tasks_jsonl(Path(source.path), source.family), None)
    return TaskSource(tuple(benchmarks.load(source.kind, path=source.path, split=split)), None)
