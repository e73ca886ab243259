"""The policy protocol: batched text generation over prompts of any role."""

from __future__ import annotations

import os
import traceback
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


class PolicyUnavailable(RuntimeError):
    """A policy that cannot answer for a reason outside its code (a server down, a refused
    request): its message is the whole story, shown as it is."""


class PolicyFailure(RuntimeError):
    """A policy's ``generate`` raised, or answered outside the protocol: says which policy, what
    and where, so a plugin's author finds the line."""


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    path = frame.filename
    try:
        relative = os.path.relpath(path)
        path = path if relative.startswith("..") else relative
    except ValueError:  # another drive
        pass
    return f" (at {path}:{frame.lineno}, in {frame.name})"


def generate_checked(policy: Policy, prompts: Sequence[Prompt]) -> list[Completion]:
    """``policy.generate(prompts)``, held to the protocol: one :class:`Completion` (or text, or an
    object with a ``text``) per prompt, in order. Anything else, or an exception from inside the policy, becomes a
    :class:`PolicyFailure` naming the policy and the line; :class:`PolicyUnavailable` and a missing
    optional module pass through with their own messages."""
    name = getattr(policy, "name", type(policy).__name__)
    try:
        completions = policy.generate(prompts)
    except (PolicyUnavailable, ModuleNotFoundError):
        raise
    except Exception as exc:
        raise PolicyFailure(f"policy {name!r} failed in generate: {type(exc).__name__}: {exc}{_where(exc)}") from exc
    if not isinstance(completions, (list, tuple)) or len(completions) != len(prompts):
        got = f"{len(completions)} completions" if isinstance(completions, (list, tuple)) else repr(completions)[:80]
        raise PolicyFailure(f"policy {name!r} returned {got} for {len(prompts)} prompts; generate must return "
                            "a list with one Completion per prompt, in order")
    for index, completion in enumerate(completions):
        if not isinstance(completion, str) and not isinstance(getattr(completion, "text", None), str):
            raise PolicyFailure(f"policy {name!r} returned {type(completion).__name__} for prompt {index}; "
                                "generate must return Completion objects (matpo_gym.policies.base.Completion)")
    # an object of the plugin's own with a text (and token fields) passes as it is, as the env reads it
    return [Completion(c) if isinstance(c, str) else c for c in completions]
