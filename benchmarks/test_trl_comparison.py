"""Side by side with TRL's GRPOTrainer: one single-agent GRPO step on the same tiny model.

Both sample 8 prompts x 4 generations of up to 64 tokens at temperature 1 and take one optimizer
step on a simple reward (the fraction of even token ids), on the CPU. The ratio TRL / matpo-gym of
seconds per step is stored in ``extra_info``.
"""

from __future__ import annotations

import functools
import time

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

PROMPTS = [f"Question {i}: name a city." for i in range(8)]
GENERATIONS = 4
LENGTH = 64
STEPS = 3


@functools.lru_cache(maxsize=1)
def tiny_dir() -> str:
    from matpo_gym.models.tiny import ensure_tiny

    return str(ensure_tiny())


def even_fraction(ids: list[int]) -> float:
    return sum(i % 2 == 0 for i in ids) / max(1, len(ids))


def matpo_seconds_per_step() -> float:
    from matpo_gym.core.messages import Message, Prompt, Role
    from matpo_gym.core.trajectory import EpisodeResult, EpisodeStats, Trajectory, Turn
    from matpo_gym.policies.hf import HFPolicy
    from matpo_gym.trainers.config import TrainConfig
    from matpo_gym.trainers.distributed import DataParallel
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.rl import RLTrainer
    from matpo_gym.trainers.state import load_model

    trainer = RLTrainer(TrainConfig(algo="grpo", lr=1e-5, max_new_tokens=LENGTH))
    trainer.parallel = DataParallel(cpu=True)
    trainer.device = torch.device("cpu")
    trainer.precision = resolve_precision("fp32", "cpu")
    trainer.model, trainer.tokenizer = load_model(tiny_dir(), trainer.device)
    trainer.optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=1e-5)
    trainer.reference = None
    trainer.policy = HFPolicy.from_pretrained_objects(trainer.model, trainer.tokenizer, temperature=1.0,
                                                      max_new_tokens=LENGTH, seed=0)
    prompts = [Prompt(Role.SINGLE, (Message("user", p),), f"q{i}") for i, p in enumerate(PROMPTS)]

    def step(index: int) -> None:
        completions = trainer.policy.generate([p for p in prompts for _ in range(GENERATIONS)])
        results = []
        for k, completion in enumerate(completions):
            group = f"q{k // GENERATIONS}"
            root = Trajectory(f"{group}/step{index}/g{k}/single-0", f"{group}/step{index}/g{k}", Role.SINGLE)
            root.turns.append(Turn((), completion.text, "answer", completion.prompt_ids, completion.token_ids,
                                   completion.logprobs))
            reward = even_fraction(completion.token_ids or [])
            results.append(EpisodeResult(root.episode_id, group, "", "", "", reward, reward, "answer", [root],
                                         EpisodeStats()))
        trainer.update(results)

    step(-1)  # warm-up
    started = time.perf_counter()
    for index in range(STEPS):
        step(index)
    return (time.perf_counter() - started) / STEPS


def trl_seconds_per_step(tmp_path) -> float:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir())
    model = AutoModelForCausalLM.from_pretrained(tiny_dir())

    def reward(completion_ids, **_):
        return [even_fraction(ids) for ids in completion_ids]

    config = GRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_train_batch_size=len(PROMPTS) * GENERATIONS,
        num_generations=GENERATIONS, max_completion_length=LENGTH, max_steps=STEPS + 1, learning_rate=1e-5,
        logging_steps=1, report_to=[], save_strategy="no", temperature=1.0, seed=0,
    )
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in PROMPTS] * 4})
    times: list[float] = []

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_begin(self, *_, **__):
            times.append(time.perf_counter())

        def on_train_end(self, *_, **__):
            times.append(time.perf_counter())

    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=data,
                          processing_class=tokenizer, callbacks=[Clock()])
    trainer.train()
    return (times[-1] - times[1]) / STEPS  # the first step is a warm-up


def test_grpo_step_vs_trl(benchmark, tmp_path):
    figures: dict[str, float] = {}

    def both() -> None:
        figures["matpo_gym_s_per_step"] = matpo_seconds_per_step()
        figures["trl_s_per_step"] = trl_seconds_per_step(tmp_path)

    benchmark.pedantic(both, rounds=1, iterations=1)
    figures["trl_over_matpo_gym"] = figures["trl_s_per_step"] / figures["matpo_gym_s_per_step"]
    benchmark.extra_info.update(figures)
