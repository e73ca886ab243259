"""A tiny chat model built on this machine: no download, no hub, a few seconds on a CPU.

The tokenizer is a byte-level BPE trained on the page text of an offline world that no env plays
(:data:`TOKENIZER_WORLD_SEED`), the env prompt templates and that world's questions, so the text
an agent reads tokenizes compactly while every played world's names split into sub-word pieces
alike. Digits are split one per token, as Llama's and Qwen's tokenizers do, so a number is copied
digit by digit.
The chat markers and the action grammar's tags are added tokens, one id each. The model is a
``LlamaForCausalLM`` with seeded random weights (a Llama config, because ``AutoTokenizer`` keeps a
Llama checkpoint's tokenizer as saved, while a Qwen2 config swaps in Qwen2's pre-tokenizer and
changes the ids).

>>> path = ensure_tiny()                                    # doctest: +SKIP
>>> model, tokenizer = load_tiny(path)                      # doctest: +SKIP
>>> len(tokenizer("<tool_call>", add_special_tokens=False).input_ids)   # doctest: +SKIP
1
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

FORMAT_VERSION = 3
"""Bumped whenever the build changes, so cached models from an older build are not reused."""
MANIFEST = "matpo_tiny.json"
TOKENIZER_WORLD_SEED = 104_729
"""The world whose text trains the tokenizer; no env plays it. A tokenizer trained on a world that
is played turns that world's names into single tokens: a model taught to copy the multi-piece names
of other worlds then fails on exactly those (its held-out questions), and one taught on that world
alone memorises the name tokens instead of learning to copy."""

BOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (BOS_TOKEN, PAD_TOKEN, IM_START, IM_END)
"""Chat markers and control tokens: one id each, dropped by ``decode(skip_special_tokens=True)``."""
GRAMMAR_TOKENS = ("<tool_call>", "</tool_call>", "<answer>", "</answer>", "<think>", "</think>")
"""The action grammar's tags: one id each, and kept in decoded text (the env parses them)."""

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""ChatML-like: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message; tool results keep
the role ``tool``; ``add_generation_prompt`` opens an assistant turn."""


@dataclass(frozen=True, slots=True)
class TinyModelConfig:
    """Everything that determines the tiny model; equal configs build identical models."""

    vocab_size: int = 4096
    """Tokenizer vocabulary, special and grammar tokens included (= the embedding rows)."""
    hidden_size: int = 256
    """Width of the residual stream."""
    num_layers: int = 4
    """Transformer blocks."""
    num_heads: int = 4
    """Attention (query) heads per block."""
    num_kv_heads: int = 2
    """Key/value heads per block (grouped-query attention)."""
    intermediate_size: int = 688
    """Width of each block's SwiGLU MLP."""
    max_position_embeddings: int = 4096
    """Longest sequence (prompt + completion) the model and tokenizer accept."""
    world_seed: int = TOKENIZER_WORLD_SEED
    """Seed of the offline world whose pages train the tokenizer."""
    num_entities: int = 400
    """Size of that world (more entities, more tokenizer training text)."""
    seed: int = 0
    """Seed of the random weight initialisation."""

    def __post_init__(self) -> None:
        minimum = len(SPECIAL_TOKENS) + len(GRAMMAR_TOKENS) + 256 + 1
        if self.vocab_size < minimum:
            raise ValueError(
                f"vocab_size must be at least {minimum} (bytes + added tokens), got {self.vocab_size}"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}"
            )

    def digest(self) -> str:
        """A short hash of the config, the build format and the prompt files the tokenizer is
        trained on: the cache folder's name (a change to the world generator's text needs a new
        ``FORMAT_VERSION``)."""
        from matpo_gym.catalogue import builtin_dir

        prompts = hashlib.sha256()
        for path in sorted((builtin_dir("envs") / "prompts").glob("*.md")):
            prompts.update(path.name.encode() + b"\0" + path.read_bytes())
        payload = json.dumps({"format": FORMAT_VERSION, "prompts": prompts.hexdigest(), **dataclasses.asdict(self)},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def default_tiny_dir(config: TinyModelConfig | None = None) -> Path:
    """Where :func:`ensure_tiny` keeps a config's model: ``$MATPO_HOME/tiny-<hash>``, or
    ``~/.cache/matpo-gym/tiny-<hash>`` when ``MATPO_HOME`` is unset."""
    config = config or TinyModelConfig()
    home = os.environ.get("MATPO_HOME")
    root = Path(home).expanduser() if home else Path.home() / ".cache" / "matpo-gym"
    return root / f"tiny-{config.digest()}"


def _corpus(config: TinyModelConfig) -> Iterator[str]:
    """Tokenizer training text: world pages as agents read them, prompts, questions, grammar."""
    from matpo_gym.catalogue import builtin_dir
    from matpo_gym.data.world import WorldConfig, build_world
    from matpo_gym.data.world.generator import FAMILIES
    from matpo_gym.tools.html_text import html_to_text

    for path in sorted((builtin_dir("envs") / "prompts").glob("*.md")):
        yield path.read_text(encoding="utf-8")
    yield " ".join(GRAMMAR_TOKENS)
    world = build_world(WorldConfig(seed=config.world_seed, num_entities=config.num_entities))
    for page in world.store:
        yield html_to_text(page.html, page.url).text
    for family in sorted(FAMILIES):
        yield "\n".join(task.question for task in world.tasks(family, split="train"))


def _train_tokenizer(config: TinyModelConfig) -> PreTrainedTokenizerBase:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size - len(GRAMMAR_TOKENS),
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_corpus(config), trainer=trainer)
    # Non-special added tokens: one id each, matched before BPE, and kept by decode.
    backend.add_tokens([AddedToken(tag, normalized=False, special=False) for tag in GRAMMAR_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        padding_side="left",  # a constructor argument: setting the attribute later is not saved
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=config.max_position_embeddings,
    )


def _build_model(config: TinyModelConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    ids = {
        name: int(tokenizer.convert_tokens_to_ids(token))  # type: ignore[arg-type]
        for name, token in (("bos", BOS_TOKEN), ("eos", IM_END), ("pad", PAD_TOKEN))
    }
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        pad_token_id=ids["pad"],
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(config.seed)
        model = LlamaForCausalLM(model_config)
    model.generation_config.bos_token_id = ids["bos"]
    model.generation_config.eos_token_id = ids["eos"]
    model.generation_config.pad_token_id = ids["pad"]
    return model.eval()


def build_tiny_model(config: TinyModelConfig, out_dir: Path) -> Path:
    """Train the tokenizer, initialise the model and save both (``save_pretrained``) to ``out_dir``.

    Also writes ``matpo_tiny.json`` (the config, its hash, the parameter count). Returns ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(config)
    if len(tokenizer) != config.vocab_size:
        raise RuntimeError(
            f"The tokenizer reached {len(tokenizer)} tokens, not {config.vocab_size}: the world's text "
            f"is too small for this vocabulary (raise num_entities or lower vocab_size)."
        )
    model = _build_model(config, tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "hash": config.digest(),
        "config": dataclasses.asdict(config),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out_dir


def load_tiny(out_dir: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model (in eval mode) and tokenizer saved in ``out_dir``, loaded without the hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    if not (out_dir / MANIFEST).is_file():
        raise FileNotFoundError(
            f"{out_dir} holds no tiny model ({MANIFEST} is missing); build it with ensure_tiny()."
        )
    model = AutoModelForCausalLM.from_pretrained(out_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(out_dir, local_files_only=True)
    return model.eval(), tokenizer


def ensure_tiny(config: TinyModelConfig | None = None, *, out_dir: Path | None = None) -> Path:
    """The folder of ``config``'s tiny model, built on first use and reused after.

    The build happens in a temporary folder next to the target and is renamed into place, so an
    interrupted build leaves nothing half-written and concurrent callers agree on one result.
    """
    config = config or TinyModelConfig()
    target = Path(out_dir) if out_dir is not None else default_tiny_dir(config)
    if (target / MANIFEST).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build_tiny_model(config, staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / MANIFEST).is_file():  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
