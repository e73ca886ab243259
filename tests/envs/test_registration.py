import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import matpo_gym  # noqa: F401  (registers the envs)
from matpo_gym.envs.spec import load_env_spec

WORLD_IDS = sorted(i for i in gym.registry if i.startswith("matpo/world-"))


def test_every_catalogue_env_is_registered():
    assert {"matpo/world-frames-v0", "matpo/world-webwalker-v0", "matpo/world-gaia-v0", "matpo/world-musique-v0",
            "matpo/frames-v0", "matpo/webwalkerqa-v0", "matpo/gaia-v0"} <= set(gym.registry)


@pytest.mark.parametrize("env_id", WORLD_IDS)
@pytest.mark.parametrize("mode", ["matpo", "single"])
def test_env_checker_passes_without_warnings(env_id, mode):
    env = gym.make(env_id, mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("name", ["frames", "webwalkerqa", "gaia"])
def test_real_benchmarks_without_data_say_how_to_get_it(name):
    from matpo_gym.data.benchmarks import DatasetUnavailable

    with pytest.raises(DatasetUnavailable, match="huggingface-cli download"):
        gym.make(f"matpo/{name}-v0")


def test_broken_env_file_names_the_bad_key(tmp_path):
    from matpo_gym.config import ConfigError

    bad = tmp_path / "bad.toml"
    bad.write_text('[limits]\nplanner_turn = 3\n')
    with pytest.raises(ConfigError, match="planner_turn"):
        load_env_spec(str(bad))
    bad.write_text('[limits]\nplanner_turns = "three"\n')
    with pytest.raises(ConfigError, match="limits.planner_turns"):
        load_env_spec(str(bad))
    bad.write_text("mode = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_env_spec(str(bad))


def test_unknown_env_lists_the_available_ones():
    from matpo_gym.catalogue import CatalogueError

    with pytest.raises(CatalogueError, match="world-frames"):
        load_env_spec("no-such-env")


def test_a_catalogue_file_that_does_not_parse_is_made_into_its_error(tmp_path, monkeypatch):
    from matpo_gym.config import ConfigError
    from matpo_gym.envs.registration import register_envs

    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "my-broken.toml").write_text('extends = "world-tiny"\n[limits\nworker_turns = 3\n')
    monkeypatch.chdir(tmp_path)
    assert "matpo/my-broken-v0" in register_envs()
    try:
        with pytest.raises(ConfigError, match=r"my-broken\.toml.*invalid TOML"):
            gym.make("matpo/my-broken-v0")
    finally:
        gym.registry.pop("matpo/my-broken-v0", None)


def test_gym_make_takes_a_noise_rate():
    env = gym.make("matpo/world-tiny-v0", mode="single", noise=0.5).unwrapped
    assert env.noise.rate == 0.5 and len(env.noise.kinds) > 1
    with pytest.raises(TypeError, match="noise must be a NoiseConfig or a rate"):
        gym.make("matpo/world-tiny-v0", noise="high")
    with pytest.raises(ValueError):
        gym.make("matpo/world-tiny-v0", noise=1.5)


def test_an_env_file_that_is_not_utf8_is_named(tmp_path):
    from matpo_gym.config import ConfigError

    bad = tmp_path / "latin.toml"
    bad.write_bytes('description = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.toml: not UTF-8 text"):
        load_env_spec(str(bad))


def test_prompts_named_by_another_checkouts_absolute_paths_are_the_shipped_ones():
    import dataclasses
    from pathlib import Path

    spec = load_env_spec("world-tiny")
    gone = "/gone/checkout/matpo_gym/catalogue/envs/prompts/" + Path(spec.prompts.planner).name
    moved = spec.with_overrides(prompts=dataclasses.replace(spec.prompts, planner=gone))
    assert moved.prompt_text("planner") == spec.prompt_text("planner")
