"""The LLM judge end to end: a scripted judge served on loopback HTTP, called through OpenAIPolicy."""

import doctest
import json
import re
import socket

import pytest

from matpo_gym.data.tasks import Task
from matpo_gym.policies.base import Completion
from matpo_gym.policies.openai import OpenAIPolicy
from matpo_gym.policies.serve import serve_policy
from matpo_gym.scoring import judge as judge_module
from matpo_gym.scoring.judge import (
    RUBRICS,
    JudgeScorer,
    LLMJudge,
    judge_scorer,
    parse_label,
)
from matpo_gym.scoring.normalize import normalize_answer
from matpo_gym.scoring.scorers import Scorer

LABELS = {  # (right, wrong, no answer) for each rubric
    "simpleqa": ("CORRECT", "INCORRECT", "NOT_ATTEMPTED"),
    "frames": ("TRUE", "FALSE", "FALSE"),
    "webwalker": ("CORRECT", "INCORRECT", "INCORRECT"),
}
DECLINES = {"", "i dont know", "unknown", "cannot determine"}


def tagged(text: str, names: str) -> str:
    match = re.search(rf"<({names})>\n?(.*?)\n?</\1>", text, re.DOTALL)
    assert match, f"no <{names}> block in the judge prompt"
    return match.group(2)


class ScriptedJudge:
    """Grades by rule, the way the rubrics describe: reads the judge prompt, compares the
    normalised gold and predicted answers, replies with a reason and a VERDICT line."""

    name = "scripted-judge"

    def __init__(self):
        self.batches: list[int] = []

    def generate(self, prompts):
        self.batches.append(len(prompts))
        return [Completion(self.grade(p.messages[-1].content)) for p in prompts]

    @staticmethod
    def grade(prompt: str) -> str:
        kind = "simpleqa" if "NOT_ATTEMPTED" in prompt else "frames" if "VERDICT: TRUE" in prompt else "webwalker"
        right, wrong, none = LABELS[kind]
        gold_text = tagged(prompt, "gold_answer|reference_answer")
        answer, _, aliases = gold_text.partition(" (also accepted: ")
        golds = [normalize_answer(g) for g in [answer, *aliases.rstrip(")").split(";")] if g.strip()]
        gold = golds[0]
        prediction = normalize_answer(tagged(prompt, "predicted_answer|response|student_answer"))
        if prediction in DECLINES:
            label, reason = none, "no answer given"
        elif re.search(r"\b(or|maybe|either)\b", prediction) and prediction not in golds:
            label, reason = wrong, "hedges between candidates"
        elif any(prediction == g or re.search(rf"\b{re.escape(g)}\b", prediction) for g in golds):
            label, reason = right, "states the gold answer"
        else:
            label, reason = wrong, "does not state the gold answer"
        return f"<think>comparing {prediction!r} with {gold!r}</think>The prediction {reason}.\nVERDICT: {label}"


class Garbage:
    name = "garbage"

    def generate(self, prompts):
        return [Completion("I would rather talk about the weather.") for _ in prompts]


class Counting:
    """Counts the generate calls made to the policy it wraps."""

    def __init__(self, policy):
        self.policy, self.calls = policy, 0
        self.name = policy.name

    def generate(self, prompts):
        self.calls += 1
        return self.policy.generate(prompts)


def client(url: str, timeout_s: float = 10) -> OpenAIPolicy:
    return OpenAIPolicy(model="judge", base_url=url, stop=(), max_retries=0, timeout_s=timeout_s)


@pytest.fixture
def served_judge():
    scripted = ScriptedJudge()
    with serve_policy(scripted) as url, client(url) as policy:
        yield policy, scripted


CASES = [  # question, gold, prediction, simpleqa label
    ("When was the first bridge over the Ostra built?", "1873", "The first bridge was finished in 1873.", "CORRECT"),
    ("When was the first bridge over the Ostra built?", "1873", "maybe 1873 or 1874", "INCORRECT"),
    ("Which two labs opened in 2030?", "Harbour Lab and Ridge Lab", "Harbour Lab", "INCORRECT"),
    ("Which river runs past Veldmar?", "Ostra", "It is definitely the Velda River.", "INCORRECT"),
    ("Which river runs past Veldmar?", "Ostra", "", "NOT_ATTEMPTED"),
    ("Which river runs past Veldmar?", "Ostra", "I don't know.", "NOT_ATTEMPTED"),
]


def test_simpleqa_judge_over_http_one_generate_call(served_judge):
    policy, scripted = served_judge
    counting = Counting(policy)
    judge = LLMJudge(counting, kind="simpleqa")
    verdicts = judge.judge_many([case[:3] for case in CASES])
    assert counting.calls == 1
    assert [v.label for v in verdicts] == [case[3] for case in CASES]
    assert [v.score for v in verdicts] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert all(v.error is None for v in verdicts)
    assert sum(scripted.batches) == len(CASES)
    hedged = verdicts[1]
    assert "<predicted_answer>\nmaybe 1873 or 1874\n</predicted_answer>" in hedged.prompt
    assert CASES[1][0] in hedged.prompt and "NOT_ATTEMPTED" in hedged.prompt
    assert hedged.raw.endswith("VERDICT: INCORRECT") and "hedges" in hedged.raw
    json.dumps([v.to_dict() for v in verdicts])  # storable as it is


@pytest.mark.parametrize("kind", ["frames", "webwalker"])
def test_frames_and_webwalker_rubrics_over_http(served_judge, kind):
    policy, _ = served_judge
    judge = LLMJudge(policy, kind=kind)
    right, wrong, _ = LABELS[kind]
    verdict = judge.judge(*CASES[0][:3])
    assert (verdict.label, verdict.score, verdict.error) == (right, 1.0, None)
    assert verdict.prompt == judge.prompt_text(*CASES[0][:3]) and verdict.raw.endswith(f"VERDICT: {right}")
    partial = judge.judge(*CASES[2][:3])
    assert (partial.label, partial.score, partial.error) == (wrong, 0.0, None)
    assert judge.judge(*CASES[4][:3]).label == wrong  # these rubrics have no "not attempted"


def test_garbage_judge_output_scores_zero_with_an_error():
    with serve_policy(Garbage()) as url, client(url) as policy:
        verdict = LLMJudge(policy).judge("Which river?", "Ostra", "Ostra")
    assert verdict.label is None and verdict.score == 0.0
    assert "unparseable judge output" in verdict.error
    assert verdict.raw == "I would rather talk about the weather." and "Ostra" in verdict.prompt


def test_server_down_scores_zero_with_an_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    with client(f"http://127.0.0.1:{port}/v1", timeout_s=2) as policy:
        verdicts = LLMJudge(policy).judge_many([CASES[0][:3], CASES[1][:3]])
    assert [v.score for v in verdicts] == [0.0, 0.0]
    assert all(v.label is None and v.error.startswith("judge call failed: PolicyRequestError") for v in verdicts)
    assert verdicts[0].prompt and verdicts[0].raw == ""


def test_a_policy_returning_too_few_completions_is_an_error():
    class Short:
        name = "short"

        def generate(self, prompts):
            return []

    verdict = LLMJudge(Short()).judge("Q?", "A", "A")
    assert verdict.score == 0.0 and "0 completions for 1 prompts" in verdict.error


def test_judge_scorer_records_every_verdict(served_judge):
    policy, scripted = served_judge
    scorer = judge_scorer(LLMJudge(policy, kind="simpleqa"))
    assert isinstance(scorer, Scorer) and isinstance(scorer, JudgeScorer)
    assert scorer.primary == "judge" and list(scorer.metrics) == ["judge", "exact_match"]
    bridge = Task("t-bridge", CASES[0][0], "1873", "frames", aliases=("eighteen seventy-three",))
    river = Task("t-river", CASES[3][0], "Ostra", "frames")

    assert scorer.score("The first bridge was finished in 1873.", bridge) == {"judge": 1.0, "exact_match": 0.0}
    assert scorer.score("ostra", river) == {"judge": 1.0, "exact_match": 1.0}
    calls = len(scripted.batches)
    assert scorer.score(None, river) == {"judge": 0.0, "exact_match": 0.0}
    assert len(scripted.batches) == calls  # no answer: no judge call

    assert [(v.task_id, v.label) for v in scorer.verdicts] == [
        ("t-bridge", "CORRECT"), ("t-river", "CORRECT"), ("t-river", "NOT_ATTEMPTED"),
    ]
    assert "1873 (also accepted: eighteen seventy-three)" in scorer.verdicts[0].prompt
    assert scorer.verdicts[2].prompt == "" and scorer.verdicts[2].error is None


def test_judge_scorer_batches_many_answers(served_judge):
    policy, _ = served_judge
    counting = Counting(policy)
    scorer = judge_scorer(LLMJudge(counting, kind="webwalker"), fallback_metric="f1")
    tasks = [Task(f"t{i}", q, gold, "webwalkerqa") for i, (q, gold, _, _) in enumerate(CASES)]
    predictions = [case[2] for case in CASES[:4]] + [None, "I don't know."]
    results = scorer.score_many(predictions, tasks)
    assert counting.calls == 1
    assert [r["judge"] for r in results] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert set(results[0]) == {"judge", "f1"} and results[2]["f1"] > 0  # partial overlap
    assert [v.label for v in scorer.verdicts] == [
        "CORRECT", "INCORRECT", "INCORRECT", "INCORRECT", "INCORRECT", "INCORRECT"
    ]


def test_parse_label():
    simpleqa = RUBRICS["simpleqa"].labels
    assert parse_label("VERDICT: CORRECT", simpleqa) == "CORRECT"
    assert parse_label("verdict: **not attempted**", simpleqa) == "NOT_ATTEMPTED"
    assert parse_label("Looks INCORRECT at first.\nVERDICT: CORRECT", simpleqa) == "CORRECT"
    assert parse_label("<think>VERDICT: INCORRECT?</think>CORRECT", simpleqa) == "CORRECT"
    assert parse_label("reasoning...</think>\nNOT_ATTEMPTED", simpleqa) == "NOT_ATTEMPTED"
    assert parse_label("The answer is correct.", simpleqa) is None  # prose, not a grade
    assert parse_label("", simpleqa) is None
    assert parse_label("VERDICT: TRUE", RUBRICS["frames"].labels) == "TRUE"
    assert parse_label("false", RUBRICS["frames"].labels) == "FALSE"


def test_a_negated_label_a_bold_verdict_and_cut_off_thinking():
    simpleqa, frames = RUBRICS["simpleqa"].labels, RUBRICS["frames"].labels
    # "NOT CORRECT" passes nothing: no grade (scored 0 with an error), never CORRECT
    assert parse_label("The year differs, so it is NOT CORRECT.", simpleqa) is None
    assert parse_label("VERDICT: NOT CORRECT", simpleqa) is None
    assert parse_label("The gold fact is NOT TRUE of the response.", frames) is None
    assert parse_label("Nothing in it is INCORRECT.\n**VERDICT**: CORRECT", simpleqa) == "CORRECT"
    assert parse_label("So it is not FALSE.\n**Verdict**: TRUE", frames) == "TRUE"
    assert parse_label("<think>first guess VERDICT: CORRECT, but let me re-check", simpleqa) is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="Unknown judge kind 'exact'"):
        LLMJudge(Garbage(), kind="exact")
    with pytest.raises(KeyError, match="Unknown fallback metric 'bleu'"):
        judge_scorer(LLMJudge(Garbage()), fallback_metric="bleu")


def test_docstring_examples():
    result = doctest.testmod(judge_module)
    assert result.attempted > 0 and result.failed == 0
