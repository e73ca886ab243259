"""Episodes in both modes, driven with hand-written model turns against the real offline tools."""

import pytest

from matpo_gym.core.actions import Answer, ToolCall
from matpo_gym.envs import MatpoEnv
from matpo_gym.envs.spec import load_env_spec
from matpo_gym.envs.worker_report import NO_SUMMARY, SUMMARY_REQUEST
from matpo_gym.tools.base import ToolError, ToolSpec
from matpo_gym.tools.noise import NoiseConfig


@pytest.fixture(scope="module")
def frames_spec():
    return load_env_spec("world-frames")


def easy_task(env):
    return next(t for t in env.tasks if t.metadata["difficulty"] == "easy")


def call(name, **arguments):
    return ToolCall(name, arguments).render()


def test_single_mode_episode_end_to_end(frames_spec):
    env = MatpoEnv(frames_spec, mode="single")
    task = easy_task(env)
    obs, info = env.reset(options={"task": task})
    assert info["role"] == "single"
    assert obs["messages"][0]["role"] == "system" and "search" in obs["messages"][0]["content"]
    assert task.question in obs["messages"][1]["content"]

    obs, reward, terminated, truncated, info = env.step(call("search", query=task.question))
    assert not (terminated or truncated) and reward == 0.0
    assert info["tool_result"].ok and "URL:" in info["tool_result"].text
    assert obs["messages"][-1]["role"] == "tool"

    obs, reward, terminated, truncated, info = env.step(Answer(task.answer).render())
    assert terminated and not truncated
    assert reward == 1.0
    result = info["result"]
    assert result.prediction == task.answer and result.stop_reason == "answer"
    assert [t.role.value for t in result.trajectories] == ["single"]
    assert result.stats.tool_calls == 1


def test_matpo_mode_worker_has_fresh_context_and_summary_returns(frames_spec):
    env = MatpoEnv(frames_spec, mode="matpo")
    task = easy_task(env)
    obs, info = env.reset(options={"task": task})
    assert info["role"] == "planner"
    assert '"name": "worker"' in obs["messages"][0]["content"]

    obs, _, _, _, info = env.step("<think>delegate</think>" + call("worker", subtask="Find the fact."))
    assert info["role"] == "worker"
    messages = obs["messages"]
    assert len(messages) == 2, "the worker starts from a fresh context"
    assert messages[0]["content"] != env.episode.trajectories[0].messages[0].content
    assert task.question in messages[1]["content"] and "Find the fact." in messages[1]["content"]

    obs, _, _, _, info = env.step(call("search", query=task.question))
    assert info["role"] == "worker" and info["tool_result"].ok
    obs, _, _, _, info = env.step(
        "<think>secret reasoning</think><answer>It is 42. <think>x</think>Source: page.</answer>"
    )
    assert info["role"] == "planner"
    summary = obs["messages"][-1]
    assert summary["role"] == "tool" and summary["content"] == "It is 42. Source: page."

    obs, reward, terminated, _, info = env.step(Answer(task.answer).render())
    assert terminated and reward == 1.0
    planner, worker = info["result"].trajectories
    assert planner.role.value == "planner" and planner.parent_id is None
    assert worker.role.value == "worker" and worker.parent_id == planner.id
    assert len(planner.turns) == 2 and len(worker.turns) == 2
    assert info["result"].stats.workers_spawned == 1


def test_planner_cannot_search_and_worker_cannot_spawn_workers(frames_spec):
    env = MatpoEnv(frames_spec, mode="matpo")
    env.reset(options={"index": 0})
    _, _, _, _, info = env.step(call("search", query="x"))
    assert not info["tool_result"].ok and info["tool_result"].error == "unknown_tool"
    assert "Available tools: worker" in info["tool_result"].text
    env.step(call("worker", subtask="look"))
    _, _, _, _, info = env.step(call("worker", subtask="nested"))
    assert info["role"] == "worker"
    assert info["tool_result"].error == "unknown_tool"


def test_malformed_action_becomes_an_error_observation(frames_spec):
    env = MatpoEnv(frames_spec, mode="single")
    env.reset(options={"index": 0})
    obs, reward, terminated, truncated, info = env.step("I think the answer is probably 7")
    assert not terminated and not truncated and reward == 0.0
    assert obs["messages"][-1]["role"] == "user" and "No action found" in obs["messages"][-1]["content"]
    assert env.episode.stats.invalid_actions == 1
    _, _, _, _, info = env.step(call("browse", url=123))
    assert info["tool_result"].error == "bad_arguments"


@pytest.mark.parametrize("action", [None, b"<answer>7</answer>", 7])
def test_a_non_text_action_is_an_invalid_turn_and_the_episode_goes_on(frames_spec, action):
    env = MatpoEnv(frames_spec, mode="single")
    env.reset(options={"index": 0})
    obs, reward, terminated, truncated, _ = env.step(action)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert "Expected text" in obs["messages"][-1]["content"]
    assert env.episode.stats.invalid_actions == 1
    _, _, terminated, _, info = env.step(Answer("7").render())
    assert terminated and info["result"].prediction == "7"


def test_worker_out_of_turns_is_asked_for_a_summary_once(frames_spec):
    spec = frames_spec.with_overrides(limits=frames_spec.limits.__class__(worker_turns=2, planner_turns=3))
    env = MatpoEnv(spec, mode="matpo")
    env.reset(options={"index": 0})
    env.step(call("worker", subtask="look"))
    env.step(call("search", query="a"))
    obs, _, _, _, info = env.step(call("search", query="b"))
    assert info["role"] == "worker"
    assert obs["messages"][-1]["content"] == SUMMARY_REQUEST
    obs, _, _, _, info = env.step(call("search", query="c"))  # ignores the request
    assert info["role"] == "planner"
    assert obs["messages"][-1]["content"] == NO_SUMMARY
    worker = env.episode.trajectories[1]
    assert worker.stop_reason == "no_summary" and env.episode.stats.tool_calls == 2


def test_planner_turn_limit_truncates(frames_spec):
    spec = frames_spec.with_overrides(limits=frames_spec.limits.__class__(single_turns=2))
    env = MatpoEnv(spec, mode="single")
    env.reset(options={"index": 0})
    env.step("no action")
    _, reward, terminated, truncated, info = env.step("still none")
    assert truncated and not terminated and reward == 0.0
    assert info["result"].stop_reason == "turn_limit" and info["result"].prediction is None


def test_worker_summary_is_cut_to_its_limit(frames_spec):
    spec = frames_spec.with_overrides(limits=frames_spec.limits.__class__(summary_chars=50))
    env = MatpoEnv(spec, mode="matpo")
    env.reset(options={"index": 0})
    env.step(call("worker", subtask="look"))
    obs, *_ = env.step(Answer("x" * 500).render())
    assert len(obs["messages"][-1]["content"]) == 50
    assert obs["messages"][-1]["content"].endswith("[...summary cut]")


def test_context_limit_drops_the_middle_and_counts_it(frames_spec):
    spec = frames_spec.with_overrides(limits=frames_spec.limits.__class__(context_tokens=1200))
    env = MatpoEnv(spec, mode="single")
    env.reset(options={"index": 0})
    url = env.episode.task.metadata["gold_urls"][0]
    for _ in range(4):
        obs, *_ = env.step(call("browse", url=url))
    assert env.episode.stats.context_truncations >= 1
    assert any("removed to fit" in m["content"] for m in obs["messages"])
    assert len(env.episode.trajectories[0].messages) > len(obs["messages"]), "the record keeps everything"


def test_worker_context_overflow_asks_for_summary(frames_spec):
    spec = frames_spec.with_overrides(limits=frames_spec.limits.__class__(context_tokens=1200))
    env = MatpoEnv(spec, mode="matpo")
    env.reset(options={"index": 0})
    url = env.episode.task.metadata["gold_urls"][0]
    env.step(call("worker", subtask="look"))
    for _ in range(5):
        obs, _, _, _, info = env.step(call("browse", url=url))
        if info["role"] == "planner":
            break
    else:
        pytest.fail("the worker should have been stopped by the context limit")
    assert env.episode.trajectories[1].stop_reason == "no_summary"


class Exploding:
    spec = ToolSpec("search", "always fails", {"type": "object", "properties": {"query": {"type": "string"}}})

    def __init__(self, exc):
        self.exc = exc

    def __call__(self, **_):
        raise self.exc


class Sleepy:
    spec = ToolSpec("search", "slow", {"type": "object", "properties": {"query": {"type": "string"}}})

    def __call__(self, **_):
        import time

        time.sleep(2)
        return "late"


@pytest.mark.parametrize(
    ("tool", "error", "text"),
    [
        (Exploding(ToolError("no results")), "tool_error", "no results"),
        (Exploding(RuntimeError("bug")), "crash", "RuntimeError"),
        (Sleepy(), "timeout", "timed out"),
    ],
)
def test_tool_failures_are_observations_not_crashes(frames_spec, tool, error, text):
    spec = frames_spec.with_overrides(tools=frames_spec.tools.__class__(timeout_s=0.2))
    env = MatpoEnv(spec, mode="single")
    env.tools = {"search": tool}
    env.reset(options={"index": 0})
    _, _, terminated, _, info = env.step(call("search", query="q"))
    assert not terminated
    assert info["tool_result"].error == error and text in info["tool_result"].text
    assert env.episode.stats.tool_errors == 1
    assert env.episode.stats.tool_timeouts == (error == "timeout")


def test_noise_events_are_recorded_per_episode_and_deterministic(frames_spec):
    def run_once():
        env = MatpoEnv(frames_spec, mode="single", noise=NoiseConfig(rate=1.0, seed=7))
        env.reset(options={"index": 3, "episode_id": "e1"})
        env.step(call("search", query=env.episode.task.question))
        env.step(call("search", query="another query"))
        _, _, _, _, info = env.step(Answer("x").render())
        return info["result"].stats.noise_events

    first, second = run_once(), run_once()
    assert len(first) == 2 and first == second
    assert all(e["tool"] == "search" and e["trajectory_id"].startswith("e1/") for e in first)


def test_format_weight_blends_validity_into_the_reward(frames_spec):
    spec = frames_spec.with_overrides(scoring=frames_spec.scoring.__class__(format_weight=0.1))
    env = MatpoEnv(spec, mode="single")
    task = easy_task(env)
    env.reset(options={"task": task})
    env.step("garbage")
    _, reward, *_ = env.step(Answer(task.answer).render())
    assert reward == pytest.approx(0.9 * 1.0 + 0.1 * 0.5)


def test_step_after_the_end_and_before_reset_are_clear_errors(frames_spec):
    env = MatpoEnv(frames_spec, mode="single")
    with pytest.raises(RuntimeError, match="reset"):
        env.step("x")
    env.reset(options={"index": 0})
    env.step(Answer("x").render())
    with pytest.raises(RuntimeError, match="over"):
        env.step("x")


@pytest.mark.parametrize("mode", ["single", "matpo"])
def test_a_question_over_the_context_cap_ends_at_reset_and_rollout_reports_it(frames_spec, mode):
    from matpo_gym.envs.overrides import apply_overrides
    from matpo_gym.policies.scripted import SearchReadPolicy
    from matpo_gym.rollout import EpisodeRequest, rollout

    spec = apply_overrides(frames_spec, ["total_tokens=20"])  # less than any system prompt
    env = MatpoEnv(spec, mode=mode)
    _, info = env.reset(options={"index": 0})
    assert info["stop_reason"] == "context_limit" and info["role"] is None
    assert info["result"].score == 0.0 and info["result"].prediction is None
    with pytest.raises(RuntimeError, match="over"):
        env.prompt()
    tasks = list(env.tasks)[:3]
    results = list(rollout(lambda: MatpoEnv(spec, mode=mode), SearchReadPolicy(),
                           [EpisodeRequest(t, t.id) for t in tasks], batch_size=2))
    assert sorted(r.task_id for r in results) == sorted(t.id for t in tasks)
    assert all(r.stop_reason == "context_limit" for r in results)


def test_ansi_render_shows_the_transcript(frames_spec):
    env = MatpoEnv(frames_spec, mode="single", render_mode="ansi")
    env.reset(options={"index": 0})
    env.step(call("search", query="q"))
    text = env.render()
    assert "[system]" in text and "[tool:search]" in text
