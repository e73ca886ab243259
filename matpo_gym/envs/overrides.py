"""Command-line overrides of an env spec: the paper's insights as named switches.

An override is ``name=value``. ``name`` is a switch (a short alias in :data:`SWITCHES`) or any
dotted path into the spec (``limits.worker_turns``, ``tools.search_top_k``, ``mode``). The value is
parsed by the target field's type: booleans accept on/off, true/false, yes/no and 1/0 (any case);
tuples of strings are comma-separated (empty for an empty tuple); an optional field takes
``none``. Overrides apply left to right, so a later one wins.

>>> from matpo_gym.envs.spec import EnvSpec
>>> spec = apply_overrides(EnvSpec("demo"), ["query_recap=off", "limits.worker_turns=5"])
>>> spec.prompts.query_recap, spec.limits.worker_turns
(False, 5)
>>> switch_values(spec)["query_recap"]
False
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Sequence
from typing import Any

from matpo_gym.config import ConfigError
from matpo_gym.envs.spec import EnvSpec

SWITCHES: dict[str, str] = {
    "query_recap": "prompts.query_recap",
    "strip_thinking": "prompts.strip_thinking",
    "forced_summary": "limits.forced_summary",
    "summary_chars": "limits.summary_chars",
    "leakage_guard": "tools.leakage_guard",
    "blocked_domains": "tools.blocked_domains",
    "context_tokens": "limits.context_tokens",
    "planner_context_tokens": "limits.planner_context_tokens",
    "worker_context_tokens": "limits.worker_context_tokens",
    "single_context_tokens": "limits.single_context_tokens",
    "planner_total_tokens": "limits.planner_total_tokens",
    "worker_total_tokens": "limits.worker_total_tokens",
    "single_total_tokens": "limits.single_total_tokens",
    "total_tokens": "limits.total_tokens",
}
"""Short names of the env switches, and the spec field each one sets."""

_TRUE = frozenset({"on", "true", "yes", "1"})
_FALSE = frozenset({"off", "false", "no", "0"})
_NONE = frozenset({"none", "null"})


def apply_overrides(spec: EnvSpec, overrides: Sequence[str]) -> EnvSpec:
    """``spec`` with every ``name=value`` of ``overrides`` applied; ConfigError names a bad one."""
    for override in overrides:
        name, sep, value = str(override).partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(
                f"Override {override!r} is not name=value, e.g. query_recap=off or "
                f"limits.worker_turns=5. {_valid_names()}"
            )
        path = SWITCHES.get(name, name)
        spec = _set(spec, path.split("."), value.strip(), path)
    return spec


def switch_values(spec: EnvSpec) -> dict[str, Any]:
    """The value of every switch in ``spec``, JSON-ready (tuples as lists), for run metadata."""
    values = {}
    for name, path in SWITCHES.items():
        value: Any = spec
        for part in path.split("."):
            value = getattr(value, part)
        values[name] = list(value) if isinstance(value, tuple) else value
    return values


def _set(obj: Any, parts: list[str], text: str, path: str) -> Any:
    """A copy of dataclass ``obj`` with the field at ``parts`` set from ``text``."""
    fields = {f.name: f for f in dataclasses.fields(obj) if f.init}
    head = parts[0]
    if head not in fields:
        where = path[: -len(".".join(parts))].rstrip(".") or "the spec"
        raise ConfigError(
            f"Unknown switch or setting {path!r}: {where} has no field {head!r} "
            f"(its fields: {', '.join(fields)}). {_valid_names()}"
        )
    current = getattr(obj, head)
    if dataclasses.is_dataclass(current):
        if len(parts) == 1:
            raise ConfigError(
                f"{path!r} is a section; set one of its fields, e.g. {path}.<field>. "
                f"{_valid_names()}"
            )
        value = _set(current, parts[1:], text, path)
    elif len(parts) > 1:
        raise ConfigError(f"Unknown setting {path!r}: {head!r} has no fields. {_valid_names()}")
    else:
        value = _parse(text, typing.get_type_hints(type(obj))[head], path)
    try:
        return dataclasses.replace(obj, **{head: value})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}={text}: {exc}") from None


def _parse(text: str, annotation: Any, path: str) -> Any:
    """``text`` as a value of type ``annotation``; ConfigError says what was expected."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in _NONE:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return _parse(text, option, path)
            except ConfigError:
                pass
        raise ConfigError(f"{path}={text}: expected {_describe(annotation)}")
    if origin is typing.Literal:
        if text not in args:
            raise ConfigError(f"{path}={text}: expected one of {', '.join(map(str, args))}")
        return text
    if origin is tuple:
        if text.startswith("["):  # a TOML array, as the env file would write it
            try:
                items = [str(value) for value in tomllib.loads(f"v = {text}")["v"]]
            except (tomllib.TOMLDecodeError, TypeError):
                raise ConfigError(f"{path}={text}: expected a,b or a TOML array like [\"a\", \"b\"]") from None
        else:
            items = [item.strip() for item in text.split(",")] if text else []
        stray = [item for item in items if any(c in item for c in "[]\"'")]
        if stray:
            raise ConfigError(f"{path}={text}: item {stray[0]!r} holds brackets or quotes; write a,b or "
                              "[\"a\", \"b\"]")
        return tuple(_parse(item, args[0], path) for item in items if item)
    if annotation is bool:
        lowered = text.lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigError(f"{path}={text}: expected on/off, true/false, yes/no or 1/0")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            raise ConfigError(f"{path}={text}: expected {annotation.__name__}") from None
    if annotation is str:
        return text
    raise ConfigError(f"{path} ({_describe(annotation)}) cannot be set from an override.")


def _describe(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join("none" if a is type(None) else _describe(a) for a in args)
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    return getattr(annotation, "__name__", str(annotation))


def _valid_names() -> str:
    return f"Switches: {', '.join(SWITCHES)}; or a dotted spec path such as limits.worker_turns."
