"""An example third-party policy, loaded as a plugin.

Any class with a ``name`` and a ``generate(prompts) -> list[Completion]`` method is a policy.
Use it with ``matpo-bench run --policy echo-plugin`` (through ``policies/echo-plugin.toml``),
``--policy policies/echo_plugin.py:EchoPolicy``, or, from an installed package, an entry point
in the ``matpo_gym.policies`` group.
"""

from __future__ import annotations

from typing import Sequence

from matpo_gym.core.messages import Prompt
from matpo_gym.policies.base import Completion


class EchoPolicy:
    """Answers every question with its own last word: a minimal, complete plugin."""

    name = "echo"

    def __init__(self, suffix: str = ""):
        self.suffix = suffix

    def generate(self, prompts: Sequence[Prompt]) -> list[Completion]:
        completions = []
        for prompt in prompts:
            question = prompt.messages[1].content if len(prompt.messages) > 1 else ""
            last_word = question.rstrip("?. ").split()[-1] if question.split() else "unknown"
            completions.append(Completion(f"<answer>{last_word}{self.suffix}</answer>"))
        return completions
