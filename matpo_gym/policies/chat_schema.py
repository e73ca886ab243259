"""The OpenAI chat-completions schema on the policy side: a request body becomes a
:class:`~matpo_gym.core.messages.Prompt` and a :class:`~matpo_gym.policies.base.Completion` becomes a
response body, as the endpoint of :mod:`matpo_gym.policies.serve` documents.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matpo_gym.core.messages import Message, Prompt, Role
from matpo_gym.policies.base import Completion
from matpo_gym.policies.openai import TOOL_RESULT_PATTERN

_SPEAKERS = ("system", "user", "assistant", "tool")
_TOOL_LINE = re.compile(r'\A\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


class BadRequest(ValueError):
    """A request body that does not fit the chat-completions schema (answered with HTTP 400)."""


# -- requests -> prompts ---------------------------------------------------------------------------


def infer_role(system_prompt: str) -> Role:
    """The acting role, read from the first line of the system prompt."""
    first = system_prompt.strip().split("\n", 1)[0].lower()
    if "planner" in first:
        return Role.PLANNER
    if "worker" in first:
        return Role.WORKER
    return Role.SINGLE


def tool_names(system_prompt: str) -> tuple[str, ...]:
    """The ``"name"`` of every tool JSON line in the system prompt, in order."""
    names: list[str] = []
    for line in system_prompt.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            tool = json.loads(line)
        except ValueError:
            match = _TOOL_LINE.match(line)
            name = json.loads(f'"{match.group(1)}"') if match else None
        else:
            name = tool.get("name") if isinstance(tool, dict) else None
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return tuple(names)


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
        parts = []
        for part in value:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise BadRequest(f"{where}: only text content parts are supported.")
            parts.append(part["text"])
        return "".join(parts)
    raise BadRequest(f"{where}: 'content' must be a string.")


def to_messages(raw: Any) -> tuple[Message, ...]:
    """Request messages as :class:`Message` objects; prefixed ``user`` tool results become ``tool``."""
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'messages' must be a non-empty list of {role, content} objects.")
    out = []
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object with 'role' and 'content'.")
        role = item.get("role")
        if role not in _SPEAKERS:
            raise BadRequest(f"{where}: unknown role {role!r}; use one of {', '.join(_SPEAKERS)}.")
        content = _content(item.get("content"), where)
        name = item.get("name") if isinstance(item.get("name"), str) else None
        if role == "user":
            tool = TOOL_RESULT_PATTERN.match(content)
            if tool:
                out.append(Message("tool", content[tool.end():], name=tool.group(1)))
                continue
        out.append(Message(role, content, name=name if role == "tool" else None))
    return tuple(out)


def to_prompt(messages: tuple[Message, ...]) -> Prompt:
    """A prompt with the role and tools inferred from the system prompt (see :mod:`matpo_gym.policies.serve`)."""
    system = next((m.content for m in messages if m.role == "system"), "")
    return Prompt(role=infer_role(system), messages=messages, tool_names=tool_names(system))


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat-completions request."""

    model: str | None
    prompt: Prompt
    stop: tuple[str, ...]
    logprobs: bool


def parse_request(body: Any) -> ChatRequest:
    """Validate a decoded request body; :class:`BadRequest` names what is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    if "messages" not in body:
        raise BadRequest("Missing required field 'messages'.")
    if body.get("stream"):
        raise BadRequest("Streaming is not supported; send 'stream': false.")
    n = body.get("n", 1)
    if n not in (None, 1) or isinstance(n, bool):
        raise BadRequest(f"Only n=1 is supported, got n={n!r}.")
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BadRequest(f"'{key}' must be a number.")
    for key in ("max_tokens", "max_completion_tokens", "seed"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadRequest(f"'{key}' must be an integer.")
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(s for s in stop if s)
    else:
        raise BadRequest("'stop' must be a string or a list of strings.")
    logprobs = body.get("logprobs", False)
    if logprobs is not None and not isinstance(logprobs, bool):
        raise BadRequest("'logprobs' must be true or false.")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("'model' must be a string.")
    return ChatRequest(model, to_prompt(to_messages(body["messages"])), stops, bool(logprobs))


# -- completions -> responses ----------------------------------------------------------------------


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, str | None]:
    """``text`` cut before its first stop sequence, and that sequence (None when none is there).

    >>> apply_stop("<answer>42</answer> more", ("</tool_call>", "</answer>"))
    ('<answer>42', '</answer>')
    >>> apply_stop("<answer>42", ("</answer>",))
    ('<answer>42', None)
    """
    found = [(index, s) for s in stop if (index := text.find(s)) >= 0]
    if not found:
        return text, None
    cut, matched = min(found)
    return text[:cut], matched


def _approx_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def response_body(request: ChatRequest, completion: Completion, model: str) -> dict[str, Any]:
    """The chat-completions response JSON for one completion."""
    text, matched = apply_stop(completion.text, request.stop)
    finish_reason = "stop" if matched is not None else completion.finish_reason
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": finish_reason,
        "stop_reason": matched,  # vLLM's field: the stop string that matched; null for end of turn
        "logprobs": None,
    }
    if request.logprobs and completion.logprobs is not None:
        ids = completion.token_ids or []
        choice["logprobs"] = {
            "content": [
                {"token": str(ids[i]) if i < len(ids) else "", "logprob": lp, "bytes": None, "top_logprobs": []}
                for i, lp in enumerate(completion.logprobs)
            ]
        }
    prompt_tokens = (
        len(completion.prompt_ids)
        if completion.prompt_ids is not None
        else sum(_approx_tokens(m.content) + 4 for m in request.prompt.messages)
    )
    completion_tokens = len(completion.token_ids) if completion.token_ids is not None else _approx_tokens(text)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
