"""Trainers: SFT warm start, single-agent GRPO and MATPO, sharing rollout, loss and checkpoints."""

from __future__ import annotations

from collections.abc import Callable

from matpo_gym.trainers.config import TrainConfig, check, load_recipe
from matpo_gym.trainers.recipe import Recipe
from matpo_gym.trainers.resume import check_start, claim_out_folder

TRAINERS: dict[str, str] = {
    "sft": "matpo_gym.trainers.sft:SFTTrainer",
    "grpo": "matpo_gym.trainers.rl:RLTrainer",
    "matpo": "matpo_gym.trainers.rl:RLTrainer",
}


def make_trainer(config: TrainConfig) -> Recipe:
    """The recipe for ``config.algo`` (imported lazily: torch is only needed to train)."""
    import importlib

    module_name, _, attr = TRAINERS[config.algo].partition(":")
    factory: Callable[[TrainConfig], Recipe] = getattr(importlib.import_module(module_name), attr)
    return factory(config)


def main(config: TrainConfig) -> dict[str, float]:
    """Validate, set up, train (resuming from the latest checkpoint in ``config.out``), clean up;
    with ``config.dry_run``, only validate the config and print what the run needs."""
    if config.dry_run:
        from matpo_gym.trainers.dryrun import dry_run

        dry_run(config)
        return {}
    check(config)  # the dry run's one-line error, before a model loads or an hour is spent learning nothing
    check_start(config)  # not in the dry run, which plans a pipeline before its first stage has run
    claim_out_folder(config)
    trainer = make_trainer(config)
    trainer.setup()
    try:
        return trainer.train()
    finally:
        trainer.cleanup()


__all__ = ["TRAINERS", "Recipe", "TrainConfig", "load_recipe", "main", "make_trainer"]
