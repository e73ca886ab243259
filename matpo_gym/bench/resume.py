"""When a run folder may take more episodes: only under the settings its records were played with.

A record's score depends on the env's settings (its file, after ``--set``), the policy's settings
(its catalogue entry), the noise, the split, the seed and the judge. A rerun that changed any of
them would mix two experiments in one results file and summarise them as one, so it is refused;
what only says where or how fast a run plays (the env file's folder, the tool cache, batch sizes)
may change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from matpo_gym.envs.spec import MODES, PROMPT_FILES

RESUME_SETTINGS = ("env", "policy", "noise", "noise_kinds", "split", "seed", "judge", "judge_kind")
"""Settings that decide what a record is: a folder's results resume only under the same ones
(``limit`` and ``samples`` may grow: they add records, and the summary follows the plan)."""

WHERE_NOT_WHAT = ("root", "description", "mode", "tools.cache_path", "tools.cache_mode", "prompts.planner",
                  "prompts.worker", "prompts.single", "prompts.worker_task")
"""Env spec fields that say where the file sits or how a run reads its tools, not what an episode
is (``mode``: the run's ``--mode`` picks the modes played; the prompts' paths move with the package,
so their texts are compared instead, see :func:`prompt_digests`)."""

POLICY_HOW = ("args.concurrency", "args.timeout_s", "args.max_retries", "args.backoff_s", "args.base_url",
              "args.api_key_env", "args.batch_size", "args.device", "args.gpu_memory_utilization",
              "args.tensor_parallel_size", "description")
"""Policy arguments that say where a policy runs or how fast, not what it answers: a run that
failed on its endpoint resumes with fewer concurrent requests, a longer timeout or a restarted
server."""


def prompt_digests(spec: Any) -> dict[str, str]:
    """A digest of the text of each of an env spec's prompt files, so an edited prompt counts as
    another env wherever the package sits."""

    digests = {}
    for which in PROMPT_FILES:
        try:
            digests[which] = hashlib.sha256(spec.prompt_text(which).encode("utf-8")).hexdigest()[:16]
        except Exception:  # noqa: BLE001 - a prompt the env cannot read fails when the env is made
            continue
    return digests


def policy_slug(policy: str) -> str:
    """The policy's part of a folder name: a catalogue name or file stem, and the class of a
    ``module:Class`` or ``file.py:Class`` target (two classes of one module are two names).

    >>> policy_slug("scripted"), policy_slug("policies/tiny.toml"), policy_slug("pkg.agents:Fast")
    ('scripted', 'tiny', 'pkg.agents.Fast')
    """
    target, _, cls = policy.partition(":")
    stem = Path(target).stem if target.endswith((".py", ".toml")) else target
    return f"{stem}.{cls}" if cls else stem


def policy_settings(policy: str) -> dict[str, Any] | None:
    """What a catalogue policy is built from (type, target, constructor arguments), or None for a
    class or built-in type named directly, whose settings are its defaults."""
    from matpo_gym.catalogue import CatalogueError, resolve
    from matpo_gym.policies.registry import load_policy_spec

    if ":" in policy and not policy.endswith(".toml"):
        return None
    try:
        spec = load_policy_spec(str(resolve("policies", policy)))
    except CatalogueError:
        return None
    return json.loads(json.dumps({"type": spec.type, "target": spec.target, "args": spec.args}, default=str))


def effective_settings(config: dict[str, Any], env_spec: Any) -> dict[str, Any]:
    """``config`` as what it plays: noise kinds only with noise, the env's own split for none, the
    judge's rubric only with a judge, a catalogue policy by name or file alike."""
    out = dict(config)
    kinds = sorted(k.strip() for k in str(out.get("noise_kinds") or "all").split(",") if k.strip())
    out["noise_kinds"] = kinds if out.get("noise") else None
    if out.get("split") is None and isinstance(env_spec, dict):
        out["split"] = (env_spec.get("source") or {}).get("split")
    if out.get("judge") is None:
        out["judge_kind"] = None
    out["policy"] = policy_slug(str(out.get("policy")))
    return out


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}{key}.")
    else:
        yield prefix[:-1], value


_MISSING = object()


def spec_changes(before: Any, now: Any, *, how: Sequence[str] = WHERE_NOT_WHAT, either: bool = False) -> list[str]:
    """Dotted fields whose values differ between two recorded settings (env specs, policy
    settings), leaving out ``how`` (:data:`WHERE_NOT_WHAT`) and, unless ``either``, fields only one
    of them has (a field newer than the older record; a policy's arguments compare with ``either``:
    an argument removed falls back to another value).

    >>> spec_changes({"limits": {"worker_turns": 6}, "root": "a"}, {"limits": {"worker_turns": 2}, "root": "b"})
    ['limits.worker_turns']
    """
    if not isinstance(before, dict) or not isinstance(now, dict):
        return []
    old, new = dict(_leaves(before)), dict(_leaves(now))
    keys = old.keys() | new.keys() if either else old.keys() & new.keys()
    return sorted(k for k in keys if k not in how and old.get(k, _MISSING) != new.get(k, _MISSING))


def check_resume(folder: Path, overrides: Sequence[str], settings: dict[str, Any] | None = None,
                 env_spec: dict[str, Any] | None = None, policy: dict[str, Any] | None = None,
                 prompts: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Refuse to add episodes to a run folder whose results were played with other overrides,
    other :data:`RESUME_SETTINGS` (``settings``: this run's config as a dict), another env spec
    (an edited env file) or other policy settings (an edited catalogue entry, ``policy``). The env
    counts as the same when its resolved spec is, however its file's path is spelled. Returns the
    folder's run.json when it holds results (the run that resumes them reads its plans), else None."""
    meta_path = folder / "run.json"
    results = [folder / f"{mode}.jsonl" for mode in MODES]
    if not any(p.is_file() and p.stat().st_size for p in results):
        return None
    unknown = (f"{folder} holds results but {{}}, so what they were played with is unknown; restore it, "
               "or give another --name or --out")
    if not meta_path.is_file():
        raise ValueError(unknown.format("no run.json"))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(unknown.format(f"its run.json is unreadable ({exc})")) from None
    if not isinstance(meta, dict):
        raise ValueError(unknown.format("its run.json is not an object"))
    switches = meta.get("switches")
    before = list(switches.get("overrides") or []) if isinstance(switches, dict) else []
    now = [o.strip() for o in overrides]
    if before != now:
        raise ValueError(
            f"{folder} holds results played with overrides {before or 'none'}, "
            f"not {now or 'none'}; give another --name (or leave it out: the default name "
            "follows the overrides)"
        )
    old = meta.get("config")
    if settings is None or not isinstance(old, dict):
        return meta
    new = json.loads(json.dumps(settings, default=str))
    old_spec = meta.get("env_spec")
    new_spec = json.loads(json.dumps(env_spec, default=str)) if env_spec is not None else None
    then, now_ = effective_settings(old, old_spec), effective_settings(new, new_spec or old_spec)
    differ = [k for k in RESUME_SETTINGS if k in old and then.get(k) != now_.get(k)]
    env_changes = spec_changes(old_spec, new_spec)
    if "env" in differ and new_spec is not None and not env_changes:  # a moved folder, or another spelling
        differ.remove("env")
    if differ:
        was = ", ".join(f"{k}={old[k]!r}" for k in differ)
        is_ = ", ".join(f"{k}={new.get(k)!r}" for k in differ)
        raise ValueError(f"{folder} holds results played with {was}, not {is_}; give another --name or --out")
    policy_changes = spec_changes(meta.get("policy_settings"), policy, how=POLICY_HOW, either=True)
    prompt_changes = spec_changes(meta.get("prompt_digests"), prompts)
    edited = ([f"env {k}" for k in env_changes] + [f"env prompt {k}" for k in prompt_changes]
              + [f"policy {k}" for k in policy_changes])
    if edited:
        shown = ", ".join(edited[:6]) + (f" and {len(edited) - 6} more" if len(edited) > 6 else "")
        raise ValueError(f"{folder} holds results played with other settings than the env and policy files "
                         f"give now ({shown} changed since); give another --name or --out, or delete the folder")
    return meta
