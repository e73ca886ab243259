import json
import random
import re
import time

import pytest

from matpo_gym.tools import (
    ALL_KINDS,
    Browse,
    LocalSearch,
    NoiseConfig,
    NoiseEvent,
    NoisyTool,
    StoreFetcher,
    ToolError,
    ToolSpec,
    ToolTimeout,
    apply_noise,
    run_tool,
)
from matpo_gym.tools.noise import TRANSIENT_ERRORS

from .conftest import DictStore

TEXT = "\n".join(f"Paragraph {i} says something different about topic {i}." for i in range(8))


class Echo:
    """A real tool that returns its input and counts its calls."""

    spec = ToolSpec(
        "echo",
        "Repeat the text.",
        {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
            "additionalProperties": False,
        },
    )

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: str) -> str:
        self.calls += 1
        return text


def only(kind: str, tool: object = None, **kwargs: object) -> NoisyTool:
    return NoisyTool(tool or Echo(), rate=1.0, kinds=[kind], **kwargs)


def test_error_raises_a_transient_failure_without_calling_the_tool() -> None:
    echo = Echo()
    noisy = only("error", echo)
    with pytest.raises(ToolError) as caught:
        noisy(text=TEXT)
    assert str(caught.value) in TRANSIENT_ERRORS and not isinstance(caught.value, ToolTimeout)
    assert echo.calls == 0
    [event] = noisy.pop_events()
    assert (event.tool, event.kind, event.arguments, event.detail) == (
        "echo",
        "error",
        {"text": TEXT},
        str(caught.value),
    )


def test_timeout_raises_at_once() -> None:
    noisy = only("timeout")
    start = time.perf_counter()
    with pytest.raises(ToolTimeout):
        noisy(text=TEXT)
    assert time.perf_counter() - start < 0.1
    assert [e.kind for e in noisy.pop_events()] == ["timeout"]


@pytest.mark.parametrize(("kind", "error"), [("timeout", "timeout"), ("error", "tool_error")])
def test_run_tool_reports_injected_failures(kind: str, error: str) -> None:
    result = run_tool(only(kind), {"text": TEXT})
    assert (result.ok, result.error) == (False, error)


def test_truncate_keeps_a_10_to_50_percent_prefix() -> None:
    noisy = only("truncate")
    for i in range(50):
        text = f"{i} " + TEXT
        out = noisy(text=text)
        assert text.startswith(out) and 0.1 * len(text) - 1 <= len(out) <= 0.5 * len(text)
    events = noisy.pop_events()
    assert len(events) == 50 and all(
        e.kind == "truncate" and "kept the first" in e.detail for e in events
    )


def test_corrupt_garbles_some_words_in_place() -> None:
    noisy = only("corrupt")
    out = noisy(text=TEXT)
    clean_words, noisy_words = TEXT.split(), out.split()
    assert len(out) == len(TEXT) and [m.start() for m in re.finditer(r"\s", out)] == [
        m.start() for m in re.finditer(r"\s", TEXT)
    ]
    changed = [a for a, b in zip(clean_words, noisy_words, strict=True) if a != b]
    assert 0.1 * len(clean_words) - 1 <= len(changed) <= 0.3 * len(clean_words) + 1
    [event] = noisy.pop_events()
    assert (
        event.kind == "corrupt"
        and event.detail == f"garbled {len(changed)} of {len(clean_words)} words"
    )


def test_shuffle_reorders_and_renumbers_a_ranked_list(store: DictStore) -> None:
    search = LocalSearch(store)
    args = {"query": "Lovelace Babbage London mathematics volcano", "top_k": 5}
    clean = search(**args)
    out = only("shuffle", search)(**args)
    assert out != clean
    assert re.findall(r"^(\d+)\. ", out, flags=re.MULTILINE) == ["1", "2", "3", "4", "5"]

    def blocks(text: str) -> list[str]:
        return [re.sub(r"^\d+\. ", "", b) for b in re.split(r"\n(?=\d+\. )", text)]

    assert sorted(blocks(out)) == sorted(blocks(clean)) and blocks(out) != blocks(clean)


def test_shuffle_reorders_paragraphs_of_other_text() -> None:
    noisy = only("shuffle")
    out = noisy(text=TEXT)
    assert out != TEXT and sorted(out.split("\n")) == sorted(TEXT.split("\n"))
    assert noisy(text="one paragraph only") == "one paragraph only"
    assert [e.detail for e in noisy.pop_events()] == [
        "reordered 8 paragraphs",
        "a single paragraph; unchanged",
    ]


def test_irrelevant_search_returns_results_for_another_query(store: DictStore) -> None:
    search = LocalSearch(store)
    noisy = only("irrelevant", search)
    for query in ["Lovelace", "volcano", "Thames"]:
        out = noisy(query=query)
        assert out != search(query=query) and out.startswith("1. ")
    events = noisy.pop_events()
    assert [e.kind for e in events] == ["irrelevant"] * 3 and all(
        "unrelated" in e.detail for e in events
    )


def test_irrelevant_browse_returns_another_page(store: DictStore) -> None:
    browse = Browse(StoreFetcher(store))
    out = only("irrelevant", browse)(url="/wiki/London")
    assert out.startswith("Title: ") and "Title: London" not in out


def test_irrelevant_uses_the_given_factory() -> None:
    noisy = only("irrelevant", irrelevant=lambda rng: f"unrelated {rng.randint(0, 9)}")
    assert re.fullmatch(r"unrelated \d", noisy(text=TEXT))


def test_irrelevant_default_is_the_previous_different_call_else_truncation() -> None:
    noisy = only("irrelevant")
    first = noisy(text="first call " * 10)
    assert ("first call " * 10).startswith(first) and len(first) < 55
    assert noisy(text="second call") == "first call " * 10
    assert noisy(text="second call") == "first call " * 10  # the same call again: still another one
    kinds = [(e.kind, e.detail) for e in noisy.pop_events()]
    assert kinds[0][0] == "truncate" and "no unrelated result" in kinds[0][1]
    assert [k for k, _ in kinds[1:]] == ["irrelevant", "irrelevant"]


def test_rate_zero_is_a_perfect_pass_through(store: DictStore) -> None:
    search = LocalSearch(store)
    noisy = NoisyTool(search, rate=0.0)
    assert noisy.spec is search.spec
    for query in ["Lovelace", "volcano", "London", "Lovelace"]:
        assert noisy(query=query) == search(query=query)
    assert noisy.pop_events() == []
    with pytest.raises(ToolError):
        noisy(query="")


def test_rate_one_disturbs_every_call() -> None:
    noisy = NoisyTool(Echo(), rate=1.0, seed=5)
    for i in range(200):
        try:
            noisy(text=f"{i} {TEXT}")
        except ToolError:
            pass
    events = noisy.pop_events()
    assert len(events) == 200
    assert {e.kind for e in events} == set(ALL_KINDS)
    counts = {kind: sum(e.kind == kind for e in events) for kind in ALL_KINDS}
    assert all(15 <= n <= 55 for n in counts.values()), counts  # uniform: about 33 each


def test_empirical_rate_matches_the_configured_rate() -> None:
    noisy = NoisyTool(Echo(), rate=0.3, kinds=["truncate"], seed=11)
    calls = 3000
    for i in range(calls):
        noisy(text=f"call {i} {TEXT}")
    assert abs(len(noisy.pop_events()) / calls - 0.3) < 0.04


def _decisions(noisy: NoisyTool, calls: list[dict[str, str]]) -> dict[str, list[str]]:
    """Per distinct call: the output (or error) of each occurrence, in order."""
    seen: dict[str, list[str]] = {}
    for args in calls:
        try:
            out = noisy(**args)
        except ToolError as exc:
            out = f"{type(exc).__name__}: {exc}"
        seen.setdefault(json.dumps(args), []).append(out)
    return seen


CALLS = [{"text": f"{i % 7} {TEXT}"} for i in range(60)]
KINDS = ["error", "timeout", "truncate", "corrupt", "shuffle"]


def test_same_seed_same_noise() -> None:
    a, b = (
        NoisyTool(Echo(), rate=0.5, kinds=KINDS, seed=7),
        NoisyTool(Echo(), rate=0.5, kinds=KINDS, seed=7),
    )
    assert _decisions(a, CALLS) == _decisions(b, CALLS)
    assert a.pop_events() == b.pop_events() != []


def test_decisions_do_not_depend_on_the_order_of_other_calls() -> None:
    shuffled = CALLS[:]
    random.Random(0).shuffle(shuffled)
    a, b = (
        NoisyTool(Echo(), rate=0.5, kinds=KINDS, seed=7),
        NoisyTool(Echo(), rate=0.5, kinds=KINDS, seed=7),
    )
    assert _decisions(a, CALLS) == _decisions(b, shuffled)


def test_repeats_of_one_call_get_fresh_decisions_and_other_seeds_differ() -> None:
    repeated = _decisions(NoisyTool(Echo(), rate=0.5, kinds=KINDS, seed=7), [{"text": TEXT}] * 40)
    assert len(set(next(iter(repeated.values())))) > 3
    other = _decisions(NoisyTool(Echo(), rate=0.5, kinds=KINDS, seed=8), CALLS)
    assert other != _decisions(NoisyTool(Echo(), rate=0.5, kinds=KINDS, seed=7), CALLS)


def test_reset_restarts_the_counters_under_a_new_seed() -> None:
    noisy = NoisyTool(Echo(), rate=0.5, kinds=KINDS, seed=1)
    _decisions(noisy, CALLS)
    noisy.reset(seed=7)
    noisy.pop_events()
    assert _decisions(noisy, CALLS) == _decisions(
        NoisyTool(Echo(), rate=0.5, kinds=KINDS, seed=7), CALLS
    )
    assert noisy.seed == 7


def test_events_drain_and_serialise() -> None:
    noisy = only("truncate")
    noisy(text=TEXT)
    events = noisy.pop_events()
    assert noisy.pop_events() == []
    assert isinstance(events[0], NoiseEvent)
    assert json.loads(json.dumps(events[0].to_dict())) == {
        "tool": "echo",
        "kind": "truncate",
        "arguments": {"text": TEXT},
        "detail": events[0].detail,
    }


def test_rebuilt_from_its_config() -> None:
    noisy = NoisyTool(Echo(), rate=0.4, kinds=["corrupt", "shuffle"], seed=3)
    assert noisy.config() == {"rate": 0.4, "kinds": ("corrupt", "shuffle"), "seed": 3}
    twin = NoisyTool(Echo(), **noisy.config())
    assert _decisions(noisy, CALLS) == _decisions(twin, CALLS)
    assert NoiseConfig(**noisy.config()) == NoiseConfig(
        rate=0.4, kinds=("corrupt", "shuffle"), seed=3
    )


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "0.5", True])
def test_bad_rate(rate: object) -> None:
    with pytest.raises(ValueError, match="rate must be a number in"):
        NoisyTool(Echo(), rate=rate)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate must be a number in"):
        NoiseConfig(rate=rate)  # type: ignore[arg-type]


def test_bad_kinds_name_the_culprit_and_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown noise kind 'explode'; valid kinds: error, timeout, irrelevant"
    ):
        NoisyTool(Echo(), rate=0.1, kinds=["error", "explode"])
    with pytest.raises(ValueError, match="unknown noise kind 'explode'"):
        NoiseConfig(rate=0.1, kinds=("explode",))
    with pytest.raises(ValueError, match="not the string .error.; valid: error, timeout"):
        NoisyTool(Echo(), rate=0.1, kinds="error")
    with pytest.raises(ValueError, match="empty"):
        NoiseConfig(rate=0.1, kinds=())


def test_apply_noise() -> None:
    tools = {"echo": Echo()}
    assert apply_noise(tools, NoiseConfig()) == tools
    wrapped = apply_noise(tools, NoiseConfig(rate=0.2, kinds=["truncate"], seed=4))  # type: ignore[arg-type]
    assert isinstance(wrapped["echo"], NoisyTool) and wrapped["echo"].tool is tools["echo"]
    assert wrapped["echo"].config() == {"rate": 0.2, "kinds": ("truncate",), "seed": 4}
