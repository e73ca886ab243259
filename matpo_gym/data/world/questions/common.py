"""What every question family shares: candidates, the context templates draw from, and phrasing.

A template is a function ``(ctx, rng) -> Candidate | None`` that draws random anchors and either
builds one question or gives up (None) when the draw would make an ambiguous or unanswerable
question. The answer itself is never written by a template: it is computed by running the
candidate's program over the world's facts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from matpo_gym.data.world.entities import KINDS, Entity, EntityGraph, Kind
from matpo_gym.data.world.paths import Layout
from matpo_gym.data.world.program import Program

Difficulty = Literal["easy", "medium", "hard"]
DIFFICULTIES: tuple[Difficulty, ...] = ("easy", "medium", "hard")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A question before its answer is computed."""

    question: str
    program: Program
    difficulty: Difficulty
    metadata: dict[str, Any] = field(default_factory=dict)
    """Family-specific metadata (WebWalker's ``type``, ...)."""


class Context:
    """The world as templates see it: the graph, the site layout, and base-entity pools."""

    def __init__(self, graph: EntityGraph, layout: Layout) -> None:
        self.graph = graph
        self.layout = layout
        self._base = {k: graph.of_kind(k, distractors=False) for k in KINDS}

    def pick(self, rng: random.Random, kind: Kind) -> Entity:
        """A random real (non-distractor) entity: questions are anchored on those."""
        return rng.choice(self._base[kind])

    def pick_many(self, rng: random.Random, kind: Kind, n: int) -> list[Entity]:
        return rng.sample(self._base[kind], n)

    def linked(self, entity: Entity, label: str) -> Entity | None:
        """The single entity ``label`` links to from ``entity``'s page, if exactly one."""
        slug = self.graph.link(entity.slug, label)
        return None if slug is None else self.graph[slug]

    def number(self, entity: Entity, label: str) -> int:
        """An integer row the entity is known to have (a KeyError otherwise)."""
        value = self.graph.number(entity.slug, label)
        if value is None:
            raise KeyError(f"{entity.name} has no integer {label!r}")
        return value

    def listed(self, entity: Entity, label: str) -> list[Entity]:
        """Every entity row ``label`` of ``entity``'s page links to."""
        value = self.graph.facts(entity.slug).get(label, ())
        return [self.graph[s] for s in value] if isinstance(value, tuple) else []


Template = Callable[[Context, random.Random], "Candidate | None"]

ASK: dict[str, str] = {
    "Born": "In what year was {x} born?",
    "Died": "In what year did {x} die?",
    "Height (cm)": "What is the height of {x} in centimetres?",
    "Occupation": "What was the occupation of {x}?",
    "Population": "What is the population of {x}?",
    "Founded": "In what year was {x} founded?",
    "Elevation (m)": "What is the elevation of {x} in metres?",
    "Area (km²)": "What is the area of {x} in square kilometres?",
    "Employees": "How many employees does {x} have?",
    "Revenue (million)": "What is the revenue of {x} in millions?",
    "Length (km)": "What is the length of the {x} in kilometres?",
    "Basin area (km²)": "What is the basin area of the {x} in square kilometres?",
    "Published": "In what year was {x} published?",
    "Pages": "How many pages does {x} have?",
    "Released": "In what year was {x} released?",
    "Tracks": "How many tracks does {x} have?",
    "Length (min)": "What is the length of {x} in minutes?",
}
"""Questions about one infobox row; ``{x}`` is a name or a phrase. Each uses the label's word,
so a reader matching question words against infobox labels finds the row."""

ASKABLE: dict[Kind, tuple[str, ...]] = {
    "Person": ("Born", "Died", "Height (cm)", "Occupation"),
    "City": ("Population", "Founded", "Elevation (m)"),
    "Country": ("Population", "Area (km²)", "Founded"),
    "Company": ("Founded", "Employees", "Revenue (million)"),
    "River": ("Length (km)", "Basin area (km²)"),
    "Book": ("Published", "Pages"),
    "Album": ("Released", "Tracks", "Length (min)"),
}
"""Rows that :data:`ASK` can ask about, per kind."""

HOP: dict[tuple[Kind, str], str] = {
    ("Person", "Birthplace"): "the birthplace of {x}",
    ("City", "Country"): "the country in which {x} lies",
    ("City", "Mayor"): "the mayor of {x}",
    ("Country", "Capital"): "the capital of {x}",
    ("Company", "Founder"): "the founder of {x}",
    ("Company", "Headquarters"): "the headquarters city of {x}",
    ("Book", "Author"): "the author of {x}",
    ("Album", "Artist"): "the artist who recorded {x}",
    ("City", "Companies headquartered here"): "the company headquartered in {x}",
    ("Person", "Companies founded"): "the company founded by {x}",
    ("Person", "Books"): "the book written by {x}",
    ("Person", "Albums"): "the album recorded by {x}",
}
"""Noun phrases for following one link; the last four are backlinks, used only when the page
lists exactly one entry, so "the company headquartered in X" names one company."""


def hops_from(entity: Entity) -> list[str]:
    """Labels of :data:`HOP` that apply to entities of ``entity``'s kind."""
    return [label for kind, label in HOP if kind == entity.kind]


def ask(label: str, subject: str) -> str:
    """The :data:`ASK` question about row ``label`` of ``subject``."""
    return ASK[label].format(x=subject)


def names(entities: list[Entity], *, article: bool = False) -> str:
    """ "A, B and C" (rivers as "the A, the B and the C" with ``article``)."""
    shown = [("the " if article else "") + e.name for e in entities]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
