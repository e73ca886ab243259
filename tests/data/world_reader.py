"""An independent reader of the synthetic world's HTML, for checking answers against pages.

It knows nothing of the generator's entity model: it parses infobox tables with BeautifulSoup,
follows ``<a href>`` links, and evaluates a task's answer program over what it read.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup

from matpo_gym.data.tasks import PageStore

_INT = re.compile(r"^-?\d+$")


@dataclass(frozen=True)
class Linked:
    """An entity reached on the site: its name (link text or h1) and absolute URL."""

    name: str
    url: str


class SiteReader:
    """Reads pages of one store; remembers which entity pages it had to read."""

    def __init__(self, store: PageStore) -> None:
        self.store = store
        self.read: list[str] = []
        self._soup = functools.lru_cache(maxsize=None)(self._parse)

    def _parse(self, url: str) -> BeautifulSoup:
        page = self.store.get(url)
        assert page is not None, f"no page at {url}"
        return BeautifulSoup(page.html, "html.parser")

    def soup(self, url: str) -> BeautifulSoup:
        return self._soup(url)

    def title(self, url: str) -> str:
        return self.soup(url).h1.get_text(strip=True)

    def links(self, url: str) -> list[str]:
        """Absolute targets of every link on the page."""
        return [urljoin(url, a["href"]) for a in self.soup(url).find_all("a", href=True)]

    def rows(self, url: str) -> dict[str, Any]:
        """Infobox rows: an int, a text, or a list of :class:`Linked` for link cells."""
        out: dict[str, Any] = {}
        for tr in self.soup(url).find("table", class_="infobox").find_all("tr"):
            label, cell = tr.th.get_text(strip=True), tr.td
            anchors = cell.find_all("a", href=True)
            if anchors:
                out[label] = [
                    Linked(a.get_text(strip=True), urljoin(url, a["href"])) for a in anchors
                ]
            else:
                text = cell.get_text(strip=True)
                out[label] = int(text) if _INT.match(text) else text
        return out

    def row(self, entity: Linked, label: str) -> Any:
        if entity.url not in self.read:
            self.read.append(entity.url)
        assert self.title(entity.url) == entity.name, f"{entity.url} is not titled {entity.name!r}"
        return self.rows(entity.url)[label]


def solve(program: dict[str, Any], reader: SiteReader, candidates: list[str]) -> str:
    """Evaluate ``program`` by reading pages; named entities are looked up among ``candidates``."""

    def named(name: str) -> Linked:
        hits = [u for u in candidates if reader.title(u) == name]
        assert len(hits) == 1, f"{name!r} matches {len(hits)} of the candidate pages"
        return Linked(name, hits[0])

    def nums(args: list[Any]) -> list[int]:
        out: list[int] = []
        for a in args:
            v = ev(a)
            out.extend(v if isinstance(v, list) else [v])
        assert all(isinstance(x, int) for x in out)
        return out

    def ev(p: dict[str, Any]) -> Any:
        op = p["op"]
        if op == "entity":
            return named(p["name"])
        if op == "attr":
            value = reader.row(ev(p["of"]), p["attr"])
            assert not isinstance(value, list)
            return value
        if op == "link":
            value = reader.row(ev(p["of"]), p["attr"])
            assert isinstance(value, list) and len(value) == 1
            return value[0]
        if op == "links":
            value = reader.row(ev(p["of"]), p["attr"])
            assert isinstance(value, list)
            return value
        if op == "each":
            return [reader.row(e, p["attr"]) for e in ev(p["of"])]
        if op == "count":
            return len(ev(p["of"]))
        if op == "sum":
            return sum(nums(p["args"]))
        if op == "min":
            return min(nums(p["args"]))
        if op == "max":
            return max(nums(p["args"]))
        if op == "diff":
            a, b = nums(p["args"])
            return a - b
        if op == "mean":
            values = nums(p["args"])
            assert sum(values) % len(values) == 0
            return sum(values) // len(values)
        if op in ("argmax", "argmin"):
            scored = [(reader.row(e, p["attr"]), e) for e in (ev(a) for a in p["args"])]
            assert len({v for v, _ in scored}) == len(scored), "tie"
            best = (max if op == "argmax" else min)(scored, key=lambda s: s[0])
            return best[1]
        raise AssertionError(f"unknown op {op}")

    result = ev(program)
    return result.name if isinstance(result, Linked) else str(result)
