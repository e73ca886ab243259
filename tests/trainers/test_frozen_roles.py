"""``frozen_roles``: an ablation that keeps a role's tokens out of the gradient, so a role is not
pushed by an advantage its own output did not earn."""

import pytest

pytest.importorskip("torch")

from matpo_gym.cli import parse  # noqa: E402
from matpo_gym.config import ConfigError  # noqa: E402
from matpo_gym.trainers.advantages import assign_credit  # noqa: E402
from matpo_gym.trainers.batch import samples_from_credit  # noqa: E402
from matpo_gym.trainers.config import TrainConfig, check  # noqa: E402

from .test_update import updating_trainer  # noqa: E402
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

    def trained_tokens(frozen: tuple[str, ...]) -> float:
        trainer = updating_trainer(tiny_model_dir, TrainConfig(algo="matpo", lr=1e-3, frozen_roles=frozen))
        before = [p.detach().clone() for p in trainer.model.parameters()]
        stats = trainer.update([matpo_episode("a/step0/g0", 1.0), matpo_episode("a/step0/g1", 0.0)])
        assert any(not torch.equal(b, p) for b, p in zip(before, trainer.model.parameters()))
        return stats["trained_tokens"]

    planner, workers = 3 + 2 + 1 + 4 + 2, 6 + 2 + 5  # generated tokens of one episode, by role
    assert trained_tokens(()) == 2 * (planner + workers)
    assert trained_tokens(("planner",)) == 2 * workers
    assert trained_tokens(("worker",)) == 2 * planner
