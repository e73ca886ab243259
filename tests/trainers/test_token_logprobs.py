"""Log-probs on generated positions only equal the full computation there, gradients included."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from matpo_gym.models.tiny import load_tiny  # noqa: E402
from matpo_gym.trainers.batch import token_logprobs  # noqa: E402


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_positions_match_the_full_computation(tiny_model_dir, temperature):
    model, _ = load_tiny(tiny_model_dir)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(10, 200, (3, 17), generator=generator)
    attention = torch.ones_like(input_ids)
    attention[2, 12:] = 0  # a padded row
    positions = torch.zeros((3, 16), dtype=torch.bool)
    positions[0, 5:9] = positions[1, 14:] = positions[2, 3:11] = True

    full = token_logprobs(model, input_ids, attention, temperature)
    picked = token_logprobs(model, input_ids, attention, temperature, positions)
    assert torch.allclose(picked[positions], full[positions], atol=1e-5)
    assert torch.count_nonzero(picked[~positions]) == 0

    picked[positions].sum().backward()
    sparse = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    full[positions].sum().backward()
    for a, b in zip(sparse, (p.grad for p in model.parameters())):
        assert torch.allclose(a, b, atol=1e-4)


def test_a_model_without_a_separate_head_falls_back_to_full_logits(tiny_model_dir):
    model, _ = load_tiny(tiny_model_dir)

    class Opaque(torch.nn.Module):  # only forward(): no get_decoder / get_output_embeddings
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, **kwargs):
            return self.inner(**kwargs)

    input_ids = torch.randint(10, 200, (2, 9), generator=torch.Generator().manual_seed(1))
    attention = torch.ones_like(input_ids)
    positions = torch.zeros((2, 8), dtype=torch.bool)
    positions[0, 2:5] = positions[1, 6:] = True
    expected = token_logprobs(model, input_ids, attention, positions=positions)
    assert torch.allclose(token_logprobs(Opaque(), input_ids, attention, positions=positions), expected, atol=1e-5)


def test_a_soft_capped_head_is_scored_through_the_full_forward():
    # Gemma 2 soft-caps the head's output in its forward: the decoder + head shortcut would miss it,
    # and training log-probs would disagree with the rollout's
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    model = Gemma2ForCausalLM(Gemma2Config(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, final_logit_softcapping=5.0)).eval()
    input_ids = torch.randint(0, 128, (1, 9))
    attention = torch.ones_like(input_ids)
    positions = torch.ones((1, 8), dtype=torch.bool)
    with torch.no_grad():
        model.lm_head.weight.mul_(20)  # logits large enough for the cap to bite
        full = token_logprobs(model, input_ids, attention)
        picked = token_logprobs(model, input_ids, attention, positions=positions)
        raw = model.lm_head(model.get_decoder()(input_ids=input_ids).last_hidden_state)
    assert float(raw.abs().max()) > 10  # uncapped, the shortcut's logits would differ
    assert torch.allclose(picked, full, atol=1e-5)


def test_a_temperature_divides_bfloat16_logits_in_float32(tiny_model_dir):
    # the rollout samples from (float32 logits) / T; the trainer's ratio must use the same numbers
    model, _ = load_tiny(tiny_model_dir)
    with torch.no_grad():
        model.model.norm.weight.mul_(15)  # logits the size a trained model's are
    input_ids = torch.randint(10, 200, (2, 24), generator=torch.Generator().manual_seed(0))
    attention = torch.ones_like(input_ids)
    positions = torch.ones((2, 23), dtype=torch.bool)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1]
        picked = token_logprobs(model, input_ids, attention, 0.7, positions)
    expected = torch.log_softmax(logits.float() / 0.7, dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    assert logits.dtype == torch.bfloat16
    assert torch.allclose(picked, expected, atol=1e-4)
