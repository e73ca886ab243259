"""Episode accounting: per-tool counters, per-role truncations and context-limit stops."""

from __future__ import annotations

import json

import pytest

from matpo_gym.core.actions import Answer, ToolCall
from matpo_gym.core.trajectory import TOOL_COUNTERS, UNKNOWN_TOOL, EpisodeStats
from matpo_gym.envs import MatpoEnv
from matpo_gym.envs.context import conversation_tokens
from matpo_gym.envs.overrides import apply_overrides
from matpo_gym.envs.spec import EnvSpec, load_env_spec
from matpo_gym.envs.worker_report import SUMMARY_REQUEST
from matpo_gym.tools.noise import NoisyTool


@pytest.fixture(scope="module")
def frames_spec() -> EnvSpec:
    return load_env_spec("world-frames")


def call(name: str, **arguments) -> str:
    return ToolCall(name, arguments).render()


def counts(**given: int) -> dict[str, int]:
    return {key: given.get(key, 0) for key in TOOL_COUNTERS}


def balanced(stats: EpisodeStats) -> bool:
    return sum(stats.truncations.values()) == stats.context_truncations + stats.context_limit_stops


def test_fresh_stats_have_every_role_and_no_tools():
    stats = EpisodeStats()
    assert stats.truncations == {"planner": 0, "worker": 0, "single": 0}
    assert stats.per_tool == {} and stats.context_limit_stops == 0
    stats.count_tool("search", ok=False, timeout=True, noise=1, blocked=2)
    assert stats.per_tool == {"search": counts(calls=1, errors=1, timeouts=1, noise=1, blocked=2)}


def test_a_matpo_episode_counts_every_tool_call_by_tool(frames_spec):
    gold_probe = MatpoEnv(frames_spec, mode="matpo")
    gold_probe.reset(options={"index": 0})
    blocked_url, other_url = gold_probe.episode.task.metadata["gold_urls"][:2]
    spec = apply_overrides(
        frames_spec, ["leakage_guard=on", f"blocked_domains={blocked_url.split('://')[1]}"]
    )
    env = MatpoEnv(spec, mode="matpo")
    env.tools["search"] = NoisyTool(env.tools["search"], rate=1.0, kinds=["timeout"])
    task = env.tasks[0]
    env.reset(options={"index": 0, "episode_id": "acct"})

    _, _, _, _, info = env.step(call("search", query="planners cannot search"))
    assert info["tool_result"].error == "unknown_tool"
    _, _, _, _, info = env.step(call("worker", task="wrong argument name"))
    assert info["tool_result"].error == "bad_arguments"
    obs, *_ = env.step("no action at all")
    assert "No action found" in obs["messages"][-1]["content"]
    env.step(call("worker", subtask="Find the facts."))

    obs, _, _, _, info = env.step(call("search", query=task.question))
    assert info["tool_result"].error == "timeout" and "timed out" in obs["messages"][-1]["content"]
    obs, _, _, _, info = env.step(call("browse", url=blocked_url))
    assert info["tool_result"].error == "tool_error"
    assert "blocked site" in obs["messages"][-1]["content"]
    obs, _, _, _, info = env.step(call("browse", url=other_url))
    assert info["tool_result"].ok and obs["messages"][-1]["content"].startswith("Title:")
    _, _, _, _, info = env.step(call("worker", subtask="nested"))
    assert info["tool_result"].error == "unknown_tool"
    env.step(Answer("A summary.").render())
    _, reward, terminated, _, info = env.step(Answer(task.answer).render())
    assert terminated and reward == 1.0

    stats = info["result"].stats
    assert stats.per_tool == {
        UNKNOWN_TOOL: counts(calls=2, errors=2),
        "worker": counts(calls=2, errors=1),
        "search": counts(calls=1, errors=1, timeouts=1, noise=1),
        "browse": counts(calls=2, errors=1, blocked=1),
    }
    assert stats.tool_calls == 5 and stats.tool_errors == 5 and stats.tool_timeouts == 1
    assert stats.invalid_actions == 1 and stats.workers_spawned == 1
    assert len(stats.noise_events) == 1 and stats.noise_events[0]["kind"] == "timeout"
    assert stats.noise_events[0]["trajectory_id"] == "acct/worker-1"
    assert stats.truncations == {"planner": 0, "worker": 0, "single": 0}
    assert stats.context_truncations == 0 and stats.context_limit_stops == 0


def test_blocked_search_results_are_counted_through_the_noise_wrapper(frames_spec):
    probe = MatpoEnv(frames_spec, mode="single")
    probe.reset(options={"index": 0})
    url = probe.episode.task.metadata["gold_urls"][0]
    spec = apply_overrides(
        frames_spec,
        ["leakage_guard=on", f"blocked_domains={url.split('://')[1]}", "tools.search_top_k=10"],
    )
    env = MatpoEnv(spec, mode="single")
    env.tools["search"] = NoisyTool(env.tools["search"], rate=1.0, kinds=["shuffle"])
    env.reset(options={"index": 0})
    obs, _, _, _, info = env.step(call("search", query=env.episode.task.question))
    assert info["tool_result"].ok and url not in obs["messages"][-1]["content"]
    assert env.episode.stats.per_tool == {"search": counts(calls=1, noise=1, blocked=1)}


def test_per_call_truncations_are_counted_for_the_role_that_was_cut(frames_spec):
    spec = apply_overrides(frames_spec, ["context_tokens=100000", "single_context_tokens=1200"])
    env = MatpoEnv(spec, mode="single")
    env.reset(options={"index": 0})
    url = env.episode.task.metadata["gold_urls"][0]
    for _ in range(4):
        obs, *_ = env.step(call("browse", url=url))
        env.prompt()  # asking again for the same prompt counts nothing more
    stats = env.episode.stats
    turns = env.episode.acting.turns
    cut = sum(any("removed to fit" in m.content for m in turn.prompt) for turn in turns)
    cut += any("removed to fit" in m["content"] for m in obs["messages"])
    assert stats.context_truncations == cut >= 2
    assert stats.truncations == {"planner": 0, "worker": 0, "single": cut}
    assert stats.context_limit_stops == 0 and balanced(stats)


@pytest.mark.parametrize("forced", [True, False])
def test_a_worker_over_its_budget_is_one_context_limit_stop(frames_spec, forced):
    spec = apply_overrides(
        frames_spec,
        ["worker_context_tokens=900", "context_tokens=100000", f"forced_summary={forced}"],
    )
    env = MatpoEnv(spec, mode="matpo")
    env.reset(options={"index": 0})
    env.step(call("worker", subtask="look"))
    obs, *_ = env.step(call("browse", url=env.episode.task.metadata["gold_urls"][0]))
    stats = env.episode.stats
    assert stats.context_limit_stops == 1 and balanced(stats)
    assert stats.truncations["planner"] == 0 and stats.truncations["single"] == 0
    if forced:
        assert obs["messages"][-1]["content"] == SUMMARY_REQUEST
        assert stats.context_truncations == 1 and stats.truncations["worker"] == 2
    else:
        assert env.episode.trajectories[1].stop_reason == "context_limit"
        assert stats.context_truncations == 0 and stats.truncations["worker"] == 1


def test_a_worker_asked_for_its_summary_at_its_turn_limit_is_counted(frames_spec):
    env = MatpoEnv(apply_overrides(frames_spec, ["limits.worker_turns=2"]), mode="matpo")
    env.reset(options={"index": 0})
    env.step(call("worker", subtask="look"))
    env.step(call("search", query="x"))
    assert env.episode.stats.turn_limit_summaries == 0
    obs, *_ = env.step(call("search", query="y"))
    assert obs["messages"][-1]["content"] == SUMMARY_REQUEST
    env.step(Answer("a summary").render())
    stats = env.episode.stats
    assert stats.turn_limit_summaries == 1 and stats.context_limit_stops == 0
    assert env.episode.trajectories[1].stop_reason == "answer"


def test_a_total_budget_stop_is_counted_and_ends_the_episode(frames_spec):
    env = MatpoEnv(frames_spec, mode="single")
    env.reset(options={"index": 0})
    start = conversation_tokens(env.episode.acting.messages, env.episode.count_tokens)
    spec = apply_overrides(frames_spec, [f"single_total_tokens={start + 1500}"])
    env = MatpoEnv(spec, mode="single")
    env.reset(options={"index": 0})
    url = env.episode.task.metadata["gold_urls"][0]
    for _ in range(10):
        _, _, _, truncated, info = env.step(call("browse", url=url))
        if truncated:
            break
    result = info["result"]
    assert result.stop_reason == "context_limit" and len(result.planner.turns) >= 2
    assert result.stats.context_limit_stops == 1
    assert result.stats.truncations == {"planner": 0, "worker": 0, "single": 1}
    assert balanced(result.stats)


def test_a_budget_smaller_than_the_question_ends_the_episode_at_reset(frames_spec):
    env = MatpoEnv(apply_overrides(frames_spec, ["planner_total_tokens=10"]), mode="matpo")
    obs, info = env.reset(options={"index": 0})
    assert info["stop_reason"] == "context_limit" and info["role"] is None
    assert obs["messages"][1]["content"].startswith("Question:")
    assert env.episode.stats.context_limit_stops == 1
    assert env.episode.result().stop_reason == "context_limit"
    # a plain Gymnasium loop learns of it on its first step, as a truncation, then must reset
    _, reward, terminated, truncated, info = env.step("<answer>anything</answer>")
    assert (terminated, truncated) == (False, True) and reward == info["result"].reward
    assert info["result"].stop_reason == "context_limit"
    with pytest.raises(RuntimeError, match="over"):
        env.step("<answer>anything</answer>")


def test_stats_to_dict_is_json_ready(frames_spec):
    env = MatpoEnv(frames_spec, mode="matpo")
    env.reset(options={"index": 0})
    env.step(call("worker", subtask="look"))
    env.step(call("search", query="x"))
    env.step(Answer("summary").render())
    _, _, _, _, info = env.step(Answer("x").render())
    data = json.loads(json.dumps(info["result"].to_dict()))["stats"]
    assert set(data) == {
        "tool_calls",
        "tool_errors",
        "tool_timeouts",
        "invalid_actions",
        "context_truncations",
        "workers_spawned",
        "noise_events",
        "per_tool",
        "truncations",
        "context_limit_stops",
        "turn_limit_summaries",
    }
    assert data["per_tool"] == {"worker": counts(calls=1), "search": counts(calls=1)}
    assert data["truncations"] == {"planner": 0, "worker": 0, "single": 0}
    assert data["context_limit_stops"] == 0 and data["tool_calls"] == 1
    assert info["result"].stats.to_dict()["per_tool"] is not info["result"].stats.per_tool
