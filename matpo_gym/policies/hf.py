"""A Hugging Face transformers policy: batched sampling with token ids and log-probs.

Each prompt is rendered with the tokenizer's chat template (generation prompt added), the batch is
left-padded and sampled in one ``model.generate`` call. A completion ends at the end-of-turn token
or as soon as its text contains a stop string (the closing tag stays in the text). Every
completion carries the exact prompt ids the model saw, the generated ids and the log-probability
of each generated id under the temperature-scaled distribution, so a trainer can use them as its
old log-probs without re-tokenising.

>>> policy = HFPolicy("tiny", max_new_tokens=8)                                  # doctest: +SKIP
>>> completion = policy.generate([prompt])[0]                                    # doctest: +SKIP
>>> len(completion.token_ids) == len(completion.logprobs)                        # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import transformers
from packaging.version import Version
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteriaList

from matpo_gym.core.messages import Prompt
from matpo_gym.policies.base import DEFAULT_STOP, Completion, stop_sequences
from matpo_gym.policies.kv_cache import reserved_cache_arguments
from matpo_gym.policies.stopping import StopCriteria, eos_ids

log = logging.getLogger(__name__)

_DTYPE_KWARG = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device: str) -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_pretrained(model: str, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    """(model on ``device``, left-padding tokenizer) from a local folder, a hub name, or ``tiny``.

    The one loader for policies and trainers, so both read a checkpoint the same way.
    """
    path = model
    if model == "tiny":
        from matpo_gym.models import ensure_tiny

        path = str(ensure_tiny())
    local = os.path.isdir(path)
    if not local and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise FileNotFoundError(
            f"Cannot load model {model!r}: it is not a local folder and the hub is offline "
            f"(HF_HUB_OFFLINE=1). Download it on a machine with access and pass its path, "
            f"or use 'tiny'."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left", local_files_only=local)
        loaded = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=local, **{_DTYPE_KWARG: dtype}
        )
    except OSError as exc:
        raise OSError(
            f"Cannot load model {model!r}: {exc}\nGive a local model folder, or 'tiny' for the "
            f"locally built tiny model (no hub is reachable offline)."
        ) from None
    return loaded.to(device), tokenizer


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on CUDA and float32 elsewhere."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(
            f"Unknown dtype {dtype!r}; use 'auto' or one of {', '.join(_DTYPES)}."
        ) from None


def chat_prompt_ids(tokenizer: Any, prompt: Prompt) -> list[int]:
    """The ids of ``prompt`` rendered with the chat template and an open assistant turn.

    Tool messages keep the role ``tool``. The template writes any BOS itself, so no special
    tokens are added on top.
    """
    text = tokenizer.apply_chat_template(
        prompt.to_chat(), tokenize=False, add_generation_prompt=True
    )
    return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


class HFPolicy:
    """A transformers causal LM as a policy; planner and worker prompts share one batch.

    Args:
        model: a local folder or hub name; ``"tiny"`` is the locally built tiny model
            (:func:`matpo_gym.models.ensure_tiny`).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ...
        dtype: ``auto`` (bfloat16 on CUDA, float32 on CPU), ``float32``, ``bfloat16``, ``float16``.
        temperature: sampling temperature; 0 is greedy (log-probs are then reported at 1).
            Log-probs are ``log_softmax(logits / temperature)`` of the full distribution; with
            ``top_p < 1`` they are not renormalised over the nucleus.
        top_p: nucleus sampling mass (1 keeps the whole distribution).
        max_new_tokens: longest completion; a completion cut there has ``finish_reason="length"``.
        seed: generation seed; call ``k`` of this policy samples with ``seed + k``, so two runs
            of the same calls give the same completions.
        batch_size: largest batch per ``model.generate`` call; bigger batches are split.
        max_prompt_tokens: prompts longer than this keep their last ``max_prompt_tokens`` ids;
            each cut is counted in ``truncated_prompts`` and logged. None never cuts.
        stop: strings that end a completion; the string stays in the completion.

    Log-probs come from ``generate(output_logits=True)``, which keeps each step's logits
    (batch x vocabulary floats) until the batch ends: lower ``batch_size`` for large vocabularies.
    """

    def __init__(
        self,
        model: str = "tiny",
        *,
        device: str = "auto",
        dtype: str = "auto",
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        batch_size: int = 32,
        max_prompt_tokens: int | None = None,
        stop: Sequence[str] = DEFAULT_STOP,
    ):
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        loaded, tokenizer = load_pretrained(model, torch_device, torch_dtype)
        loaded.eval()
        self._setup(
            loaded,
            tokenizer,
            name=f"hf:{model}",
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
            max_prompt_tokens=max_prompt_tokens,
            stop=stop,
        )

    @classmethod
    def from_pretrained_objects(
        cls, model: Any, tokenizer: Any, *, name: str | None = None, **kwargs: Any
    ) -> HFPolicy:
        """A policy over an already-loaded model and tokenizer (shared, not copied or moved).

        A trainer passes its own model so that rollouts sample from the weights it updates.
        ``kwargs`` are the sampling arguments of the constructor (``temperature``, ``seed``, ...).
        """
        policy = cls.__new__(cls)
        label = name or f"hf:{getattr(model, 'name_or_path', '') or type(model).__name__}"
        policy._setup(model, tokenizer, name=label, **kwargs)
        return policy

    def _setup(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int = 0,
        batch_size: int = 32,
        max_prompt_tokens: int | None = None,
        stop: Sequence[str] = DEFAULT_STOP,
        autocast: torch.dtype | None = None,
    ) -> None:
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens}, {batch_size}"
            )
        if max_prompt_tokens is not None and max_prompt_tokens < 1:
            raise ValueError(f"max_prompt_tokens must be >= 1 or None, got {max_prompt_tokens}")
        if tokenizer.chat_template is None:
            raise ValueError(f"The tokenizer of {name!r} has no chat template; HFPolicy needs one.")
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.max_prompt_tokens = max_prompt_tokens
        self.stop = stop_sequences(stop)
        self.autocast = autocast
        """Generate under this autocast dtype (a trainer's float32 master weights computing in bfloat16)."""
        self.eos_ids = eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else min(self.eos_ids, default=0)
        self.truncated_prompts = 0
        """Prompts cut to ``max_prompt_tokens`` so far."""
        self.calls = 0
        """``generate`` calls so far (the next call samples with ``seed + calls``)."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- Policy API --------------------------------------------------------------------------

    def reseed(self, seed: int) -> None:
        """Restart sampling at ``seed``: a trainer reseeds at every step, so a run resumed from a
        checkpoint samples what the uninterrupted run would have."""
        self.seed = int(seed)
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this policy's tokenizer (a TokenCounter for the env)."""
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def encode(self, prompt: Prompt) -> list[int]:
        """The ids the model sees for ``prompt``: chat template, then the ``max_prompt_tokens`` cut."""
        ids = chat_prompt_ids(self.tokenizer, prompt)
        if self.max_prompt_tokens is not None and len(ids) > self.max_prompt_tokens:
            self.truncated_prompts += 1
            log.warning(
                "%s: prompt of %d tokens cut to its last %d (%d cut so far)",
                self.name,
                len(ids),
                self.max_prompt_tokens,
                self.truncated_prompts,
            )
            ids = ids[-self.max_prompt_tokens :]
        return ids

    def generate(self, prompts: Sequence[Prompt]) -> list[Completion]:
        """One completion per prompt, in order."""
        if not prompts:
            return []
        encoded = [self.encode(p) for p in prompts]
        seed = self.seed + self.calls
        self.calls += 1
        completions: list[Completion] = []
        with self._sampling_state(seed):
            for start in range(0, len(encoded), self.batch_size):
                completions.extend(self._generate_batch(encoded[start : start + self.batch_size]))
        return completions

    # -- internals ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _sampling_state(self, seed: int) -> Iterator[None]:
        """Eval mode, no autograd, and a seeded RNG; the caller's RNG and mode come back after."""
        device = self.device
        cuda = (
            [device.index if device.index is not None else torch.cuda.current_device()]
            if device.type == "cuda"
            else []
        )
        was_training = self.model.training
        self.model.eval()
        try:
            autocast = torch.autocast(device.type, dtype=self.autocast or torch.float32, enabled=bool(self.autocast))
            with torch.random.fork_rng(devices=cuda), torch.inference_mode(), autocast:
                torch.default_generator.manual_seed(seed)
                for index in cuda:
                    with torch.cuda.device(index):
                        torch.cuda.manual_seed(seed)
                yield
        finally:
            self.model.train(was_training)

    def _generate_batch(self, batch: list[list[int]]) -> list[Completion]:
        device = self.device
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):  # left padding
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        criteria = StopCriteria(self.tokenizer, width, len(batch), self.eos_ids, self.stop)
        # Explicit values override a hub model's generation_config (top_k, repetition penalty,
        # ...), so sampling follows exactly temperature + top_p, which the log-probs describe.
        sampling: dict[str, Any] = {"repetition_penalty": 1.0, "min_new_tokens": 0}
        if self.temperature > 0:
            sampling.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=0)
        else:
            sampling.update(do_sample=False)
        out = self.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            max_new_tokens=self.max_new_tokens,
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids) or None,
            stopping_criteria=StoppingCriteriaList([criteria]),
            output_logits=True,
            return_dict_in_generate=True,
            use_cache=True,
            **reserved_cache_arguments(self.model, width + self.max_new_tokens),
            **sampling,
        )
        generated = out.sequences[:, width:]  # (B, S)
        scale = self.temperature if self.temperature > 0 else 1.0
        logprobs = torch.stack(  # (B, S)
            [
                torch.log_softmax(step.float() / scale, dim=-1)
                .gather(1, generated[:, i : i + 1])
                .squeeze(1)
                for i, step in enumerate(out.logits)  # step: (B, V) raw logits
            ],
            dim=1,
        ).cpu()
        generated = generated.cpu()
        completions = []
        for row, prompt_ids in enumerate(batch):
            end = criteria.ends[row]
            reason = "stop" if end is not None else "length"
            end = end if end is not None else generated.shape[1]
            token_ids = generated[row, :end].tolist()
            text = self.tokenizer.decode(
                token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
            completions.append(
                Completion(
                    text=text,
                    prompt_ids=list(prompt_ids),
                    token_ids=token_ids,
                    logprobs=logprobs[row, :end].tolist(),
                    finish_reason=reason,
                )
            )
        return completions
