"""Where a training run starts and whether its folder may resume: the weights ``init_from`` names
exist, and a folder's checkpoints were trained with the settings the run gives now (``train.json``)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from matpo_gym.bench.results import write_json_atomic
from matpo_gym.config import ConfigError, load_toml
from matpo_gym.trainers.config import TrainConfig, run_metadata


def _names_a_folder(name: str) -> bool:
    """Whether ``name`` can only be a local folder: a relative or absolute path, a checkpoint, or any
    name while the hub is offline (``org/model`` may be a hub name otherwise)."""
    path = Path(name)
    return (os.environ.get("HF_HUB_OFFLINE") == "1" or name.startswith((".", "/", "~")) or len(path.parts) > 2
            or "checkpoints" in path.parts)


def recipe_writing(folder: str) -> Path | None:
    """The catalogue recipe whose ``out`` holds ``folder`` (a checkpoint another recipe writes)."""
    from matpo_gym.catalogue import search_dirs

    target = Path(folder)
    for directory in search_dirs("trainers"):
        for path in sorted(directory.glob("*.toml")):
            try:
                out = load_toml(path).get("train", {}).get("out")
            except (ConfigError, OSError):
                continue
            if out and (target == Path(out) or Path(out) in target.parents):
                return path
    return None


def check_start(config: TrainConfig) -> None:
    """The weights a run starts from exist: a missing ``init_from`` is usually another recipe's
    checkpoint not trained yet, which the error names."""
    start = config.init_from
    if start is not None and Path(start).is_dir():
        if not (Path(start) / "config.json").is_file():
            raise ConfigError(f"init_from {start} holds no config.json: give the folder of a checkpoint "
                              "(checkpoints/step-N) or of a saved model")
        return
    if start is None or not _names_a_folder(start):
        return
    writer = recipe_writing(start)
    if writer is not None:
        shown = f"trainers/{writer.name}" if writer.parent.name == "trainers" else str(writer)
        raise ConfigError(f"init_from {start} does not exist: {shown} writes it; train that first "
                          f"(matpo-bench train --recipe {shown})")
    raise ConfigError(f"init_from {start} does not exist; give the folder of a checkpoint or model")


RUN_RECORD = "train.json"
"""A training folder's record of the settings its checkpoints were trained with."""

HOW_NOT_WHAT = ("recipe", "out", "steps", "save_every", "device", "precision", "sharding", "gradient_checkpointing",
                "micro_batch_tokens", "rollout_batch", "rollout_engine", "vllm_gpu_memory_utilization", "quiet",
                "dry_run")
"""Settings a run may resume under other values of: where and how it computes, and how long it runs."""

PLACES = {"model": 3, "init_from": 3, "env": 2, "eval_env": 2}
"""Settings that name a file or folder, and how many of a path's last parts say what it is once the
folder has moved (``.../sft/checkpoints/step-N``, ``envs/NAME.toml``)."""


def _located(value: str, setting: str) -> Path:
    """A catalogue env name as its file; a path as it is."""
    if setting in ("env", "eval_env") and not value.endswith(".toml"):
        from matpo_gym.catalogue import CatalogueError, resolve

        try:
            return resolve("envs", value)
        except CatalogueError:
            pass
    return Path(value)


def _digest(folder: Path) -> str | None:
    """A model folder's identity: its config.json (a copy of the folder has the same one)."""
    config = folder / "config.json"
    return hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None


def _same_place(a: Any, b: Any, setting: str = "model") -> bool:
    """Whether two spellings of a file or folder setting name the same thing: the same file, a
    model folder and its copy, or a moved folder whose last :data:`PLACES` parts agree.

    >>> _same_place("world-tiny", "envs/world-tiny.toml", "env")
    True
    >>> _same_place("runs/r/sft/checkpoints/step-9", "/moved/r/sft/checkpoints/step-9", "init_from")
    True
    >>> _same_place("world-frames", "/tmp/exp/world-frames.toml", "env"), _same_place("tiny", "/elsewhere/tiny")
    (False, False)
    >>> _same_place("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-3B")
    False
    """
    if a is None or b is None:
        return a is b
    x, y = _located(str(a), setting), _located(str(b), setting)
    if str(a) == str(b) or x.resolve() == y.resolve():
        return True
    if x.is_dir() and y.is_dir():
        return _digest(x) is not None and _digest(x) == _digest(y)
    depth = PLACES.get(setting, 3)
    return len(x.parts) >= depth and len(y.parts) >= depth and x.parts[-depth:] == y.parts[-depth:]


def resume_changes(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """Settings of ``config`` that differ from those a folder's checkpoints were trained with
    (``saved``, its :data:`RUN_RECORD`), as ``name: old -> new``; settings newer than the record
    are skipped."""
    now = run_metadata(config)
    changes = []
    for name, value in now.items():
        if name in HOW_NOT_WHAT or name not in saved:
            continue
        old = saved[name]
        same = (_same_place(old, value, name) if name in PLACES
                else json.dumps(old) == json.dumps(value, default=str))
        if not same:
            changes.append(f"{name}: {old!r} -> {value!r}")
    return changes


def claim_out_folder(config: TrainConfig, *, write: bool = True) -> None:
    """Refuse to resume a folder whose checkpoints were trained with other settings (a copied recipe
    that kept ``out``, another algo or env), then record this run's settings in it. A folder with no
    checkpoint yet starts afresh whatever it holds. ``write=False`` only refuses (the dry run)."""
    record = Path(config.out) / RUN_RECORD
    resumes = (Path(config.out) / "checkpoints" / "latest").is_file()
    if resumes and record.is_file():
        try:
            saved = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{record} is unreadable ({exc}); delete it to resume this folder as it is") from None
        changes = resume_changes(saved if isinstance(saved, dict) else {}, config)
        if changes:
            shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
            raise ConfigError(f"{config.out} holds checkpoints trained with other settings ({shown}); "
                              "give another --out, or delete the folder to start again")
    if write and int(os.environ.get("RANK", "0")) == 0:  # one writer under a multi-process launch
        write_json_atomic(record, run_metadata(config))
