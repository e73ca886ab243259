"""A vLLM policy: the same contract as :class:`~matpo_gym.policies.hf.HFPolicy`, on a GPU engine.

vLLM is an optional extra (``pip install 'matpo-gym[vllm]'``, CUDA only) and is imported only when
a :class:`VLLMPolicy` is built. Prompts are rendered with the tokenizer's chat template here, not
by ``LLM.chat``, so the prompt ids a trainer sees are exactly those the engine was given.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matpo_gym.core.messages import Prompt
from matpo_gym.policies.base import DEFAULT_STOP, Completion, stop_sequences

MISSING = "vLLM is not installed: pip install 'matpo-gym[vllm]' (needs a CUDA GPU)"


def _load_weights_on_worker(worker: Any, weights: list[tuple[str, Any]]) -> None:
    """Runs inside each vLLM worker (sent by ``LLM.collective_rpc``): load into its model copy."""
    worker.model_runner.model.load_weights(weights=weights)


class VLLMPolicy:
    """A vLLM engine as a policy; planner and worker prompts share one ``generate`` call.

    Args:
        model: a local folder or hub name (``"tiny"`` is the locally built tiny model).
        temperature: sampling temperature; 0 is greedy.
        top_p: nucleus sampling mass.
        max_new_tokens: longest completion (``finish_reason="length"`` when cut there).
        seed: engine seed; request ``i`` of call ``k`` samples with a seed derived from
            ``seed``, ``k`` and ``i``, so runs repeat.
        stop: strings that end a completion; the string stays in the completion.
        gpu_memory_utilization: fraction of GPU memory vLLM may take (weights + KV cache).
        tensor_parallel_size: GPUs the model is split over.
        max_model_len: context length of the engine; None takes the model's.
        dtype: the engine's compute dtype; ``"auto"`` lets vLLM choose (16 bits for a float32 checkpoint).
        colocate: run the engine in this process, so :meth:`load_weights` copies a trainer's
            tensors on the device instead of pickling them to an engine process. A trainer that
            syncs weights every step sets it; evaluation leaves the engine its own process.
            (It sets ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` for this process.)
        engine_args: further ``vllm.EngineArgs`` (``enforce_eager``, ``attention_backend``, ...).
    """

    def __init__(
        self,
        model: str = "tiny",
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        stop: Sequence[str] = DEFAULT_STOP,
        gpu_memory_utilization: float = 0.85,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        dtype: str = "auto",
        colocate: bool = False,
        engine_args: Mapping[str, Any] | None = None,
    ):
        try:
            import vllm
        except ImportError:
            raise ImportError(MISSING) from None
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        path = model
        if model == "tiny":
            from matpo_gym.models import ensure_tiny

            path = str(ensure_tiny())
        self.name = f"vllm:{model}"
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.seed = int(seed)
        self.stop = stop_sequences(stop)
        self.calls = 0
        """``generate`` calls so far (part of each request's seed)."""
        self.colocate = bool(colocate)
        self._vllm = vllm
        engine: dict[str, Any] = {
            "model": path,
            "seed": self.seed,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
            "max_model_len": max_model_len,
            "dtype": dtype,
        }
        known = {f.name for f in dataclasses.fields(vllm.EngineArgs)}
        if "logprobs_mode" in known:
            # log-probs of the temperature-scaled distribution, as HFPolicy and trainers compute them
            engine["logprobs_mode"] = "processed_logprobs"
        unknown = sorted(set(engine_args or {}) - known)
        if unknown:
            raise ValueError(f"Not vllm.EngineArgs fields in this vLLM ({vllm.__version__}): {', '.join(unknown)}")
        engine.update(engine_args or {})
        if self.colocate:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # the engine core in this process
        self.llm = vllm.LLM(**engine)
        self.tokenizer = self.llm.get_tokenizer()
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise ValueError(
                f"The tokenizer of {model!r} has no chat template; VLLMPolicy needs one."
            )

    def reseed(self, seed: int) -> None:
        """Restart sampling at ``seed``: a trainer reseeds at every step, so a run resumed from a
        checkpoint samples what the uninterrupted run would have."""
        self.seed = int(seed)
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this policy's tokenizer (a TokenCounter for the env)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, prompt: Prompt) -> list[int]:
        """The ids the engine gets for ``prompt``: the chat template with an open assistant turn."""
        from matpo_gym.policies.hf import chat_prompt_ids  # torch and transformers come with vLLM

        return chat_prompt_ids(self.tokenizer, prompt)

    def _sampling(self, index: int) -> Any:
        # One seed per request: ``seed``, the call counter and the position in the batch.
        request_seed = (self.seed * 1_000_003 + self.calls * 10_007 + index) % (2**31)
        return self._vllm.SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_new_tokens,
            logprobs=0,  # the sampled token's log-prob only
            stop=list(self.stop) or None,
            include_stop_str_in_output=True,
            seed=request_seed,
        )

    def generate(self, prompts: Sequence[Prompt]) -> list[Completion]:
        """One completion per prompt, in order."""
        if not prompts:
            return []
        encoded = [self.encode(p) for p in prompts]
        params = [self._sampling(i) for i in range(len(prompts))]
        self.calls += 1
        requests = [{"prompt_token_ids": ids} for ids in encoded]  # a TokensPrompt each
        outputs = self.llm.generate(requests, sampling_params=params, use_tqdm=False)
        completions = []
        for prompt_ids, request in zip(encoded, outputs):
            sample = request.outputs[0]
            token_ids = list(sample.token_ids)
            logprobs = [
                float(step[token].logprob) for step, token in zip(sample.logprobs or [], token_ids)
            ]
            completions.append(
                Completion(
                    text=sample.text,
                    prompt_ids=prompt_ids,
                    token_ids=token_ids,
                    logprobs=logprobs if len(logprobs) == len(token_ids) else None,
                    finish_reason="length" if sample.finish_reason == "length" else "stop",
                )
            )
        return completions

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """Copy a trainer's weights (``(name, tensor)`` pairs, e.g. ``model.state_dict().items()``)
        into the engine, then drop cached prefixes computed with the old weights.

        Uses ``LLM.collective_rpc`` (every worker loads the weights into its model copy) where
        this vLLM has it, else the in-process driver worker of older versions. Needs an engine
        built with ``colocate=True``: a separate engine process would get every tensor pickled.
        """
        if not self.colocate:
            raise RuntimeError(
                "load_weights needs an engine in this process: build the VLLMPolicy with colocate=True."
            )
        weights = [(name, tensor.detach()) for name, tensor in weights]
        rpc = getattr(self.llm, "collective_rpc", None)
        if rpc is not None:
            rpc(_load_weights_on_worker, args=(weights,))
        else:
            model = _driver_model(self.llm)
            if model is None:
                raise NotImplementedError(
                    f"This vLLM ({getattr(self._vllm, '__version__', '?')}) has neither LLM.collective_rpc "
                    f"nor an in-process driver worker; reload the policy from a saved checkpoint instead."
                )
            model.load_weights(weights)
        reset = getattr(self.llm, "reset_prefix_cache", None)
        if reset is not None:
            reset()


def _driver_model(llm: Any) -> Any | None:
    """The model object of an in-process engine (vLLM versions before ``collective_rpc``)."""
    try:
        return llm.llm_engine.model_executor.driver_worker.model_runner.model
    except AttributeError:
        return None
