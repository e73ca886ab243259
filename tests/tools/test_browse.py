import random
import re

import pytest

from matpo_gym.tools import Browse, HttpFetcher, StoreFetcher, ToolError, run_tool, split_windows

from .conftest import BASE, LONG_PARAGRAPHS, DictStore

LINK = re.compile(r"\[[^\]]*\]\(([^)]*)\)")


def test_browse_shows_title_url_text_and_absolute_links(store: DictStore) -> None:
    out = Browse(StoreFetcher(store))(url="/wiki/Ada_Lovelace")
    assert out.split("\n") == [
        "Title: Ada Lovelace",
        f"URL: {BASE}wiki/Ada_Lovelace",
        "",
        "# Ada Lovelace",
        "Born: 10 December 1815",
        f"Field: [Mathematics]({BASE}wiki/Mathematics)",
        f"Collaborator: [Charles Babbage]({BASE}wiki/Charles_Babbage)",
        "Ada Lovelace was an English mathematician and writer.",
        "She wrote the first published algorithm intended for a computing machine.",
        f"She was born in [London]({BASE}wiki/London) to the poet Lord Byron.",
    ]


def test_links_on_a_page_can_be_followed(store: DictStore) -> None:
    browse = Browse(StoreFetcher(store))
    root = browse(url=BASE)
    for url in LINK.findall(root):
        assert browse(url=url).startswith("Title: ")
    assert len(LINK.findall(root)) == 2


@pytest.mark.parametrize(
    "url",
    [
        "wiki/London",
        "/wiki/London",
        f"{BASE}wiki/London",
        f"{BASE}wiki/London#History",
        " /wiki/London ",
    ],
)
def test_url_forms_resolve_against_the_site(store: DictStore, url: str) -> None:
    assert Browse(StoreFetcher(store))(url=url).split("\n")[:2] == [
        "Title: London",
        f"URL: {BASE}wiki/London",
    ]


def test_unknown_and_outside_urls_are_tool_errors(store: DictStore) -> None:
    browse = Browse(StoreFetcher(store))
    with pytest.raises(ToolError, match=f"No page at {BASE}wiki/Atlantis"):
        browse(url="/wiki/Atlantis")
    with pytest.raises(ToolError, match="outside this site"):
        browse(url="https://elsewhere.example/wiki/London")
    result = run_tool(browse, {"url": "/wiki/Atlantis"})
    assert (result.ok, result.error) == (False, "tool_error")


@pytest.mark.parametrize("url", ["http://[::1", "https://[wiki.example]/wiki/London"])
def test_a_url_urllib_cannot_parse_is_a_tool_error_not_a_crash(store: DictStore, url: str) -> None:
    for fetcher in (StoreFetcher(store), HttpFetcher()):
        result = run_tool(Browse(fetcher), {"url": url})
        assert (result.ok, result.error) == (False, "tool_error") and "not a valid URL" in result.text


def test_long_pages_come_in_windows_with_a_footer(store: DictStore) -> None:
    browse = Browse(StoreFetcher(store), max_chars=1000)
    first = browse(url="/wiki/Velmora_Chronicle")
    total = int(
        re.search(r"\(page 1 of (\d+); call browse with page=2 for more\)$", first).group(1)
    )
    assert total > 5
    bodies = []
    for page in range(1, total + 1):
        out = browse(url="/wiki/Velmora_Chronicle", page=page)
        header, body = out.split("\n\n", 1)
        assert header == f"Title: Velmora Chronicle\nURL: {BASE}wiki/Velmora_Chronicle"
        body, footer = body.rsplit("\n\n", 1)
        expected = (
            "end of the page" if page == total else f"call browse with page={page + 1} for more"
        )
        assert footer == f"(page {page} of {total}; {expected})"
        assert len(body) <= 1000
        bodies.append(body)
    full = "\n".join(bodies)
    assert full.count("Section ") == len(LONG_PARAGRAPHS)
    assert f"[Port 59]({BASE}wiki/Port_59)" in full
    with pytest.raises(ToolError, match=f"has {total} page"):
        browse(url="/wiki/Velmora_Chronicle", page=total + 1)
    with pytest.raises(ToolError, match="page must be"):
        browse(url="/wiki/Velmora_Chronicle", page=0)
    assert run_tool(browse, {"url": "/wiki/Velmora_Chronicle", "page": 0}).error == "bad_arguments"


def test_short_page_has_no_footer(store: DictStore) -> None:
    assert not Browse(StoreFetcher(store))(url="/wiki/London").endswith(")")


def test_split_windows_keeps_everything_and_prefers_line_breaks() -> None:
    text = "\n".join(f"line {i} " + "word " * (i % 7) for i in range(200))
    windows = split_windows(text, 120)
    assert all(0 < len(w) <= 120 for w in windows)
    assert " ".join(" ".join(windows).split()) == " ".join(text.split())
    assert all(w.split("\n")[-1].startswith("line ") for w in windows)  # no line was cut in two


def test_split_windows_never_cuts_inside_a_link() -> None:
    text = " ".join(
        f"[Entity number {i}](http://world.test/wiki/Entity_number_{i})" for i in range(100)
    )
    windows = split_windows(text, 200)
    links = [m for w in windows for m in re.findall(r"\[[^\]]*\]\([^)]*\)", w)]
    assert len(links) == 100
    assert all(w.count("[") == w.count("](") for w in windows)


def test_split_windows_hard_cuts_a_word_longer_than_a_window() -> None:
    assert split_windows("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]
    assert split_windows("", 100) == [""]


def test_distractor_is_another_page_of_the_site(store: DictStore) -> None:
    browse = Browse(StoreFetcher(store))
    outs = {browse.distractor(random.Random(seed)) for seed in range(20)}
    assert len(outs) > 2 and all(out.startswith("Title: ") for out in outs)


def test_spec_is_strict(store: DictStore) -> None:
    spec = Browse(StoreFetcher(store)).spec
    assert spec.name == "browse" and spec.parameters["required"] == ["url"]
    assert spec.parameters["additionalProperties"] is False
    with pytest.raises(ValueError):
        Browse(StoreFetcher(store), max_chars=10)
