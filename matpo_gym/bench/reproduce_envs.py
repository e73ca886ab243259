"""The env files of a reproduction: the base env with the run's family, split, world and pressure
knobs, written as ordinary TOML env files so any stage can be rerun by hand.

SFT imitates questions of the base env's world; RL trains, and every model is evaluated, on
``rl_world_seed``'s world, which no demonstration comes from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w

from matpo_gym.bench.reproduce_config import ReproduceConfig
from matpo_gym.config import ConfigError, to_dict
from matpo_gym.envs.sources import load_source
from matpo_gym.envs.spec import EnvSpec, WorldSpec, load_env_spec
from matpo_gym.trainers.provenance import among, demonstration_worlds


def _without_none(table: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: an unset optional field is left out, so it reads back as its default."""
    return {key: _without_none(value) if isinstance(value, dict) else value
            for key, value in table.items() if value is not None}


def env_toml(spec: EnvSpec) -> str:
    """An env file equal to ``spec``, prompt paths made absolute so the file works anywhere."""
    data = to_dict(spec)
    data.pop("root")
    data["prompts"] = {
        key: str((Path(spec.root) / value).resolve()) if isinstance(value, str) else value
        for key, value in data["prompts"].items()
    }
    return tomli_w.dumps(_without_none(data))


@dataclass(frozen=True)
class EnvFiles:
    """The generated env files of one reproduction."""

    sft: Path
    """The SFT demonstrations' env (its world and the ``sft_worlds - 1`` after it), at ``sft_difficulty``."""
    sft_tune: Path
    """The second SFT stage's: the same, at the run's own difficulty."""
    train: Path
    """RL's training env, on a world SFT never imitated."""
    eval: dict[str, Path]
    """Family -> env file at the configured context budget."""
    sweep: dict[int, Path]
    """Context budget -> env file of the first eval family."""


def make_spec(config: ReproduceConfig, family: str, split: str, context_tokens: int,
              world_seed: int | None = None, capped: bool = True, difficulty: str | None = None) -> EnvSpec:
    """The base env with this reproduction's family, world and pressure knobs; ``world_seed``
    defaults to the RL world (the SFT env passes the base env's own), ``difficulty`` to the run's
    (another one is named in the file name). ``capped``: with ``context_limit = "total"``, every
    role's whole conversation is capped at ``context_tokens``."""
    base = load_env_spec(config.base_env)
    seed = config.rl_world_seed if world_seed is None else world_seed
    difficulty = config.difficulty if difficulty is None else difficulty
    tag = "" if difficulty == config.difficulty else f"-{difficulty or 'all'}"
    name = f"repro-{family}-{split}{tag}-world{seed}-ctx{context_tokens}"
    return replace(
        base,
        name=name,
        description=f"matpo-bench reproduce: {family}-like questions ({split} split) of world {seed}, "
                    f"context {context_tokens}.",
        source=replace(base.source, kind="world", family=family, difficulty=difficulty or None, split=split),
        world=replace(base.world, seed=seed, num_entities=config.num_entities,
                      filler_paragraphs=config.filler_paragraphs),
        tools=replace(base.tools, browse_max_chars=config.browse_max_chars, search_top_k=config.search_top_k),
        limits=replace(base.limits, planner_turns=config.turns, worker_turns=config.turns,
                       single_turns=config.turns, context_tokens=context_tokens,
                       total_tokens=context_tokens if capped and config.context_limit == "total" else None,
                       summary_chars=config.summary_chars),
        scoring=replace(base.scoring, format_weight=config.format_weight),
    )


def sft_spec(config: ReproduceConfig, difficulty: str | None = None) -> EnvSpec:
    """The env SFT's demonstrations start from: the training family on the base env's world, with
    the largest context budget of the run and no cap on a conversation, so a single agent's
    demonstrations show every page it reads; the cap is a condition RL and evaluation play under.
    ``difficulty`` defaults to the first stage's, ``sft_difficulty``."""
    base_seed = load_env_spec(config.base_env).world.seed
    budget = max((config.context_tokens, *config.context_sweep))
    difficulty = config.sft_difficulty if difficulty is None else difficulty
    return make_spec(config, config.train_family, "train", budget, world_seed=base_seed, capped=False,
                     difficulty=difficulty)


def sft_demonstration_worlds(config: ReproduceConfig) -> list[WorldSpec]:
    """The worlds whose training questions the SFT warm start imitates."""
    return [spec.world for spec in demonstration_worlds(sft_spec(config), config.sft_worlds)]


def rl_trains_on_imitated_questions(config: ReproduceConfig) -> bool:
    rl_world = make_spec(config, config.train_family, "train", config.context_tokens).world
    return among(rl_world, sft_demonstration_worlds(config))


def check_rl_world(config: ReproduceConfig) -> None:
    """Refuse an RL world whose questions the SFT warm start imitates."""
    if rl_trains_on_imitated_questions(config):
        imitated = sft_demonstration_worlds(config)
        raise ConfigError(
            f"reproduce: rl_world_seed {config.rl_world_seed} is one of the worlds SFT imitates (seeds "
            f"{imitated[0].seed}-{imitated[-1].seed}); RL would train on answers learned by heart. "
            "Pick a seed outside them."
        )


def check_eval_questions(config: ReproduceConfig) -> None:
    """Refuse a world too small for the evaluation: a cell would never hold its planned questions."""
    for family in config.eval_families:
        found = len(load_source(make_spec(config, family, "test", config.context_tokens)).tasks)
        if found < config.eval_questions:
            raise ConfigError(
                f"reproduce: world {config.rl_world_seed} has {found} held-out {family}-like questions, fewer than "
                f"eval_questions = {config.eval_questions}; lower eval_questions, or raise num_entities or "
                "pick another rl_world_seed."
            )


def write_envs(config: ReproduceConfig) -> EnvFiles:
    check_rl_world(config)
    check_eval_questions(config)
    folder = config.out / "envs"
    folder.mkdir(parents=True, exist_ok=True)

    def write(spec: EnvSpec) -> Path:
        path = folder / f"{spec.name}.toml"
        path.write_text(env_toml(spec), encoding="utf-8")
        load_env_spec(str(path))  # the file must read back as the same env
        return path

    sft = write(sft_spec(config))
    sft_tune = write(sft_spec(config, config.difficulty))
    train = write(make_spec(config, config.train_family, "train", config.context_tokens))
    evals = {f: write(make_spec(config, f, "test", config.context_tokens)) for f in config.eval_families}
    first = config.eval_families[0]
    sweep = {c: write(make_spec(config, first, "test", c)) for c in config.context_sweep}
    return EnvFiles(sft, sft_tune, train, evals, sweep)


__all__ = ["EnvFiles", "check_eval_questions", "check_rl_world", "env_toml", "make_spec",
           "rl_trains_on_imitated_questions", "sft_demonstration_worlds", "sft_spec", "write_envs"]
