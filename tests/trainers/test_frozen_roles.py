"""``frozen_roles``: an ablation that keeps a role's tokens out of the gradient, so a role is not
pushed by an advantage its own output did not earn."""

import pytest

pytest.importorskip("torch")

from matpo_gym.cli import parse  # noqa: E402
from matpo_gym.config import ConfigError  # noqa: E402
from matpo_gym.trainers.advantages import assign_credit  # noqa: E402
from matpo_gym.trainers.batch import samples_from_credit  # noqa: E402
from matpo_gym.trainers.config import TrainConfig  # noqa: E402
from matpo_gym.trainers.dryrun import check  # noqa: E402

from .test_worker_advantage import matpo_episode  # noqa: E402


def credited_pair():
    return assign_credit([matpo_episode("a", 1.0), matpo_episode("b", 0.0)], ["q", "q"], include_workers=True)


def test_a_frozen_role_gives_no_samples_and_the_others_are_unchanged():
    credited = credited_pair()
    everything = samples_from_credit(credited)
    no_planner = samples_from_credit(credited, frozen_roles=("planner",))
    assert no_planner == [s for s in everything if s.role != "planner"]
    assert {s.role for s in no_planner} == {"worker"}
    no_worker = samples_from_credit(credited, frozen_roles=("worker",))
    assert no_worker == [s for s in everything if s.role != "worker"] and no_worker


def test_parent_mask_rows_still_come_from_a_frozen_planner():
    credited = credited_pair()
    full = samples_from_credit(credited, worker_advantage="parent_mask")
    frozen = samples_from_credit(credited, worker_advantage="parent_mask", frozen_roles=("planner",))
    assert frozen == [s for s in full if s.role == "worker"]
    assert any(v != 0.0 for s in frozen for v in s.token_advantages)


@pytest.mark.parametrize("algo, roles, message", [
    ("matpo", ("planner", "worker"), "freezes every role"),
    ("matpo", ("single",), "'single' is not one of them"),
    ("grpo", ("single",), "freezes every role"),
    ("grpo", ("planner",), "grpo trains the roles single"),
])
def test_frozen_roles_that_cannot_work_are_refused(algo, roles, message):
    with pytest.raises(ConfigError, match=message):
        check(TrainConfig(algo=algo, frozen_roles=roles))


def test_the_cli_reads_frozen_roles():
    config = parse(["train", "--algo", "matpo", "--frozen-roles", "planner"])
    assert config.frozen_roles == ("planner",)
    check(config)


def test_the_update_trains_only_the_tokens_of_roles_not_frozen(tiny_model_dir):
    import torch

    from matpo_gym.trainers.distributed import DataParallel
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.rl import RLTrainer
    from matpo_gym.trainers.state import load_model

    def trained_tokens(frozen: tuple[str, ...]) -> float:
        trainer = RLTrainer(TrainConfig(algo="matpo", lr=1e-3, frozen_roles=frozen))
        trainer.parallel = DataParallel(cpu=True)
        trainer.device = torch.device("cpu")
        trainer.precision = resolve_precision("fp32", "cpu")
        trainer.model, trainer.tokenizer = load_model(str(tiny_model_dir), trainer.device)
        trainer.optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=1e-3)
        trainer.reference = None
        trainer.policy = None  # rollouts share the trained model: nothing to sync
        before = [p.detach().clone() for p in trainer.model.parameters()]
        stats = trainer.update([matpo_episode("a/step0/g0", 1.0), matpo_episode("a/step0/g1", 0.0)])
        assert any(not torch.equal(b, p) for b, p in zip(before, trainer.model.parameters()))
        return stats["trained_tokens"]

    planner, workers = 3 + 2 + 1 + 4 + 2, 6 + 2 + 5  # generated tokens of one episode, by role
    assert trained_tokens(()) == 2 * (planner + workers)
    assert trained_tokens(("planner",)) == 2 * workers
    assert trained_tokens(("worker",)) == 2 * planner


def test_skipping_zero_advantage_groups_leaves_the_update_unchanged(tiny_model_dir):
    # without a KL term, zero-advantage turns are left out of the forward pass; their tokens must still
    # count in the token mean, so the step equals the one with a (zero-gradient) KL term that keeps them
    import copy

    import torch

    from matpo_gym.trainers.distributed import DataParallel
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.rl import RLTrainer
    from matpo_gym.trainers.state import load_model

    def step(kl_coef: float) -> list[torch.Tensor]:
        trainer = RLTrainer(TrainConfig(algo="matpo", lr=1.0, kl_coef=kl_coef, grad_clip=1e9))
        trainer.parallel = DataParallel(cpu=True)
        trainer.device = torch.device("cpu")
        trainer.precision = resolve_precision("fp32", "cpu")
        trainer.model, trainer.tokenizer = load_model(str(tiny_model_dir), trainer.device)
        trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=1.0)
        # a reference equal to the model: the KL term is 0 with 0 gradient, but zero-advantage turns stay in
        trainer.reference = copy.deepcopy(trainer.model) if kl_coef else None
        trainer.policy = None
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
    import torch

    from matpo_gym.trainers.distributed import DataParallel
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.rl import RLTrainer
    from matpo_gym.trainers.state import load_model

    def step(micro_batch_tokens: int) -> dict:
        trainer = RLTrainer(TrainConfig(algo="matpo", lr=1e-3, micro_batch_tokens=micro_batch_tokens))
        trainer.parallel = DataParallel(cpu=True)
        trainer.device = torch.device("cpu")
        trainer.precision = resolve_precision("fp32", "cpu")
        trainer.model, trainer.tokenizer = load_model(str(tiny_model_dir), trainer.device)
        trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=1e-3)
        trainer.reference = None
        trainer.policy = None
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
