"""The site's URL scheme and category pagination, shared by the renderer, the store and the
question generators (a WebWalker gold path must name the category page an entity is listed on)."""

from __future__ import annotations

from matpo_gym.data.world.entities import KINDS, Entity, EntityGraph, Kind

ROOT = "/"
PAGE_SIZE = 100
"""Entries per category page; longer categories continue on ``/category/<Kind>/2``, ..."""

CATEGORY_TITLES: dict[Kind, str] = {
    "Person": "People",
    "City": "Cities",
    "Country": "Countries",
    "Company": "Companies",
    "River": "Rivers",
    "Book": "Books",
    "Album": "Albums",
}


def entity_path(slug: str) -> str:
    return f"/wiki/{slug}"


def category_path(kind: Kind, page: int = 1) -> str:
    """Page 1 is ``/category/<Kind>``; later pages add the number."""
    return f"/category/{kind}" if page == 1 else f"/category/{kind}/{page}"


class Layout:
    """Which entities each category page lists: all of a kind, sorted by name, in pages."""

    def __init__(self, graph: EntityGraph) -> None:
        self.listings: dict[Kind, list[list[Entity]]] = {}
        self._page_of: dict[str, int] = {}
        for kind in KINDS:
            members = sorted(graph.of_kind(kind), key=lambda e: e.name)
            pages = [members[i : i + PAGE_SIZE] for i in range(0, len(members), PAGE_SIZE)] or [[]]
            self.listings[kind] = pages
            for number, page in enumerate(pages, start=1):
                for entity in page:
                    self._page_of[entity.slug] = number

    def route_to(self, entity: Entity) -> list[str]:
        """Paths from any page's navigation bar to the entity: category page 1, its page, it."""
        number = self._page_of[entity.slug]
        route = [category_path(entity.kind)]
        if number > 1:
            route.append(category_path(entity.kind, number))
        return [*route, entity_path(entity.slug)]
