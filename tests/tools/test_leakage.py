"""The leakage guard against the real local search and browse tools, over dataset-hosting pages."""

from __future__ import annotations

import doctest
import random
import re

import pytest

from matpo_gym.data.tasks import Page
from matpo_gym.envs.spec import ToolsSpec
from matpo_gym.envs.toolbox import build_tools
from matpo_gym.tools import (
    Browse,
    FetchedPage,
    LocalSearch,
    NoiseConfig,
    NoisyTool,
    leakage,
    run_tool,
)
from matpo_gym.tools.browse import StoreFetcher
from matpo_gym.tools.leakage import (
    DEFAULT_BLOCKED_DOMAINS,
    GuardedBrowse,
    GuardedSearch,
    blocked_rule,
    guard_tools,
    parse_rules,
)

from .conftest import DictStore

HF = "https://huggingface.co/"
DATASET = f"{HF}datasets/veggiebird/velmora-qa"
SPACE = f"{HF}spaces/someone/velmora-demo"
ALLOWED = [f"{HF}blog/velmora-harbour", f"{HF}docs/velmora-guide", f"{HF}datasets-guide/velmora"]


def page(url: str, title: str, text: str) -> Page:
    html = f"<html><head><title>{title}</title></head><body><p>{text}</p></body></html>"
    return Page(url, title, html)


@pytest.fixture
def hub() -> DictStore:
    """A site on huggingface.co where two pages leak the answer and three are harmless."""
    return DictStore(
        HF,
        [
            page(DATASET, "velmora-qa dataset", "Velmora harbour question: answer 1742. Velmora."),
            page(SPACE, "velmora demo space", "Ask about Velmora harbour here."),
            page(ALLOWED[0], "Velmora harbour blog", "A post about the Velmora harbour."),
            page(ALLOWED[1], "Velmora guide", "Docs that mention Velmora harbour once."),
            page(ALLOWED[2], "Velmora datasets guide", "How Velmora harbour data is cited."),
        ],
    )


def urls_of(text: str) -> list[str]:
    return re.findall(r"URL: (\S+)", text)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://huggingface.co/datasets/x/y", "huggingface.co/datasets"),
        ("http://www.HuggingFace.co/Datasets/x", "huggingface.co/datasets"),
        ("https://huggingface.co/datasets", "huggingface.co/datasets"),
        ("https://huggingface.co/datasets?search=musique", "huggingface.co/datasets"),
        ("huggingface.co/spaces/a/b", "huggingface.co/spaces"),
        ("https://hf.co/datasets/x", "hf.co/datasets"),
        ("https://hf.co/spaces/x#top", "hf.co/spaces"),
        ("https://datasets-server.huggingface.co/rows?dataset=x/y", "datasets-server.huggingface.co"),
        ("https://huggingface.co/api/datasets/x/y/parquet/default/test", "huggingface.co/api/datasets"),
        ("https://gaia-benchmark-leaderboard.hf.space/", "hf.space"),
        ("https://huggingface.co/docs/datasets", None),
        ("https://huggingface.co/datasets-guide/x", None),
        ("https://huggingface.co/models/x", None),
        ("https://nothuggingface.co/datasets/x", None),
        ("https://example.org/huggingface.co/datasets/x", None),
        ("not a url at all", None),
        ("http://[broken", None),
    ],
)
def test_default_rules_block_dataset_and_space_pages_only(url, rule):
    assert blocked_rule(url, parse_rules(DEFAULT_BLOCKED_DOMAINS)) == rule


def test_rules_tolerate_schemes_and_slashes_and_match_subdomains():
    rules = parse_rules(["https://www.Example.org/private/", "kaggle.com"])
    assert [(r.host, r.path) for r in rules] == [("example.org", "/private"), ("kaggle.com", "")]
    assert blocked_rule("https://sub.example.org/private/a", rules) is not None
    assert blocked_rule("https://example.org/public", rules) is None
    assert blocked_rule("https://www.kaggle.com/anything", rules) == "kaggle.com"
    with pytest.raises(ValueError, match="has no host"):
        parse_rules(["/datasets"])


def test_relative_urls_are_resolved_against_the_base():
    rules = parse_rules(DEFAULT_BLOCKED_DOMAINS)
    assert blocked_rule("/datasets/a", rules, base_url=HF) == "huggingface.co/datasets"
    assert blocked_rule("/datasets/a", rules, base_url="https://wiki.test/") is None


def test_guarded_search_drops_blocked_results_renumbers_and_counts(hub):
    search = LocalSearch(hub, top_k=10)
    clean = search(query="Velmora harbour")
    assert DATASET in urls_of(clean) and SPACE in urls_of(clean)

    guarded = GuardedSearch(search, parse_rules(DEFAULT_BLOCKED_DOMAINS))
    text = guarded(query="Velmora harbour")
    assert urls_of(text) == [u for u in urls_of(clean) if u not in (DATASET, SPACE)]
    assert sorted(urls_of(text)) == sorted(ALLOWED)
    ranks = [int(m) for m in re.findall(r"^(\d+)\. ", text, re.MULTILINE)]
    assert ranks == [1, 2, 3]
    assert "velmora-qa dataset" not in text and "1742" not in text
    assert guarded.pop_blocked() == 2
    assert guarded.pop_blocked() == 0


def test_guarded_search_with_every_result_blocked_says_no_results(hub):
    guarded = GuardedSearch(LocalSearch(hub, top_k=10), parse_rules(["huggingface.co"]))
    result = run_tool(guarded, {"query": "Velmora harbour"}, timeout=None)
    assert result.ok
    assert result.text.startswith('No results for "Velmora harbour".') and "URL:" not in result.text
    assert guarded.pop_blocked() == 5


def test_guarded_search_passes_clean_results_and_messages_through(hub):
    search = LocalSearch(hub, top_k=10)
    guarded = GuardedSearch(search, parse_rules(["example.org"]))
    assert guarded(query="Velmora harbour") == search(query="Velmora harbour")
    assert guarded(query="zzzunknownword") == search(query="zzzunknownword")
    assert guarded.pop_blocked() == 0


def test_guarded_browse_refuses_blocked_urls_with_a_clear_error(hub):
    rules = parse_rules(DEFAULT_BLOCKED_DOMAINS)
    browse = GuardedBrowse(Browse(StoreFetcher(hub)), rules, base_url=HF)
    for url in (DATASET, SPACE, "/datasets/veggiebird/velmora-qa"):
        result = run_tool(browse, {"url": url}, timeout=None)
        assert not result.ok and result.error == "tool_error"
        assert "blocked site" in result.text and "1742" not in result.text
    assert browse.pop_blocked() == 3
    for url in ALLOWED:
        result = run_tool(browse, {"url": url}, timeout=None)
        assert result.ok and f"URL: {url}" in result.text
    assert browse.pop_blocked() == 0


class Redirecting:
    """A fetcher whose every page is served from a dataset page, as after a redirect."""

    def fetch(self, url: str) -> FetchedPage:
        return FetchedPage(DATASET, "<html><body><p>The answer is 1742.</p></body></html>")


def test_guarded_browse_refuses_a_page_served_from_a_blocked_url():
    browse = GuardedBrowse(Browse(Redirecting()), parse_rules(DEFAULT_BLOCKED_DOMAINS))
    result = run_tool(browse, {"url": "https://short.link/abc"}, timeout=None)
    assert not result.ok and "blocked site" in result.text and "1742" not in result.text
    assert browse.pop_blocked() == 1


def test_distractors_are_filtered_too(hub):
    rules = parse_rules(["huggingface.co/datasets", "huggingface.co/spaces", "huggingface.co/blog"])
    search = GuardedSearch(LocalSearch(hub, top_k=10), rules)
    browse = GuardedBrowse(Browse(StoreFetcher(hub)), rules, base_url=HF)
    for seed in range(20):
        text = search.distractor(random.Random(seed))
        assert text is not None and DATASET not in text and SPACE not in text
        page_text = browse.distractor(random.Random(seed))
        if page_text is not None:
            assert urls_of(page_text)[0] in ALLOWED[1:]
    assert search.pop_blocked() == 0 and browse.pop_blocked() == 0


def test_guard_tools_wraps_search_and_browse_only(hub):
    other = LocalSearch(hub)
    browse = Browse(StoreFetcher(hub))
    tools = guard_tools({"search": other, "browse": browse, "x": other}, ["hf.co"])
    assert isinstance(tools["search"], GuardedSearch) and isinstance(tools["browse"], GuardedBrowse)
    assert tools["x"] is other


def test_build_tools_applies_the_guard_before_noise(hub):
    off = build_tools(ToolsSpec(), hub)
    assert DATASET in off["search"](query="Velmora harbour")

    on = build_tools(ToolsSpec(leakage_guard=True, search_top_k=10), hub)
    assert isinstance(on["search"], GuardedSearch) and isinstance(on["browse"], GuardedBrowse)
    assert DATASET not in on["search"](query="Velmora harbour")

    noisy = build_tools(ToolsSpec(leakage_guard=True), hub, NoiseConfig(rate=0.5, seed=1))
    assert isinstance(noisy["search"], NoisyTool)
    assert isinstance(noisy["search"].tool, GuardedSearch)

    blog_only = ToolsSpec(leakage_guard=True, blocked_domains=("huggingface.co/blog",))
    custom = build_tools(blog_only, hub)
    text = custom["search"](query="Velmora harbour", top_k=10)
    assert DATASET in text and ALLOWED[0] not in text


def test_module_examples():
    result = doctest.testmod(leakage)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("env", ["frames", "webwalkerqa", "gaia", "matpo-data", "musique"])
def test_every_live_web_benchmark_env_guards_against_its_own_hosting_pages(env):
    from matpo_gym.envs.spec import load_env_spec

    tools = load_env_spec(env).tools
    assert tools.backend == "web" and tools.leakage_guard
