"""The policy protocol: batched text generation over prompts of any role."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from matpo_gym.core.messages import Prompt

DEFAULT_STOP = ("</tool_call>", "</answer>")
"""Closing tags of the action grammar: a completion ends once it has written one."""


def stop_sequences(stop: str | Sequence[str]) -> tuple[str, ...]:
    """Stop sequences as a tuple; one string is one sequence, as the OpenAI API reads it (not
    its characters, which would end every completion at its first token).

    >>> stop_sequences("</answer>"), stop_sequences(["</tool_call>", "</answer>"])
    (('</answer>',), ('</tool_call>', '</answer>'))
    """
    return (stop,) if isinstance(stop, str) else tuple(stop)


@dataclass(frozen=True, slots=True)
class Completion:
    """One generated turn. Model policies fill the token fields; scripted ones leave them None."""

    text: str
    prompt_ids: list[int] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    """Log-probability of each generated token under the sampling policy."""
    finish_reason: str = "stop"


@runtime_checkable
class Policy(Protocol):
    """Generates one completion per prompt. Planner and worker prompts arrive in the same batch."""

    name: str

    def generate(self, prompts: Sequence[Prompt]) -> list[Completion]: ...
