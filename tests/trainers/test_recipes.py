"""Every recipe in trainers/ validates, starts with its launch command, and the CLI reads it."""

from pathlib import Path

import pytest

from matpo_gym.cli import parse
from matpo_gym.config import ConfigError
from matpo_gym.trainers.config import TrainConfig, load_recipe

RECIPES = sorted((Path(__file__).parents[2] / "trainers").glob("*.toml"))


def test_there_are_recipes():
    names = {p.stem for p in RECIPES}
    assert {"tiny-sft", "tiny-grpo", "tiny-matpo", "paper-matpo-qwen3-14b", "paper-grpo-qwen3-4b"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_validates_and_names_its_command(path):
    config = load_recipe(path)
    assert isinstance(config, TrainConfig)
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and f"--recipe trainers/{path.name}" in first


def test_grpo_and_matpo_recipes_share_the_budget():
    for prefix in ("tiny", "tiny-{}-noise", "paper-{}-qwen3-4b", "paper-{}-qwen3-14b"):
        names = [f"{prefix}-{a}" if "{}" not in prefix else prefix.format(a) for a in ("grpo", "matpo")]
        grpo, matpo = (load_recipe(Path("trainers") / f"{n}.toml") for n in names)
        for field in ("steps", "questions_per_step", "group_size", "lr", "max_new_tokens", "seed", "sharding", "noise"):
            assert getattr(grpo, field) == getattr(matpo, field), (names, field)
        assert (grpo.mode, matpo.mode) == ("single", "matpo")


def test_cli_flags_override_recipe_values():
    flags = ["--steps", "3", "--lr", "0.5", "--sharding", "fsdp"]
    config = parse(["train", "--recipe", "trainers/tiny-matpo.toml", *flags])
    assert isinstance(config, TrainConfig)
    assert config.steps == 3 and config.lr == 0.5 and config.group_size == 4 and config.algo == "matpo"
    assert config.sharding == "fsdp" and TrainConfig().sharding == "none"


def test_bad_recipe_names_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nstep = 3\n")
    with pytest.raises(ConfigError, match="'step'"):
        load_recipe(bad)
    bad.write_text("steps = 3\n")
    with pytest.raises(ConfigError, match="under \\[train\\]"):
        load_recipe(bad)


def test_a_run_from_a_checkpoint_not_trained_yet_names_the_recipe_that_writes_it(tmp_path, monkeypatch, capsys):
    from matpo_gym.cli import main

    monkeypatch.chdir(tmp_path)  # no runs/tiny-sft here
    assert main(["train", "--recipe", "tiny-grpo", "--steps", "2"]) == 2
    assert ("init_from runs/tiny-sft/checkpoints/step-2400 does not exist: trainers/tiny-sft.toml writes it; "
            "train that first (matpo-bench train --recipe trainers/tiny-sft.toml)") in capsys.readouterr().err
    assert main(["train", "--recipe", "tiny-grpo", "--init-from", "nowhere/at/all"]) == 2
    assert "init_from nowhere/at/all does not exist; give the folder" in capsys.readouterr().err
    assert main(["train", "--recipe", "tiny-grpo", "--dry-run"]) == 0  # a plan of the pipeline is fine
    assert not (tmp_path / "runs").exists()


def test_an_init_from_folder_without_a_model_is_named(tmp_path, capsys):
    from matpo_gym.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["train", "--recipe", "tiny-grpo", "--init-from", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "holds no config.json: give the folder of a checkpoint" in capsys.readouterr().err
