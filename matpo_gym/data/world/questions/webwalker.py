"""WebWalkerQA-like questions: answered by walking links from the site's main page.

Each question says where to start and which links to follow; ``gold_path`` is the walk itself:
main page, category page (and its numbered page), entity page, then linked pages. single_source
questions read one chain of pages; multi_source ones combine two entities found separately.
"""

from __future__ import annotations

import random

from matpo_gym.data.world import program as p
from matpo_gym.data.world.entities import KINDS, RELATIONS, Entity, Kind
from matpo_gym.data.world.paths import CATEGORY_TITLES, ROOT, entity_path
from matpo_gym.data.world.questions.common import (
    ASKABLE,
    HOP,
    Candidate,
    Context,
    Difficulty,
    Template,
    ask,
    hops_from,
)

_START = "Starting from the main page, "
_FORWARD = {label for rows in RELATIONS.values() for label, _ in rows}


def _walk(
    ctx: Context, rng: random.Random, follows: int, difficulty: Difficulty
) -> Candidate | None:
    """Browse a category to an entity, follow ``follows`` links, read one row."""
    start = ctx.pick(rng, rng.choice(KINDS))
    expr, subject, steps, here = p.entity(start.name), start.name, [], start
    for _ in range(follows):
        options = [r for r in hops_from(here) if r in _FORWARD]
        if not options:
            return None
        relation = rng.choice(options)
        nxt = ctx.linked(here, relation)
        if nxt is None or nxt.slug in (start.slug, here.slug):
            return None
        expr = p.link(expr, relation)
        subject = HOP[(here.kind, relation)].format(x=subject)
        steps.append(f"its {relation} link")
        here = nxt
    label = rng.choice(ASKABLE[here.kind])
    if label not in here.facts:
        return None
    nav = f"{_START}browse the {CATEGORY_TITLES[start.kind]} category to {start.name}"
    if steps:
        nav += ", then follow " + ", then ".join(steps)
    question = f"{nav}. {ask(label, subject)}"
    return Candidate(question, p.attr(expr, label), difficulty, {"type": "single_source"})


def one_page(ctx: Context, rng: random.Random) -> Candidate | None:
    return _walk(ctx, rng, 0, "easy")


def two_pages(ctx: Context, rng: random.Random) -> Candidate | None:
    return _walk(ctx, rng, 1, "medium")


def three_pages(ctx: Context, rng: random.Random) -> Candidate | None:
    return _walk(ctx, rng, 2, "hard")


_COMPARABLE: tuple[tuple[Kind, str, str, str], ...] = (
    ("River", "Length (km)", "argmax", "Which of the two is longer"),
    ("City", "Population", "argmax", "Which of the two has the larger population"),
    ("Company", "Employees", "argmax", "Which of the two has more employees"),
    ("Book", "Pages", "argmax", "Which of the two has more pages"),
    ("Person", "Born", "argmin", "Which of the two was born earlier"),
)


def compare_in_category(ctx: Context, rng: random.Random) -> Candidate | None:
    kind, label, op, ask_which = rng.choice(_COMPARABLE)
    a, b = ctx.pick_many(rng, kind, 2)
    if a.facts[label] == b.facts[label]:
        return None
    the = "the " if kind == "River" else ""
    question = (
        f"{_START}open the {CATEGORY_TITLES[a.kind]} category and find {the}{a.name} and "
        f"{the}{b.name}. {ask_which}?"
    )
    program = p.arg(op, label, p.entity(a.name), p.entity(b.name))
    return Candidate(question, program, "easy", {"type": "multi_source"})


_FOUNDED: tuple[Kind, ...] = ("City", "Country", "Company")


def founded_first(ctx: Context, rng: random.Random) -> Candidate | None:
    kind_a, kind_b = rng.sample(_FOUNDED, 2)
    a, b = ctx.pick(rng, kind_a), ctx.pick(rng, kind_b)
    if a.facts["Founded"] == b.facts["Founded"]:
        return None
    question = (
        f"{_START}find {a.name} in the {CATEGORY_TITLES[a.kind]} category and {b.name} in the "
        f"{CATEGORY_TITLES[b.kind]} category. Which of the two was founded earlier?"
    )
    program = p.arg("argmin", "Founded", p.entity(a.name), p.entity(b.name))
    return Candidate(question, program, "medium", {"type": "multi_source"})


def _two(
    ctx: Context, rng: random.Random, kind: Kind, relation: str
) -> tuple[tuple[Entity, Entity], tuple[Entity, Entity]] | None:
    """Two random (entity, linked entity) pairs whose ``relation`` links differ."""
    a, b = ctx.pick_many(rng, kind, 2)
    ta, tb = ctx.linked(a, relation), ctx.linked(b, relation)
    if ta is None or tb is None or ta.slug == tb.slug:
        return None
    return (a, ta), (b, tb)


def combined_headquarters(ctx: Context, rng: random.Random) -> Candidate | None:
    found = _two(ctx, rng, "Company", "Headquarters")
    if found is None:
        return None
    (a, _), (b, _) = found
    question = (
        f"{_START}find {a.name} and {b.name} in the Companies category and follow each one's "
        f"Headquarters link. What is the combined population of the two headquarters cities?"
    )
    program = p.reduce(
        "sum",
        *(p.attr(p.link(p.entity(e.name), "Headquarters"), "Population") for e in (a, b)),
    )
    return Candidate(question, program, "hard", {"type": "multi_source"})


def older_author(ctx: Context, rng: random.Random) -> Candidate | None:
    found = _two(ctx, rng, "Book", "Author")
    if found is None:
        return None
    (a, author_a), (b, author_b) = found
    if ctx.number(author_a, "Born") == ctx.number(author_b, "Born"):
        return None
    question = (
        f"{_START}find the books {a.name} and {b.name} in the Books category and follow each "
        f"one's Author link. In what year was the earlier-born of the two authors born?"
    )
    program = p.reduce("min", *(p.attr(p.link(p.entity(e.name), "Author"), "Born") for e in (a, b)))
    return Candidate(question, program, "hard", {"type": "multi_source"})


TEMPLATES: dict[str, tuple[Template, ...]] = {
    "easy": (one_page, compare_in_category),
    "medium": (two_pages, founded_first),
    "hard": (three_pages, combined_headquarters, older_author),
}


def gold_path(ctx: Context, read: list[str]) -> list[str]:
    """The walk from the main page through every page the answer reads, as site paths.

    A page linked from the previous one is reached directly; any other is reached through the
    navigation bar's category link (and the category's numbered page).
    """
    path, previous = [ROOT], None
    for name in read:
        entity = ctx.graph.by_name(name)
        linked = previous is not None and any(
            isinstance(v, tuple) and entity.slug in v for v in ctx.graph.facts(previous).values()
        )
        path.extend([entity_path(entity.slug)] if linked else ctx.layout.route_to(entity))
        previous = entity.slug
    return path
