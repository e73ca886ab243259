"""A model's shape and parameter count, read from files (a ``config.json``, the tiny model's config
or a table of published ones), so that a training run can be sized without loading the model or
importing torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matpo_gym.trainers.config import TrainConfig


def _qwen3(hidden: int, intermediate: int, layers: int, heads: int, tied: bool) -> dict[str, Any]:
    """The shape fields of a Qwen3 dense model's ``config.json``."""
    return {
        "model_type": "qwen3", "head_dim": 128, "num_key_value_heads": 8, "vocab_size": 151936,
        "max_position_embeddings": 40960, "hidden_size": hidden, "intermediate_size": intermediate,
        "num_hidden_layers": layers, "num_attention_heads": heads, "tie_word_embeddings": tied,
    }


KNOWN_MODELS: dict[str, dict[str, Any]] = {
    "Qwen/Qwen3-4B": _qwen3(2560, 9728, 36, 32, tied=True),
    "Qwen/Qwen3-8B": _qwen3(4096, 12288, 36, 32, tied=False),
    "Qwen/Qwen3-14B": _qwen3(5120, 17408, 40, 40, tied=False),
    "Qwen/Qwen3-32B": _qwen3(5120, 25600, 64, 64, tied=False),
}
"""The shape fields of published ``config.json`` files, for hub names with no local copy."""


@dataclass(frozen=True)
class ModelShape:
    """The fields of a decoder-only transformer that fix its parameter count and memory."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    tie_word_embeddings: bool
    max_positions: int | None = None
    qk_norm: bool = False
    """Qwen3's per-head RMSNorm on queries and keys."""
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelShape:
        """From a Hugging Face ``config.json`` (a ``text_config`` inside is read instead)."""
        if isinstance(config.get("text_config"), dict):
            config = config["text_config"]
        if "num_experts" in config or "num_local_experts" in config:
            raise ValueError("mixture-of-experts configs are not estimated")
        try:
            hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
            model_type = str(config.get("model_type", ""))
            attention_bias = bool(config.get("attention_bias", False))
            return cls(
                vocab_size=int(config["vocab_size"]),
                hidden_size=hidden,
                num_layers=int(config["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=int(config.get("num_key_value_heads") or heads),
                head_dim=int(config.get("head_dim") or hidden // heads),
                intermediate_size=int(config["intermediate_size"]),
                tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
                max_positions=config.get("max_position_embeddings"),
                qk_norm=model_type.startswith("qwen3"),
                qkv_bias=model_type == "qwen2" or attention_bias,
                o_bias=model_type != "qwen2" and attention_bias,
                mlp_bias=bool(config.get("mlp_bias", False)),
            )
        except KeyError as exc:
            raise ValueError(f"config.json has no {exc.args[0]!r}") from None

    @property
    def parameters(self) -> int:
        """Embeddings, per-layer attention / MLP / norms, the final norm and an untied LM head."""
        h, d = self.hidden_size, self.head_dim
        q, kv = self.num_heads * d, self.num_kv_heads * d
        attention = h * q + 2 * h * kv + q * h
        attention += (q + 2 * kv) * self.qkv_bias + h * self.o_bias + 2 * d * self.qk_norm
        mlp = 3 * h * self.intermediate_size + (2 * self.intermediate_size + h) * self.mlp_bias
        layer = attention + mlp + 2 * h
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * layer + embeddings + h

    def describe(self) -> str:
        tied = "tied" if self.tie_word_embeddings else "untied"
        return (f"{self.num_layers} layers, hidden {self.hidden_size:,}, "
                f"MLP {self.intermediate_size:,}, vocab {self.vocab_size:,}, "
                f"{self.num_heads} heads / {self.num_kv_heads} KV, {tied} embeddings")


@dataclass(frozen=True)
class ModelInfo:
    """The model a run trains and where its shape came from (``shape`` None when unknown)."""

    name: str
    shape: ModelShape | None
    source: str


def model_info(config: TrainConfig, notes: list[str]) -> ModelInfo:
    """The shape of the model a run starts from, found without loading it."""
    name = config.model
    if config.init_from is not None:
        start = Path(config.init_from)
        if (start / "config.json").is_file():
            return _from_file(config.init_from, start / "config.json", notes)
        notes.append(f"init_from {config.init_from} does not exist yet (another recipe writes it); "
                     f"sizes are those of model {name!r}")
    if name == "tiny":
        from matpo_gym.models.tiny import TinyModelConfig

        tiny = TinyModelConfig()
        shape = ModelShape(
            tiny.vocab_size, tiny.hidden_size, tiny.num_layers, tiny.num_heads, tiny.num_kv_heads,
            tiny.hidden_size // tiny.num_heads, tiny.intermediate_size, True,
            tiny.max_position_embeddings,
        )
        return ModelInfo(name, shape, "the tiny local model (TinyModelConfig)")
    local = Path(name).expanduser()
    if (local / "config.json").is_file():
        return _from_file(name, local / "config.json", notes)
    cached = _cached_config(name)
    if cached is not None:
        return _from_file(name, cached, notes)
    by_name = {key.split("/")[-1].lower(): config for key, config in KNOWN_MODELS.items()}
    known = KNOWN_MODELS.get(name) or by_name.get(local.name.lower())
    if known is not None:
        source = "from its published config.json (built-in table)"
        return ModelInfo(name, ModelShape.from_config(known), source)
    notes.append(f"no local config.json for {name!r} and it is not among the known sizes "
                 f"({', '.join(KNOWN_MODELS)}): memory is not estimated")
    return ModelInfo(name, None, "no config.json here")


def _from_file(name: str, path: Path, notes: list[str]) -> ModelInfo:
    try:
        shape = ModelShape.from_config(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        notes.append(f"cannot size {name!r} from {path}: {exc}")
        return ModelInfo(name, None, f"unreadable {path}")
    return ModelInfo(name, shape, f"from {path}")


def _cached_config(name: str) -> Path | None:
    """``config.json`` of a hub model already in the local Hugging Face cache (no download)."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - a malformed cache only means "not cached"
        return None
    return Path(found) if isinstance(found, str) else None


__all__ = ["KNOWN_MODELS", "ModelInfo", "ModelShape", "model_info"]
