import doctest
import json
import math
import types
from dataclasses import replace

import pytest

from matpo_gym.bench import protocol
from matpo_gym.bench.protocol import (
    PlannedEpisode,
    outcome_counts,
    pass_at_k,
    pass_ks,
    record_categories,
    sum_counters,
)
from matpo_gym.bench.run import RunConfig, default_repeats, overrides_slug, run
from matpo_gym.bench.stats import bootstrap_ci
from matpo_gym.bench.summary import format_categories, format_table, summarize
from matpo_gym.envs.spec import load_env_spec


def record(
    task: str,
    sample: int,
    score: float,
    *,
    stop: str = "answer",
    prediction: str | None = "x",
    family: str = "frames",
    metadata: dict | None = None,
    stats: dict | None = None,
) -> dict:
    return {
        "key": f"{task}/s{sample}",
        "task_id": task,
        "score": score,
        "reward": score,
        "stop_reason": stop,
        "prediction": prediction,
        "turns": 2,
        "family": family,
        "task_metadata": metadata or {},
        "stats": stats
        if stats is not None
        else {"tool_calls": 1, "workers_spawned": 0, "noise_events": []},
    }


def plan(tasks: dict[str, int]) -> list[PlannedEpisode]:
    return [PlannedEpisode(f"{t}/s{s}", t, "frames") for t, n in tasks.items() for s in range(n)]


def test_protocol_docstring_examples():
    result = doctest.testmod(protocol)
    assert result.attempted > 0 and result.failed == 0


def test_pass_at_k_by_hand_three_questions_four_samples():
    # correct samples per question: a 0/4, b 1/4, c 3/4
    correct = {"a": 0, "b": 1, "c": 3}
    records = [record(t, s, float(s < c)) for t, c in correct.items() for s in range(4)]
    summary = summarize("matpo", records, planned=plan(dict.fromkeys(correct, 4)), seed=3)
    # pass@1 = mean(0/4, 1/4, 3/4) = 1/3
    assert summary.accuracy == pytest.approx(1 / 3)
    # pass@2 = 1 - C(4-c, 2) / C(4, 2): a 1 - 6/6 = 0, b 1 - 3/6 = 1/2, c 1 - 0/6 = 1 -> mean 1/2
    # pass@4: a 0, b 1, c 1 -> 2/3
    assert list(summary.pass_at_k) == ["1", "2", "4"]
    assert summary.pass_at_k["1"]["mean"] == pytest.approx(1 / 3)
    assert summary.pass_at_k["2"]["mean"] == pytest.approx(1 / 2)
    assert summary.pass_at_k["4"]["mean"] == pytest.approx(2 / 3)
    assert (summary.n, summary.questions, summary.samples) == (12, 3, 4)
    # the interval is a bootstrap over the three questions, not over the twelve episodes
    assert (summary.ci_low, summary.ci_high) == bootstrap_ci([0.0, 0.25, 0.75], seed=3)
    assert summary.pass_at_k["2"]["n"] == 3


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_the_closed_form_for_binary_scores(n):
    for c in range(n + 1):
        scores = [1.0] * c + [0.0] * (n - c)
        for k in range(1, n + 1):
            expected = 1 - math.comb(n - c, k) / math.comb(n, k)
            assert pass_at_k(scores[::-1], k) == pytest.approx(expected)


def test_pass_at_k_edges():
    assert pass_ks(1) == [1] and pass_ks(2) == [1, 2] and pass_ks(6) == [1, 2, 4, 6]
    assert pass_at_k([0.5, 1.0], 1) == pytest.approx(0.75)  # partial credit: mean
    assert pass_at_k([0.5, 1.0], 2) == pytest.approx(1.0)  # best of both
    with pytest.raises(ValueError, match="k <= samples"):
        pass_at_k([1.0], 2)


def test_failed_crashed_and_missing_episodes_stay_in_the_denominator():
    records = [
        record("a", 0, 1.0),
        record("a", 1, 0.0, stop="error", prediction=None),
        record("b", 0, 0.0, prediction=None),  # ended with an empty answer
        record("b", 1, 0.0, stop="turn_limit", prediction=None),
        record("c", 0, 0.0, stop="context_limit", prediction=None),
        # c/s1 was planned but never recorded
        record("z", 0, 1.0),  # outside the plan (an earlier, larger run): ignored
    ]
    summary = summarize("single", records, planned=plan({"a": 2, "b": 2, "c": 2}))
    assert summary.n == 6 and summary.questions == 3
    assert summary.accuracy == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert summary.outcomes == {
        "answered": 1,
        "no_answer": 1,
        "turn_limit": 1,
        "context_limit": 1,
        "error": 1,
        "missing": 1,
    }
    assert summary.errors == 1 and summary.answered == pytest.approx(1 / 6)
    assert summary.pass_at_k["2"]["mean"] == pytest.approx(1 / 3)
    # without a plan, the records are the denominator
    assert summarize("single", records[:5]).n == 5


def test_unknown_stop_reasons_are_counted_under_their_own_name():
    counts = outcome_counts(
        [record("a", 0, 0.0, stop="timeout"), record("a", 1, 0.0, stop="no_summary")]
    )
    assert counts["timeout"] == 1 and counts["no_answer"] == 1 and sum(counts.values()) == 2


def test_categories_of_each_benchmark():
    assert record_categories({"family": "gaia", "task_metadata": {"Level": "3"}}) == ["level 3"]
    assert record_categories({"family": "gaia", "task_metadata": {"level": None}}) == ["gaia"]
    frames = {
        "family": "frames",
        "task_metadata": {"reasoning_types": ["Numerical reasoning", "Temporal reasoning"]},
    }
    assert record_categories(frames) == ["Numerical reasoning", "Temporal reasoning"]
    assert record_categories(
        {"family": "frames", "task_metadata": {"reasoning_types": "A | B"}}
    ) == ["A", "B"]
    walker = {
        "family": "webwalkerqa",
        "task_metadata": {"type": "multi_source", "difficulty_level": "hard"},
    }
    assert record_categories(walker) == ["multi_source/hard"]
    world = {
        "family": "webwalker",
        "task_metadata": {"difficulty": "easy", "type": "single_source"},
    }
    assert record_categories(world) == ["webwalker/easy"]
    assert record_categories({"task_metadata": {}}) == ["unknown"]


def test_category_breakdown_counts_a_question_in_each_of_its_types():
    numerical, temporal = ["Numerical reasoning"], ["Numerical reasoning", "Temporal reasoning"]
    records = [
        record("a", 0, 1.0, metadata={"reasoning_types": numerical}),
        record("a", 1, 1.0, metadata={"reasoning_types": numerical}),
        record("b", 0, 0.0, metadata={"reasoning_types": temporal}),
        record("b", 1, 1.0, metadata={"reasoning_types": temporal}),
    ]
    planned = plan({"a": 2, "b": 2, "c": 2})
    planned[4:] = [
        replace(p, metadata={"reasoning_types": ["Temporal reasoning"]}) for p in planned[4:]
    ]
    categories = summarize("matpo", records, planned=planned).categories
    assert categories["Numerical reasoning"]["questions"] == 2
    assert categories["Numerical reasoning"]["accuracy"] == pytest.approx((1 + 0.5) / 2)
    # c was never recorded: it still counts, as 0, in its category from the plan's metadata
    assert categories["Temporal reasoning"]["questions"] == 2
    assert categories["Temporal reasoning"]["episodes"] == 4
    assert categories["Temporal reasoning"]["accuracy"] == pytest.approx(0.25)
    assert (
        categories["Temporal reasoning"]["ci_low"]
        <= 0.25
        <= categories["Temporal reasoning"]["ci_high"]
    )


def test_world_categories_sort_by_difficulty_and_gaia_by_level():
    records = [
        record("h", 0, 0.0, metadata={"difficulty": "hard"}),
        record("e", 0, 1.0, metadata={"difficulty": "easy"}),
        record("m", 0, 1.0, metadata={"difficulty": "medium"}),
    ]
    assert list(summarize("m", records).categories) == [
        "frames/easy",
        "frames/medium",
        "frames/hard",
    ]
    gaia = [record(str(i), 0, 1.0, family="gaia", metadata={"level": i}) for i in (3, 1, 2)]
    assert list(summarize("m", gaia).categories) == ["level 1", "level 2", "level 3"]


def test_every_numeric_stats_counter_is_summed():
    first = {
        "tool_calls": 3,
        "noise_events": [{"kind": "error"}],
        "per_tool": {"search": {"calls": 2, "errors": 1}},
        "truncations": {"planner": 0, "worker": 2},
        "note": "text is skipped",
        "flag": True,
    }
    second = {
        "tool_calls": 1,
        "noise_events": [],
        "per_tool": {"search": {"calls": 1}, "browse": {"calls": 4}},
        "truncations": {"planner": 1, "worker": 0},
        "brand_new_counter": 7,
        "seconds": 0.5,
    }
    assert sum_counters([first, second]) == {
        "tool_calls": 4,
        "noise_events": 1,
        "per_tool": {"search": {"calls": 3, "errors": 1}, "browse": {"calls": 4}},
        "truncations": {"planner": 1, "worker": 2},
        "flag": 1,
        "brand_new_counter": 7,
        "seconds": 0.5,
    }
    summary = summarize("m", [record("a", 0, 1.0, stats=first), record("b", 0, 0.0, stats=second)])
    assert summary.stats_totals["per_tool"]["browse"]["calls"] == 4
    assert summary.tool_calls == 4 and summary.noise_events == 1


def test_tables_show_pass_at_k_outcomes_and_categories():
    records = [record("a", s, float(s == 0), metadata={"difficulty": "easy"}) for s in range(2)]
    records += [
        record("b", s, 0.0, stop="error", metadata={"difficulty": "hard"}) for s in range(2)
    ]
    summary = summarize("matpo", records, planned=plan({"a": 2, "b": 2}))
    table = format_table([summary])
    assert "accuracy [95% CI]" in table and "pass@2" in table and "error" in table
    row = table.splitlines()[2]
    assert row.split()[:4] == ["matpo", "4", "2x2", "0.250"] and "0.500" in row
    categories = format_categories([summary])
    assert "frames/easy" in categories and "0.500" in categories and "(1)" in categories
    assert format_categories([summarize("m", records[:2])]) == ""  # one category: no second table
    json.dumps(summary.to_dict(), allow_nan=False)


def test_empty_summary_is_json_ready():
    summary = summarize("matpo", [])
    assert summary.n == 0 and summary.accuracy == 0.0 and summary.pass_at_k == {}
    json.dumps(summary.to_dict(), allow_nan=False)


# --- repeats in a real run --------------------------------------------------------------------


def test_default_repeats_come_from_the_env_spec():
    spec = load_env_spec("world-tiny")
    assert default_repeats(types.SimpleNamespace()) == 1
    assert default_repeats(types.SimpleNamespace(eval=types.SimpleNamespace(repeats=8))) == 8
    assert default_repeats(spec) == getattr(getattr(spec, "eval", None), "repeats", 1)


@pytest.mark.parametrize(("env", "repeats"), [("gaia", 8), ("frames", 2), ("webwalkerqa", 2)])
def test_real_benchmarks_declare_the_reference_repeats(env, repeats):
    spec = load_env_spec(env)
    assert default_repeats(spec) == repeats
    assert RunConfig(env=env).sample_count(spec) == repeats
    assert RunConfig(env=env, samples=1).sample_count(spec) == 1


def test_run_uses_the_env_repeats_when_samples_is_not_given(tmp_path):
    config = RunConfig(mode="single", limit=2, out=tmp_path, name="r", quiet=True)
    config.set = ("eval.repeats=3",)  # as an [eval] table in the env file sets it
    [summary] = run(config)
    assert (summary.n, summary.questions, summary.samples) == (6, 2, 3)
    assert list(summary.pass_at_k) == ["1", "2", "3"]
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["samples"] == 3 and meta["config"]["samples"] is None
    config.samples, config.name = 1, "one"  # an explicit --samples wins over the env's repeats
    [explicit] = run(config)
    assert explicit.n == 2


def test_summary_json_holds_the_protocol(tmp_path, capsys):
    run(RunConfig(mode="single", limit=4, samples=2, noise=0.5, out=tmp_path, name="p", quiet=True))
    [summary] = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert summary["n"] == 8 and summary["questions"] == 4 and summary["samples"] == 2
    assert set(summary["pass_at_k"]) == {"1", "2"}
    assert summary["pass_at_k"]["1"]["mean"] == pytest.approx(summary["accuracy"])
    assert sum(summary["outcomes"].values()) == 8
    assert summary["stats_totals"]["tool_calls"] == summary["tool_calls"]
    assert sum(c["questions"] for c in summary["categories"].values()) == 4
    out = capsys.readouterr().out
    assert "pass@2" in out and "2 sample(s) per question" in out


def test_samples_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="samples must be a positive integer"):
        run(RunConfig(mode="single", limit=1, samples=0, out=tmp_path, quiet=True))


def test_override_slugs_are_readable_stable_and_distinct():
    assert overrides_slug(["query_recap=off"]) == "query_recap=off"
    assert (
        overrides_slug(["query_recap=off", "limits.worker_turns=5"])
        == "query_recap=off+limits.worker_turns=5"
    )
    hashed = overrides_slug(["prompts.worker=prompts/other.md"])
    assert hashed.startswith("set-") and hashed == overrides_slug(
        ["prompts.worker=prompts/other.md"]
    )
    assert overrides_slug(["a=1,2"]) != overrides_slug(["a=1", "2"])
    base = RunConfig()
    names = {RunConfig(set=s).run_name() for s in [(), ("query_recap=off",), ("query_recap=on",)]}
    assert len(names) == 3 and base.run_name() in names
