"""What one RL update does with a batch: the token mean, the logged figures, the sampling seeds."""

import pytest

pytest.importorskip("torch")

from matpo_gym.trainers.config import TrainConfig  # noqa: E402

from .test_worker_advantage import matpo_episode  # noqa: E402


def updating_trainer(tiny_model_dir, config: TrainConfig, optimizer: str = "adamw", reference: bool = False):
    """An RLTrainer set up for :meth:`update` alone: the tiny model in float32 on the CPU, no
    rollout engine (rollouts would share the trained model: nothing to sync)."""
    import copy

    import torch

    from matpo_gym.trainers.distributed import DataParallel
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.rl import RLTrainer
    from matpo_gym.trainers.state import load_model

    trainer = RLTrainer(config)
    trainer.parallel = DataParallel(cpu=True)
    trainer.device = torch.device("cpu")
    trainer.precision = resolve_precision("fp32", "cpu")
    trainer.model, trainer.tokenizer = load_model(str(tiny_model_dir), trainer.device)
    kind = torch.optim.AdamW if optimizer == "adamw" else torch.optim.SGD
    trainer.optimizer = kind(trainer.model.parameters(), lr=config.lr)
    trainer.reference = copy.deepcopy(trainer.model) if reference else None
    trainer.policy = None
    return trainer


def test_skipping_zero_advantage_groups_leaves_the_update_unchanged(tiny_model_dir):
    # without a KL term, zero-advantage turns are left out of the forward pass; their tokens must still
    # count in the token mean, so the step equals the one with a (zero-gradient) KL term that keeps them
    import torch

    def step(kl_coef: float) -> list[torch.Tensor]:
        # a reference equal to the model: the KL term is 0 with 0 gradient, but zero-advantage turns stay in
        config = TrainConfig(algo="matpo", lr=1.0, kl_coef=kl_coef, grad_clip=1e9)
        trainer = updating_trainer(tiny_model_dir, config, optimizer="sgd", reference=kl_coef > 0)
        before = [p.detach().clone() for p in trainer.model.parameters()]
        trainer.update([matpo_episode("a/step0/g0", 1.0), matpo_episode("a/step0/g1", 0.0),
                        matpo_episode("b/step0/g0", 1.0), matpo_episode("b/step0/g1", 1.0)])
        return [p.detach() - b for b, p in zip(before, trainer.model.parameters())]

    skipped, kept = step(0.0), step(1e-3)
    assert any(torch.count_nonzero(d) for d in skipped)
    for a, b in zip(skipped, kept):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_the_logged_loss_is_the_loss_minimised_whatever_the_micro_batches(tiny_model_dir):
    # micro_batch_tokens only bounds memory: the step, and what the log says of it, must not move
    def step(micro_batch_tokens: int) -> dict:
        config = TrainConfig(algo="matpo", lr=1e-3, micro_batch_tokens=micro_batch_tokens)
        trainer = updating_trainer(tiny_model_dir, config, optimizer="sgd")
        return trainer.update([matpo_episode("a/step0/g0", 1.0), matpo_episode("a/step0/g1", 0.0),
                               matpo_episode("b/step0/g0", 1.0), matpo_episode("b/step0/g1", 1.0)])

    whole, split = step(100_000), step(20)
    assert whole["samples"] == split["samples"] > 2
    for key in ("loss", "clip_fraction", "approx_kl", "grad_norm"):
        assert split[key] == pytest.approx(whole[key], rel=1e-4, abs=1e-7), key


def test_rollout_and_evaluation_seeds_never_share_a_draw(tiny_model_dir):
    # a policy samples its k-th call of a step with seed + k: no two steps, and no evaluation,
    # may meet on one seed
    from matpo_gym.envs.gym_env import stable_seed
    from matpo_gym.trainers.distributed import DataParallel
    from matpo_gym.trainers.rl import RLTrainer

    trainer = RLTrainer(TrainConfig(algo="matpo", seed=3))
    trainer.parallel = DataParallel(cpu=True)
    calls = 12
    seeds = [trainer._sampling_seed(step) + k for step in range(200) for k in range(calls)]
    seeds += [stable_seed(prefix, 3, 0) % 2**62 + k for prefix in ("eval", "eval_sampled") for k in range(calls)]
    assert len(set(seeds)) == len(seeds)
    again = RLTrainer(TrainConfig(algo="matpo", seed=3))  # a resumed run draws what the first one drew
    again.parallel = DataParallel(cpu=True)
    assert [again._sampling_seed(s) for s in range(200)] == [trainer._sampling_seed(s) for s in range(200)]
