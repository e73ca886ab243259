"""RL trains on questions its SFT warm start never imitated, and warns when told otherwise."""

import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from matpo_gym.trainers.config import load_recipe
from matpo_gym.trainers.provenance import (
    ImitatedQuestionsWarning,
    demonstration_worlds,
    imitated_worlds,
    same_questions,
    warn_if_imitated,
)
from matpo_gym.trainers.recipe import env_spec_for

TRAINERS = Path(__file__).parents[2] / "trainers"


@pytest.mark.parametrize("name", ["tiny-grpo", "tiny-matpo", "tiny-grpo-noise", "tiny-matpo-noise"])
def test_tiny_rl_recipes_train_and_evaluate_on_a_world_the_sft_recipe_never_saw(name):
    sft, rl = load_recipe(TRAINERS / "tiny-sft.toml"), load_recipe(TRAINERS / f"{name}.toml")
    assert rl.init_from is not None and rl.init_from.startswith(str(sft.out))
    imitated = [spec.world for spec in demonstration_worlds(env_spec_for(sft, sft.env), sft.sft_worlds)]
    for env in (rl.env, rl.eval_env or rl.env):
        assert not any(same_questions(env_spec_for(rl, env).world, world) for world in imitated), (name, env)


def test_an_sft_checkpoint_records_its_worlds_and_rl_on_them_warns(tiny_model_dir, tmp_path):
    torch = pytest.importorskip("torch")  # noqa: F841
    from matpo_gym.trainers import main
    from matpo_gym.trainers.config import TrainConfig
    from matpo_gym.trainers.rl import RLTrainer

    main(TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=tmp_path / "sft", steps=1,
                     sft_demos=2, sft_mode="single", sft_worlds=2, save_every=0, quiet=True))
    checkpoint = tmp_path / "sft" / "checkpoints" / "step-1"
    assert [w.seed for w in imitated_worlds(checkpoint)] == [0, 1]
    assert imitated_worlds(tiny_model_dir) == []  # not an SFT checkpoint: nothing to compare

    seen, fresh = (env_spec_for(TrainConfig(), name) for name in ("world-tiny", "world-tiny-rl"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_imitated(checkpoint, fresh)
    with pytest.warns(ImitatedQuestionsWarning, match="world seed 0"):
        assert warn_if_imitated(checkpoint, seen)
    longer_pages = replace(seen, world=replace(seen.world, filler_paragraphs=3))  # same questions, longer pages
    with pytest.warns(ImitatedQuestionsWarning):
        assert warn_if_imitated(checkpoint, longer_pages)

    rl = RLTrainer(TrainConfig(algo="grpo", init_from=str(checkpoint), env="world-tiny", out=tmp_path / "rl",
                               steps=1, device="cpu", quiet=True))
    with pytest.warns(ImitatedQuestionsWarning, match="memorised"):
        rl.setup()

    # a second SFT stage on other worlds has learned the first stage's questions too
    main(TrainConfig(algo="sft", init_from=str(checkpoint), env="world-tiny-rl", out=tmp_path / "sft2", steps=1,
                     sft_demos=2, sft_mode="single", sft_worlds=1, save_every=0, quiet=True))
    second = imitated_worlds(tmp_path / "sft2" / "checkpoints" / "step-1")
    assert [w.seed for w in second] == [fresh.world.seed, 0, 1]
    with pytest.warns(ImitatedQuestionsWarning, match="world seed 0"):
        assert warn_if_imitated(tmp_path / "sft2" / "checkpoints" / "step-1", seen)
