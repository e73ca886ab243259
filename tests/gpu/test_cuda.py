"""The CUDA paths: generation, log-probs and both trainers on a GPU (skipped where there is none).

``MATPO_TEST_DEVICE=cpu`` runs the same checks on the CPU, to try them before a GPU is at hand.
"""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")

from matpo_gym.trainers.config import TrainConfig  # noqa: E402

from . import PROMPTS, recomputation_gap  # noqa: E402

DEVICE = os.environ.get("MATPO_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no CUDA device")


def policy(model_dir, device: str, **kwargs):
    from matpo_gym.policies.hf import HFPolicy

    return HFPolicy(str(model_dir), device=device, max_new_tokens=24, seed=0, **kwargs)


def test_greedy_generation_on_the_gpu_matches_the_cpu(tiny_model_dir):
    """float32 on both: the same argmax at every step, so the same tokens."""
    gpu = policy(tiny_model_dir, DEVICE, dtype="float32", temperature=0.0).generate(PROMPTS)
    cpu = policy(tiny_model_dir, "cpu", dtype="float32", temperature=0.0).generate(PROMPTS)
    assert [c.token_ids for c in gpu] == [c.token_ids for c in cpu]
    for g, c in zip(gpu, cpu):
        assert g.logprobs == pytest.approx(c.logprobs, abs=1e-3)


def test_sampled_logprobs_match_a_recomputation_by_the_trainer(tiny_model_dir):
    """The rollout's log-probs are the PPO ratio's denominator: the trainer's forward pass (bfloat16
    autocast over float32 weights, as it trains) must give the same numbers, up to bfloat16 noise."""
    from matpo_gym.policies.hf import HFPolicy
    from matpo_gym.trainers.precision import resolve_precision
    from matpo_gym.trainers.state import load_model

    plan = resolve_precision("auto", torch.device(DEVICE).type)
    model, tokenizer = load_model(str(tiny_model_dir), torch.device(DEVICE), plan)
    autocast = plan.autocast_dtype()
    sampler = HFPolicy.from_pretrained_objects(model, tokenizer, temperature=1.0, max_new_tokens=24, seed=0,
                                               autocast=autocast)
    gap = recomputation_gap(model, tokenizer, sampler.generate(PROMPTS * 4), DEVICE, plan)
    tolerance = 0.1 if autocast is not None else 1e-3
    assert float(gap.mean()) < tolerance / 2 and float(gap.max()) < 4 * tolerance, (float(gap.mean()), float(gap.max()))


def test_sft_on_the_gpu_lowers_the_loss_in_mixed_precision(tiny_model_dir, tmp_path):
    from matpo_gym.trainers import main

    main(TrainConfig(algo="sft", model=str(tiny_model_dir), env="world-tiny", out=tmp_path, steps=20, lr=1e-3,
                     weight_decay=0.0, sft_demos=16, sft_batch_size=8, sft_mode="both", save_every=0,
                     device=DEVICE, quiet=True))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first, last = sum(r["loss"] for r in rows[:3]) / 3, sum(r["loss"] for r in rows[-3:]) / 3
    assert last < 0.7 * first, (first, last)
    config = json.loads((tmp_path / "checkpoints" / "step-20" / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == "float32"  # master weights stay float32


@pytest.mark.parametrize("algo", ["grpo", "matpo"])
def test_an_rl_step_on_the_gpu_updates_the_weights(tiny_model_dir, tmp_path, algo):
    from safetensors.torch import load_file

    from matpo_gym.trainers import main

    main(TrainConfig(algo=algo, model=str(tiny_model_dir), env="world-tiny", out=tmp_path, steps=2, lr=1e-3,
                     questions_per_step=2, group_size=4, max_new_tokens=16, eval_every=0, eval_questions=2,
                     save_every=1, device=DEVICE, quiet=True, seed=1))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "step" in r][:2] == [1, 2]
    assert all(r["generated_tokens"] > 0 for r in rows if "generated_tokens" in r)
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    after = load_file(str(tmp_path / "checkpoints" / "step-2" / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in after.values())
    trained = [rows_changed for name, tensor in after.items()
               if (rows_changed := not torch.equal(tensor.float(), before[name].float()))]
    # a step whose groups all tie has zero advantage and leaves the weights alone
    assert trained or all(r.get("nonzero_advantage", 0) == 0 for r in rows)
