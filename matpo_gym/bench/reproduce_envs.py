"""The env files of a reproduction: the base env with the run's family, split, world and pressure
knobs, written as ordinary TOML env files so any stage can be rerun by hand."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w

from matpo_gym.bench.reproduce_config import ReproduceConfig
from matpo_gym.config import to_dict
from matpo_gym.envs.spec import EnvSpec, load_env_spec


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

    train: Path
    eval: dict[str, Path]
    """Family -> env file at the configured context budget."""
    sweep: dict[int, Path]
    """Context budget -> env file of the first eval family."""


def make_spec(config: ReproduceConfig, family: str, split: str, context_tokens: int) -> EnvSpec:
    """The base env with this reproduction's family, world and pressure knobs."""
    base = load_env_spec(config.base_env)
    difficulty = config.difficulty or None
    name = f"repro-{family}-{split}-ctx{context_tokens}"
    return replace(
        base,
        name=name,
        description=f"matpo-bench reproduce: {family}-like questions ({split} split), context {context_tokens}.",
        source=replace(base.source, kind="world", family=family, difficulty=difficulty, split=split),
        world=replace(base.world, num_entities=config.num_entities, filler_paragraphs=config.filler_paragraphs),
        tools=replace(base.tools, browse_max_chars=config.browse_max_chars, search_top_k=config.search_top_k),
        limits=replace(base.limits, planner_turns=config.turns, worker_turns=config.turns,
                       single_turns=config.turns, context_tokens=context_tokens,
                       summary_chars=config.summary_chars),
        scoring=replace(base.scoring, format_weight=config.format_weight),
    )


def write_envs(config: ReproduceConfig) -> EnvFiles:
    folder = config.out / "envs"
    folder.mkdir(parents=True, exist_ok=True)

    def write(spec: EnvSpec) -> Path:
        path = folder / f"{spec.name}.toml"
        path.write_text(env_toml(spec), encoding="utf-8")
        load_env_spec(str(path))  # the file must read back as the same env
        return path

    train = write(make_spec(config, config.train_family, "train", config.context_tokens))
    evals = {f: write(make_spec(config, f, "test", config.context_tokens)) for f in config.eval_families}
    first = config.eval_families[0]
    sweep = {c: write(make_spec(config, first, "test", c)) for c in config.context_sweep}
    return EnvFiles(train, evals, sweep)


__all__ = ["EnvFiles", "env_toml", "make_spec", "write_envs"]
