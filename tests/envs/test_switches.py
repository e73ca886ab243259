"""Every env switch on and off, judged by the messages the model actually sees."""

from __future__ import annotations

import pytest

from matpo_gym.core.actions import Answer, ToolCall
from matpo_gym.envs import MatpoEnv
from matpo_gym.envs.context import conversation_tokens
from matpo_gym.envs.overrides import apply_overrides
from matpo_gym.envs.spec import EnvSpec, load_env_spec
from matpo_gym.envs.worker_report import NO_SUMMARY, STOPPED, SUMMARY_CUT, SUMMARY_REQUEST

THINKING_ANSWER = (
    "<think>secret reasoning</think><answer>It is 42. <think>x</think>Source: page.</answer>"
)


@pytest.fixture(scope="module")
def frames_spec() -> EnvSpec:
    return load_env_spec("world-frames")


def make_env(spec: EnvSpec, *overrides: str, mode: str = "matpo") -> MatpoEnv:
    env = MatpoEnv(apply_overrides(spec, overrides), mode=mode)
    env.reset(options={"index": 0, "episode_id": "e"})
    return env


def call(name: str, **arguments) -> str:
    return ToolCall(name, arguments).render()


def seen(env: MatpoEnv) -> list[str]:
    """The contents of the messages the acting role is prompted with."""
    return [m.content for m in env.prompt().messages]


def tokens(env: MatpoEnv) -> int:
    """The acting role's whole conversation, counted as the episode counts it."""
    return conversation_tokens(env.episode.acting.messages, env.episode.count_tokens)


def gold_url(env: MatpoEnv) -> str:
    return env.episode.task.metadata["gold_urls"][0]


# -- query_recap ------------------------------------------------------------------------------


@pytest.mark.parametrize("recap", [True, False])
def test_query_recap_puts_the_question_in_the_workers_first_message(frames_spec, recap):
    env = make_env(frames_spec, f"query_recap={'on' if recap else 'off'}")
    env.step(call("worker", subtask="Find the release year."))
    worker_messages = env.prompt().messages
    assert env.prompt().role.value == "worker" and len(worker_messages) == 2
    first_user = worker_messages[1]
    assert first_user.role == "user" and "Find the release year." in first_user.content
    assert (env.episode.task.question in first_user.content) is recap


# -- strip_thinking ---------------------------------------------------------------------------


def test_strip_thinking_on_hides_the_workers_reasoning(frames_spec):
    env = make_env(frames_spec, "strip_thinking=on")
    env.step(call("worker", subtask="look"))
    env.step(THINKING_ANSWER)
    assert seen(env)[-1] == "It is 42. Source: page."


def test_strip_thinking_off_passes_the_final_message_with_its_thinking(frames_spec):
    env = make_env(frames_spec, "strip_thinking=off")
    env.step(call("worker", subtask="look"))
    env.step(THINKING_ANSWER)
    summary = env.prompt().messages[-1]
    assert summary.role == "tool" and summary.name == "worker"
    expected = "<think>secret reasoning</think>It is 42. <think>x</think>Source: page."
    assert summary.content == expected
    assert env.episode.trajectories[1].final == "It is 42. Source: page.", "the answer as parsed"


# -- summary_chars ----------------------------------------------------------------------------


def test_summary_chars_cuts_the_summary(frames_spec):
    env = make_env(frames_spec, "summary_chars=50")
    env.step(call("worker", subtask="look"))
    env.step(Answer("y" * 500).render())
    summary = seen(env)[-1]
    assert len(summary) == 50 and summary == "y" * (50 - len(SUMMARY_CUT)) + SUMMARY_CUT


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_summary_chars_zero_or_negative_is_no_limit(frames_spec, limit):
    env = make_env(frames_spec, f"summary_chars={limit}")
    env.step(call("worker", subtask="look"))
    env.step(Answer("y" * 5000).render())
    assert seen(env)[-1] == "y" * 5000


# -- forced_summary ---------------------------------------------------------------------------


def test_forced_summary_on_asks_a_worker_out_of_turns_for_its_summary(frames_spec):
    env = make_env(frames_spec, "forced_summary=on", "limits.worker_turns=2")
    env.step(call("worker", subtask="look"))
    env.step(call("search", query="a"))
    env.step(call("search", query="b"))
    assert env.prompt().role.value == "worker" and seen(env)[-1] == SUMMARY_REQUEST
    env.step("<think>done</think><answer>Found: b.</answer>")
    assert env.prompt().role.value == "planner" and seen(env)[-1] == "Found: b."
    assert env.episode.trajectories[1].stop_reason == "answer"


def test_forced_summary_off_stops_a_worker_out_of_turns(frames_spec):
    env = make_env(frames_spec, "forced_summary=off", "limits.worker_turns=2")
    env.step(call("worker", subtask="look"))
    env.step(call("search", query="a"))
    env.step("<think>private</think>Next I search b. " + call("search", query="b"))
    worker = env.episode.trajectories[1]
    assert SUMMARY_REQUEST not in [m.content for m in worker.messages]
    assert worker.stop_reason == "turn_limit" and worker.final is None
    report = env.prompt().messages[-1]
    assert env.prompt().role.value == "planner" and report.role == "tool"
    note = STOPPED.format(limit="turn limit")
    last = f"Next I search b. {call('search', query='b')}"
    assert report.content == f"{note} Its last message:\n{last}"
    assert "private" not in report.content and env.episode.stop_reason is None


def test_forced_summary_off_report_is_cut_and_keeps_thinking_when_asked(frames_spec):
    env = make_env(
        frames_spec,
        "forced_summary=off",
        "limits.worker_turns=1",
        "summary_chars=30",
        "strip_thinking=off",
    )
    env.step(call("worker", subtask="look"))
    env.step("<think>" + "z" * 100 + "</think>" + call("search", query="b"))
    report = seen(env)[-1]
    note = STOPPED.format(limit="turn limit")
    kept = ("<think>" + "z" * 100)[: 30 - len(SUMMARY_CUT)]
    assert report == f"{note} Its last message:\n{kept}{SUMMARY_CUT}"


def test_forced_summary_off_without_any_worker_message_reports_the_stop(frames_spec):
    env = make_env(frames_spec, "forced_summary=off", "worker_total_tokens=10")
    env.step(call("worker", subtask="look"))
    assert env.prompt().role.value == "planner"
    assert seen(env)[-1] == STOPPED.format(limit="context limit")
    assert env.episode.trajectories[1].stop_reason == "context_limit"


@pytest.mark.parametrize("forced", [True, False])
def test_worker_over_its_per_call_budget(frames_spec, forced):
    env = make_env(
        frames_spec,
        f"forced_summary={forced}",
        "worker_context_tokens=900",
        "context_tokens=100000",
    )
    env.step(call("worker", subtask="look"))
    env.step(call("browse", url=gold_url(env)))
    worker = env.episode.trajectories[1]
    if forced:
        assert env.prompt().role.value == "worker"
        messages = seen(env)
        assert messages[-1] == SUMMARY_REQUEST
        assert any("removed to fit" in text for text in messages)
        env.step(Answer("partial").render())
        assert seen(env)[-1] == "partial"
    else:
        assert env.prompt().role.value == "planner"
        assert seen(env)[-1].startswith(STOPPED.format(limit="context limit"))
        assert worker.stop_reason == "context_limit"


# -- per-role context budgets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "cut"),
    [
        (("context_tokens=1200",), True),
        (("context_tokens=100000", "single_context_tokens=1200"), True),
        (("context_tokens=1200", "single_context_tokens=100000"), False),
        (
            ("context_tokens=100000", "planner_context_tokens=1200", "worker_context_tokens=1200"),
            False,
        ),
    ],
)
def test_single_agent_uses_its_own_per_call_budget(frames_spec, overrides, cut):
    env = make_env(frames_spec, *overrides, mode="single")
    for _ in range(4):
        env.step(call("browse", url=gold_url(env)))
    assert any("removed to fit" in text for text in seen(env)) is cut
    assert (len(env.prompt().messages) < len(env.episode.acting.messages)) is cut


def test_planner_budget_is_separate_from_the_workers(frames_spec):
    env = make_env(frames_spec, "planner_context_tokens=100000", "worker_context_tokens=100000")
    env.step(call("worker", subtask="look"))
    for _ in range(3):
        env.step(call("browse", url=gold_url(env)))
    assert env.prompt().role.value == "worker" and SUMMARY_REQUEST not in seen(env)

    env = make_env(frames_spec, "planner_context_tokens=100000", "worker_context_tokens=1500")
    env.step(call("worker", subtask="look"))
    for _ in range(3):
        if env.prompt().role.value != "worker" or seen(env)[-1] == SUMMARY_REQUEST:
            break
        env.step(call("browse", url=gold_url(env)))
    assert seen(env)[-1] == SUMMARY_REQUEST


# -- total budgets ----------------------------------------------------------------------------


def test_single_total_budget_stops_the_episode(frames_spec):
    env = make_env(frames_spec, mode="single")
    start = tokens(env)
    env = make_env(frames_spec, f"single_total_tokens={start + 200}", mode="single")
    _, reward, terminated, truncated, info = env.step(call("browse", url=gold_url(env)))
    assert truncated and not terminated and reward == 0.0
    result = info["result"]
    assert result.stop_reason == "context_limit" and result.prediction is None
    assert result.planner.stop_reason == "context_limit"
    assert sum(len(m.content) for m in result.planner.messages) > 0


def test_single_total_budget_is_not_hit_below_it(frames_spec):
    env = make_env(frames_spec, mode="single")
    start = tokens(env)
    env = make_env(frames_spec, f"single_total_tokens={start + 5000}", mode="single")
    _, _, terminated, truncated, _ = env.step(call("browse", url=gold_url(env)))
    assert not (terminated or truncated) and "Title:" in seen(env)[-1]


def test_planner_total_budget_stops_the_episode_when_a_summary_overflows_it(frames_spec):
    env = make_env(frames_spec)
    start = tokens(env)
    env = make_env(frames_spec, f"planner_total_tokens={start + 60}")
    env.step(call("worker", subtask="look"))
    _, _, terminated, truncated, info = env.step(Answer("fact " * 100).render())
    assert truncated and not terminated
    assert info["result"].stop_reason == "context_limit"
    planner = info["result"].planner
    assert planner.messages[-1].role == "tool" and planner.messages[-1].content.startswith("fact")


@pytest.mark.parametrize("forced", [True, False])
def test_worker_total_budget(frames_spec, forced):
    env = make_env(frames_spec)
    env.step(call("worker", subtask="look"))
    start = tokens(env)
    env = make_env(frames_spec, f"worker_total_tokens={start + 100}", f"forced_summary={forced}")
    env.step(call("worker", subtask="look"))
    env.step(call("search", query=env.episode.task.question))
    worker = env.episode.trajectories[1]
    if forced:
        assert env.prompt().role.value == "worker" and seen(env)[-1] == SUMMARY_REQUEST
        assert "removed to fit" not in " ".join(seen(env)), "the total cap does not drop messages"
        env.step(call("search", query="ignores the request"))
        assert seen(env)[-1] == NO_SUMMARY and worker.stop_reason == "no_summary"
    else:
        assert env.prompt().role.value == "planner"
        assert seen(env)[-1].startswith(STOPPED.format(limit="context limit"))
        assert worker.stop_reason == "context_limit"
    assert env.episode.stop_reason is None, "the planner goes on"


def test_total_tokens_caps_every_role_without_its_own(frames_spec):
    single = make_env(frames_spec, mode="single")
    start = tokens(single)
    shared = make_env(frames_spec, f"total_tokens={start + 200}", mode="single")
    _, _, _, truncated, info = shared.step(call("browse", url=gold_url(shared)))
    assert truncated and info["result"].stop_reason == "context_limit"
    own = make_env(frames_spec, f"total_tokens={start + 200}", f"single_total_tokens={start + 5000}", mode="single")
    _, _, terminated, truncated, _ = own.step(call("browse", url=gold_url(own)))
    assert not (terminated or truncated), "a role's own cap wins over the shared one"
    planner = make_env(frames_spec, f"total_tokens={start + 200}")
    planner.step(call("worker", subtask="look"))
    planner.step(call("browse", url=gold_url(planner)))
    assert planner.prompt().role.value == "worker" and seen(planner)[-1] == SUMMARY_REQUEST


# -- leakage_guard ----------------------------------------------------------------------------


@pytest.mark.parametrize("guard", [True, False])
def test_leakage_guard_hides_and_refuses_blocked_pages(frames_spec, guard):
    probe = make_env(frames_spec, mode="single")
    url = gold_url(probe)
    rule = url.split("://", 1)[1]
    env = make_env(
        frames_spec,
        f"leakage_guard={guard}",
        f"blocked_domains={rule}",
        "tools.search_top_k=10",
        mode="single",
    )
    env.step(call("search", query=env.episode.task.question))
    results = seen(env)[-1]
    assert (url in results) is not guard
    assert results.startswith("1. ")
    env.step(call("browse", url=url))
    page = env.prompt().messages[-1]
    assert page.role == "tool" and page.name == "browse"
    if guard:
        assert "blocked site" in page.content and "Title:" not in page.content
    else:
        assert page.content.startswith("Title:") and f"URL: {url}" in page.content
    relative = "/" + url.split("://", 1)[1].split("/", 1)[1]
    env.step(call("browse", url=relative))
    assert ("blocked site" in seen(env)[-1]) is guard


def test_leakage_guard_with_the_default_list_leaves_the_offline_world_alone(frames_spec):
    plain = make_env(frames_spec, mode="single")
    guarded = make_env(frames_spec, "leakage_guard=on", mode="single")
    for env in (plain, guarded):
        env.step(call("search", query=env.episode.task.question))
        env.step(call("browse", url=gold_url(env)))
    assert seen(plain) == seen(guarded)


@pytest.mark.parametrize("forced", ["on", "off"])
def test_scripted_worker_out_of_turns_reports_what_it_read_only_when_asked(frames_spec, forced):
    from matpo_gym.policies.scripted import SearchReadPolicy
    from matpo_gym.rollout import EpisodeRequest, rollout

    spec = apply_overrides(frames_spec, [f"forced_summary={forced}", "limits.worker_turns=2",
                                         "source.difficulty=easy"])
    env = MatpoEnv(spec, mode="matpo")
    task = env.tasks[0]
    (result,) = rollout(lambda: MatpoEnv(spec, mode="matpo"), SearchReadPolicy(), [EpisodeRequest(task, "e")])
    reports = [m.content for m in result.planner.messages if m.role == "tool"]
    assert reports  # search + browse used the worker's two turns before it could answer
    if forced == "on":
        assert task.answer in reports[0] and result.score == 1.0
    else:
        assert reports[0].startswith("The worker was stopped") and "<tool_call>" in reports[0]


@pytest.mark.parametrize("env_name", ["world-frames", "world-tiny"])
def test_scripted_worker_searches_its_subtask_not_the_recapped_question(env_name):
    """Both worker templates ("Your subtask:" and the compact "Subtask:") recap the question; the
    worker's query is the subtask alone, as a single agent's is the question alone."""
    from matpo_gym.policies.scripted import SearchReadPolicy

    env = make_env(load_env_spec(env_name))
    subtask = "Find the release year."
    env.step(call("worker", subtask=subtask))
    assert env.episode.task.question in seen(env)[1]  # the recap is there
    action = SearchReadPolicy().act(env.prompt())
    assert action == call("search", query=subtask)
