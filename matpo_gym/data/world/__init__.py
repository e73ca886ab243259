"""The offline synthetic world: a seeded encyclopedia site, question families over it, and a
loopback HTTP server for it.

>>> world = build_world(WorldConfig(seed=1, num_entities=60))
>>> world.store.get("/").title
'Matpo World'
>>> task = world.tasks("frames", n=1)[0]
>>> task.metadata["difficulty"] in ("easy", "medium", "hard")
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matpo_gym.data.world.config import WorldConfig
from matpo_gym.data.world.generator import World, build_world
from matpo_gym.data.world.store import SiteStore

if TYPE_CHECKING:
    from matpo_gym.data.world.server import serve_site


def __getattr__(name: str) -> Any:
    """Import the server on first use, so ``python -m ...world.server`` runs without a warning."""
    if name == "serve_site":
        from matpo_gym.data.world.server import serve_site

        return serve_site
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SiteStore", "World", "WorldConfig", "build_world", "serve_site"]
