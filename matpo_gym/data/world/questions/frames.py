"""FRAMES-like questions: facts spread over one to three pages, with date and number arithmetic.

easy: one infobox row ("What is the population of Veldmar?").
medium: follow one link, then read a row ("In what year was the founder of Krelvo Industries
born?").
hard: two or three pages and a subtraction ("How many years after its founder was born was
Krelvo Industries founded?").
"""

from __future__ import annotations

import random

from matpo_gym.data.world import program as p
from matpo_gym.data.world.entities import KINDS, Kind
from matpo_gym.data.world.questions.common import (
    ASKABLE,
    HOP,
    Candidate,
    Context,
    Template,
    ask,
    hops_from,
)


def one_row(ctx: Context, rng: random.Random) -> Candidate | None:
    e = ctx.pick(rng, rng.choice(KINDS))
    label = rng.choice(ASKABLE[e.kind])
    if label not in e.facts:
        return None
    return Candidate(ask(label, e.name), p.attr(p.entity(e.name), label), "easy")


def linked_row(ctx: Context, rng: random.Random) -> Candidate | None:
    e = ctx.pick(rng, rng.choice(KINDS))
    options = hops_from(e)
    if not options:
        return None
    relation = rng.choice(options)
    target = ctx.linked(e, relation)
    if target is None:
        return None
    label = rng.choice(ASKABLE[target.kind])
    if label not in target.facts:
        return None
    subject = HOP[(e.kind, relation)].format(x=e.name)
    program = p.attr(p.link(p.entity(e.name), relation), label)
    return Candidate(ask(label, subject), program, "medium")


_YEARS_AFTER: tuple[tuple[Kind, str, str, str, str], ...] = (
    (
        "Company",
        "Founded",
        "Founder",
        "Born",
        "How many years after its founder was born was {x} founded?",
    ),
    (
        "Book",
        "Published",
        "Author",
        "Born",
        "How many years after its author was born was {x} published?",
    ),
    (
        "Album",
        "Released",
        "Artist",
        "Born",
        "How many years after its artist was born was {x} released?",
    ),
    (
        "Company",
        "Founded",
        "Headquarters",
        "Founded",
        "How many years after its headquarters city was founded was {x} founded?",
    ),
)
"""(kind, own year row, relation, linked year row, question): always a positive difference."""


def years_after(ctx: Context, rng: random.Random) -> Candidate | None:
    kind, own, relation, theirs, question = rng.choice(_YEARS_AFTER)
    e = ctx.pick(rng, kind)
    x = p.entity(e.name)
    program = p.reduce("diff", p.attr(x, own), p.attr(p.link(x, relation), theirs))
    return Candidate(question.format(x=e.name), program, "hard")


def lifespan_of_founder(ctx: Context, rng: random.Random) -> Candidate | None:
    company = ctx.pick(rng, "Company")
    founder = ctx.linked(company, "Founder")
    if founder is None or "Died" not in founder.facts:
        return None
    who = p.link(p.entity(company.name), "Founder")
    program = p.reduce("diff", p.attr(who, "Died"), p.attr(who, "Born"))
    question = (
        f"How many years passed between the birth and the death of the founder of {company.name}?"
    )
    return Candidate(question, program, "hard")


def founding_gap_three_pages(ctx: Context, rng: random.Random) -> Candidate | None:
    company = ctx.pick(rng, "Company")
    x = p.entity(company.name)
    birthplace = p.link(p.link(x, "Founder"), "Birthplace")
    program = p.reduce("diff", p.attr(x, "Founded"), p.attr(birthplace, "Founded"))
    question = (
        f"How many years after the founding of the city where its founder was born "
        f"was {company.name} founded?"
    )
    return Candidate(question, program, "hard")


def capital_gap(ctx: Context, rng: random.Random) -> Candidate | None:
    city = ctx.pick(rng, "City")
    country = ctx.linked(city, "Country")
    capital = ctx.linked(country, "Capital") if country else None
    if (
        capital is None
        or capital.slug == city.slug
        or capital.facts["Founded"] == city.facts["Founded"]
    ):
        return None
    x = p.entity(city.name)
    years = [p.attr(x, "Founded"), p.attr(p.link(p.link(x, "Country"), "Capital"), "Founded")]
    program = p.reduce("diff", p.reduce("max", *years), p.reduce("min", *years))
    question = (
        f"How many years apart were {city.name} and the capital of the country in which it "
        f"lies founded?"
    )
    return Candidate(question, program, "hard")


def population_gap(ctx: Context, rng: random.Random) -> Candidate | None:
    city = ctx.pick(rng, "City")
    x = p.entity(city.name)
    program = p.reduce("diff", p.attr(p.link(x, "Country"), "Population"), p.attr(x, "Population"))
    question = (
        f"By how much does the population of the country in which {city.name} lies exceed "
        f"the population of {city.name}?"
    )
    return Candidate(question, program, "hard")


TEMPLATES: dict[str, tuple[Template, ...]] = {
    "easy": (one_row,),
    "medium": (linked_row,),
    "hard": (
        years_after,
        lifespan_of_founder,
        founding_gap_three_pages,
        capital_gap,
        population_gap,
    ),
}
