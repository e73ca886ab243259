"""The env files a reproduction writes are ordinary env files: each reads back as the env it was
written from, wherever it is read from."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from matpo_gym.bench.reproduce_config import ReproduceConfig
from matpo_gym.bench.reproduce_envs import make_spec, sft_spec, write_envs
from matpo_gym.config import ConfigError
from matpo_gym.envs.spec import load_env_spec
from matpo_gym.trainers.provenance import demonstration_worlds, same_questions


def comparable(spec) -> dict:
    """Every field but the folder it was read from, prompt paths resolved against that folder."""
    data = dataclasses.asdict(spec)
    root = Path(data.pop("root"))
    data["prompts"] = {key: str((root / value).resolve()) if isinstance(value, str) else value
                       for key, value in data["prompts"].items()}
    return data


def test_each_written_env_reads_back_as_the_env_it_was_written_from(tmp_path, monkeypatch):
    config = ReproduceConfig(preset="cpu", out=tmp_path / "out", report=tmp_path / "report").resolved()
    files = write_envs(config)
    monkeypatch.chdir(tmp_path)  # prompt paths are absolute: the files work from any folder
    assert comparable(load_env_spec(str(files.sft))) == comparable(sft_spec(config))
    assert comparable(load_env_spec(str(files.sft_tune))) == comparable(sft_spec(config, config.difficulty))
    written = [(files.train, config.train_family, "train", config.context_tokens)]
    written += [(files.eval[f], f, "test", config.context_tokens) for f in config.eval_families]
    written += [(files.sweep[c], config.eval_families[0], "test", c) for c in config.context_sweep]
    for path, family, split, context in written:
        expected = make_spec(config, family, split, context)
        assert comparable(load_env_spec(str(path))) == comparable(expected), path
    assert os.path.isabs(load_env_spec(str(files.train)).prompts.planner)
    assert files.sft != files.train  # same family and split, another world: the names must not collide


@pytest.mark.parametrize("preset", ["cpu", "pressure", "gpu", "smoke"])
def test_rl_trains_and_every_model_is_evaluated_on_a_world_sft_never_imitated(tmp_path, preset):
    config = ReproduceConfig(preset=preset, out=tmp_path / "out", report=tmp_path / "report").resolved()
    files = write_envs(config)
    imitated = [spec.world for spec in demonstration_worlds(load_env_spec(str(files.sft)), config.sft_worlds)]
    assert load_env_spec(str(files.sft)).world.seed == load_env_spec(config.base_env).world.seed
    for path in [files.train, *files.eval.values(), *files.sweep.values()]:
        world = load_env_spec(str(path)).world
        assert world.seed == config.rl_world_seed, path
        assert not any(same_questions(world, seen) for seen in imitated), path


def test_an_rl_world_among_the_imitated_ones_is_refused(tmp_path):
    config = ReproduceConfig(preset="cpu", out=tmp_path / "out", report=tmp_path / "report",
                             rl_world_seed=3).resolved()
    with pytest.raises(ConfigError, match=r"rl_world_seed 3 is one of the worlds SFT imitates \(seeds 0-7\)"):
        write_envs(config)
    assert not (tmp_path / "out" / "envs").exists()


def test_a_world_with_fewer_held_out_questions_than_planned_is_refused(tmp_path):
    config = ReproduceConfig(preset="smoke", out=tmp_path / "out", report=tmp_path / "report",
                             eval_questions=10).resolved()
    with pytest.raises(ConfigError, match=r"held-out frames-like questions, fewer than eval_questions = 10"):
        write_envs(config)


def test_the_pressure_preset_caps_rl_and_evaluation_but_not_the_demonstrations(tmp_path):
    config = ReproduceConfig(preset="pressure", out=tmp_path / "out", report=tmp_path / "report").resolved()
    files = write_envs(config)
    for path in [files.train, *files.eval.values()]:
        assert load_env_spec(str(path)).limits.total_budget("single") == config.context_tokens, path
    for budget, path in files.sweep.items():
        assert load_env_spec(str(path)).limits.total_budget("worker") == budget
    sft = load_env_spec(str(files.sft)).limits
    assert sft.total_budget("single") is None and sft.context_tokens == max(config.context_sweep)


def test_under_the_pressure_preset_one_worker_per_hop_reads_less_than_a_single_agent(tmp_path):
    """The setting the preset exists for, shown by its demonstrator before any training: a single
    agent carries both pages of a two-hop question, each worker one."""
    from matpo_gym.envs.context import conversation_tokens
    from matpo_gym.envs.gym_env import MatpoEnv
    from matpo_gym.envs.overrides import apply_overrides
    from matpo_gym.policies.scripted import SearchReadPolicy
    from matpo_gym.rollout import EpisodeRequest, rollout

    config = ReproduceConfig(preset="pressure", out=tmp_path / "out", report=tmp_path / "report").resolved()
    spec = apply_overrides(load_env_spec(str(write_envs(config).eval["frames"])), ["limits.total_tokens=none"])

    def longest(mode: str) -> dict[str, dict[str, int]]:
        """Per question, each role's longest whole conversation."""
        tasks = list(MatpoEnv(spec, mode=mode).tasks)[:12]
        requests = [EpisodeRequest(task, task.id) for task in tasks]
        found: dict[str, dict[str, int]] = {}
        for result in rollout(lambda: MatpoEnv(spec, mode=mode), SearchReadPolicy(decompose=True), requests):
            for t in result.trajectories:
                tokens = conversation_tokens(t.messages)
                roles = found.setdefault(result.task_id, {})
                roles[t.role.value] = max(tokens, roles.get(t.role.value, 0))
        return found

    single, split = longest("single"), longest("matpo")
    lighter = [max(roles["worker"], roles["planner"]) * 1.15 < single[q]["single"] for q, roles in split.items()]
    assert sum(lighter) >= 0.75 * len(lighter)


@pytest.mark.parametrize("preset", ["cpu", "pressure", "gpu"])
def test_every_preset_generates_its_longest_demonstrated_turn(tmp_path, preset):
    """A cap shorter than a demonstrated turn cuts the actions the warm start learned (the cpu
    preset's first run cut 5% of its planner's delegations at 64 tokens)."""
    from matpo_gym.bench.reproduce import build_model, longest_demonstrated_turn

    config = ReproduceConfig(preset=preset, out=tmp_path / "out", report=tmp_path / "report").resolved()
    longest = longest_demonstrated_turn(config, write_envs(config), build_model(config))
    assert 40 < longest <= config.max_new_tokens


def test_the_pressure_warm_start_learns_one_hop_questions_before_the_runs_two_hop_ones(tmp_path):
    """Each SFT stage has its own env file, on the demonstrations' world, uncapped; only the
    difficulty differs, and it is in the file name."""
    config = ReproduceConfig(preset="pressure", out=tmp_path / "out", report=tmp_path / "report").resolved()
    assert (config.sft_difficulty, config.difficulty) == ("easy", "medium") and config.sft_tune_steps > 0
    files = write_envs(config)
    first, second = load_env_spec(str(files.sft)), load_env_spec(str(files.sft_tune))
    assert first.source.difficulty == "easy" and "-easy-" in files.sft.name
    assert second.source.difficulty == load_env_spec(str(files.train)).source.difficulty == "medium"
    assert files.sft != files.sft_tune != files.train
    assert first.world == second.world and second.limits == first.limits
    assert dataclasses.replace(first, name=second.name, description=second.description,
                               source=second.source) == second


def test_a_cut_manifest_and_bad_paths_are_one_line_errors(tmp_path, capsys):
    from matpo_gym.cli import main

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "reproduce.json").write_text('{"preset": "smoke",\n')
    assert main(["reproduce", "--out", str(tmp_path / "r"), "--report-only"]) == 2
    assert f"{tmp_path / 'r' / 'reproduce.json'} is unreadable" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["run", "--limit", "1", "--quiet", "--out", str(tmp_path / "file")]) == 2
    assert "Not a directory" in capsys.readouterr().err
    assert main(["serve", "--policy", "scripted", "--port", "70000"]) == 2
    assert "--port must be from 0 to 65535" in capsys.readouterr().err
