"""Models built locally: the tiny random-weight chat model that tests, CI and CPU recipes use."""

from matpo_gym.models.tiny import (
    TinyModelConfig,
    build_tiny_model,
    default_tiny_dir,
    ensure_tiny,
    load_tiny,
)

__all__ = ["TinyModelConfig", "build_tiny_model", "default_tiny_dir", "ensure_tiny", "load_tiny"]
