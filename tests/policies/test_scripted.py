"""The scripted researcher's planner: delegating the whole question, or one worker per hop."""

from __future__ import annotations

import re

import pytest

from matpo_gym.envs import MatpoEnv
from matpo_gym.envs.context import conversation_tokens
from matpo_gym.envs.overrides import apply_overrides
from matpo_gym.envs.spec import load_env_spec
from matpo_gym.policies.scripted import SearchReadPolicy
from matpo_gym.rollout import EpisodeRequest, rollout


@pytest.mark.parametrize(
    ("question", "subtask", "rewritten"),
    [
        ("In what year was the birthplace of Krolmeim Trajial founded?",
         "What is the birthplace of Krolmeim Trajial?", "In what year was ANSWER founded?"),
        ("What is the height of the author of The Distant Engine in centimetres?",
         "What is the author of The Distant Engine?", "What is the height of ANSWER in centimetres?"),
        ("What is the population of the capital of the country in which Skiaport lies?",
         "What is the country in which Skiaport lies?", "What is the population of the capital of ANSWER?"),
        ("What is the country in which the birthplace of the author of The Iron Signal lies?",
         "What is the author of The Iron Signal?", "What is the country in which the birthplace of ANSWER lies?"),
    ],
)
def test_the_innermost_link_phrase_is_the_next_hop(question, subtask, rewritten):
    hop = SearchReadPolicy(decompose=True)._next_hop(question)
    assert hop is not None
    assert hop[0] == subtask and hop[1]("ANSWER") == rewritten


@pytest.mark.parametrize("question", ["In what year was The Engine of Lelkrux released?",
                                      "What is the elevation of Ulethgard in metres?",
                                      "What is the capital of Taejouia?"])
def test_a_one_hop_question_has_no_hop_to_split_off(question):
    assert SearchReadPolicy(decompose=True)._next_hop(question) is None
    assert SearchReadPolicy()._next_hop("In what year was the birthplace of Krolmeim Trajial founded?") is None


def play(mode: str, decompose: bool, *overrides: str, n: int = 12, env: str = "world-frames",
         difficulty: str = "medium"):
    spec = apply_overrides(load_env_spec(env), [f"source.difficulty={difficulty}", *overrides])

    def make() -> MatpoEnv:
        return MatpoEnv(spec, mode=mode, split="test")  # type: ignore[arg-type]

    tasks = list(make().tasks)[:n]
    requests = [EpisodeRequest(task, task.id) for task in tasks]
    return list(rollout(make, SearchReadPolicy(decompose=decompose), requests, batch_size=16))


def demand(results, role: str) -> list[int]:
    """Tokens of each ``role`` trajectory's whole conversation, as the env counts them."""
    return [conversation_tokens(t.messages)
            for r in results for t in r.trajectories if t.role.value == role]


def test_a_decomposing_planner_sends_one_worker_per_hop_and_each_reads_one_page():
    results = play("matpo", True)
    assert sum(r.score for r in results) / len(results) >= 0.9
    for result in results:
        workers = [t for t in result.trajectories if t.role.value == "worker"]
        assert len(workers) == 2, "two hops, two workers"
        first, second = (t.messages[1].content for t in workers)
        assert re.search(r"subtask: What is the \w+", first, re.IGNORECASE)
        assert workers[0].final is not None
        found = re.search(r"Answer: (.+)", workers[0].final).group(1).strip()
        assert found in second, "the second subtask names what the first worker found"
        for worker in workers:
            opened = [m for m in worker.messages if m.role == "tool" and m.content.startswith("Title:")]
            assert len(opened) == 1


def test_one_worker_per_hop_is_what_keeps_each_context_small():
    single = demand(play("single", False), "single")
    delegated = demand(play("matpo", False), "worker")
    split = demand(play("matpo", True), "worker")
    assert max(split) < min(single), "a worker that reads one page needs less than an agent that reads two"
    assert min(delegated) > max(split), "a worker given the whole question reads as much as a single agent"


def test_a_shared_context_cap_between_them_stops_the_single_agent_not_the_workers():
    split_workers = demand(play("matpo", True), "worker")
    cap = max(split_workers) + 50
    single = play("single", False, f"total_tokens={cap}")
    matpo = play("matpo", True, f"total_tokens={cap}")
    assert all(r.stop_reason == "context_limit" for r in single)
    assert sum(r.score for r in matpo) / len(matpo) >= 0.9


def test_three_hop_chains_are_solved_one_hop_per_worker():
    """A delegated worker follows at most two links; one worker per hop has no such limit."""
    spec = apply_overrides(load_env_spec("world-musique"), ["source.difficulty=none"])
    tasks = [t for t in MatpoEnv(spec, mode="matpo", split="train").tasks if t.metadata["hops"] == 3][:12]
    assert len(tasks) == 12
    scores = {}
    for decompose in (False, True):
        results = rollout(lambda: MatpoEnv(spec, mode="matpo", split="train"), SearchReadPolicy(decompose=decompose),
                          [EpisodeRequest(t, t.id) for t in tasks], batch_size=16)
        scores[decompose] = sum(r.score for r in results) / len(tasks)
    assert scores[True] >= 0.9 and scores[True] > scores[False]
