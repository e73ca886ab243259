"""Build a world: entities, then the rendered site, with question pools drawn on first use."""

from __future__ import annotations

from dataclasses import dataclass, field

from matpo_gym.data.tasks import Task
from matpo_gym.data.world.config import WorldConfig
from matpo_gym.data.world.draw import generate_entities
from matpo_gym.data.world.entities import EntityGraph
from matpo_gym.data.world.paths import Layout
from matpo_gym.data.world.questions import FAMILIES, build_tasks, select
from matpo_gym.data.world.questions.common import Context
from matpo_gym.data.world.render import SiteRenderer
from matpo_gym.data.world.store import SiteStore


@dataclass
class World:
    """One synthetic encyclopedia: its config, its entities, its pages and its questions."""

    config: WorldConfig
    entities: EntityGraph
    store: SiteStore
    layout: Layout
    _pools: dict[str, list[Task]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(FAMILIES)

    def tasks(
        self,
        family: str,
        *,
        split: str = "test",
        n: int | None = None,
        difficulty: str | None = None,
    ) -> list[Task]:
        """Tasks of one family and split (optionally one difficulty), the first ``n`` of them.

        The same world always gives the same list. Pools hold about ``num_entities`` tasks per
        family before the split; train and test never share a question text.
        """
        if family not in FAMILIES:
            raise ValueError(
                f"unknown question family {family!r}; valid families: {sorted(FAMILIES)}"
            )
        if family not in self._pools:
            self._pools[family] = build_tasks(
                Context(self.entities, self.layout),
                family,
                seed=self.config.seed,
                base_url=self.store.base_url,
                size=self.config.num_entities,
            )
        return select(self._pools[family], split=split, n=n, difficulty=difficulty)


def build_world(config: WorldConfig | None = None) -> World:
    """Generate the world ``config`` describes (the default one when None), in memory only."""
    config = config or WorldConfig()
    entities = generate_entities(config)
    renderer = SiteRenderer(entities, config)
    store = SiteStore(config.base_url, renderer.pages())
    return World(config=config, entities=entities, store=store, layout=renderer.layout)
