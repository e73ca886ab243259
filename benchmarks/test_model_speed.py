"""Model-side speed on the tiny local model: batched vs sequential rollout, trainer step time."""

from __future__ import annotations

import functools
import importlib.util

import pytest

torch = pytest.importorskip("torch")

from matpo_gym.envs import MatpoEnv  # noqa: E402
from matpo_gym.rollout import EpisodeRequest, rollout  # noqa: E402

EPISODES = 32


@functools.lru_cache(maxsize=1)
def policy():
    from matpo_gym.models.tiny import ensure_tiny
    from matpo_gym.policies.hf import HFPolicy

    return HFPolicy(str(ensure_tiny()), temperature=1.0, max_new_tokens=32, seed=0)


@functools.lru_cache(maxsize=1)
def vllm_policy():
    from matpo_gym.models.tiny import ensure_tiny
    from matpo_gym.policies.vllm import VLLMPolicy

    return VLLMPolicy(str(ensure_tiny()), temperature=1.0, max_new_tokens=32, seed=0, gpu_memory_utilization=0.3)


def play(batch_size: int, model=policy) -> int:
    env = MatpoEnv("world-frames", mode="matpo", count_tokens=model().count_tokens)
    requests = [EpisodeRequest(task, f"{task.id}/b{batch_size}") for task in env.tasks[:EPISODES]]
    spec = env.spec_config
    limited = spec.with_overrides(limits=spec.limits.__class__(planner_turns=2, worker_turns=2, context_tokens=2048))
    results = list(rollout(lambda: MatpoEnv(limited, mode="matpo", count_tokens=model().count_tokens),
                           model(), requests, batch_size=batch_size))
    return sum(len(t.completion_ids or []) for r in results for tr in r.trajectories for t in tr.turns)


def record_throughput(benchmark, tokens: int) -> None:
    benchmark.extra_info["generated_tokens"] = tokens
    benchmark.extra_info["tokens_per_second"] = tokens / benchmark.stats.stats.mean
    benchmark.extra_info["episodes_per_second"] = EPISODES / benchmark.stats.stats.mean


@pytest.mark.parametrize("batch_size", [1, EPISODES])
def test_rollout_throughput(benchmark, batch_size):
    """32 MATPO episodes (2 turns per role) with every pending turn batched, vs one at a time.

    The model is loaded before the clock starts, and on a GPU one untimed round first absorbs CUDA's
    start-up, so that either case, run alone (``-k``), times generation only."""
    policy()
    warmup = 1 if torch.cuda.is_available() else 0
    tokens = benchmark.pedantic(play, args=(batch_size,), rounds=1, iterations=1, warmup_rounds=warmup)
    record_throughput(benchmark, tokens)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None or not torch.cuda.is_available(),
                    reason="needs vLLM and a CUDA device")
def test_rollout_throughput_vllm(benchmark):
    """The batched rollout above with vLLM generating (engine start-up and a warm-up round excluded)."""
    vllm_policy()
    tokens = benchmark.pedantic(play, args=(EPISODES, vllm_policy), rounds=1, iterations=1, warmup_rounds=1)
    record_throughput(benchmark, tokens)


@pytest.mark.parametrize("head", ["all-positions", "generated-only"])
def test_trainer_step_time(benchmark, head):
    """One RL update (forward, clipped loss, backward, AdamW) on 32 sequences of 512 tokens, 64 of
    them generated; the trainer runs the LM head on generated positions only (``generated-only``)."""
    from matpo_gym.models.tiny import ensure_tiny
    from matpo_gym.policies.hf import resolve_device
    from matpo_gym.trainers.batch import Sample, collate, token_logprobs
    from matpo_gym.trainers.loss import policy_loss
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.state import load_model

    device = resolve_device("auto")
    plan = resolve_precision("auto", device.type)  # as the trainer runs (bf16-mixed on CUDA and bfloat16 CPUs)
    model, _ = load_model(str(ensure_tiny()), device, plan)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    samples = [Sample([5] * 448, [7] * 64, [-1.0] * 64, 1.0 if i % 2 else -1.0, "planner") for i in range(32)]
    batch = collate(samples, pad_id=0).to(device)

    def step():
        model.train()
        optimizer.zero_grad()
        positions = batch.loss_mask.bool() if head == "generated-only" else None
        with plan.autocast(device):
            logprobs = token_logprobs(model, batch.input_ids, batch.attention_mask, positions=positions)
        loss, _ = policy_loss(logprobs, batch.old_logprobs, batch.advantages, batch.loss_mask)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    benchmark.pedantic(step, rounds=5 if device.type == "cuda" else 3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["tokens_per_step"] = 32 * 512
    benchmark.extra_info["precision"] = plan.name


@pytest.mark.parametrize("cache", ["default", "reserved"])
def test_decoding_speed(benchmark, cache):
    """Batched decoding of 32 prompts of 500 tokens, 48 new tokens each, under the trainer's rollout
    precision: transformers' default KV cache (a copy of the whole cache per token) vs the reserved
    cache HFPolicy decodes with (one in-place write per token, stored in the autocast dtype)."""
    from matpo_gym.models.tiny import ensure_tiny
    from matpo_gym.policies.hf import resolve_device
    from matpo_gym.policies.kv_cache import reserved_cache_arguments
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.state import load_model

    device = resolve_device("auto")
    plan = resolve_precision("auto", device.type)
    model, _ = load_model(str(ensure_tiny()), device, plan)
    model.eval()
    ids = torch.randint(10, 1000, (32, 500), generator=torch.Generator().manual_seed(0)).to(device)
    attention = torch.ones_like(ids)

    def decode():
        arguments = reserved_cache_arguments(model, 548) if cache == "reserved" else {}
        with torch.inference_mode(), plan.autocast(device):
            model.generate(input_ids=ids, attention_mask=attention, max_new_tokens=48, min_new_tokens=48,
                           do_sample=False, pad_token_id=0, **arguments)
        if device.type == "cuda":
            torch.cuda.synchronize()

    benchmark.pedantic(decode, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["tokens_per_second"] = 32 * 48 / benchmark.stats.stats.mean
    benchmark.extra_info["precision"] = plan.name
