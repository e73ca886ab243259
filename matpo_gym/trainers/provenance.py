"""Which offline worlds a warm start imitated, so that RL does not train on its memorised questions.

SFT imitates the scripted policy on every training question of its worlds, several epochs over.
RL started from that model on the same questions trains on answers it has learned by heart, which
held-out questions are not: its rewards start higher and move less. RL should train on a world
the warm start never saw (``envs/world-tiny-rl.toml`` is world-tiny with such a world).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from matpo_gym.envs.spec import EnvSpec, WorldSpec


class ImitatedQuestionsWarning(UserWarning):
    """RL is about to train on questions its SFT warm start imitated."""


def demonstration_worlds(spec: EnvSpec, count: int) -> list[EnvSpec]:
    """The env, plus ``count - 1`` more offline worlds (world seeds after the env's own)."""
    world = spec.world
    return [spec] + [replace(spec, world=replace(world, seed=world.seed + 1 + i)) for i in range(count - 1)]


def imitated_worlds(checkpoint: str | Path) -> list[WorldSpec]:
    """The worlds whose training questions an SFT checkpoint imitated; empty for anything else
    (an RL checkpoint, a hub model, or an SFT checkpoint that predates this record)."""
    from matpo_gym.trainers.state import Checkpoints  # torch: only when a checkpoint is read

    state = Checkpoints.state(Path(checkpoint)) or {}
    extra: dict[str, Any] = state.get("extra") or {}
    return [WorldSpec(**world) for world in extra.get("imitated_worlds", [])]


def same_questions(a: WorldSpec, b: WorldSpec) -> bool:
    """Whether two worlds pose the same questions: page length (filler prose) changes none of them."""
    return replace(a, filler_paragraphs=0) == replace(b, filler_paragraphs=0)


def among(world: WorldSpec, worlds: Iterable[WorldSpec]) -> bool:
    """Whether ``world`` poses the questions of one of ``worlds``."""
    return any(same_questions(world, other) for other in worlds)


def world_record(specs: list[EnvSpec], start: str | Path | None = None) -> list[dict[str, Any]]:
    """What an SFT checkpoint stores of the worlds it imitated: its demonstrations', and those the
    checkpoint it started from imitated (a second SFT stage has learned the first one's questions too)."""
    own = [asdict(spec.world) for spec in specs if spec.source.kind == "world"]
    earlier = [asdict(world) for world in imitated_worlds(start)] if start else []
    return own + [world for world in earlier if world not in own]


def warn_if_imitated(checkpoint: str | Path | None, spec: EnvSpec) -> bool:
    """Warn when RL is about to train on questions its warm start imitated; True if it warned."""
    if checkpoint is None or spec.source.kind != "world":
        return False
    if not among(spec.world, imitated_worlds(checkpoint)):
        return False
    warnings.warn(
        f"The warm start {checkpoint} imitated scripted answers to the training questions of "
        f"{spec.name!r} (world seed {spec.world.seed}): RL on them trains on memorised answers, "
        "unlike held-out questions, and its rewards start high and move little. Train on a world "
        "the SFT run did not use: another [world] seed, as envs/world-tiny-rl.toml is for world-tiny.",
        ImitatedQuestionsWarning,
        stacklevel=2,
    )
    return True
