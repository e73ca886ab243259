"""What the reproduce report reads from the trainers' logs: time spent, and RL's held-out change."""

from matpo_gym.bench.reproduce_config import ReproduceConfig, rerun_command
from matpo_gym.bench.training_logs import budget, held_out_change


def run_log(last_step: int) -> list[dict]:
    rows = [{"step": 0, "eval_question_scores": [0.0, 1.0], "eval_seconds": 5.0}]
    for step in range(1, last_step + 1):
        rows.append({"step": step, "reward": 0.5, "rollout_seconds": 2.0, "update_seconds": 1.0,
                     **({"eval_question_scores": [1.0, 1.0], "eval_seconds": 4.0} if step % 2 == 0 else {})})
    return rows


def test_the_budget_counts_the_learning_curve_evaluations():
    spent = budget([run_log(4)])
    assert spent["steps"] == 4
    assert spent["seconds"] == 4 * (2.0 + 1.0) + 5.0 + 2 * 4.0


def test_a_run_not_trained_to_its_last_step_is_left_out_of_the_held_out_change():
    change = held_out_change([run_log(4), run_log(2)], planned=4)["greedy"]
    assert change["runs"] == 1 and change["final_step"] == 4
    assert change["before"]["n"] == change["after"]["n"] == 2
    assert change["change"]["mean"] == 0.5


def test_the_rerun_command_names_every_setting_that_differs_from_the_preset():
    config = ReproduceConfig(preset="smoke", base_env="world-tiny-rl", rl_steps=3).resolved()
    command = rerun_command(config)
    assert command.startswith("matpo-bench reproduce --preset smoke")
    assert "--base-env world-tiny-rl" in command and "--rl-steps 3" in command
    assert rerun_command(ReproduceConfig(preset="smoke").resolved()) == "matpo-bench reproduce --preset smoke"
