"""Gymnasium registration of every catalogue env as ``matpo/<name>-v<version>``."""

from __future__ import annotations

import gymnasium as gym

from matpo_gym.catalogue import resolve, search_dirs
from matpo_gym.config import ConfigError
from matpo_gym.envs.spec import read_env_table

ENTRY_POINT = "matpo_gym.envs.gym_env:MatpoEnv"


def gym_id(name: str, version: int = 0) -> str:
    return f"matpo/{name}-v{version}"


def register_envs() -> list[str]:
    """Register each env of the catalogue (local folder first, then built-in); returns the ids."""
    ids = []
    seen: set[str] = set()
    for folder in search_dirs("envs"):
        for path in sorted(folder.glob("*.toml")):
            if path.stem in seen:
                continue
            seen.add(path.stem)
            try:
                version = int(read_env_table(path).get("version", 0))
            except (ConfigError, ValueError):
                version = 0  # registered all the same: making it reports what is broken, with the path
            env_id = gym_id(path.stem, version)
            if env_id not in gym.registry:
                gym.register(env_id, entry_point=ENTRY_POINT, kwargs={"spec": str(resolve("envs", str(path)))})
            ids.append(env_id)
    return ids
