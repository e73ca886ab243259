"""Bad settings and broken parts fail clearly or are contained: a scorer that raises, an empty
batch, a TOML list in --set, out-of-range limits, a late tool call, a boxed LaTeX answer."""

import time

import pytest

from matpo_gym.config import ConfigError
from matpo_gym.core.actions import Answer, parse_action
from matpo_gym.envs.gym_env import MatpoEnv
from matpo_gym.envs.overrides import apply_overrides
from matpo_gym.envs.spec import load_env_spec
from matpo_gym.envs.worker_report import worker_report
from matpo_gym.policies.base import Completion
from matpo_gym.rollout import EpisodeRequest, rollout
from matpo_gym.scoring.scorers import Scorer, get_scorer
from matpo_gym.tools.base import ToolSpec, run_tool
from matpo_gym.tools.noise import NoisyTool


class AnswerNow:
    """Answers at once: "boom" in episode e1, "x" elsewhere."""

    name = "answer-now"

    def generate(self, prompts):
        return [Completion("<answer>boom</answer>" if p.trajectory_id.startswith("e1/") else "<answer>x</answer>")
                for p in prompts]


def test_a_scorer_that_raises_scores_that_episode_0_and_the_batch_goes_on():
    spec = load_env_spec("world-tiny")
    exact = get_scorer("exact_match").metrics["exact_match"]

    def flaky(prediction: str, gold: str) -> float:
        if prediction == "boom":
            raise ConnectionError("judge endpoint unreachable")
        return exact(prediction, gold)

    scorer = Scorer("flaky", "exact_match", {"exact_match": flaky})
    tasks = list(MatpoEnv(spec).tasks)[:4]
    results = {r.episode_id: r for r in rollout(lambda: MatpoEnv(spec, scorer=scorer), AnswerNow(),
                                                [EpisodeRequest(t, f"e{i}") for i, t in enumerate(tasks)],
                                                batch_size=4)}
    assert sorted(results) == ["e0", "e1", "e2", "e3"]
    assert results["e1"].score == 0.0 and "scorer failed: ConnectionError" in results["e1"].error
    assert results["e0"].error is None


def test_an_empty_batch_is_refused_instead_of_playing_nothing():
    spec = load_env_spec("world-tiny")
    with pytest.raises(ValueError, match="batch_size must be a positive number"):
        list(rollout(lambda: MatpoEnv(spec), AnswerNow(), [EpisodeRequest(list(MatpoEnv(spec).tasks)[0], "e0")],
                     batch_size=0))


def test_a_list_in_set_reads_as_toml_or_is_refused():
    spec = load_env_spec("world-frames")
    plain = apply_overrides(spec, ["tools.blocked_domains=huggingface.co,example.org"])
    toml = apply_overrides(spec, ['tools.blocked_domains=["huggingface.co", "example.org"]'])
    assert plain.tools.blocked_domains == toml.tools.blocked_domains == ("huggingface.co", "example.org")
    with pytest.raises(ConfigError, match="TOML array"):
        apply_overrides(spec, ["tools.blocked_domains=[huggingface.co, example.org]"])
    with pytest.raises(ConfigError, match="brackets or quotes"):
        apply_overrides(spec, ['tools.blocked_domains="huggingface.co"'])


@pytest.mark.parametrize("override, message", [
    ("scoring.format_weight=5", "format_weight must be in [0, 1]"),
    ("scoring.format_weight=-0.1", "format_weight must be in [0, 1]"),
    ("limits.planner_turns=0", "planner_turns must be at least 1"),
])
def test_out_of_range_settings_are_refused(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        apply_overrides(load_env_spec("world-frames"), [override])


def test_a_boxed_latex_text_answer_is_its_text():
    assert parse_action(r"So the answer is \boxed{\text{Velmora}}.") == Answer("Velmora")
    assert parse_action(r"\boxed{\textbf{\text{1203 AD}}}") == Answer("1203 AD")
    assert parse_action(r"\boxed{\frac{1}{2}}") == Answer(r"\frac{1}{2}")  # mathematics stays as written


def test_a_report_cut_to_a_tiny_budget_fits_it():
    from matpo_gym.core.messages import Message

    for chars in (1, 10, 17, 40):
        report = worker_report([Message("assistant", "<answer>" + "word " * 50 + "</answer>")],
                               "word " * 50, "answer", keep_thinking=False, summary_chars=chars)
        assert 0 < len(report) <= chars


def test_a_tool_call_abandoned_at_its_timeout_writes_nothing_into_the_next_episode():
    class SlowThenFast:
        spec = ToolSpec("search", "d", {"type": "object", "properties": {"query": {"type": "string"}},
                                        "required": ["query"]})

        def __call__(self, query: str) -> str:
            if query.startswith("slow"):
                time.sleep(0.4)
            return f"results for {query} " * 5

    tool = NoisyTool(SlowThenFast(), rate=1.0, kinds=("truncate",), seed=0)
    assert run_tool(tool, {"query": "slow, episode A"}, timeout=0.1).error == "timeout"
    assert tool.pop_events() == []
    tool.reset(seed=1)  # the env starts episode B while A's call still runs
    time.sleep(0.6)
    assert run_tool(tool, {"query": "fast, episode B"}, timeout=5).ok
    assert [e.arguments["query"] for e in tool.pop_events()] == ["fast, episode B"]
