"""Chat messages and agent roles."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

Speaker = Literal["system", "user", "assistant", "tool"]


class Role(str, enum.Enum):
    """Which part an agent plays in an episode.

    ``PLANNER`` and ``WORKER`` are the two roles of one model in MATPO mode; ``SINGLE`` is the one
    agent of single-agent mode, which calls the tools itself.
    """

    PLANNER = "planner"
    WORKER = "worker"
    SINGLE = "single"


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. Frozen so that turn records can share messages instead of copying them."""

    role: Speaker
    content: str
    name: str | None = None
    """Tool name, for ``role == "tool"`` messages."""

    def to_dict(self) -> dict[str, str]:
        """The OpenAI / Hugging Face chat-template shape."""
        out = {"role": self.role, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Message:
        return cls(role=data["role"], content=data["content"], name=data.get("name"))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a policy is asked to continue: the acting role and its (context-fitted) messages."""

    role: Role
    messages: tuple[Message, ...]
    trajectory_id: str = ""
    """Which trajectory the completion will be recorded in."""
    tool_names: tuple[str, ...] = ()
    """Tools the acting role may call (the system prompt describes them)."""

    def to_chat(self) -> list[dict[str, str]]:
        """Chat-template input: a list of ``{"role", "content"}`` dicts."""
        return [m.to_dict() for m in self.messages]
