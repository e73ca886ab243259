"""Drawing one world's entities: how many of each kind, their facts and relations, in an order
that keeps every constraint (deaths after births, founders older than their companies, capitals
among the country's cities), plus distractors whose names imitate real entities."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable

from matpo_gym.data.world.config import WorldConfig
from matpo_gym.data.world.entities import CURRENT_YEAR, Entity, EntityGraph, Kind, Value, slugify
from matpo_gym.data.world.names import NameBook

_SHARE: dict[Kind, float] = {
    "Person": 0.34,
    "City": 0.16,
    "Country": 0.04,
    "Company": 0.16,
    "River": 0.06,
    "Book": 0.13,
    "Album": 0.11,
}
_LATER_KINDS: tuple[Kind, ...] = ("Company", "River", "Book", "Album")
"""Kinds drawn after people exist, because they link to people or to cities."""
_FOUNDER_JOBS = ("industrialist", "engineer", "merchant", "inventor")
_OTHER_JOBS = ("painter", "architect", "physician", "scientist", "sailor", "teacher", "actor")



def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


class _Builder:
    """Draws the entities of one world in dependency order, so that every constraint holds."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.names = NameBook(self.rng)
        self.facts: dict[str, dict[str, Value]] = {}
        self.order: list[tuple[str, str, Kind, str | None]] = []
        self.cities_by_founding: list[tuple[int, str]] = []
        self.pools: dict[str, list[str]] = {}

    def add(
        self, name: str, kind: Kind, facts: dict[str, Value], imitates: str | None = None
    ) -> str:
        slug = slugify(name)
        self.facts[slug] = facts
        self.order.append((slug, name, kind, imitates))
        return slug

    def year(self, slug: str, label: str) -> int:
        value = self.facts[slug][label]
        assert isinstance(value, int)
        return value

    def target(self, slug: str, label: str) -> str:
        value = self.facts[slug][label]
        assert isinstance(value, tuple)
        return value[0]

    def alive_until(self, person: str) -> int:
        return self.year(person, "Died") if "Died" in self.facts[person] else CURRENT_YEAR

    def city_founded_before(self, year: int) -> str:
        """A random base city founded before ``year`` (the oldest city predates everyone)."""
        stop = bisect.bisect_left(self.cities_by_founding, (year, ""))
        return self.rng.choice(self.cities_by_founding[:stop])[1]

    def counts(self) -> dict[Kind, int]:
        n = self.config.num_entities
        counts: dict[Kind, int] = {k: max(3, round(n * share)) for k, share in _SHARE.items()}
        counts["Person"] += n - sum(counts.values())
        return counts

    def jobs(self, counts: dict[Kind, int]) -> list[str]:
        """Occupations for every person, with enough writers, musicians, founders and mayors."""
        quota = {
            "writer": math.ceil(counts["Book"] * 0.4),
            "musician": math.ceil(counts["Album"] * 0.4),
            "founder": math.ceil(counts["Company"] * 0.6),
            "politician": math.ceil(counts["City"] * 0.3),
        }
        jobs = [job for job, n in quota.items() for _ in range(n)][: counts["Person"]]
        jobs += [self.rng.choice(_OTHER_JOBS) for _ in range(counts["Person"] - len(jobs))]
        self.rng.shuffle(jobs)
        return [self.rng.choice(_FOUNDER_JOBS) if j == "founder" else j for j in jobs]

    def country_facts(self) -> dict[str, Value]:
        return {
            "Area (km²)": _log_uniform(self.rng, 2_000, 3_000_000),
            "Founded": self.rng.randint(900, 1990),
        }

    def city_facts(self, country: str | None = None) -> dict[str, Value]:
        rng = self.rng
        return {
            "Population": _log_uniform(rng, 2_000, 6_000_000),
            "Founded": rng.randint(600, 1900),
            "Elevation (m)": rng.randint(2, 2_600),
            "Country": (country or rng.choice(self.pools["Country"]),),
        }

    def person_facts(self, job: str) -> dict[str, Value]:
        rng = self.rng
        earliest = 1880 if job == "musician" else 1750 if job in _FOUNDER_JOBS else 1700
        born = rng.randint(earliest, 1995)
        facts: dict[str, Value] = {"Born": born}
        died = born + rng.randint(25, 95)
        if died <= CURRENT_YEAR:
            facts["Died"] = died
        facts["Occupation"] = job
        facts["Height (cm)"] = rng.randint(150, 201)
        facts["Birthplace"] = (self.city_founded_before(born),)
        return facts

    def company_facts(self) -> dict[str, Value]:
        rng = self.rng
        founder = rng.choice(self.pools["founder"])
        born = self.year(founder, "Born")
        founded = rng.randint(born + 20, min(born + 60, self.alive_until(founder)))
        return {
            "Founded": founded,
            "Employees": _log_uniform(rng, 8, 250_000),
            "Revenue (million)": _log_uniform(rng, 1, 90_000),
            "Founder": (founder,),
            "Headquarters": (self.city_founded_before(founded),),
        }

    def river_facts(self) -> dict[str, Value]:
        rng = self.rng
        cities = self.pools["City"]
        through = rng.sample(cities, k=min(len(cities), rng.choice((1, 2, 2, 3, 3, 4))))
        return {
            "Length (km)": rng.randint(40, 4_200),
            "Basin area (km²)": _log_uniform(rng, 500, 2_000_000),
            "Flows through": tuple(through),
        }

    def book_facts(self) -> dict[str, Value]:
        author = self.rng.choice(self.pools["writer"])
        year = self.rng.randint(self.year(author, "Born") + 18, self.alive_until(author))
        return {"Published": year, "Pages": self.rng.randint(60, 1_400), "Author": (author,)}

    def album_facts(self) -> dict[str, Value]:
        rng = self.rng
        artist = rng.choice(self.pools["musician"])
        year = rng.randint(max(self.year(artist, "Born") + 16, 1905), self.alive_until(artist))
        return {
            "Released": year,
            "Tracks": rng.randint(5, 26),
            "Length (min)": rng.randint(24, 84),
            "Artist": (artist,),
        }

    def any_person_facts(self) -> dict[str, Value]:
        return self.person_facts(self.rng.choice(_OTHER_JOBS + _FOUNDER_JOBS))

    def draw(self) -> dict[Kind, tuple[Callable[[], str], Callable[[], dict[str, Value]]]]:
        """Name maker and fact maker per kind, for kinds drawn after people exist."""
        n = self.names
        return {
            "Person": (n.person, self.any_person_facts),
            "City": (n.city, self.city_facts),
            "Company": (n.company, self.company_facts),
            "River": (n.river, self.river_facts),
            "Book": (n.title, self.book_facts),
            "Album": (n.title, self.album_facts),
        }

    def mayors(self) -> None:
        """Give some cities a mayor: a distinct politician born after the city was founded."""
        free = list(self.cities_by_founding)
        for person in self.pools.get("politician", []):
            stop = bisect.bisect_left(free, (self.year(person, "Born"), ""))
            if stop:
                _, city = free.pop(self.rng.randrange(stop))
                self.facts[city]["Mayor"] = (person,)

    def capitals(self) -> None:
        """Each country's capital and population follow from its cities."""
        members: dict[str, list[str]] = {c: [] for c in self.pools["Country"]}
        for city in self.pools["City"]:
            members[self.target(city, "Country")].append(city)
        for country, own in members.items():
            total = sum(self.year(c, "Population") for c in own)
            self.facts[country]["Population"] = int(total * self.rng.uniform(1.5, 6.0))
            self.facts[country]["Capital"] = (self.rng.choice(own),)

    def distractors(self) -> None:
        """Entities with imitated names and freshly drawn facts, none equal to the original's."""
        rng = self.rng
        originals = [(slug, name, kind) for slug, name, kind, _ in self.order if kind != "Country"]
        total = round(self.config.distractors_per_entity * len(self.order))
        originals = rng.sample(originals, len(originals))
        draw = self.draw()
        for i in range(total):
            slug, name, kind = originals[i % len(originals)]
            make_facts = draw[kind][1]
            facts = make_facts()
            while any(v == self.facts[slug].get(k) for k, v in facts.items() if isinstance(v, int)):
                facts = make_facts()
            self.add(self.names.variant(name, kind), kind, facts, imitates=slug)

    def build(self) -> EntityGraph:
        counts = self.counts()
        self.pools["Country"] = [
            self.add(self.names.country(), "Country", self.country_facts())
            for _ in range(counts["Country"])
        ]
        cities = []
        for i in range(max(counts["City"], counts["Country"])):
            facts = self.city_facts(self.pools["Country"][i] if i < counts["Country"] else None)
            if i == 0:
                facts["Founded"] = self.rng.randint(600, 1650)
            cities.append(self.add(self.names.city(), "City", facts))
        self.pools["City"] = cities
        self.cities_by_founding = sorted((self.year(c, "Founded"), c) for c in cities)
        for job in self.jobs(counts):
            slug = self.add(self.names.person(), "Person", self.person_facts(job))
            self.pools.setdefault("founder" if job in _FOUNDER_JOBS else job, []).append(slug)
        self.mayors()
        self.capitals()
        draw = self.draw()
        for kind in _LATER_KINDS:
            make_name, make_facts = draw[kind]
            for _ in range(counts[kind]):
                self.add(make_name(), kind, make_facts())
        self.distractors()
        return EntityGraph(
            [
                Entity(slug, name, kind, self.facts[slug], imitates)
                for slug, name, kind, imitates in self.order
            ]
        )


def generate_entities(config: WorldConfig) -> EntityGraph:
    """Draw a consistent world: deaths after births, founders older than their companies, ..."""
    return _Builder(config).build()
