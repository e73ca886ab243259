"""The RL update really learns, and a training run checkpoints and resumes (tiny local model)."""

import json

import pytest

torch = pytest.importorskip("torch")

from matpo_gym.core.messages import Message, Prompt, Role  # noqa: E402
from matpo_gym.core.trajectory import EpisodeResult, EpisodeStats, Trajectory, Turn  # noqa: E402
from matpo_gym.envs.spec import load_env_spec  # noqa: E402
from matpo_gym.trainers.config import TrainConfig  # noqa: E402
from matpo_gym.trainers.distributed import DataParallel  # noqa: E402
from matpo_gym.trainers.rl import RLTrainer  # noqa: E402


def bandit_results(policy, step: int, groups: int = 4, size: int = 8):
    """One-turn 'episodes' rewarded when the first generated token id is even."""
    prompts = [Prompt(Role.SINGLE, (Message("user", f"Question {q}: pick."),), f"q{q}") for q in range(groups)]
    completions = policy.generate([p for p in prompts for _ in range(size)])
    results = []
    for index, completion in enumerate(completions):
        reward = float(completion.token_ids[0] % 2 == 0)
        root = Trajectory(
            f"q{index // size}/step{step}/g{index % size}/single-0",
            f"q{index // size}/step{step}/g{index}",
            Role.SINGLE,
        )
        root.turns.append(
            Turn((), completion.text, "answer", completion.prompt_ids, completion.token_ids, completion.logprobs)
        )
        results.append(
            EpisodeResult(
                root.episode_id, f"q{index // size}", "", "", "", reward, reward, "answer", [root], EpisodeStats()
            )
        )
    return results


def test_rl_update_raises_reward_on_a_learnable_bandit(tiny_model_dir):
    from matpo_gym.policies.hf import HFPolicy
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.state import load_model

    config = TrainConfig(algo="grpo", lr=3e-3, max_new_tokens=2, seed=0)
    trainer = RLTrainer(config)
    trainer.parallel = DataParallel(cpu=True)
    trainer.device = torch.device("cpu")
    trainer.precision = resolve_precision("fp32", "cpu")
    trainer.model, trainer.tokenizer = load_model(str(tiny_model_dir), trainer.device)
    trainer.optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=config.lr, weight_decay=0.0)
    trainer.reference = None
    policy = HFPolicy.from_pretrained_objects(
        trainer.model, trainer.tokenizer, temperature=1.0, max_new_tokens=2, seed=0
    )
    trainer.policy = policy

    def reward_now(step: int) -> float:
        results = bandit_results(policy, step, groups=4, size=16)
        return sum(r.reward for r in results) / len(results)

    before = reward_now(1000)
    for step in range(12):
        stats = trainer.update(bandit_results(policy, step))
        assert stats["samples"] > 0 and stats["trained_tokens"] > 0
    after = reward_now(2000)
    assert after > before + 0.2, (before, after)


def test_training_run_checkpoints_and_resumes(tiny_model_dir, tmp_path, caplog):
    from matpo_gym.trainers import main

    config = TrainConfig(
        algo="matpo", model=str(tiny_model_dir), out=tmp_path, steps=1, questions_per_step=2, group_size=2,
        max_new_tokens=16, context_tokens=1024, planner_turns=2, worker_turns=2, eval_every=0,
        eval_questions=2, save_every=1, quiet=True,
    )
    main(config)
    assert (tmp_path / "checkpoints" / "step-1" / "trainer_state.pt").exists()
    # the random tiny model never answers right: every advantage is 0, and the run says so
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["samples"] == 0
    assert "none of the 1 steps trained anything" in caplog.text
    config.steps = 2
    main(config)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    assert rows[-1]["eval_accuracy"] is not None and (tmp_path / "checkpoints" / "step-2").is_dir()
    assert all(row["eval_seconds"] > 0 for row in rows)  # each step was the last of its run: evaluated, timed
    for key in ("reward", "clip_fraction", "approx_kl", "tokens_per_second", "generated_tokens"):
        assert key in rows[0]


def test_a_resumed_rl_run_continues_exactly_where_it_stopped(tiny_model_dir, tmp_path):
    """Interrupted after step 1 and resumed, a run logs the step 2 of an uninterrupted one: the same
    sampled rollouts, the same loss, and a KL anchor still at the weights the run started from."""
    from matpo_gym.trainers import main
    from matpo_gym.trainers.state import load_model

    def config(out, steps):
        return TrainConfig(
            algo="grpo", model=str(tiny_model_dir), env="world-tiny", out=out, steps=steps, questions_per_step=2,
            group_size=2, lr=1e-3, kl_coef=0.1, max_new_tokens=8, single_turns=2, eval_every=0, save_every=1,
            device="cpu", quiet=True,
        )

    main(config(tmp_path / "straight", 2))
    main(config(tmp_path / "resumed", 1))
    resumed = RLTrainer(config(tmp_path / "resumed", 2))
    resumed.setup()
    assert resumed.start_step == 1
    start, _ = load_model(str(tiny_model_dir), torch.device("cpu"))
    reference, trained = dict(resumed.reference.named_parameters()), dict(resumed.model.named_parameters())
    assert all(torch.equal(reference[name], value) for name, value in start.named_parameters())
    assert not all(torch.equal(trained[name], value) for name, value in start.named_parameters())
    resumed.train()

    def rows(folder):
        return [json.loads(line) for line in (tmp_path / folder / "metrics.jsonl").read_text().splitlines()]

    straight, again = rows("straight"), rows("resumed")
    assert [r["step"] for r in again] == [1, 2]
    for key in ("reward", "generated_tokens", "loss", "ref_kl"):
        assert again[1][key] == pytest.approx(straight[1][key], rel=1e-5), key


def test_sft_imitates_scripted_demonstrations(tiny_model_dir, tmp_path):
    from matpo_gym.trainers import main

    config = TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=tmp_path, steps=12, lr=1e-3,
                         weight_decay=0.0, sft_demos=16, sft_batch_size=8, sft_mode="single", save_every=0,
                         quiet=True)
    main(config)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    first, last = sum(r["loss"] for r in rows[:3]) / 3, sum(r["loss"] for r in rows[-3:]) / 3
    assert last < 0.8 * first, (first, last)
    assert (tmp_path / "checkpoints" / "step-12" / "config.json").exists()


def test_sft_context_weight_also_trains_on_the_tokens_the_model_reads(tiny_model_dir, tmp_path):
    """With ``sft_context_weight`` the pages and prompts get a loss too, so their NLL falls further
    than under completion-only SFT, whose logged loss stays the generated tokens' NLL."""
    import torch
    from transformers import AutoModelForCausalLM

    from matpo_gym.trainers import main
    from matpo_gym.trainers.sft import SFTTrainer, collate_demonstrations

    def train(out, weight):
        main(TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=out, steps=6, lr=2e-3,
                         weight_decay=0.0, sft_demos=8, sft_batch_size=4, sft_mode="single", save_every=0,
                         sft_context_weight=weight, lr_schedule="cosine", warmup_steps=2, quiet=True))
        return out / "checkpoints" / "step-6"

    trainer = SFTTrainer(TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=tmp_path / "d",
                                     sft_demos=8, sft_mode="single"))
    trainer.setup()
    demos = trainer.samples[:4]

    def context_nll(folder):
        """Mean NLL of the demonstrations' read (not generated) tokens."""
        model = AutoModelForCausalLM.from_pretrained(folder)
        ids, attention, generated = collate_demonstrations(demos, trainer.tokenizer.pad_token_id)
        read = attention[:, 1:].bool() & ~generated
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
        nll = -torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
        return float(nll[read].mean())

    completion_only, with_context = train(tmp_path / "c0", 0.0), train(tmp_path / "c5", 0.5)
    assert context_nll(with_context) < context_nll(completion_only) - 0.5
    rows = [json.loads(line) for line in (tmp_path / "c5" / "metrics.jsonl").read_text().splitlines()]
    assert [round(r["lr"] / 2e-3, 3) for r in rows[:2]] == [0.333, 0.667] and rows[-1]["lr"] == pytest.approx(2e-4)


def test_resumed_sft_continues_exactly_where_it_stopped(tiny_model_dir, tmp_path):
    from matpo_gym.trainers import main

    def config(out, steps):
        return TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=out, steps=steps, lr=1e-3,
                           weight_decay=0.0, sft_demos=8, sft_batch_size=4, sft_mode="single", save_every=1,
                           quiet=True)

    main(config(tmp_path / "straight", 4))
    main(config(tmp_path / "resumed", 2))
    main(config(tmp_path / "resumed", 4))

    def losses(folder):
        return [json.loads(line)["loss"] for line in (tmp_path / folder / "metrics.jsonl").read_text().splitlines()]

    assert losses("resumed") == pytest.approx(losses("straight"), rel=1e-5)


def test_a_fresh_start_drops_rows_an_interrupted_attempt_logged(tiny_model_dir, tmp_path):
    from matpo_gym.trainers import main

    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 99.0}\n{"step": 2, "loss": 98.0}\n')
    main(TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=tmp_path, steps=1, lr=1e-3,
                     sft_demos=4, sft_batch_size=2, sft_mode="single", save_every=0, quiet=True))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1] and rows[0]["loss"] != 99.0


def test_sft_worlds_adds_demonstrations_from_worlds_with_other_names(tiny_model_dir, tmp_path):
    from matpo_gym.trainers.sft import SFTTrainer

    config = TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=tmp_path, steps=1,
                         sft_demos=3, sft_mode="single", sft_worlds=2, quiet=True)
    trainer = SFTTrainer(config)
    trainer.setup()
    specs = trainer.demonstration_specs()
    assert [s.world.seed for s in specs] == [0, 1]
    first, second = (trainer.demonstrations(spec) for spec in specs)
    assert first and second and len(trainer.samples) == len(first) + len(second)
    decode = trainer.tokenizer.decode
    assert {decode(d.ids) for d in first}.isdisjoint(decode(d.ids) for d in second)


def test_sft_worlds_needs_an_offline_world(tiny_model_dir, tmp_path):
    from matpo_gym.trainers.sft import SFTTrainer

    trainer = SFTTrainer(TrainConfig(algo="sft", model=str(tiny_model_dir), env="frames", out=tmp_path, sft_worlds=2))
    trainer.spec = load_env_spec("frames")
    with pytest.raises(ValueError, match="offline-world env"):
        trainer.demonstration_specs()


def test_worlds_collected_in_parallel_processes_equal_one_by_one(tiny_model_dir, tmp_path):
    from matpo_gym.trainers.sft import SFTTrainer, world_demonstrations

    trainer = SFTTrainer(TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=tmp_path, steps=1,
                                     sft_demos=2, sft_mode="single", sft_worlds=2, quiet=True))
    trainer.setup()  # two worlds: collected by two processes
    specs = trainer.demonstration_specs()
    one_by_one = [d for spec in specs for d in world_demonstrations(spec, trainer.tokenizer, ["single"], 2, 0)]
    assert one_by_one and trainer.samples == one_by_one


def test_sft_decompose_demonstrates_one_worker_per_hop(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from matpo_gym.envs.overrides import apply_overrides
    from matpo_gym.trainers.sft import SFTTrainer

    spec = apply_overrides(load_env_spec("world-frames"), ["source.difficulty=medium", "world.num_entities=150"])
    counts = {}
    for decompose in (False, True):
        trainer = SFTTrainer(TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-frames", out=tmp_path,
                                         sft_demos=4, sft_mode="matpo", sft_decompose=decompose, quiet=True))
        trainer.tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)  # all that collecting needs
        demos = trainer.demonstrations(spec)
        planners = [d for d in demos if d.role == "planner"]
        assert len(planners) == 4, "every two-hop question is answered, whole or hop by hop"
        counts[decompose] = sum(d.role == "worker" for d in demos) / len(planners)
    assert counts == {False: 1.0, True: 2.0}


def test_sampled_held_out_evaluation_plays_the_training_policy(tiny_model_dir, tmp_path):
    """With ``eval_samples`` the held-out questions are also played by the sampling policy; at
    temperature 0 that policy is the greedy one, so both evaluations must agree exactly."""
    config = TrainConfig(
        algo="grpo", model=str(tiny_model_dir), env="world-tiny", out=tmp_path, steps=1, temperature=0.0,
        max_new_tokens=8, eval_questions=3, eval_samples=2, quiet=True, device="cpu",
    )
    trainer = RLTrainer(config)
    trainer.setup()
    figures = trainer.evaluate()
    keys = ("accuracy", "reward", "answered", "question_scores")
    assert set(figures) == {f"{p}_{k}" for p in ("eval", "eval_sampled") for k in keys}
    for key in keys:
        assert figures[f"eval_sampled_{key}"] == figures[f"eval_{key}"]
    scores = figures["eval_question_scores"]
    assert len(scores) == 3 and sum(scores) / 3 == pytest.approx(figures["eval_accuracy"])
    config.eval_samples = 0
    assert "eval_sampled_reward" not in trainer.evaluate()


def test_training_under_tool_noise_disturbs_rollouts_and_held_out_play_alike(tiny_model_dir, tmp_path):
    """``noise`` reaches every env the trainer plays, training and held-out, and a kind that does
    not exist is refused before any model is loaded."""
    from matpo_gym.policies.scripted import SearchReadPolicy
    from matpo_gym.rollout import EpisodeRequest, rollout

    config = TrainConfig(algo="grpo", model=str(tiny_model_dir), env="world-tiny", out=tmp_path, steps=1,
                         noise=1.0, noise_kinds="error", eval_questions=2, quiet=True, device="cpu")
    trainer = RLTrainer(config)
    trainer.setup()
    for spec, split, tasks in ((trainer.train_spec, "train", trainer.train_tasks[:2]),
                               (trainer.eval_spec, "test", trainer.eval_tasks)):
        results = list(rollout(trainer._make_env(spec, split), SearchReadPolicy(),
                               [EpisodeRequest(task, f"{task.id}/{split}") for task in tasks]))
        assert results and all(r.stats.tool_calls and r.stats.tool_errors == r.stats.tool_calls for r in results)
        assert all(r.score == 0 for r in results)  # every call failed, so no answer could be read

    bad = RLTrainer(TrainConfig(algo="grpo", model=str(tmp_path / "no-such-model"), noise=0.2, noise_kinds="flaky"))
    with pytest.raises(ValueError, match="unknown noise kind 'flaky'"):
        bad.setup()


def test_sft_refuses_tool_noise_it_would_not_use(tmp_path):
    from matpo_gym.trainers.sft import SFTTrainer

    with pytest.raises(ValueError, match="algo grpo or matpo"):
        SFTTrainer(TrainConfig(algo="sft", out=tmp_path, noise=0.2))


def test_gradient_checkpointing_trains_the_same_steps(tiny_model_dir, tmp_path):
    # recomputing activations in the backward pass changes memory, not the arithmetic
    from matpo_gym.trainers import main

    def losses(out, checkpointing):
        main(TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=out, steps=3, lr=1e-3,
                         weight_decay=0.0, sft_demos=8, sft_batch_size=4, sft_mode="single", save_every=0,
                         precision="fp32", gradient_checkpointing=checkpointing, quiet=True))
        return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]

    assert losses(tmp_path / "on", True) == pytest.approx(losses(tmp_path / "off", False), rel=1e-4)
    from matpo_gym.trainers.sft import SFTTrainer

    trainer = SFTTrainer(TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=tmp_path / "s",
                                     sft_demos=4, sft_mode="single", gradient_checkpointing=True))
    trainer.setup()
    assert getattr(trainer.model, "is_activation_checkpointing", None) or trainer.model.is_gradient_checkpointing


def test_a_folder_resumes_only_the_run_its_checkpoints_come_from(tiny_model_dir, tmp_path):
    from matpo_gym.config import ConfigError
    from matpo_gym.trainers import main
    from matpo_gym.trainers.dryrun import make_plan

    def config(steps=1, **changes):
        settings = dict(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=tmp_path / "run", steps=steps,
                        lr=1e-3, sft_demos=4, sft_batch_size=2, sft_mode="single", save_every=1, quiet=True)
        return TrainConfig(**{**settings, **changes})

    main(config())
    assert json.loads((tmp_path / "run" / "train.json").read_text())["lr"] == 1e-3
    # a copied recipe that kept out, another env: refused before anything loads, by the dry run too
    edited = tmp_path / "world-tiny.toml"  # a file of the catalogue env's name, elsewhere: another env
    edited.write_text('extends = "world-tiny"\n[limits]\nsingle_turns = 2\n')
    for changed, named in ((dict(lr=3e-4), "lr: 0.001 -> 0.0003"), (dict(env="world-gaia"), "env: 'world-tiny'"),
                           (dict(env=str(edited)), "env: 'world-tiny'")):
        with pytest.raises(ConfigError, match="holds checkpoints trained with other settings.*" + named):
            main(config(steps=2, **changed))
        with pytest.raises(ConfigError, match="other settings"):
            make_plan(config(steps=2, **changed))
    # more steps, another device or precision, the model's folder moved: the same run, resumed
    import shutil

    moved = tmp_path / "moved" / tiny_model_dir.name
    shutil.copytree(tiny_model_dir, moved)  # a real copy: another path, the same model
    main(config(steps=2, precision="fp32", device="cpu", model=str(moved)))
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
