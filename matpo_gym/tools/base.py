"""The tool protocol and the one place where tool calls are validated, timed out and caught.

A tool is any object with a :class:`ToolSpec` (name, description, JSON-schema parameters) and a
``__call__(**arguments) -> str``. Tools signal failures the model should see by raising
:class:`ToolError`; :func:`run_tool` turns that, bad arguments, any other exception and timeouts
into a :class:`ToolResult` with ``ok=False`` and a message for the model. Nothing a tool does can
kill an episode.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import jsonschema

ErrorKind = Literal["bad_arguments", "unknown_tool", "tool_error", "timeout", "crash"]


class ToolError(Exception):
    """A failure the model should read (page not found, no results, ...)."""


class ToolTimeout(ToolError):
    """Raised by a tool that gave up waiting (a network call, or injected noise)."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a model is told about a tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tools=[...]`` entry (also what HF chat templates accept)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def render(self) -> str:
        """A compact one-tool description for system prompts."""
        return json.dumps(
            {"name": self.name, "description": self.description, "parameters": self.parameters},
            ensure_ascii=False,
        )


@runtime_checkable
class Tool(Protocol):
    """Anything callable with keyword arguments that returns text for the model."""

    spec: ToolSpec

    def __call__(self, **arguments: Any) -> str: ...


@dataclass(slots=True)
class ToolResult:
    """The outcome of one tool call, as recorded and as shown to the model."""

    tool: str
    arguments: dict[str, Any]
    text: str
    ok: bool = True
    error: ErrorKind | None = None
    seconds: float = 0.0
    noise: list[dict[str, Any]] = field(default_factory=list)
    """Noise injected into this result by :class:`~matpo_gym.tools.noise.NoisyTool`."""


def validate_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> str | None:
    """An actionable message if ``arguments`` do not match the tool's schema, else None."""
    validator = jsonschema.Draft202012Validator(spec.parameters)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    if not errors:
        return None
    problems = "; ".join(e.message for e in errors[:3])
    return f"Bad arguments for tool '{spec.name}': {problems}. Expected schema: {json.dumps(spec.parameters)}"


_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="matpo-tool")
_CALL = threading.local()


def call_submitted() -> float | None:
    """``time.monotonic()`` when :func:`run_tool` submitted the call running on this thread: its
    time limit counts the wait for a pool thread too, so a cache must count from there."""
    return getattr(_CALL, "submitted", None)


def _run_submitted(tool: Tool, arguments: dict[str, Any], submitted: float) -> str:
    _CALL.submitted = submitted
    try:
        return tool(**arguments)
    finally:
        _CALL.submitted = None


def run_tool(tool: Tool, arguments: dict[str, Any], *, timeout: float | None = 30.0) -> ToolResult:
    """Validate, run with a time limit, and catch everything; never raises."""
    name = tool.spec.name
    problem = validate_arguments(tool.spec, arguments)
    if problem is not None:
        return ToolResult(name, arguments, problem, ok=False, error="bad_arguments")
    start = time.perf_counter()
    try:
        if timeout is None:
            text = tool(**arguments)
        else:
            text = _POOL.submit(_run_submitted, tool, arguments, time.monotonic()).result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        return ToolResult(
            name,
            arguments,
            f"Tool '{name}' timed out after {timeout:g} s. Try again or try something else.",
            ok=False,
            error="timeout",
            seconds=time.perf_counter() - start,
        )
    except ToolTimeout as exc:
        return ToolResult(
            name, arguments, f"Tool '{name}' timed out: {exc}", ok=False, error="timeout",
            seconds=time.perf_counter() - start,
        )
    except ToolError as exc:
        return ToolResult(
            name, arguments, f"Tool '{name}' failed: {exc}", ok=False, error="tool_error",
            seconds=time.perf_counter() - start,
        )
    except Exception as exc:  # a tool bug must not kill the batch; the model sees a clean error
        return ToolResult(
            name,
            arguments,
            f"Tool '{name}' crashed ({type(exc).__name__}: {exc}).",
            ok=False,
            error="crash",
            seconds=time.perf_counter() - start,
        )
    if not isinstance(text, str):
        text = str(text)
    return ToolResult(name, arguments, text, seconds=time.perf_counter() - start)


def unknown_tool(name: str, arguments: dict[str, Any], available: list[str]) -> ToolResult:
    """The result shown when the model calls a tool it does not have."""
    listed = ", ".join(available) if available else "none"
    return ToolResult(
        name,
        arguments,
        f"Unknown tool '{name}'. Available tools: {listed}.",
        ok=False,
        error="unknown_tool",
    )
