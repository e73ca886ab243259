"""An env file can extend another and name only what it changes."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import pytest

import matpo_gym  # noqa: F401  (registers the envs)
from matpo_gym.config import ConfigError
from matpo_gym.envs.spec import load_env_spec


def fields(spec) -> dict:
    data = dataclasses.asdict(spec)
    del data["name"], data["description"]
    return data


def test_a_variant_is_its_parent_with_only_its_own_keys_changed():
    parent, variant = load_env_spec("world-tiny"), load_env_spec("world-tiny-rl")
    assert variant.name == "world-tiny-rl" and "seed 100" in variant.description
    assert variant.world.seed == 100 and parent.world.seed == 0
    # a key set in a table leaves that table's other keys as the parent has them
    assert variant.world.num_entities == parent.world.num_entities == 1500
    assert fields(variant) == fields(dataclasses.replace(parent, world=dataclasses.replace(parent.world, seed=100)))
    assert variant.prompt_text("planner") == parent.prompt_text("planner")


def test_a_variant_elsewhere_reads_its_parents_prompts_and_its_own(tmp_path):
    (tmp_path / "mine.md").write_text("My worker prompt.\n")
    path = tmp_path / "noisy-tiny.toml"
    path.write_text('extends = "world-tiny"\n[limits]\nworker_turns = 2\n[prompts]\nworker = "mine.md"\n')
    spec = load_env_spec(str(path))
    parent = load_env_spec("world-tiny")
    assert spec.name == "noisy-tiny" and spec.limits.worker_turns == 2
    assert spec.limits.planner_turns == parent.limits.planner_turns
    assert spec.prompt_text("planner") == parent.prompt_text("planner")  # relative to world-tiny's folder
    assert spec.prompt_text("worker") == "My worker prompt.\n"  # relative to its own


def test_a_chain_of_variants_and_a_path_beside_the_file(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "world-tiny"\n[world]\nseed = 7\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\nversion = 3\n[tools]\nsearch_top_k = 5\n')
    spec = load_env_spec(str(tmp_path / "b.toml"))
    assert (spec.name, spec.version, spec.world.seed, spec.tools.search_top_k) == ("b", 3, 7, 5)
    assert spec.tools.browse_max_chars == load_env_spec("world-tiny").tools.browse_max_chars


def test_a_cycle_an_unknown_parent_and_a_bad_value_are_clear_errors(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ConfigError, match="cycle: a.toml -> b.toml -> a.toml"):
        load_env_spec(str(tmp_path / "a.toml"))
    (tmp_path / "c.toml").write_text('extends = "no-such-env"\n')
    unknown = r"c.toml: extends 'no-such-env': Unknown env 'no-such-env'. Available: .*world-tiny"
    with pytest.raises(ConfigError, match=unknown):
        load_env_spec(str(tmp_path / "c.toml"))
    (tmp_path / "d.toml").write_text("extends = 3\n")
    with pytest.raises(ConfigError, match="'extends' must be an env name or a .toml path, got 3"):
        load_env_spec(str(tmp_path / "d.toml"))


def test_a_variant_in_the_catalogue_registers_with_its_parents_version():
    assert "matpo/world-tiny-rl-v0" in gym.registry
    env = gym.make("matpo/world-tiny-rl-v0", mode="single")
    try:
        assert env.unwrapped.spec_config.world.seed == 100
    finally:
        env.close()


def test_catalogue_envs_are_readable_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_env_spec("world-tiny-rl").prompt_text("single") == load_env_spec("world-tiny").prompt_text("single")
