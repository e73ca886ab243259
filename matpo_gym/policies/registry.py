"""Resolving a policy name to a policy object.

``--policy`` accepts, in order:

* ``module:Class`` or ``path/to/file.py:Class`` — any importable class (third-party plugins);
* a name from the ``matpo_gym.policies`` entry-point group (installed plugin packages);
* a catalogue name or ``.toml`` path (``policies/<name>.toml``), whose ``type`` is a built-in
  policy type or a ``target`` class, with constructor ``[args]``;
* a built-in type with default arguments (``scripted``, ``random``, ``hf``, ``vllm``, ``openai``).

Third-party packages register with::

    [project.entry-points."matpo_gym.policies"]
    my-agent = "my_package.agent:MyPolicy"
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from matpo_gym.catalogue import CatalogueError, resolve
from matpo_gym.config import ConfigError, from_dict, load_toml
from matpo_gym.extras import install_hint
from matpo_gym.policies.base import Policy

ENTRY_POINT_GROUP = "matpo_gym.policies"


def _builtin_types() -> dict[str, str]:
    return {
        "scripted": "matpo_gym.policies.scripted:SearchReadPolicy",
        "random": "matpo_gym.policies.scripted:RandomPolicy",
        "hf": "matpo_gym.policies.hf:HFPolicy",
        "vllm": "matpo_gym.policies.vllm:VLLMPolicy",
        "openai": "matpo_gym.policies.openai:OpenAIPolicy",
    }


@dataclass(frozen=True)
class PolicySpec:
    """A catalogue entry: which class to build and with which arguments."""

    name: str
    type: str = "plugin"
    """A built-in type (``scripted``, ``random``, ``hf``, ``vllm``, ``openai``) or ``plugin``."""
    target: str | None = None
    """``module:Class`` or ``file.py:Class`` (relative to the spec file) for ``plugin``."""
    description: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the class."""


class PolicyError(LookupError):
    """A policy that cannot be found or built."""


def load_class(target: str, *, base: Path | None = None) -> Callable[..., Policy]:
    """Import ``module:Class`` or ``file.py:Class``."""
    module_name, sep, attr = target.partition(":")
    if not sep or not attr:
        raise PolicyError(f"Policy target {target!r} must look like 'module:Class' or 'file.py:Class'.")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise PolicyError(f"Policy file {path} does not exist.")
        name = f"matpo_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses, pickle and typing look a class's module up there
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise PolicyError(f"Cannot load policy file {path}: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise PolicyError(f"Cannot import policy module {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PolicyError(f"Module {module_name!r} has no attribute {attr!r}.") from None


def _build(cls: Callable[..., Policy], args: dict[str, Any], label: str) -> Policy:
    try:
        policy = cls(**args)
    except TypeError as exc:
        raise PolicyError(f"Cannot build policy {label!r} with arguments {sorted(args)}: {exc}") from None
    except (ImportError, OSError) as exc:  # a missing extra, model folder or hub access: its own message
        hint = install_hint(exc) if isinstance(exc, ImportError) else None
        raise PolicyError(f"Cannot build policy {label!r}: {exc}" + (f" ({hint})" if hint else "")) from exc
    if not isinstance(policy, Policy):
        raise PolicyError(f"{label!r} does not implement the Policy protocol (name + generate).")
    return policy


def load_policy_spec(name_or_path: str) -> PolicySpec:
    path = resolve("policies", name_or_path)
    data = load_toml(path)
    data.setdefault("name", path.stem)
    try:
        spec = from_dict(PolicySpec, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if spec.type == "plugin" and not spec.target:
        raise ConfigError(f"{path}: a plugin policy needs 'target = \"module:Class\"'.")
    return spec


def load_policy(name: str, **overrides: Any) -> Policy:
    """Build the policy ``name`` refers to; ``overrides`` update its constructor arguments."""
    if ":" in name and not name.endswith(".toml"):
        return _build(load_class(name), overrides, name)
    if name.endswith(".py"):
        raise PolicyError(f"Name the class in {name}: --policy {name}:ClassName.")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                factory = ep.load()
            except (ImportError, AttributeError) as exc:
                raise PolicyError(f"Cannot load policy entry point {name!r} ({ep.value}): {exc}") from exc
            return _build(factory, overrides, name)
    try:
        path = resolve("policies", name)
    except CatalogueError as exc:
        if name in _builtin_types():
            return _build(load_class(_builtin_types()[name]), overrides, name)
        raise PolicyError(f"{exc} Built-in types: {', '.join(_builtin_types())}; or pass module:Class.") from None
    spec = load_policy_spec(str(path))
    target = spec.target if spec.type == "plugin" else _builtin_types().get(spec.type)
    if target is None:
        raise ConfigError(
            f"{path}: unknown policy type {spec.type!r}; use one of {', '.join(_builtin_types())} or 'plugin'."
        )
    return _build(load_class(target, base=path.parent), {**spec.args, **overrides}, spec.name)
