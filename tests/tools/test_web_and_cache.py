"""The tool cache (record / replay on a real SQLite file), live web search with a stand-in engine
client, and web_tools built from a ToolsSpec.

The stand-in clients are tiny classes with ddgs's ``text`` signature: ddgs itself cannot reach
the network here, which the one test that calls real ddgs checks."""

from __future__ import annotations

import doctest
import itertools
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from matpo_gym.envs.spec import ToolsSpec
from matpo_gym.envs.toolbox import build_tools
from matpo_gym.tools import (
    Browse,
    HttpFetcher,
    LocalSearch,
    NoiseConfig,
    NoisyTool,
    ToolError,
    ToolResult,
    ToolSpec,
    ToolTimeout,
    run_tool,
)
from matpo_gym.tools import cache as cache_module
from matpo_gym.tools.cache import CachedTool, ToolCache, canonical_arguments, shared_cache
from matpo_gym.tools.web import cached_tools, tool_namespace, web_tools
from matpo_gym.tools.web_search import WebSearch

from .conftest import DictStore

# --- a real tool with failures, for the cache -----------------------------------------------------


class Lookup:
    """Answers from a table; some keys fail. Counts every real call."""

    spec = ToolSpec(
        "lookup",
        "Look a key up.",
        {
            "type": "object",
            "properties": {"key": {"type": "string"}, "upper": {"type": "boolean"}},
            "required": ["key"],
            "additionalProperties": False,
        },
    )

    def __init__(self, version: int = 1) -> None:
        self.version = version
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, key: str, upper: bool = False) -> str:
        with self._lock:
            self.calls.append({"key": key, "upper": upper})
        if key == "missing":
            raise ToolError(f"no entry for {key!r} (v{self.version}).")
        if key == "slow":
            raise ToolTimeout(f"the lookup of {key!r} took too long (v{self.version}).")
        text = f"value of {key} v{self.version}"
        return text.upper() if upper else text

    def distractor(self, rng: Any) -> str:
        return "unrelated value"


class MustNotRun(Lookup):
    def __call__(self, key: str, upper: bool = False) -> str:
        raise AssertionError("replay must not call the tool")


@pytest.fixture
def cache(tmp_path: Path) -> ToolCache:
    with ToolCache(tmp_path / "cache" / "tools.sqlite") as opened:
        yield opened


def outcome(tool: Any, arguments: dict[str, Any]) -> tuple[str, bool, str | None]:
    result = run_tool(tool, arguments, timeout=None)
    return result.text, result.ok, result.error


CALLS = [
    {"key": "a"},
    {"key": "b", "upper": True},
    {"key": "missing"},
    {"key": "slow"},
    {"upper": True, "key": "b"},  # the second call again, keys in another order
]


def test_put_get_persist_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "tools.sqlite"
    with ToolCache(path) as cache:
        cache.put("search", {"query": "x", "top_k": 3}, "results", namespace="web", created=5.0)
        cache.put("search", {"query": "x", "top_k": 3}, "other ns", namespace="local")
        cache.put("browse", {"url": "u"}, "HTTP 404", error="tool_error")
        assert len(cache) == 3
    with ToolCache(path) as reopened:  # persisted, and argument order does not matter
        entry = reopened.get("search", {"top_k": 3, "query": "x"}, namespace="web")
        assert entry is not None
        assert (entry.text, entry.ok, entry.error, entry.created) == ("results", True, None, 5.0)
        assert (
            reopened.get("search", {"query": "x", "top_k": 3}, namespace="local").text == "other ns"
        )
        assert reopened.get("search", {"query": "x"}, namespace="web") is None
        failed = reopened.get("browse", {"url": "u"})
        assert failed is not None and not failed.ok and failed.error == "tool_error"
        with pytest.raises(ToolError, match="HTTP 404"):
            failed.raise_or_return()
        assert reopened._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert canonical_arguments({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_put_rejects_unknown_error_kinds(cache: ToolCache) -> None:
    with pytest.raises(ValueError, match="tool_error, timeout"):
        cache.put("t", {}, "x", error="crash")  # type: ignore[arg-type]


def test_read_write_reuses_successes_and_retries_failures(cache: ToolCache) -> None:
    tool = Lookup()
    cached = CachedTool(tool, cache, "read_write")
    first = [outcome(cached, call) for call in CALLS]
    assert len(tool.calls) == 4  # the repeated call was a hit
    second = [outcome(cached, call) for call in CALLS]
    assert second == first
    # successes came from the cache; the two stored failures were tried again
    assert [c["key"] for c in tool.calls[4:]] == ["missing", "slow"]
    assert len(cache) == 4


def test_record_always_calls_and_keeps_the_latest(cache: ToolCache) -> None:
    CachedTool(Lookup(version=1), cache, "record")(key="a")
    newer = Lookup(version=2)
    assert CachedTool(newer, cache, "record")(key="a") == "value of a v2"
    assert len(newer.calls) == 1
    assert cache.get("lookup", {"key": "a"}).text == "value of a v2"


def test_off_neither_reads_nor_writes(cache: ToolCache) -> None:
    cache.put("lookup", {"key": "a"}, "stale")
    tool = Lookup()
    assert CachedTool(tool, cache, "off")(key="a") == "value of a v1"
    assert CachedTool(tool, cache, "off")(key="b") == "value of b v1"
    assert len(tool.calls) == 2 and len(cache) == 1


def test_replay_of_a_recorded_run_is_identical_outputs_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with ToolCache(path) as cache:
        recorded = [outcome(CachedTool(Lookup(), cache, "record"), call) for call in CALLS]
    assert [r[1:] for r in recorded] == [
        (True, None),
        (True, None),
        (False, "tool_error"),
        (False, "timeout"),
        (True, None),
    ]
    with ToolCache(path) as cache:  # a later process, offline
        replayed = [outcome(CachedTool(MustNotRun(), cache, "replay"), call) for call in CALLS]
    assert replayed == recorded
    with ToolCache(path) as cache:  # the errors are re-raised with their exact types
        replay = CachedTool(MustNotRun(), cache, "replay")
        with pytest.raises(ToolTimeout, match=r"took too long \(v1\)"):
            replay(key="slow")
        with pytest.raises(ToolError, match=r"no entry for 'missing' \(v1\)") as caught:
            replay(key="missing")
        assert not isinstance(caught.value, ToolTimeout)


def test_replay_miss_is_a_tool_error(cache: ToolCache) -> None:
    replay = CachedTool(MustNotRun(), cache, "replay", namespace="web;top_k=5")
    with pytest.raises(ToolError, match=r"^not in the replay cache: lookup\(\{\"key\":\"zz\"\}\)"):
        replay(key="zz")
    text, ok, error = outcome(replay, {"key": "zz"})
    assert (ok, error) == (False, "tool_error")
    assert "not in the replay cache" in text and "'web;top_k=5'" in text


def test_bad_mode_is_a_value_error(cache: ToolCache) -> None:
    with pytest.raises(ValueError, match="valid modes: off, read_write, record, replay"):
        CachedTool(Lookup(), cache, "replay_only")  # type: ignore[arg-type]


def test_crashes_are_not_cached(cache: ToolCache) -> None:
    class Crashes(Lookup):
        def __call__(self, key: str, upper: bool = False) -> str:
            raise KeyError(key)

    with pytest.raises(KeyError):
        CachedTool(Crashes(), cache, "record")(key="a")
    assert len(cache) == 0


def test_a_call_past_the_time_limit_is_stored_as_the_timeout_it_was(cache: ToolCache) -> None:
    class Slow(Lookup):
        def __call__(self, key: str, upper: bool = False) -> str:
            time.sleep(0.15)
            return "too late"

    with pytest.raises(ToolTimeout, match="no answer within 0.05 s"):
        CachedTool(Slow(), cache, "record", time_limit=0.05)(key="a")
    entry = cache.get("lookup", {"key": "a"})
    assert entry is not None and entry.error == "timeout"
    assert outcome(CachedTool(MustNotRun(), cache, "replay"), {"key": "a"})[2] == "timeout"


def test_noise_sits_outside_the_cache_and_replays_identically(cache: ToolCache) -> None:
    calls = [{"key": k} for k in "abcdefghijklmnop"] + [{"key": "missing"}]

    def play(tool: Any) -> tuple[list[Any], list[Any]]:
        noisy = NoisyTool(tool, rate=0.6, seed=11)
        results = [outcome(noisy, call) for call in calls]
        return results, [event.to_dict() for event in noisy.pop_events()]

    recorded, recorded_events = play(CachedTool(Lookup(), cache, "record"))
    kinds = {event["kind"] for event in recorded_events}
    assert {"error", "timeout"} & kinds and {"truncate", "corrupt", "irrelevant"} & kinds
    # what was stored is the clean result of every call that reached the tool
    for entry in cache:
        if entry.ok:
            assert entry.text == f"value of {entry.arguments['key']} v1"
    replayed, replayed_events = play(CachedTool(MustNotRun(), cache, "replay"))
    assert (replayed, replayed_events) == (recorded, recorded_events)


def test_pop_events_and_distractor_pass_through(cache: ToolCache) -> None:
    noisy = NoisyTool(Lookup(), rate=1.0, kinds=["truncate"], seed=0)
    cached = CachedTool(noisy, cache, "read_write")
    cached(key="abc")
    assert [e.kind for e in cached.pop_events()] == ["truncate"]
    plain = CachedTool(Browse(HttpFetcher()), cache, "read_write")
    assert not hasattr(plain, "pop_events")
    assert CachedTool(Lookup(), cache, "off").distractor(None) == "unrelated value"


def test_eight_threads_read_and_write_one_cache(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    tool = Lookup()
    errors: list[BaseException] = []
    with ToolCache(path) as cache, ToolCache(path) as second_handle:

        def worker(n: int) -> None:
            try:
                handle = cache if n % 2 else second_handle  # two connections, like two processes
                cached = CachedTool(tool, handle, "read_write")
                for i in range(40):
                    key = f"k{(n * 7 + i) % 25}"
                    assert cached(key=key) == f"value of {key} v1"
                    handle.put("note", {"thread": n, "i": i}, f"{n}:{i}")
                    assert handle.get("note", {"thread": n, "i": i}).text == f"{n}:{i}"
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(cache) == 25 + 8 * 40
        assert {c["key"] for c in tool.calls} == {f"k{i}" for i in range(25)}
        assert len(tool.calls) < 8 * 40  # most were hits


def test_export_and_import_jsonl(tmp_path: Path) -> None:
    exported = tmp_path / "out" / "tools.jsonl"
    exported.parent.mkdir()
    with ToolCache(tmp_path / "a.sqlite") as source:
        recorded = CachedTool(Lookup(), source, "record", namespace="ns")
        for call in CALLS:
            run_tool(recorded, call, timeout=None)
        assert source.export_jsonl(exported) == 4
        expected = [entry.to_dict() for entry in source]
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert {line["error"] for line in lines} == {None, "tool_error", "timeout"}
    with ToolCache(tmp_path / "b.sqlite") as target:
        assert target.import_jsonl(exported) == 4
        assert [entry.to_dict() for entry in target] == expected
        replay = CachedTool(MustNotRun(), target, "replay", namespace="ns")
        assert outcome(replay, {"key": "b", "upper": True}) == ("VALUE OF B V1", True, None)
        assert outcome(replay, {"key": "slow"})[1:] == (False, "timeout")


def test_import_rejects_a_bad_line_and_imports_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {"tool": "t", "arguments": {"q": 1}, "text": "ok", "error": None}
    bad.write_text(
        json.dumps(good) + "\n" + json.dumps({"tool": "t", "arguments": "q=1", "text": "x"}) + "\n",
        encoding="utf-8",
    )
    with ToolCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(ValueError, match=r"bad.jsonl:2: field 'arguments'"):
            cache.import_jsonl(bad)
        assert len(cache) == 0


def test_module_docstring_example_runs() -> None:
    result = doctest.testmod(
        cache_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0 and result.failed == 0


# --- web search with stand-in engine clients ------------------------------------------------------

ROWS = [
    {
        "title": "Ada  Lovelace - Wikipedia",
        "href": "https://en.wikipedia.org/wiki/Ada_Lovelace",
        "body": "Augusta Ada King, Countess of Lovelace was an English mathematician.",
    },
    {"title": "", "href": "https://example.org/ada", "body": ""},
    {"title": "No URL at all", "href": "", "body": "dropped"},
    {"title": "Computer History", "href": "https://history.example/ada", "body": "word " * 100},
]


class Engine:
    """A search-engine client: ``text`` answers from a script of rows or exceptions, in order."""

    def __init__(self, *script: list[dict[str, Any]] | Exception) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, dict[str, Any], float]] = []
        self._lock = threading.Lock()

    def text(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        with self._lock:
            self.calls.append((query, kwargs, time.monotonic()))
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


def web(engine: Engine, **kwargs: Any) -> WebSearch:
    settings = {"min_interval_s": 0.0, "backoff_s": 0.01, **kwargs}
    return WebSearch(client_factory=lambda: engine, **settings)


def test_results_are_formatted_like_local_search(store: DictStore) -> None:
    engine = Engine(ROWS)
    search = web(engine, region="us-en", safe_search="off", backend="duckduckgo", snippet_chars=60)
    out = search(query="  Ada Lovelace ")
    assert out.split("\n") == [
        "1. Ada Lovelace - Wikipedia",
        "   URL: https://en.wikipedia.org/wiki/Ada_Lovelace",
        "   Augusta Ada King, Countess of Lovelace was an English...",
        "2. https://example.org/ada",
        "   URL: https://example.org/ada",
        "3. Computer History",
        "   URL: https://history.example/ada",
        "   " + "word " * 10 + "word...",
    ]
    assert engine.calls[0][:2] == (
        "Ada Lovelace",
        {"region": "us-en", "safesearch": "off", "max_results": 5, "backend": "duckduckgo"},
    )
    local = LocalSearch(store)(query="Ada Lovelace")
    shape = re.compile(
        r"^(\d+\. .+\n   URL: \S+(\n   (?!URL: ).+)?)(\n\d+\. .+\n   URL: \S+(\n   (?!URL: ).+)?)*$"
    )
    assert shape.match(out) and shape.match(local)
    assert (
        WebSearch(client_factory=lambda: engine).spec.parameters
        == LocalSearch(store).spec.parameters
    )


def test_top_k_limits_results_and_is_passed_on() -> None:
    engine = Engine(ROWS)
    out = web(engine)(query="ada", top_k=1)
    assert out.count("URL:") == 1 and engine.calls[0][1]["max_results"] == 1
    result = run_tool(web(engine), {"query": "ada", "top_k": 11}, timeout=None)
    assert (result.ok, result.error) == (False, "bad_arguments")
    with pytest.raises(ToolError, match="top_k must be an integer from 1 to 10"):
        web(engine)(query="ada", top_k=0)
    with pytest.raises(ToolError, match="The query is empty"):
        web(engine)(query="   ")


@pytest.mark.parametrize("empty", [[], DDGSException("No results found.")])
def test_no_results_is_text_not_an_error(empty: Any) -> None:
    assert web(Engine(empty))(query="zxqv") == (
        'No results for "zxqv". Try fewer or different keywords, such as a name or a distinctive term.'
    )


def test_rate_limits_are_retried_with_exponential_backoff() -> None:
    engine = Engine(RatelimitException("202 Ratelimit"), RatelimitException("202 Ratelimit"), ROWS)
    start = time.monotonic()
    out = web(engine, backoff_s=0.1, max_retries=3)(query="ada")
    assert out.startswith("1. Ada Lovelace")
    assert len(engine.calls) == 3
    first, second, third = (call[2] for call in engine.calls)
    assert 0.09 <= second - first < 0.6  # backoff_s
    assert 0.19 <= third - second < 0.8  # 2 * backoff_s
    assert time.monotonic() - start < 2.0


def test_rate_limit_text_in_a_generic_ddgs_error_is_retried_too() -> None:
    engine = Engine(DDGSException("HTTP 429 Too Many Requests"), ROWS)
    assert web(engine)(query="ada").startswith("1. ")
    assert len(engine.calls) == 2


def test_exhausted_rate_limit_retries_are_a_tool_error() -> None:
    engine = Engine(RatelimitException("202 Ratelimit"))
    search = web(engine, max_retries=2)
    result = run_tool(search, {"query": "ada"}, timeout=None)
    assert (result.ok, result.error) == (False, "tool_error")
    assert "limiting requests (3 attempts" in result.text and "Wait a moment" in result.text
    assert len(engine.calls) == 3


def test_timeouts_are_retried_then_a_tool_timeout() -> None:
    engine = Engine(TimeoutException("timed out"), TimeoutError("read timed out"))
    with pytest.raises(ToolTimeout, match="did not answer in time \\(4 attempts"):
        web(engine, max_retries=3)(query="ada")
    assert len(engine.calls) == 4
    result = run_tool(
        web(Engine(TimeoutException("x")), max_retries=0), {"query": "a"}, timeout=None
    )
    assert (result.ok, result.error) == (False, "timeout")


def test_retries_stop_at_the_time_limit() -> None:
    engine = Engine(RatelimitException("202 Ratelimit"))
    start = time.monotonic()
    with pytest.raises(ToolError, match="1 attempt;"):
        web(engine, timeout_s=0.3, backoff_s=1.0, max_retries=5)(query="ada")
    assert len(engine.calls) == 1 and time.monotonic() - start < 0.3


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (DDGSException("DNSError: error resolving DNS"), "could not be reached .*DNSError"),
        (
            DDGSException("something odd " * 40),
            r"web search failed \(DDGSException: something odd.*\.\.\.\)",
        ),
        (ValueError("bad payload"), r"web search failed \(ValueError: bad payload\)"),
    ],
)
def test_other_failures_are_not_retried(error: Exception, message: str) -> None:
    engine = Engine(error)
    with pytest.raises(ToolError, match=message) as caught:
        web(engine, max_retries=3)(query="ada")
    assert not isinstance(caught.value, ToolTimeout)
    assert len(engine.calls) == 1
    assert len(str(caught.value)) < 300


def test_min_interval_spaces_searches_across_instances() -> None:
    engine = Engine(ROWS)
    first, second = web(engine, min_interval_s=0.1), web(engine, min_interval_s=0.1)
    for n in range(4):
        (first if n % 2 else second)(query=f"q{n}")
    starts = [call[2] for call in engine.calls]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.095, gaps


def test_min_interval_holds_across_threads() -> None:
    engine = Engine(ROWS)
    search = web(engine, min_interval_s=0.1)
    threads = [threading.Thread(target=search, kwargs={"query": f"q{n}"}) for n in range(5)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts = sorted(call[2] for call in engine.calls)
    assert len(starts) == 5
    assert starts[-1] - start >= 0.39  # five starts, each 0.1 s after the one before
    assert starts[-1] - starts[0] >= 0.3


def test_bad_settings_are_value_errors() -> None:
    with pytest.raises(ValueError, match="top_k must be in 1..10"):
        WebSearch(top_k=0)
    with pytest.raises(ValueError, match="safe_search must be one of on, moderate, off"):
        WebSearch(safe_search="strict")
    with pytest.raises(ValueError, match="must not be negative"):
        WebSearch(max_retries=-1)


def test_real_ddgs_without_a_network_fails_cleanly() -> None:
    search = WebSearch(timeout_s=5.0, max_retries=1, backoff_s=0.1, min_interval_s=0.0)
    start = time.monotonic()
    result = run_tool(search, {"query": "matpo gym offline probe"}, timeout=15)
    assert time.monotonic() - start < 15
    if result.ok:  # a machine with a network: then it is a real result list
        assert re.match(r'^(1\. |No results for ")', result.text)
    else:
        assert result.error in ("tool_error", "timeout"), result.text
        assert result.text.startswith("Tool 'search' ")
        assert "web search" in result.text and len(result.text) < 400


# --- web_tools and cached_tools from a ToolsSpec --------------------------------------------------


def test_web_tools_follow_the_spec() -> None:
    spec = ToolsSpec(
        backend="web",
        search_top_k=7,
        search_region="de-de",
        safe_search="off",
        timeout_s=12.0,
        browse_max_chars=1500,
    )
    tools = web_tools(spec)
    assert set(tools) == {"search", "browse"}
    search, browse = tools["search"], tools["browse"]
    assert isinstance(search, WebSearch) and isinstance(browse, Browse)
    assert (search.top_k, search.region, search.safe_search, search.timeout_s) == (
        7,
        "de-de",
        "off",
        12.0,
    )
    assert isinstance(browse.fetcher, HttpFetcher)
    assert (browse.fetcher.timeout, browse.max_chars) == (12.0, 1500)


def test_web_tools_with_a_cache_record_and_replay_real_http(
    tmp_path: Path, http_server: str
) -> None:
    path = tmp_path / "web.sqlite"
    record = web_tools(ToolsSpec(backend="web", cache_mode="record", cache_path=str(path)))
    assert all(isinstance(tool, CachedTool) for tool in record.values())
    assert isinstance(record["search"].tool, WebSearch) and isinstance(
        record["browse"].tool, Browse
    )
    assert record["search"].namespace == "web;top_k=5;region=wt-wt;safe_search=moderate"
    assert record["browse"].namespace == "web;max_chars=4000"
    calls = [{"url": f"{http_server}/page.html"}, {"url": f"{http_server}/missing"}]
    live = [outcome(record["browse"], call) for call in calls]
    assert live[0][1] and live[1][1:] == (False, "tool_error")
    replay = web_tools(ToolsSpec(backend="web", cache_mode="replay", cache_path=str(path)))
    assert [outcome(replay["browse"], call) for call in calls] == live
    miss = outcome(replay["browse"], {"url": f"{http_server}/other.html"})
    assert miss[1:] == (False, "tool_error") and "not in the replay cache" in miss[0]
    # another page size is another namespace: nothing recorded for it
    other = web_tools(
        ToolsSpec(backend="web", cache_mode="replay", cache_path=str(path), browse_max_chars=999)
    )
    assert "not in the replay cache" in outcome(other["browse"], calls[0])[0]


def test_build_tools_puts_noise_outside_the_web_cache(tmp_path: Path, http_server: str) -> None:
    path = tmp_path / "noisy.sqlite"
    url = {"url": f"{http_server}/page.html"}
    spec = ToolsSpec(backend="web", names=("browse",), cache_mode="record", cache_path=str(path))
    noisy = build_tools(spec, None, NoiseConfig(rate=1.0, kinds=("corrupt",), seed=2))["browse"]
    garbled = outcome(noisy, url)[0]
    clean = outcome(web_tools(spec)["browse"], url)[0]
    assert garbled != clean
    with ToolCache(path) as cache:
        assert cache.get("browse", url, namespace="web;max_chars=4000").text == clean


@pytest.mark.parametrize("mode", ["read_write", "record", "replay"])
def test_a_cache_mode_without_a_path_names_the_field(mode: str) -> None:
    with pytest.raises(
        ValueError, match=f"tools.cache_path is required when tools.cache_mode is '{mode}'"
    ):
        web_tools(ToolsSpec(backend="web", cache_mode=mode))  # type: ignore[arg-type]


def test_cached_tools_wrap_local_tools(tmp_path: Path, store: DictStore) -> None:
    local = {"search": LocalSearch(store), "browse": Browse(HttpFetcher())}
    assert cached_tools(local, ToolsSpec()) == local  # cache_mode off: unwrapped
    path = str(tmp_path / "local.sqlite")
    recorded = cached_tools(local, ToolsSpec(cache_mode="record", cache_path=path))
    assert recorded["search"].namespace == tool_namespace("search", ToolsSpec()) == "local;top_k=5"
    live = outcome(recorded["search"], {"query": "Ada Lovelace"})
    assert live[1] and live[0].startswith("1. Ada Lovelace")
    assert callable(recorded["search"].distractor)  # noise can still draw unrelated results
    replay = cached_tools(local, ToolsSpec(cache_mode="replay", cache_path=path))
    replay["search"].tool = MustNotRun()  # answered from the file alone
    assert outcome(replay["search"], {"query": "Ada Lovelace"}) == live


def test_a_call_that_timed_out_waiting_for_a_thread_is_stored_as_that_timeout(cache: ToolCache) -> None:
    # abandoned calls still hold the tool pool's threads; a call that waits behind them past its
    # limit is a timeout to the agent, and must be one in the cache too, or a replay would differ
    class Hanging(Lookup):
        def __call__(self, key: str, upper: bool = False) -> str:
            time.sleep(0.8)
            return "late"

    hanging = CachedTool(Hanging(), cache, "record", namespace="hanging", time_limit=0.2)
    threads = [threading.Thread(target=run_tool, args=(hanging, {"key": str(i)}), kwargs={"timeout": 0.2})
               for i in range(40)]  # more than the pool's threads
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    seen = run_tool(CachedTool(Lookup(), cache, "record", time_limit=0.2), {"key": "a"}, timeout=0.2)
    for thread in threads:
        thread.join()
    time.sleep(1.0)  # the queued call has run by now, late
    assert seen.error == "timeout"
    entry = cache.get("lookup", {"key": "a"})
    assert entry is not None and entry.error == "timeout"
    assert outcome(CachedTool(MustNotRun(), cache, "replay"), {"key": "a"})[2] == "timeout"


def test_a_search_whose_turn_comes_after_its_deadline_sends_no_request() -> None:
    engine = Engine(ROWS)
    search = web(engine, min_interval_s=0.2, timeout_s=0.3)
    results: list[ToolResult] = []
    threads = [threading.Thread(target=lambda n=n: results.append(run_tool(search, {"query": f"q{n}"}, timeout=None)))
               for n in range(6)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.error or "ok" for r in results).count("timeout") >= 3
    assert len(engine.calls) <= 3  # turns at about 0, 0.2 s; none after a caller gave up
    assert all(call[2] - start < 0.3 + 0.1 for call in engine.calls)


def test_a_replay_of_web_tools_needs_no_search_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matpo_gym.tools import web_search

    monkeypatch.setattr(web_search, "DDGSException", None)  # as where the web extra is not installed
    with pytest.raises(ImportError, match="ddgs"):
        web_tools(ToolsSpec(backend="web"))
    shared_cache(str(tmp_path / "c.sqlite"))  # a recording that holds no search
    tools = web_tools(ToolsSpec(backend="web", cache_mode="replay", cache_path=str(tmp_path / "c.sqlite")))
    assert outcome(tools["search"], {"query": "x"})[2] == "tool_error"  # not recorded: a clear miss


def test_two_offline_worlds_never_share_cached_results(tmp_path: Path) -> None:
    from matpo_gym.data.world import WorldConfig, build_world

    spec = ToolsSpec(cache_mode="read_write", cache_path=str(tmp_path / "tools.sqlite"))
    pages = []
    for seed in (0, 1):  # the same base URL and paths, other pages
        world = build_world(WorldConfig(seed=seed, num_entities=60))
        pages.append(outcome(build_tools(spec, world.store)["browse"], {"url": "/"}))
    assert pages[0][1] and pages[1][1] and pages[0][0] != pages[1][0]


def test_a_rate_limited_search_whose_retry_gets_no_turn_reports_the_rate_limit() -> None:
    engine = Engine(RatelimitException("202 Ratelimit"))
    search = web(engine, max_retries=3, min_interval_s=0.3, timeout_s=0.4, backoff_s=0.01)
    result = run_tool(search, {"query": "ada"}, timeout=None)
    assert (result.ok, result.error) == (False, "tool_error")
    assert "limiting requests" in result.text and len(engine.calls) < 4  # stopped by its deadline
