"""The env files a reproduction writes are ordinary env files: each reads back as the env it was
written from, wherever it is read from."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from matpo_gym.bench.reproduce_config import ReproduceConfig
from matpo_gym.bench.reproduce_envs import make_spec, write_envs
from matpo_gym.envs.spec import load_env_spec


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
    written = [(files.train, config.train_family, "train", config.context_tokens)]
    written += [(files.eval[f], f, "test", config.context_tokens) for f in config.eval_families]
    written += [(files.sweep[c], config.eval_families[0], "test", c) for c in config.context_sweep]
    for path, family, split, context in written:
        expected = make_spec(config, family, split, context)
        assert comparable(load_env_spec(str(path))) == comparable(expected), path
    assert os.path.isabs(load_env_spec(str(files.train)).prompts.planner)
