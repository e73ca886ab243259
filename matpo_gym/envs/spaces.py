"""Gymnasium spaces for chat text.

Gymnasium's :class:`~gymnasium.spaces.Text` only admits characters from a fixed charset
(alphanumerics by default), so any real chat message would fall outside it and the passive
checker would warn on every step. :class:`ChatText` admits any Unicode string up to a length.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

SAMPLE_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;?!<>{}\"'/\n"


class ChatText(spaces.Text):
    """Any ``str`` of at most ``max_length`` characters; samples printable text."""

    def __init__(self, max_length: int = 1_000_000, *, seed: int | np.random.Generator | None = None):
        super().__init__(max_length=max_length, min_length=0, charset=SAMPLE_ALPHABET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"ChatText(max_length={self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ChatText) and other.max_length == self.max_length


ROLE_NAMES = ("planner", "worker", "single")
SPEAKERS = ("system", "user", "assistant", "tool")


def observation_space(max_chars: int = 1_000_000) -> spaces.Dict:
    """The observation: the acting role, its chat messages, and bookkeeping ids.

    ``messages`` is a tuple of ``{"role": speaker, "content": text}`` dicts: exactly what a chat
    template takes. ``role`` is the index of the acting role in :data:`ROLE_NAMES`.
    """
    message = spaces.Dict({"role": ChatText(16), "content": ChatText(max_chars)})
    return spaces.Dict(
        {
            "role": spaces.Discrete(len(ROLE_NAMES)),
            "messages": spaces.Sequence(message),
            "trajectory_id": ChatText(128),
            "turn": spaces.Discrete(100_000),
        }
    )


def action_space(max_chars: int = 1_000_000) -> ChatText:
    """The action: the model's text for one turn."""
    return ChatText(max_chars)
