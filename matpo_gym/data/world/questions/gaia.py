"""GAIA-like questions: several steps ending in a computation over facts from several pages.

easy: compare three entities, or count a list on one page.
medium: sums and differences across entities or across linked pages.
hard: means, ranges and comparisons over entities reached through links.
"""

from __future__ import annotations

import random

from matpo_gym.data.world import program as p
from matpo_gym.data.world.entities import Entity, Kind
from matpo_gym.data.world.questions.common import Candidate, Context, Template, names

_SUPERLATIVES: tuple[tuple[Kind, str, str, str], ...] = (
    ("City", "Population", "argmax", "has the largest population"),
    ("City", "Elevation (m)", "argmax", "has the highest elevation"),
    ("City", "Founded", "argmin", "was founded earliest"),
    ("Country", "Area (km²)", "argmax", "has the largest area"),
    ("Company", "Founded", "argmin", "was founded earliest"),
    ("Company", "Employees", "argmax", "has the most employees"),
    ("Company", "Revenue (million)", "argmin", "has the smallest revenue"),
    ("River", "Length (km)", "argmax", "is the longest by length"),
    ("Book", "Pages", "argmax", "has the most pages"),
    ("Book", "Published", "argmin", "was published earliest"),
    ("Album", "Tracks", "argmin", "has the fewest tracks"),
    ("Person", "Born", "argmin", "was born earliest"),
    ("Person", "Height (cm)", "argmax", "has the greatest height"),
)


def _distinct(entities: list[Entity], label: str) -> bool:
    values = [e.facts.get(label) for e in entities]
    return None not in values and len(set(values)) == len(values)


def superlative(ctx: Context, rng: random.Random) -> Candidate | None:
    kind, label, op, phrase = rng.choice(_SUPERLATIVES)
    group = ctx.pick_many(rng, kind, 3)
    if not _distinct(group, label):
        return None
    question = f"Which of {names(group, article=kind == 'River')} {phrase}?"
    return Candidate(question, p.arg(op, label, *(p.entity(e.name) for e in group)), "easy")


_COUNTS: tuple[tuple[Kind, str, str], ...] = (
    ("City", "Companies headquartered here", "How many companies are headquartered in {x}?"),
    ("City", "Notable people", "How many notable people were born in {x}?"),
    ("Country", "Cities", "How many cities does {x} have?"),
    ("River", "Flows through", "How many cities does the {x} flow through?"),
    ("Person", "Books", "How many books did {x} write?"),
    ("Person", "Albums", "How many albums did {x} record?"),
    ("Person", "Companies founded", "How many companies did {x} found?"),
)


def count_on_page(ctx: Context, rng: random.Random) -> Candidate | None:
    kind, label, question = rng.choice(_COUNTS)
    e = ctx.pick(rng, kind)
    if not ctx.listed(e, label):
        return None
    return Candidate(question.format(x=e.name), p.count(p.links(p.entity(e.name), label)), "easy")


def combined_birthplaces(ctx: Context, rng: random.Random) -> Candidate | None:
    a, b = ctx.pick_many(rng, "Person", 2)
    if ctx.linked(a, "Birthplace") == ctx.linked(b, "Birthplace"):
        return None
    question = f"What is the combined population of the birthplaces of {a.name} and {b.name}?"
    program = p.reduce(
        "sum", *(p.attr(p.link(p.entity(e.name), "Birthplace"), "Population") for e in (a, b))
    )
    return Candidate(question, program, "medium")


def employee_gap(ctx: Context, rng: random.Random) -> Candidate | None:
    a, b = sorted(ctx.pick_many(rng, "Company", 2), key=lambda e: -ctx.number(e, "Employees"))
    if a.facts["Employees"] == b.facts["Employees"]:
        return None
    question = f"How many more employees does {a.name} have than {b.name}?"
    program = p.reduce(
        "diff", p.attr(p.entity(a.name), "Employees"), p.attr(p.entity(b.name), "Employees")
    )
    return Candidate(question, program, "medium")


def total_employees(ctx: Context, rng: random.Random) -> Candidate | None:
    group = ctx.pick_many(rng, "Company", 3)
    question = f"What is the combined number of employees of {names(group)}?"
    program = p.reduce("sum", *(p.attr(p.entity(e.name), "Employees") for e in group))
    return Candidate(question, program, "medium")


def total_pages(ctx: Context, rng: random.Random) -> Candidate | None:
    author = ctx.pick(rng, "Person")
    if len(ctx.listed(author, "Books")) < 2:
        return None
    question = f"What is the total number of pages of all the books written by {author.name}?"
    program = p.reduce("sum", p.each(p.links(p.entity(author.name), "Books"), "Pages"))
    return Candidate(question, program, "medium")


def companies_in_birthplace(ctx: Context, rng: random.Random) -> Candidate | None:
    person = ctx.pick(rng, "Person")
    birthplace = ctx.linked(person, "Birthplace")
    if birthplace is None or not ctx.listed(birthplace, "Companies headquartered here"):
        return None
    question = f"How many companies are headquartered in the birthplace of {person.name}?"
    city = p.link(p.entity(person.name), "Birthplace")
    return Candidate(question, p.count(p.links(city, "Companies headquartered here")), "medium")


def mean_river_city_population(ctx: Context, rng: random.Random) -> Candidate | None:
    river = ctx.pick(rng, "River")
    cities = ctx.listed(river, "Flows through")
    total = sum(ctx.number(c, "Population") for c in cities)
    if len(cities) < 2 or total % len(cities):
        return None
    question = f"What is the average population of the cities that the {river.name} flows through?"
    program = p.reduce("mean", p.each(p.links(p.entity(river.name), "Flows through"), "Population"))
    return Candidate(question, program, "hard")


def mean_album_tracks(ctx: Context, rng: random.Random) -> Candidate | None:
    artist = ctx.pick(rng, "Person")
    albums = ctx.listed(artist, "Albums")
    if len(albums) < 2 or sum(ctx.number(a, "Tracks") for a in albums) % len(albums):
        return None
    question = f"What is the average number of tracks on the albums recorded by {artist.name}?"
    program = p.reduce("mean", p.each(p.links(p.entity(artist.name), "Albums"), "Tracks"))
    return Candidate(question, program, "hard")


def founder_birth_range(ctx: Context, rng: random.Random) -> Candidate | None:
    group = ctx.pick_many(rng, "Company", 3)
    founders = {ctx.graph.link(c.slug, "Founder") for c in group}
    if None in founders or len(founders) < 3:
        return None
    years = [p.attr(p.link(p.entity(c.name), "Founder"), "Born") for c in group]
    question = (
        f"How many years separate the earliest and the latest birth year among the founders "
        f"of {names(group)}?"
    )
    return Candidate(
        question, p.reduce("diff", p.reduce("max", *years), p.reduce("min", *years)), "hard"
    )


def largest_birthplace(ctx: Context, rng: random.Random) -> Candidate | None:
    group = ctx.pick_many(rng, "Person", 3)
    places = [c for c in (ctx.linked(e, "Birthplace") for e in group) if c is not None]
    if len({c.slug for c in places}) < 3 or not _distinct(places, "Population"):
        return None
    question = f"Which of the birthplaces of {names(group)} has the largest population?"
    program = p.arg(
        "argmax", "Population", *(p.link(p.entity(e.name), "Birthplace") for e in group)
    )
    return Candidate(question, program, "hard")


def combined_river_length(ctx: Context, rng: random.Random) -> Candidate | None:
    city = ctx.pick(rng, "City")
    if len(ctx.listed(city, "Rivers")) < 2:
        return None
    question = f"What is the combined length of all the rivers that flow through {city.name}?"
    program = p.reduce("sum", p.each(p.links(p.entity(city.name), "Rivers"), "Length (km)"))
    return Candidate(question, program, "hard")


TEMPLATES: dict[str, tuple[Template, ...]] = {
    "easy": (superlative, count_on_page),
    "medium": (
        combined_birthplaces,
        employee_gap,
        total_employees,
        total_pages,
        companies_in_birthplace,
    ),
    "hard": (
        mean_river_city_population,
        mean_album_tracks,
        founder_birth_range,
        largest_birthplace,
        combined_river_length,
    ),
}
