"""The vLLM policy on a GPU: the same answers and log-probs as the HF policy, weights synced from a
trainer, rollouts through an env, and an RL run whose rollouts come from vLLM.

Skipped where vLLM or a CUDA device is missing. One engine serves the whole module: vLLM keeps
process-wide state, and a second in-process engine would compete with the first for GPU memory.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None or not torch.cuda.is_available(), reason="needs vLLM and a CUDA device"
)

from . import PROMPTS, recomputation_gap  # noqa: E402

NEW_TOKENS = 24


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    """float32, so that greedy decoding can be compared token for token with the HF policy."""
    from matpo_gym.policies.vllm import VLLMPolicy

    return VLLMPolicy(str(tiny_model_dir), dtype="float32", temperature=0.0, max_new_tokens=NEW_TOKENS, seed=0,
                      colocate=True, gpu_memory_utilization=0.25, max_model_len=2048,
                      engine_args={"enforce_eager": True})


def hf_policy(tiny_model_dir, **kwargs):
    from matpo_gym.policies.hf import HFPolicy

    return HFPolicy(str(tiny_model_dir), device="cuda", dtype="float32", max_new_tokens=NEW_TOKENS, seed=0, **kwargs)


def test_greedy_vllm_matches_greedy_hf(engine, tiny_model_dir):
    engine.temperature = 0.0
    ours = engine.generate(PROMPTS)
    theirs = hf_policy(tiny_model_dir, temperature=0.0).generate(PROMPTS)
    assert [c.prompt_ids for c in ours] == [c.prompt_ids for c in theirs]
    assert [c.token_ids for c in ours] == [c.token_ids for c in theirs]
    assert [c.text for c in ours] == [c.text for c in theirs]
    for a, b in zip(ours, theirs):
        assert a.logprobs == pytest.approx(b.logprobs, abs=2e-3)


def test_sampled_logprobs_are_the_trainers(engine, tiny_model_dir):
    """The rollout's log-probs are the PPO ratio's denominator: the trainer's forward pass over the
    same tokens must give them back (both float32 here)."""
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.state import load_model

    engine.temperature = 1.0
    completions = engine.generate(PROMPTS * 4)
    assert all(c.logprobs is not None and len(c.logprobs) == len(c.token_ids) for c in completions)
    plan = resolve_precision("fp32", "cuda")
    model, tokenizer = load_model(str(tiny_model_dir), torch.device("cuda"), plan)
    gap = recomputation_gap(model, tokenizer, completions, "cuda", plan)
    assert float(gap.mean()) < 1e-3 and float(gap.max()) < 1e-2, (float(gap.mean()), float(gap.max()))


def test_sampling_repeats_under_a_seed(engine):
    engine.temperature = 1.0
    engine.reseed(7)
    first = [c.token_ids for c in engine.generate(PROMPTS * 2)]
    engine.reseed(7)
    again = [c.token_ids for c in engine.generate(PROMPTS * 2)]
    later = [c.token_ids for c in engine.generate(PROMPTS * 2)]
    assert first == again
    assert later != first  # the call counter moves every request's seed


def test_length_cut_is_reported(engine):
    engine.temperature = 1.0
    completions = engine.generate(PROMPTS)
    assert all(len(c.token_ids) <= NEW_TOKENS for c in completions)
    assert all(c.finish_reason == "stop" for c in completions if len(c.token_ids) < NEW_TOKENS)
    assert all(len(c.token_ids) == NEW_TOKENS for c in completions if c.finish_reason == "length")


def test_rollouts_through_an_env_keep_exact_token_ids(engine):
    from matpo_gym.envs import MatpoEnv
    from matpo_gym.rollout import EpisodeRequest, rollout

    engine.temperature = 1.0
    env = MatpoEnv("world-tiny", mode="matpo", count_tokens=engine.count_tokens)
    requests = [EpisodeRequest(task, f"{task.id}/vllm") for task in env.tasks[:8]]
    results = list(rollout(lambda: MatpoEnv("world-tiny", mode="matpo", count_tokens=engine.count_tokens),
                           engine, requests, batch_size=8))
    assert len(results) == 8
    turns = [t for r in results for tr in r.trajectories for t in tr.turns]
    assert turns and all(t.completion_ids for t in turns)
    for turn in turns:
        assert len(turn.completion_logprobs) == len(turn.completion_ids)
        assert all(lp <= 0.0 for lp in turn.completion_logprobs)


def test_loaded_weights_change_what_the_engine_generates(engine, tiny_model_dir):
    """A trainer's update reaches the engine: after loading perturbed weights, vLLM's greedy answers
    are those of the HF model holding the same weights."""
    from matpo_gym.policies.hf import HFPolicy
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.state import load_model

    model, tokenizer = load_model(str(tiny_model_dir), torch.device("cuda"), resolve_precision("fp32", "cuda"))
    generator = torch.Generator(device="cuda").manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator, device="cuda") * 0.05)
    engine.temperature = 0.0
    before = [c.token_ids for c in engine.generate(PROMPTS)]
    engine.load_weights(model.state_dict().items())
    after = engine.generate(PROMPTS)
    expected = HFPolicy.from_pretrained_objects(model, tokenizer, temperature=0.0, max_new_tokens=NEW_TOKENS,
                                                seed=0).generate(PROMPTS)
    assert [c.token_ids for c in after] != before
    assert [c.token_ids for c in after] == [c.token_ids for c in expected]


def test_an_rl_run_with_vllm_rollouts(tiny_model_dir, tmp_path):
    """``matpo-bench train --rollout-engine vllm``: rollouts from vLLM, weights synced into it after
    every update. A child process, so that its engine does not share this process with the module's."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "matpo_gym.cli", "train", "--algo", "grpo", "--model", str(tiny_model_dir),
               "--env", "world-tiny", "--out", str(tmp_path), "--steps", "2", "--lr", "1e-3",
               "--questions-per-step", "2", "--group-size", "4", "--max-new-tokens", "16", "--eval-every", "0",
               "--eval-questions", "2", "--save-every", "1", "--device", "cuda", "--seed", "1", "--quiet",
               "--rollout-engine", "vllm", "--vllm-gpu-memory-utilization", "0.2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "generated_tokens" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["generated_tokens"] > 0 for r in steps)
