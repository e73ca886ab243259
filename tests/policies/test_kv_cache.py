"""The reserved KV cache decodes exactly like transformers' default cache, faster: same tokens and
bit-identical logits, in float32 and under bfloat16 autocast, greedy and sampled, with left padding,
when it must grow past its reservation, and after a batch selection replaces its tensors."""

from __future__ import annotations

import contextlib

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, DynamicCache  # noqa: E402

from matpo_gym.policies.kv_cache import reserved_cache, reserved_cache_arguments  # noqa: E402

pytestmark = pytest.mark.skipif(reserved_cache is None, reason="transformers without per-layer caches")


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


def left_padded_batch(pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (4, 40), generator=generator)
    attention = torch.ones_like(ids)
    for row, padding in enumerate((0, 7, 19, 3)):
        ids[row, :padding] = pad_id
        attention[row, :padding] = 0
    return ids, attention


def generate(model, autocast: bool, sample: bool, **cache: object):
    ids, attention = left_padded_batch(model.config.pad_token_id or 0)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    sampling = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0) if sample else dict(do_sample=False)
    torch.manual_seed(1)
    with torch.inference_mode(), context:
        out = model.generate(input_ids=ids, attention_mask=attention, max_new_tokens=24, min_new_tokens=24,
                             output_logits=True, return_dict_in_generate=True, use_cache=True,
                             pad_token_id=model.config.pad_token_id, **sampling, **cache)
    return out.sequences, torch.stack(out.logits)


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
@pytest.mark.parametrize("sample", [False, True], ids=["greedy", "sampled"])
@pytest.mark.parametrize("capacity", [64, 8], ids=["reserved", "grows"])
def test_decoding_is_bit_identical_to_the_default_cache(model, autocast, sample, capacity):
    arguments = reserved_cache_arguments(model, capacity)
    assert arguments  # a plain Llama gets the reserved cache
    sequences, logits = generate(model, autocast, sample)
    reserved_sequences, reserved_logits = generate(model, autocast, sample, **arguments)
    assert torch.equal(reserved_sequences, sequences)
    assert torch.equal(reserved_logits, logits)


def test_cache_dtype_follows_autocast(model):
    ids, attention = left_padded_batch(model.config.pad_token_id or 0)
    for autocast, dtype in ((False, torch.float32), (True, torch.bfloat16)):
        cache = reserved_cache(model, 64)
        context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with torch.inference_mode(), context:
            model(input_ids=ids, attention_mask=attention, **{next(iter(reserved_cache_arguments(model, 1))): cache})
        assert {layer.keys.dtype for layer in cache.layers} == {dtype}
        assert cache.get_seq_length() == ids.shape[1]


def test_a_batch_selection_is_followed_by_the_next_write(model):
    """Selecting rows replaces the layer's tensors; the next step must extend those rows, not the
    old buffers."""
    ids, attention = left_padded_batch(model.config.pad_token_id or 0)
    name = next(iter(reserved_cache_arguments(model, 1)))
    caches = {"default": DynamicCache(config=model.config), "reserved": reserved_cache(model, 64)}
    logits = {}
    with torch.inference_mode():
        for label, cache in caches.items():
            model(input_ids=ids, attention_mask=attention, **{name: cache})
            cache.batch_select_indices(torch.tensor([2, 0]))
            step = torch.tensor([[11], [12]])
            mask = torch.cat([attention[[2, 0]], torch.ones(2, 1, dtype=torch.long)], 1)
            logits[label] = model(input_ids=step, attention_mask=mask, **{name: cache}).logits
    assert torch.equal(logits["reserved"], logits["default"])
