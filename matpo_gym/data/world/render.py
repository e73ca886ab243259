"""HTML for every page of the site, from plain string templates (fast enough for 10k+ pages).

An entity page has a ``<title>``, an ``<h1>`` with the entity's name, a lead sentence, an infobox
(``<table class="infobox">`` with ``<tr><th>Label</th><td>value</td></tr>`` rows, relations as
links), prose that restates the facts, filler paragraphs, a "See also" list and a ``<nav>`` bar.
Every link is host-relative (``/wiki/Slug``, ``/category/Kind``), so the same HTML works on the
synthetic host and on a loopback server.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from html import escape

from matpo_gym.data.tasks import Page
from matpo_gym.data.world.config import WorldConfig
from matpo_gym.data.world.entities import KINDS, Entity, EntityGraph, Kind, Value
from matpo_gym.data.world.filler import filler_paragraph
from matpo_gym.data.world.paths import (
    CATEGORY_TITLES,
    ROOT,
    Layout,
    category_path,
    entity_path,
)

SITE_NAME = "Matpo World"

_FACT_SENTENCES: dict[str, str] = {
    "Born": "{name} was born in {v}.",
    "Died": "{name} died in {v}.",
    "Occupation": "{name} worked in the occupation of {v}.",
    "Height (cm)": "{name} had a height of {v} centimetres.",
    "Birthplace": "The birthplace of {name} is {v}.",
    "Population": "{name} has a population of {v}.",
    "Founded": "{name} was founded in {v}.",
    "Elevation (m)": "{name} lies at an elevation of {v} metres.",
    "Country": "{name} is located in {v}.",
    "Mayor": "The mayor of {name} is {v}.",
    "Area (km²)": "{name} covers an area of {v} square kilometres.",
    "Capital": "The capital of {name} is {v}.",
    "Employees": "{name} has {v} employees.",
    "Revenue (million)": "{name} reports a revenue of {v} million.",
    "Founder": "{name} was founded by {v}.",
    "Headquarters": "{name} is headquartered in {v}.",
    "Length (km)": "The {name} has a length of {v} kilometres.",
    "Basin area (km²)": "The basin of the {name} covers an area of {v} square kilometres.",
    "Flows through": "The {name} flows through {v}.",
    "Published": "{name} was published in {v}.",
    "Pages": "{name} has {v} pages.",
    "Author": "{name} was written by {v}.",
    "Released": "{name} was released in {v}.",
    "Tracks": "{name} has {v} tracks.",
    "Length (min)": "{name} has a length of {v} minutes.",
    "Artist": "{name} was recorded by {v}.",
    "Companies founded": "Companies founded by {name}: {v}.",
    "Books": "Books written by {name}: {v}.",
    "Albums": "Albums recorded by {name}: {v}.",
    "Notable people": "Notable people born in {name}: {v}.",
    "Companies headquartered here": "Companies headquartered in {name}: {v}.",
    "Rivers": "Rivers that flow through {name}: {v}.",
    "Cities": "Cities of {name}: {v}.",
}
"""One sentence per infobox label; backlink sentences list every entry, so counts can be read."""


def _link(entity: Entity) -> str:
    return f'<a href="{entity_path(entity.slug)}">{escape(entity.name)}</a>'


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _document(title: str, body: str) -> str:
    """A full page: head, navigation bar to the main page and every category, then ``body``."""
    nav = " | ".join(
        [f'<a href="{ROOT}">Main page</a>']
        + [f'<a href="{category_path(k)}">{CATEGORY_TITLES[k]}</a>' for k in KINDS]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n<body>\n"
        f'<nav class="site-nav">{nav}</nav>\n<main>\n{body}</main>\n</body>\n</html>\n'
    )


class SiteRenderer:
    """Renders the root, category and entity pages of one world."""

    def __init__(self, graph: EntityGraph, config: WorldConfig) -> None:
        self.graph = graph
        self.config = config
        self.layout = Layout(graph)
        self.base = config.base_url.rstrip("/")

    def pages(self) -> Iterator[Page]:
        yield self.root()
        for kind in KINDS:
            yield from self.category(kind)
        for slug in self.graph:
            yield self.entity(self.graph[slug])

    def _value(self, value: Value) -> str:
        if isinstance(value, tuple):
            return _join([_link(self.graph[s]) for s in value])
        return escape(str(value))

    def _lead(self, e: Entity, facts: dict[str, Value]) -> str:
        v = self._value
        name = f"<b>{escape(e.name)}</b>"
        if e.kind == "Person":
            if "Died" in facts:
                life, tense = f"{facts['Born']}–{facts['Died']}", "was"
            else:
                life, tense = f"born {facts['Born']}", "is"
            job = _article(str(facts["Occupation"]))
            return f"{name} ({life}) {tense} {job} from {v(facts['Birthplace'])}."
        if e.kind == "City":
            return f"{name} is a city in {v(facts['Country'])}."
        if e.kind == "Country":
            return f"{name} is a country whose capital is {v(facts['Capital'])}."
        if e.kind == "Company":
            return f"{name} is a company headquartered in {v(facts['Headquarters'])}."
        if e.kind == "River":
            return f"The {name} is a river that flows through {v(facts['Flows through'])}."
        if e.kind == "Book":
            return f"<i>{name}</i> is a book by {v(facts['Author'])}."
        return f"<i>{name}</i> is an album by {v(facts['Artist'])}."

    def entity(self, e: Entity) -> Page:
        rng = random.Random(f"{self.config.seed}/{e.slug}")
        facts = self.graph.facts(e.slug)
        parts = [f"<h1>{escape(e.name)}</h1>\n"]
        confusables = self.graph.confusables(e.slug)
        if confusables:
            others = _join([_link(self.graph[s]) for s in confusables])
            parts.append(f'<p class="hatnote">Not to be confused with {others}.</p>\n')
        parts.append(f'<p class="lead">{self._lead(e, facts)}</p>\n<table class="infobox">\n')
        parts.extend(
            f"<tr><th>{escape(label)}</th><td>{self._value(value)}</td></tr>\n"
            for label, value in facts.items()
        )
        parts.append("</table>\n<h2>Overview</h2>\n<p>")
        name = escape(e.name)
        parts.append(
            " ".join(
                _FACT_SENTENCES[label].format(name=name, v=self._value(value))
                for label, value in facts.items()
            )
        )
        parts.append("</p>\n")
        if self.config.filler_paragraphs:
            parts.append("<h2>Background</h2>\n")
            parts.extend(
                f"<p>{escape(filler_paragraph(rng, e.name))}</p>\n"
                for _ in range(self.config.filler_paragraphs)
            )
        peers = self.graph.of_kind(e.kind)
        see_also = {s.slug: s for s in rng.sample(peers, min(4, len(peers))) if s.slug != e.slug}
        items = [f"<li>{_link(s)}</li>" for s in list(see_also.values())[:3]]
        items.append(
            f'<li><a href="{category_path(e.kind)}">All {CATEGORY_TITLES[e.kind].lower()}</a></li>'
        )
        parts.append('<h2>See also</h2>\n<ul class="see-also">' + "".join(items) + "</ul>\n")
        return self._page(entity_path(e.slug), e.name, "".join(parts))

    def category(self, kind: Kind) -> Iterator[Page]:
        listing = self.layout.listings[kind]
        title = CATEGORY_TITLES[kind]
        total = sum(len(p) for p in listing)
        for number, members in enumerate(listing, start=1):
            entries = "".join(f"<li>{_link(e)}</li>\n" for e in members)
            body = (
                f"<h1>{title}</h1>\n<p>This category lists {total} {title.lower()}, sorted by "
                f"name; this is page {number} of {len(listing)}.</p>\n"
                f'<ul class="category-list">\n{entries}</ul>\n'
            )
            if len(listing) > 1:
                body += self._pagination(kind, number, len(listing))
            shown = title if number == 1 else f"{title} (page {number})"
            yield self._page(category_path(kind, number), shown, body)

    def _pagination(self, kind: Kind, number: int, count: int) -> str:
        links = [
            str(i) if i == number else f'<a href="{category_path(kind, i)}">{i}</a>'
            for i in range(1, count + 1)
        ]
        if number > 1:
            links.insert(
                0, f'<a rel="prev" href="{category_path(kind, number - 1)}">Previous page</a>'
            )
        if number < count:
            links.append(f'<a rel="next" href="{category_path(kind, number + 1)}">Next page</a>')
        return f'<p class="pagination">Pages: {" ".join(links)}</p>\n'

    def root(self) -> Page:
        items = "".join(
            f'<li><a href="{category_path(k)}">{CATEGORY_TITLES[k]}</a> '
            f"({len(self.graph.of_kind(k))} articles)</li>\n"
            for k in KINDS
        )
        body = (
            f"<h1>{SITE_NAME}</h1>\n<p>{SITE_NAME} is an encyclopedia of people, places, "
            f"companies and works. Browse it by category:</p>\n"
            f'<ul class="categories">\n{items}</ul>\n'
        )
        return self._page(ROOT, SITE_NAME, body)

    def _page(self, path: str, title: str, body: str) -> Page:
        full_title = title if path == ROOT else f"{title} - {SITE_NAME}"
        return Page(url=self.base + path, title=title, html=_document(full_title, body))
