"""The action grammar: what a model may write in one turn, and its strict parser.

A turn is free text (optionally with ``<think>...</think>`` blocks) followed by exactly one action:

* a tool call: ``<tool_call>{"name": "search", "arguments": {"query": "..."}}</tool_call>``
* a final answer: ``<answer>...</answer>``, or LaTeX ``\\boxed{...}`` when no tag is used.

The first complete action ends the turn; anything after it is ignored, as a stop sequence would
cut it. Thinking is never searched for actions. Anything that is not a well-formed action becomes
a :class:`ParseError` whose ``message`` tells the model exactly what to fix: the environment shows
it as an observation instead of raising.

>>> parse_action('<tool_call>{"name": "search", "arguments": {"query": "Rhine"}}</tool_call>')
ToolCall(name='search', arguments={'query': 'Rhine'})
>>> parse_action("<think>easy</think>The answer is <answer>42</answer>")
Answer(text='42')
>>> parse_action("no action here").message.splitlines()[0]
'No action found: end your turn with one <tool_call>{...}</tool_call> or <answer>...</answer>.'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Union

THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL)
TAG_RE = re.compile(r"<(tool_call|answer)>(.*?)</\1>", re.DOTALL)
OPEN_TAG_RE = re.compile(r"<(tool_call|answer)>")
BOXED = "\\boxed{"
_TEXT_WRAPPER = re.compile(r"^\\(?:text|textbf|textit|textrm|mathrm|mathbf|operatorname)\{(.*)\}$", re.DOTALL)

FORMAT_HELP = (
    "Write one action per turn, either\n"
    '<tool_call>{"name": "<tool>", "arguments": {...}}</tool_call>\n'
    "or\n"
    "<answer>your final answer</answer>"
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A request to run tool ``name`` with JSON ``arguments``."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        """The canonical text of this call, as a model should write it."""
        payload = json.dumps({"name": self.name, "arguments": self.arguments}, ensure_ascii=False)
        return f"<tool_call>{payload}</tool_call>"


@dataclass(frozen=True, slots=True)
class Answer:
    """A final answer (planner, single agent) or final summary (worker)."""

    text: str

    def render(self) -> str:
        return f"<answer>{self.text}</answer>"


@dataclass(frozen=True, slots=True)
class ParseError:
    """Output that is not a valid action; ``message`` is shown to the model."""

    message: str


Action = Union[ToolCall, Answer, ParseError]


def strip_thinking(text: str) -> str:
    """Remove closed ``<think>`` blocks, and everything after an unclosed ``<think>``."""
    text = THINK_RE.sub("", text)
    start = text.find("<think>")
    return text if start < 0 else text[:start]


def _extract_boxed(text: str) -> str | None:
    """Content of the first ``\\boxed{...}`` with balanced braces, or None."""
    start = text.find(BOXED)
    if start < 0:
        return None
    depth, i = 1, start + len(BOXED)
    while i < len(text):
        ch = text[i]
        depth += (ch == "{") - (ch == "}")
        if depth == 0:
            return text[start + len(BOXED) : i]
        i += 1
    return None


def _error(problem: str) -> ParseError:
    return ParseError(f"{problem}\n{FORMAT_HELP}")


def _parse_tool_call(body: str) -> ToolCall | ParseError:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        return _error(f"The tool call is not valid JSON ({exc.msg} at character {exc.pos}).")
    if not isinstance(payload, dict):
        return _error("The tool call must be a JSON object with keys 'name' and 'arguments'.")
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        return _error("The tool call needs a non-empty string 'name'.")
    arguments = payload.get("arguments", {})
    if isinstance(arguments, str):  # some models double-encode the arguments
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return _error("The tool call's 'arguments' must be a JSON object.")
    if not isinstance(arguments, dict):
        return _error("The tool call's 'arguments' must be a JSON object.")
    extra = set(payload) - {"name", "arguments"}
    if extra:
        return _error(f"Unexpected keys in the tool call: {sorted(extra)}.")
    return ToolCall(name=name.strip(), arguments=arguments)


def _plain(boxed: str) -> str:
    r"""A boxed answer's text: ``\boxed{\text{Paris}}`` is Paris."""
    answer = boxed.strip()
    while (wrapped := _TEXT_WRAPPER.match(answer)) is not None:
        answer = wrapped.group(1).strip()
    return answer


def _unboxed(answer: str) -> str:
    r"""An answer tag holding one ``\boxed{...}`` (and nothing else but ``$``) answers its content.

    >>> _unboxed(r"\boxed{70}"), _unboxed(r"$\boxed{\text{Paris}}$"), _unboxed(r"\boxed{1} or \boxed{2}")
    ('70', 'Paris', '\\boxed{1} or \\boxed{2}')
    """
    inner = answer.strip("$ \n\t")
    if inner.startswith(BOXED):
        boxed = _extract_boxed(inner)
        if boxed is not None and boxed.strip() and inner == f"{BOXED}{boxed}}}":
            return _plain(boxed)
    return answer


def parse_action(text: str) -> Action:
    """Parse one model turn into a :data:`Action`; never raises."""
    if not isinstance(text, str):
        return _error(f"Expected text, got {type(text).__name__}.")
    visible = strip_thinking(text)
    match = TAG_RE.search(visible)
    if match is not None:
        tag, body = match.group(1), match.group(2)
        if tag == "tool_call":
            return _parse_tool_call(body.strip())
        answer = _unboxed(body.strip())
        if not answer:
            return _error("The answer is empty.")
        return Answer(answer)
    opened = OPEN_TAG_RE.search(visible)
    if opened is not None:
        tag = opened.group(1)
        return _error(f"<{tag}> is opened but never closed with </{tag}>.")
    boxed = _extract_boxed(visible)
    if boxed is not None and boxed.strip():
        return Answer(_plain(boxed))
    return _error(
        "No action found: end your turn with one <tool_call>{...}</tool_call> or <answer>...</answer>."
    )
