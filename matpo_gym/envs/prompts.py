"""Role prompts: templates from the env spec, filled with the tools and limits of an episode.

Templates use ``$name`` placeholders (:class:`string.Template`) so JSON examples in a prompt need
no escaping. Available names: ``$tools`` (one JSON tool description per line), ``$tool_names``,
``$max_turns``; in the worker task template ``$question`` and ``$subtask``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from string import Template
from urllib.parse import urljoin

from matpo_gym.core.messages import Role
from matpo_gym.data.tasks import Task
from matpo_gym.envs.spec import EnvSpec
from matpo_gym.tools.base import ToolSpec

WORKER_TOOL = ToolSpec(
    name="worker",
    description=(
        "Delegate one self-contained subtask to a worker agent that can search and browse the web. "
        "It returns a short report: the conclusion, supporting facts with sources, and what failed."
    ),
    parameters={
        "type": "object",
        "properties": {
            "subtask": {"type": "string", "description": "What the worker must find out."}
        },
        "required": ["subtask"],
        "additionalProperties": False,
    },
)


@dataclass(frozen=True)
class PromptSet:
    """The templates of one env, loaded once."""

    planner: str
    worker: str
    single: str
    worker_task: str
    query_recap: bool = True
    strip_thinking: bool = True

    @classmethod
    def from_spec(cls, spec: EnvSpec) -> PromptSet:
        return cls(
            planner=spec.prompt_text("planner"),
            worker=spec.prompt_text("worker"),
            single=spec.prompt_text("single"),
            worker_task=spec.prompt_text("worker_task"),
            query_recap=spec.prompts.query_recap,
            strip_thinking=spec.prompts.strip_thinking,
        )

    def system(self, role: Role, tools: Sequence[ToolSpec], max_turns: int) -> str:
        templates = {Role.PLANNER: self.planner, Role.WORKER: self.worker, Role.SINGLE: self.single}
        template = templates[role]
        return Template(template).safe_substitute(
            tools="\n".join(t.render() for t in tools),
            tool_names=", ".join(t.name for t in tools),
            max_turns=max_turns,
        ).strip()

    def worker_message(self, question: str, subtask: str) -> str:
        """The worker's first user message; recaps the original question when enabled."""
        if not self.query_recap:
            return f"Your task: {subtask}"
        filled = Template(self.worker_task).safe_substitute(question=question, subtask=subtask)
        return filled.strip()


def question_message(task: Task, site_base: str | None) -> str:
    """The question as the agents read it: with the start URL for navigation tasks."""
    text = task.question
    if task.root_url:
        root = urljoin(site_base + "/", task.root_url) if site_base else task.root_url
        text += f"\nStart browsing from: {root}"
    return text
