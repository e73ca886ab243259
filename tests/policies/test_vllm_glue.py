"""VLLMPolicy's own logic on a machine without vLLM: engine arguments, per-request seeds, how
vLLM's outputs become Completions, and the preconditions of weight sync.

vLLM cannot run here (it needs a CUDA GPU), so a stand-in package named ``vllm`` with the few
names VLLMPolicy uses (the 0.25 API, as ``tests/gpu/test_vllm.py`` exercised it on an H100)
answers instead. It samples token ids from each request's seed, so what is checked is the glue,
not generation; the real engine is checked by the GPU tests.
"""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from matpo_gym.core.messages import Message, Prompt, Role

STAND_IN = textwrap.dedent('''
    """A stand-in for the parts of vLLM's API that VLLMPolicy uses."""
    import dataclasses
    import random
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    __version__ = "0.25.1-stand-in"


    @dataclasses.dataclass
    class EngineArgs:
        model: str = ""
        seed: int = 0
        gpu_memory_utilization: float = 0.9
        tensor_parallel_size: int = 1
        max_model_len: int | None = None
        dtype: str = "auto"
        logprobs_mode: str = "raw_logprobs"
        enforce_eager: bool = False


    class SamplingParams:
        def __init__(self, **fields):
            self.__dict__.update(fields)


    class LLM:
        last = None

        def __init__(self, **engine):
            EngineArgs(**engine)  # an unknown name fails here, as in vLLM
            self.engine = engine
            self.tokenizer = AutoTokenizer.from_pretrained(engine["model"])
            self.requests = []
            self.rpcs = []
            self.prefix_resets = 0
            LLM.last = self

        def get_tokenizer(self):
            return self.tokenizer

        def generate(self, requests, sampling_params, use_tqdm=True):
            outputs = []
            for request, params in zip(requests, sampling_params):
                self.requests.append((request, params))
                rng = random.Random(params.seed)
                length = rng.randint(1, params.max_tokens)
                ids = [rng.randrange(300, 400) for _ in range(length)]
                logprobs = [{token: SimpleNamespace(logprob=-0.25 * (k + 1))} for k, token in enumerate(ids)]
                sample = SimpleNamespace(text=self.tokenizer.decode(ids), token_ids=tuple(ids), logprobs=logprobs,
                                         finish_reason="length" if length == params.max_tokens else "stop")
                outputs.append(SimpleNamespace(outputs=[sample]))
            return outputs

        def collective_rpc(self, method, args=()):
            self.rpcs.append(args)
            return [method(SimpleNamespace(model_runner=SimpleNamespace(model=Recorder())), *args)]

        def reset_prefix_cache(self):
            self.prefix_resets += 1


    class Recorder:
        def load_weights(self, weights):
            LLM.last.loaded = [name for name, _ in weights]
''')

PROMPTS = [
    Prompt(Role.PLANNER, (Message("user", "Who founded the company that built the Verdant Bridge?"),), "p0"),
    Prompt(Role.WORKER, (Message("user", "Find the year the Amber Library opened."),), "w0"),
]


@pytest.fixture()
def stand_in(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    package = tmp_path / "stand_in" / "vllm"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(STAND_IN)
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.setitem(sys.modules, "vllm", None)  # so that the stand-in is unloaded afterwards
    del sys.modules["vllm"]
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    import vllm

    return vllm


def make(tiny_model_dir, **kwargs):
    from matpo_gym.policies.vllm import VLLMPolicy

    return VLLMPolicy(str(tiny_model_dir), **kwargs)


def test_engine_arguments(stand_in, tiny_model_dir):
    make(tiny_model_dir, dtype="float32", max_new_tokens=8, engine_args={"enforce_eager": True})
    engine = stand_in.LLM.last.engine
    assert engine["dtype"] == "float32" and engine["enforce_eager"] is True
    assert engine["logprobs_mode"] == "processed_logprobs"  # log-probs of the distribution it samples
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in os.environ  # evaluation keeps vLLM's engine process
    with pytest.raises(ValueError, match=r"Not vllm.EngineArgs fields in this vLLM \(0.25.1-stand-in\): "
                                         r"enforce_eagre, max_num_seq"):
        make(tiny_model_dir, engine_args={"enforce_eagre": True, "max_num_seq": 4})


def test_prompts_go_in_as_the_chat_template_ids(stand_in, tiny_model_dir):
    from matpo_gym.policies.hf import HFPolicy

    policy = make(tiny_model_dir, max_new_tokens=8)
    completions = policy.generate(PROMPTS)
    local = HFPolicy(str(tiny_model_dir), max_new_tokens=8)
    sent = [request["prompt_token_ids"] for request, _ in stand_in.LLM.last.requests]
    assert sent == [c.prompt_ids for c in completions] == [local.encode(p) for p in PROMPTS]
    params = stand_in.LLM.last.requests[0][1]
    assert params.logprobs == 0 and params.include_stop_str_in_output and params.max_tokens == 8


def test_completions_carry_vllms_tokens_logprobs_and_finish_reason(stand_in, tiny_model_dir):
    policy = make(tiny_model_dir, max_new_tokens=3)
    completions = policy.generate(PROMPTS * 8)
    assert {c.finish_reason for c in completions} == {"stop", "length"}
    for c in completions:
        assert c.logprobs == [-0.25 * (k + 1) for k in range(len(c.token_ids))]
        assert (c.finish_reason == "length") == (len(c.token_ids) == 3)
        assert c.text == policy.tokenizer.decode(c.token_ids)


def test_every_request_has_its_own_seed_and_a_reseed_repeats_them(stand_in, tiny_model_dir):
    policy = make(tiny_model_dir, seed=3, max_new_tokens=16)
    first = [c.token_ids for c in policy.generate(PROMPTS * 2)]
    second = [c.token_ids for c in policy.generate(PROMPTS * 2)]
    seeds = [params.seed for _, params in stand_in.LLM.last.requests]
    assert len(set(seeds)) == len(seeds) == 8  # across requests of a call and across calls
    policy.reseed(3)
    assert [c.token_ids for c in policy.generate(PROMPTS * 2)] == first
    assert second != first


def test_weight_sync_needs_a_colocated_engine(stand_in, tiny_model_dir):
    torch = pytest.importorskip("torch")
    weights = {"model.embed_tokens.weight": torch.zeros(2, 2, requires_grad=True), "lm_head.weight": torch.ones(2)}
    apart = make(tiny_model_dir)
    with pytest.raises(RuntimeError, match="colocate=True"):
        apart.load_weights(weights.items())
    together = make(tiny_model_dir, colocate=True)
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"  # the engine core runs in this process
    together.load_weights(weights.items())
    engine = stand_in.LLM.last
    assert engine.loaded == list(weights)
    [(sent,)] = engine.rpcs
    assert all(not tensor.requires_grad for _, tensor in sent)  # detached: no graph goes to the engine
    assert engine.prefix_resets == 1  # prefixes cached under the old weights are dropped
