"""The synthetic world's site: determinism, structure, links, distractors and the length knob."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from world_reader import SiteReader

from matpo_gym.data.tasks import PageStore
from matpo_gym.data.world import SiteStore, World, WorldConfig, build_world
from matpo_gym.data.world.entities import CURRENT_YEAR

SMALL = WorldConfig(seed=7, num_entities=150)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(SMALL)


@pytest.fixture(scope="module")
def reader(world: World) -> SiteReader:
    return SiteReader(world.store)


def test_same_seed_same_pages_and_different_seed_different_pages() -> None:
    a, b = build_world(SMALL), build_world(SMALL)
    assert [(p.url, p.html) for p in a.store] == [(p.url, p.html) for p in b.store]
    c = build_world(WorldConfig(seed=8, num_entities=150))
    assert {p.title for p in a.store} != {p.title for p in c.store}


def test_store_follows_the_page_store_protocol(world: World) -> None:
    store: PageStore = world.store
    assert isinstance(world.store, SiteStore)
    assert len(store) == len(list(store)) == len(world.entities) + 1 + 7
    assert store.base_url == SMALL.base_url
    for page in store:
        assert page.url.startswith(SMALL.base_url + "/")
        assert store.get(page.url) is page


def test_store_get_accepts_paths_absolute_urls_and_common_misspellings(world: World) -> None:
    entity = next(iter(world.entities.values()))
    page = world.store.get(f"/wiki/{entity.slug}")
    assert page is not None and page.title == entity.name
    assert world.store.get(world.store.url_for(f"/wiki/{entity.slug}")) is page
    assert world.store.get(f"wiki/{entity.slug}?action=view#History") is page
    assert world.store.get("/wiki/" + entity.name.replace(" ", "%20")) is page
    assert world.store.get("/wiki/" + entity.name) is page
    assert world.store.get("/wiki/No_Such_Page") is None
    assert world.store.get(f"https://elsewhere.test/wiki/{entity.slug}") is None
    assert world.store.get("") is world.store.get("/") is world.store.get(SMALL.base_url)
    assert world.store.url_for("/wiki/X") == SMALL.base_url + "/wiki/X"


def test_category_pages_paginate_with_next_links() -> None:
    world = build_world(WorldConfig(seed=3, num_entities=400))
    people = world.entities.of_kind("Person")
    assert len(people) > 100
    first = world.store.get("/category/Person")
    second = world.store.get("/category/Person/2")
    assert first is not None and second is not None
    assert world.store.get("/category/Person?page=2") is second
    assert world.store.get("/category/Person/1") is first
    assert world.store.get("/category/Person/99") is None
    assert 'rel="next" href="/category/Person/2"' in first.html
    reader = SiteReader(world.store)
    listed = set()
    number = 1
    url = world.store.url_for("/category/Person")
    while True:
        listed |= {u for u in reader.links(url) if "/wiki/" in u}
        nxt = reader.soup(url).find("a", rel="next")
        if nxt is None:
            break
        number += 1
        url = urljoin(url, nxt["href"])
    assert number == -(-len(people) // 100)
    assert listed >= {world.store.url_for(f"/wiki/{p.slug}") for p in people}


def test_root_links_every_category(world: World, reader: SiteReader) -> None:
    root = world.store.url_for("/")
    categories = {urlsplit(u).path for u in reader.links(root) if "/category/" in u}
    assert categories == {
        f"/category/{k}" for k in ("Person", "City", "Country", "Company", "River", "Book", "Album")
    }


def test_every_link_on_every_page_resolves_and_is_host_relative(world: World) -> None:
    hrefs = set()
    for page in world.store:
        hrefs.update(re.findall(r'href="([^"]*)"', page.html))
    assert all(h.startswith("/") and not h.startswith("//") for h in hrefs)
    dead = [h for h in hrefs if world.store.get(h) is None]
    assert not dead


def test_every_page_is_reachable_from_the_root(world: World, reader: SiteReader) -> None:
    root = world.store.url_for("/")
    seen, frontier = {root}, [root]
    while frontier:
        url = frontier.pop()
        for target in reader.links(url):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == {p.url for p in world.store}


def test_entity_page_structure(world: World, reader: SiteReader) -> None:
    company = world.entities.of_kind("Company")[0]
    url = world.store.url_for(f"/wiki/{company.slug}")
    soup = reader.soup(url)
    assert soup.title.get_text() == f"{company.name} - Matpo World"
    assert reader.title(url) == company.name
    assert soup.find("p", class_="lead") is not None
    assert soup.find("nav") is not None and soup.find("ul", class_="see-also") is not None
    rows = reader.rows(url)
    assert set(rows) >= {"Founded", "Employees", "Revenue (million)", "Founder", "Headquarters"}
    assert rows["Founded"] == company.facts["Founded"]
    founder = rows["Founder"][0]
    assert reader.title(founder.url) == founder.name
    founder_rows = reader.rows(founder.url)
    assert company.name in [c.name for c in founder_rows["Companies founded"]]
    prose = soup.find("main").get_text(" ")
    assert f"{company.name} was founded in {company.facts['Founded']}." in prose


def test_relations_and_backlinks_agree(world: World, reader: SiteReader) -> None:
    for company in world.entities.of_kind("Company"):
        city_url = reader.rows(world.store.url_for(f"/wiki/{company.slug}"))["Headquarters"][0].url
        listed = reader.rows(city_url)["Companies headquartered here"]
        assert company.name in [c.name for c in listed]


def test_distractor_pages_exist_and_look_like_entity_pages(
    world: World, reader: SiteReader
) -> None:
    distractors = [e for e in world.entities.values() if e.is_distractor]
    assert len(distractors) == round(SMALL.distractors_per_entity * SMALL.num_entities)
    for d in distractors:
        original = world.entities[d.imitates]
        assert d.kind == original.kind and d.name != original.name
        shared = set(d.name.split()) & set(original.name.split())
        one_letter = len(d.name) == len(original.name) and (
            sum(a != b for a, b in zip(d.name, original.name)) == 1
        )
        assert shared or one_letter, (d.name, original.name)
        for label, value in d.facts.items():
            if isinstance(value, int):
                assert value != original.facts.get(label), (d.name, label)
        url = world.store.url_for(f"/wiki/{d.slug}")
        assert reader.title(url) == d.name and reader.rows(url)
        hatnote = reader.soup(url).find("p", class_="hatnote")
        assert hatnote is not None and original.name in hatnote.get_text()


def test_no_distractors_when_the_knob_is_zero() -> None:
    world = build_world(WorldConfig(seed=7, num_entities=150, distractors_per_entity=0.0))
    assert not any(e.is_distractor for e in world.entities.values())
    assert len(world.entities) == 150


def _mean_text_words(world: World) -> float:
    reader = SiteReader(world.store)
    pages = [world.store.url_for(f"/wiki/{slug}") for slug in list(world.entities)[:60]]
    return sum(len(reader.soup(u).get_text(" ").split()) for u in pages) / len(pages)


def test_filler_paragraphs_make_pages_longer_without_changing_facts() -> None:
    short = build_world(WorldConfig(seed=7, num_entities=60, filler_paragraphs=0))
    default = build_world(WorldConfig(seed=7, num_entities=60))
    long = build_world(WorldConfig(seed=7, num_entities=60, filler_paragraphs=20))
    words = [_mean_text_words(w) for w in (short, default, long)]
    assert words[0] < words[1] < words[2]
    assert words[1] > 250 and words[2] > 1500
    slug = next(iter(short.entities))
    assert SiteReader(short.store).rows(short.store.url_for(f"/wiki/{slug}")) == SiteReader(
        long.store
    ).rows(long.store.url_for(f"/wiki/{slug}"))


def test_base_url_changes_absolute_urls_but_not_html() -> None:
    a = build_world(WorldConfig(seed=2, num_entities=40))
    b = build_world(WorldConfig(seed=2, num_entities=40, base_url="http://127.0.0.1:8000"))
    assert [p.html for p in a.store] == [p.html for p in b.store]
    assert next(iter(b.store)).url == "http://127.0.0.1:8000/"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_entities": 5},
        {"distractors_per_entity": -1.0},
        {"filler_paragraphs": -1},
        {"base_url": "wiki.test"},
        {"base_url": "https://wiki.test/sub"},
    ],
)
def test_bad_config_is_rejected_with_the_field_named(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        WorldConfig(**kwargs)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(30, 120), distractors=st.floats(0, 2))
def test_facts_are_consistent_in_any_world(seed: int, size: int, distractors: float) -> None:
    world = build_world(
        WorldConfig(
            seed=seed, num_entities=size, distractors_per_entity=distractors, filler_paragraphs=0
        )
    )
    for family in world.families:
        assert world.tasks(family, split="train")
    graph = world.entities
    names = [e.name for e in graph.values()]
    assert len({n.lower() for n in names}) == len(names)
    for e in graph.values():
        f = e.facts
        if e.kind == "Person":
            born = f["Born"]
            assert "Died" not in f or born < f["Died"] <= CURRENT_YEAR
            assert graph[f["Birthplace"][0]].facts["Founded"] < born
        elif e.kind == "Company":
            founder = graph[f["Founder"][0]].facts
            assert founder["Born"] < f["Founded"] <= founder.get("Died", CURRENT_YEAR)
            assert graph[f["Headquarters"][0]].facts["Founded"] < f["Founded"]
        elif e.kind in ("Book", "Album"):
            creator = graph[f["Author" if e.kind == "Book" else "Artist"][0]].facts
            year = f["Published" if e.kind == "Book" else "Released"]
            assert creator["Born"] < year <= creator.get("Died", CURRENT_YEAR)
        elif e.kind == "City" and "Mayor" in f:
            assert graph[f["Mayor"][0]].facts["Born"] > f["Founded"]
        elif e.kind == "Country":
            capital = graph[f["Capital"][0]]
            assert capital.facts["Country"] == (e.slug,)
            assert f["Population"] > capital.facts["Population"]


def test_a_ten_thousand_page_world_builds() -> None:
    world = build_world(WorldConfig(seed=1, num_entities=10_000))
    assert len(world.store) >= 10_000
    assert len(world.entities) == round(10_000 * 1.3)


_DIGEST = """
import hashlib
from matpo_gym.data.world import WorldConfig, build_world
w = build_world(WorldConfig(seed=4, num_entities=60))
h = hashlib.sha256()
for page in w.store:
    h.update(page.html.encode())
for family in w.families:
    for task in w.tasks(family, split="train"):
        h.update(f"{task.id}{task.question}{task.answer}{task.metadata}".encode())
print(h.hexdigest())
"""


def test_worlds_are_identical_across_processes_and_hash_seeds() -> None:
    digests = {
        subprocess.run(
            [sys.executable, "-c", _DIGEST],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1
