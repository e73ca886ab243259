"""The entity graph: kinds with typed attributes, relations between them, and distractors.

Facts are keyed by the infobox label they are shown under ("Born", "Population", "Founder"), so
question programs, the renderer and any page reader share one vocabulary. A relation is stored on
one side (a company's ``Founder``); the reverse ("Companies founded" on the person) is derived by
:class:`EntityGraph`, so the two pages can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

Kind = Literal["Person", "City", "Country", "Company", "River", "Book", "Album"]
KINDS: tuple[Kind, ...] = ("Person", "City", "Country", "Company", "River", "Book", "Album")

Value = int | str | tuple[str, ...]
"""A fact: an integer, a text, or the slugs of linked entities (a relation)."""

CURRENT_YEAR = 2024

ATTRIBUTES: dict[Kind, tuple[str, ...]] = {
    "Person": ("Born", "Died", "Occupation", "Height (cm)"),
    "City": ("Population", "Founded", "Elevation (m)"),
    "Country": ("Population", "Area (km²)", "Founded"),
    "Company": ("Founded", "Employees", "Revenue (million)"),
    "River": ("Length (km)", "Basin area (km²)"),
    "Book": ("Published", "Pages"),
    "Album": ("Released", "Tracks", "Length (min)"),
}
"""Attribute labels per kind, in infobox order (a person who is alive has no ``Died``)."""

RELATIONS: dict[Kind, tuple[tuple[str, Kind], ...]] = {
    "Person": (("Birthplace", "City"),),
    "City": (("Country", "Country"), ("Mayor", "Person")),
    "Country": (("Capital", "City"),),
    "Company": (("Founder", "Person"), ("Headquarters", "City")),
    "River": (("Flows through", "City"),),
    "Book": (("Author", "Person"),),
    "Album": (("Artist", "Person"),),
}
"""Stored relations per kind: (label, target kind). Only ``Flows through`` has several targets;
only ``Mayor`` may be absent."""

BACKLINKS: dict[Kind, tuple[tuple[str, Kind, str], ...]] = {
    "Person": (
        ("Companies founded", "Company", "Founder"),
        ("Books", "Book", "Author"),
        ("Albums", "Album", "Artist"),
    ),
    "City": (
        ("Notable people", "Person", "Birthplace"),
        ("Companies headquartered here", "Company", "Headquarters"),
        ("Rivers", "River", "Flows through"),
    ),
    "Country": (("Cities", "City", "Country"),),
}
"""Derived relations per kind: (label, source kind, source relation). Each lists every source;
an empty one is left off the page."""

@dataclass(frozen=True, slots=True)
class Entity:
    """One thing the encyclopedia has a page about."""

    slug: str
    name: str
    kind: Kind
    facts: Mapping[str, Value]
    """Attributes and stored relations by infobox label; relations hold target slugs."""
    imitates: str | None = None
    """For a distractor: the slug of the entity whose name it imitates."""

    @property
    def is_distractor(self) -> bool:
        return self.imitates is not None


def slugify(name: str) -> str:
    """The ``/wiki/<slug>`` part of an entity's URL."""
    return name.replace(" ", "_")


class EntityGraph(Mapping[str, Entity]):
    """All entities of a world by slug, with derived relations and lookups by name and kind."""

    def __init__(self, entities: list[Entity]) -> None:
        self._by_slug = {e.slug: e for e in entities}
        self._by_name = {e.name: e for e in entities}
        if len(self._by_slug) != len(entities) or len(self._by_name) != len(entities):
            raise ValueError("entity names and slugs must be unique")
        self._by_kind: dict[Kind, list[Entity]] = {k: [] for k in KINDS}
        for e in entities:
            self._by_kind[e.kind].append(e)
        sources_of: dict[Kind, list[tuple[str, Kind, str]]] = {}
        for target_kind, rows in BACKLINKS.items():
            for label, source_kind, relation in rows:
                sources_of.setdefault(source_kind, []).append((label, target_kind, relation))
        self._backlinks: dict[str, dict[str, list[str]]] = {
            e.slug: {label: [] for label, _, _ in BACKLINKS.get(e.kind, ())} for e in entities
        }
        self._imitators: dict[str, list[str]] = {}
        for e in entities:
            for label, _, relation in sources_of.get(e.kind, ()):
                for target in _links(e.facts.get(relation, ())):
                    self._backlinks[target][label].append(e.slug)
            if e.imitates is not None:
                self._imitators.setdefault(e.imitates, []).append(e.slug)

    def __getitem__(self, slug: str) -> Entity:
        return self._by_slug[slug]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_slug)

    def __len__(self) -> int:
        return len(self._by_slug)

    def by_name(self, name: str) -> Entity:
        return self._by_name[name]

    def of_kind(self, kind: Kind, *, distractors: bool = True) -> list[Entity]:
        """Entities of one kind in creation order, optionally without the distractors."""
        found = self._by_kind[kind]
        return found if distractors else [e for e in found if not e.is_distractor]

    def facts(self, slug: str) -> dict[str, Value]:
        """Every fact on the entity's page, in infobox order: attributes, relations, backlinks."""
        entity = self._by_slug[slug]
        out: dict[str, Value] = {}
        for label in ATTRIBUTES[entity.kind]:
            if label in entity.facts:
                out[label] = entity.facts[label]
        for label, _ in RELATIONS[entity.kind]:
            if label in entity.facts:
                out[label] = entity.facts[label]
        for label, sources in self._backlinks[slug].items():
            if sources:
                out[label] = tuple(sources)
        return out

    def value(self, name: str, label: str) -> Value:
        """One fact of the entity called ``name``, relations as target *names* (a FactSource)."""
        value = self.facts(self._by_name[name].slug)[label]
        if isinstance(value, tuple):
            return tuple(self._by_slug[s].name for s in value)
        return value

    def number(self, slug: str, label: str) -> int | None:
        """An integer attribute, or None when the entity has no such fact."""
        value = self._by_slug[slug].facts.get(label)
        return value if isinstance(value, int) else None

    def link(self, slug: str, label: str) -> str | None:
        """The one entity a single-valued relation or backlink points to, or None."""
        targets = self.facts(slug).get(label, ())
        return targets[0] if isinstance(targets, tuple) and len(targets) == 1 else None

    def confusables(self, slug: str) -> list[str]:
        """Slugs of entities whose names imitate this one's, or that this one imitates."""
        entity = self._by_slug[slug]
        out = list(self._imitators.get(slug, ()))
        if entity.imitates is not None:
            out.append(entity.imitates)
        return out


def _links(value: Value | tuple[()]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else ()
