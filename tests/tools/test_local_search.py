import re
import threading

import pytest

from matpo_gym.data.tasks import Page
from matpo_gym.tools import LocalSearch, SearchHit, ToolError, run_tool

from .conftest import BASE, DictStore


def test_the_page_about_the_topic_ranks_first(store: DictStore) -> None:
    search = LocalSearch(store)
    assert (
        search.search_raw("Charles Babbage analytical engine", 3)[0].url
        == f"{BASE}wiki/Charles_Babbage"
    )
    assert search.search_raw("Lovelace", 3)[0].url == f"{BASE}wiki/Ada_Lovelace"
    assert search.search_raw("volcano Sicily eruptions", 3)[0].url == f"{BASE}wiki/Mount_Etna"


def test_hits_are_ranked_positive_and_carry_title_and_snippet(store: DictStore) -> None:
    hits = LocalSearch(store).search_raw("Ada Lovelace mathematician", 10)
    assert all(isinstance(hit, SearchHit) and hit.score > 0 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert hits[0].title == "Ada Lovelace"
    assert hits[0].snippet == "Ada Lovelace was an English mathematician and writer."
    # Pages that never mention the query words are not returned at all.
    assert f"{BASE}wiki/Mount_Etna" not in {hit.url for hit in hits}


def test_tool_output_is_a_numbered_list_with_url_and_best_sentence(store: DictStore) -> None:
    out = LocalSearch(store)(query="Babbage analytical engine computer", top_k=2)
    lines = out.split("\n")
    assert lines[0] == "1. Charles Babbage"
    assert lines[1] == f"   URL: {BASE}wiki/Charles_Babbage"
    assert (
        lines[2] == "   He designed the Analytical Engine, a general-purpose mechanical computer."
    )
    assert lines[3].startswith("2. ")
    assert len(re.findall(r"^\d+\. ", out, flags=re.MULTILINE)) == 2


def test_snippet_falls_back_to_the_start_of_the_text_and_respects_the_limit() -> None:
    long_sentence = (
        " ".join(f"word{i}" for i in range(200))
        + " needle "
        + " ".join(f"tail{i}" for i in range(200))
    )
    pages = [
        Page(f"{BASE}a", "Alpha", f"<h1>Alpha</h1><p>{long_sentence}</p>"),
        Page(f"{BASE}b", "Needle", "<h1>Other</h1><p>Nothing relevant here at all.</p>"),
    ]
    search = LocalSearch(DictStore(BASE, pages), snippet_chars=80)
    hits = {hit.url: hit for hit in search.search_raw("needle", 5)}
    around = hits[f"{BASE}a"].snippet
    assert (
        "needle" in around
        and len(around) <= 80
        and around.startswith("...")
        and around.endswith("...")
    )
    assert (
        hits[f"{BASE}b"].snippet == "Other Nothing relevant here at all."
    )  # matched by title only


def test_top_k_default_argument_and_bounds(store: DictStore) -> None:
    search = LocalSearch(store, top_k=2)
    query = "Lovelace Babbage London mathematics volcano"
    assert len(re.findall(r"^\d+\. ", search(query=query), flags=re.MULTILINE)) == 2
    assert len(re.findall(r"^\d+\. ", search(query=query, top_k=3), flags=re.MULTILINE)) == 3
    with pytest.raises(ToolError, match="top_k"):
        search(query=query, top_k=11)
    assert run_tool(search, {"query": query, "top_k": 0}).error == "bad_arguments"
    with pytest.raises(ValueError):
        LocalSearch(store, top_k=0)


@pytest.mark.parametrize("query", ["", "   \n"])
def test_empty_query_is_a_tool_error(store: DictStore, query: str) -> None:
    search = LocalSearch(store)
    with pytest.raises(ToolError, match="empty"):
        search(query=query)
    result = run_tool(search, {"query": query})
    assert not result.ok and result.error in {"tool_error", "bad_arguments"}


@pytest.mark.parametrize("query", ["xylophone quasar", "the of and", "!!!"])
def test_no_hits_is_a_message_not_an_error(store: DictStore, query: str) -> None:
    out = LocalSearch(store)(query=query)
    assert out.startswith(f'No results for "{query}"')


def test_empty_store_answers_no_results() -> None:
    search = LocalSearch(DictStore(BASE, []))
    assert search.search_raw("anything", 5) == []
    assert search(query="anything").startswith("No results")


def test_spec_is_strict(store: DictStore) -> None:
    spec = LocalSearch(store).spec
    assert spec.name == "search"
    assert spec.parameters["required"] == ["query"]
    assert spec.parameters["additionalProperties"] is False
    assert run_tool(LocalSearch(store), {"query": "x", "page": 2}).error == "bad_arguments"


def test_concurrent_queries_match_sequential_ones(store: DictStore) -> None:
    search = LocalSearch(store)
    queries = [
        "Lovelace",
        "Babbage engine",
        "London Thames",
        "volcano",
        "Velmora harbour grain",
    ] * 20
    expected = {q: search(query=q) for q in queries}
    seen: dict[int, str] = {}

    def work(offset: int) -> None:
        for i in range(offset, len(queries), 8):
            seen[i] = search(query=queries[i])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(seen[i] == expected[q] for i, q in enumerate(queries))


def test_ten_thousand_pages() -> None:
    pages = [
        Page(
            f"{BASE}wiki/Entity_{i}",
            f"Entity {i}",
            f"<h1>Entity {i}</h1><table><tr><th>Code</th><td>code{i}x</td></tr></table>"
            f"<p>Entity {i} is a place in region{i % 50}y. "
            f"It borders <a href='/wiki/Entity_{i + 1}'>"
            f"Entity {i + 1}</a>.</p>",
        )
        for i in range(10_000)
    ]
    search = LocalSearch(DictStore(BASE, pages))
    assert len(search) == 10_000
    for i in (0, 4321, 9999):
        hits = search.search_raw(f"code{i}x", 5)
        assert [hit.url for hit in hits] == [f"{BASE}wiki/Entity_{i}"]
    region = search.search_raw("region7y", 10)
    assert len(region) == 10 and all(int(hit.url.rsplit("_", 1)[1]) % 50 == 7 for hit in region)
