"""The LLM judge on the cases that decide a grader: hedged answers, partial lists, confident wrong
answers and answers that are not attempted, for each rubric (SimpleQA, FRAMES, WebWalkerQA).

The judge is a scripted policy served on loopback HTTP (``matpo-bench serve``'s server) and called
through :class:`OpenAIPolicy`, as a real grader would be. The script's verdicts are fixed per case;
what is tested is everything around them: the rules and the candidate answer the judge is shown,
how each verdict label becomes a score, and that every verdict and every judge failure is recorded
per question, in the scorer and in a ``matpo-bench run`` results file.
"""

import json
import re
import socket
from dataclasses import dataclass

import pytest

from matpo_gym.bench.run import RunConfig, run
from matpo_gym.catalogue import builtin_dir
from matpo_gym.data.tasks import Task
from matpo_gym.policies.base import Completion
from matpo_gym.policies.openai import OpenAIPolicy
from matpo_gym.policies.serve import serve_policy
from matpo_gym.scoring.judge import RUBRICS, JudgeKind, LLMJudge, judge_scorer

KINDS = ("simpleqa", "frames", "webwalker")
RIGHT = ("CORRECT", "TRUE", "CORRECT")
WRONG = ("INCORRECT", "FALSE", "INCORRECT")
NONE = ("NOT_ATTEMPTED", "FALSE", "INCORRECT")


@dataclass(frozen=True)
class Case:
    name: str
    question: str
    gold: str
    prediction: str
    labels: tuple[str, str, str]
    """The grade under (simpleqa, frames, webwalker)."""


LABS = "Harbour Lab and Ridge Lab"
CASES = [
    Case("hedged", "Which river runs past the town of Veldmar?", "Ostra",
         "It is either the Ostra or the Velda; the sources disagree, so I can't say.", WRONG),
    Case("hedged_one_answer", "Which river did the Veldmar mill draw its water from?", "Ostra",
         "I'm not completely sure, but I believe it was the Ostra.", RIGHT),
    Case("partial_list", "Which two labs did the Example Organisation open in 2030?", LABS,
         "Harbour Lab", WRONG),
    Case("full_list_reordered", "Which two labs share the organisation's north campus?", LABS,
         "Ridge Lab and Harbour Lab (both opened in spring 2030)", RIGHT),
    Case("wrong_confident", "When was the first bridge over the Ostra built?", "1873",
         'Definitely "1874": see {the city archive}, volume ÏI.\nThere is no doubt.', WRONG),
    Case("imprecise_number", "When did the Ostra ferry start running?", "1868",
         "Around 1870.", WRONG),
    Case("not_attempted", "Who designed the Tamsin lighthouse?", "Orrel Vance",
         "I could not find this in the sources I searched.", NONE),
    Case("asks_back", "How tall is the Veldmar clock tower?", "41 m",
         "Which Veldmar do you mean? There are two towns of that name.", NONE),
]
BY_PREDICTION = {case.prediction: case for case in CASES}
SILENT = Task("t-no-answer", "Who painted the station mural?", "Tolan Reyes", "frames")
"""A question the agent never answers: no judge call, the rubric's no-answer label."""

RULES = {  # the rubric sentences that decide each case, per rubric
    "simpleqa": {
        "hedged": "offers several candidates without settling on one (even when one of them is "
                  "right)",
        "hedged_one_answer": "Uncertain wording is fine as long as one answer is given and it is "
                             "the gold one.",
        "partial_list": "or gives only part of what the question asks for (say, one of two names asked for)",
        "full_list_reordered": "word order and added context do not matter",
        "wrong_confident": "INCORRECT: the predicted answer contradicts the gold answer, names a "
                           "different answer",
        "imprecise_number": "A number must agree with the gold answer to the precision the gold "
                            "answer gives.",
        "not_attempted": "NOT_ATTEMPTED: the predicted answer gives no answer (it is empty, "
                         "declines, says it does not know",
        "asks_back": "or asks for more information) and contradicts nothing in the gold answer",
    },
    "frames": {
        "hedged": "lists alternatives without committing to the gold one",
        "hedged_one_answer": "as long as the answer the response gives conveys the same fact as "
                             "the gold answer",
        "partial_list": "leaves out part of an answer that has several parts",
        "full_list_reordered": "paraphrases, equivalent formats or units, and extra explanation "
                               "are all acceptable",
        "wrong_confident": "The gold answer is not present when the response gives a different "
                           "answer",
        "imprecise_number": "conveys the same fact as the gold answer",
        "not_attempted": "or gives no answer",
        "asks_back": "or gives no answer",
    },
    "webwalker": {
        "hedged": "hedges between alternatives",
        "hedged_one_answer": "Mark factual accuracy against the reference answer only.",
        "partial_list": "When the reference answer has several parts, the student's answer needs "
                        "every one of them.",
        "full_list_reordered": "Differences in punctuation, phrasing and length do not matter, "
                               "and neither does extra information",
        "wrong_confident": "An answer that contradicts the reference",
        "imprecise_number": "Mark factual accuracy against the reference answer only.",
        "not_attempted": "or does not answer is INCORRECT",
        "asks_back": "or does not answer is INCORRECT",
    },
}
ANSWER_TAG = {"simpleqa": "predicted_answer", "frames": "response", "webwalker": "student_answer"}
GOLD_TAG = {"simpleqa": "gold_answer", "frames": "gold_answer", "webwalker": "reference_answer"}

REPLIES = [  # ways real graders write a verdict, cycled over the cases
    "The answer {why}.\nVERDICT: {label}",
    "<think>CORRECT or INCORRECT? Check the rules again.</think>It {why}.\nVerdict: {spaced}",
    "**{label}**",
    "Reasoning: it {why}.\n\nVERDICT: [{label}]",
]


def rubric_of(prompt: str) -> str:
    last = prompt.rstrip().splitlines()[-1]
    if "NOT_ATTEMPTED" in last:
        return "simpleqa"
    return "frames" if "VERDICT: TRUE" in last else "webwalker"


def tagged(prompt: str, tag: str) -> str:
    match = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", prompt, re.DOTALL)
    assert match, f"no <{tag}> block in the judge prompt"
    return match.group(1)


class ScriptedJudge:
    """Grades each case as the script says, in varied reply formats; keeps every prompt it gets.

    Predictions in ``garbage`` get a reply with no verdict; those in ``crash`` make the policy
    raise, which the server answers with HTTP 500 (for the whole batch the prompt came in).
    """

    name = "scripted-judge"

    def __init__(self, garbage: tuple[str, ...] = (), crash: tuple[str, ...] = ()):
        self.received: list[str] = []
        self.garbage, self.crash = garbage, crash

    def generate(self, prompts):
        return [Completion(self.reply(p.messages[-1].content)) for p in prompts]

    def reply(self, prompt: str) -> str:
        self.received.append(prompt)
        kind = rubric_of(prompt)
        prediction = tagged(prompt, ANSWER_TAG[kind])
        if prediction in self.crash:
            raise RuntimeError("the grader ran out of memory")
        if prediction in self.garbage:
            return "I would rather not grade this one."
        case = BY_PREDICTION[prediction]
        label = case.labels[KINDS.index(kind)]
        template = REPLIES[CASES.index(case) % len(REPLIES)]
        spaced = label.replace("_", " ").lower()
        return template.format(label=label, spaced=spaced, why=case.name.replace("_", " "))


def client(url: str, timeout_s: float = 10) -> OpenAIPolicy:
    return OpenAIPolicy(model="judge", base_url=url, stop=(), max_retries=0, timeout_s=timeout_s)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again at once: nothing listens there


@pytest.fixture
def served():
    judge = ScriptedJudge()
    with serve_policy(judge) as url, client(url) as policy:
        yield policy, judge


def task(case: Case) -> Task:
    return Task(f"t-{case.name}", case.question, case.gold, "frames")


# -- (a) what the judge is shown -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_judge_sees_the_deciding_rules_and_the_answer_verbatim(served, kind):
    policy, judge = served
    items = [(c.question, c.gold, c.prediction) for c in CASES]
    verdicts = LLMJudge(policy, kind=kind).judge_many(items)
    assert len(judge.received) == len(CASES)
    received = {tagged(p, ANSWER_TAG[kind]): p for p in judge.received}  # what crossed the wire
    labels = RUBRICS[kind].labels
    options = [f"VERDICT: {label}" for label in labels]
    last_line = f"{', '.join(options[:-1])} or {options[-1]}"
    tag = ANSWER_TAG[kind]
    for case, verdict in zip(CASES, verdicts):
        prompt = received[case.prediction]  # the candidate answer arrived exactly as given
        assert verdict.prompt == prompt
        assert f"<{tag}>\n{case.prediction}\n</{tag}>" in prompt
        assert tagged(prompt, GOLD_TAG[kind]) == case.gold and case.question in prompt
        rule = RULES[kind][case.name]
        assert rule in prompt, f"{kind}/{case.name}: the rule {rule!r} is not in the prompt"
        assert prompt.rstrip().endswith(last_line)
    assert "{the city archive}" in received[CASES[4].prediction]  # braces are not template fields


# -- (b) labels -> scores, recorded per question --------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_label_maps_to_its_score_and_is_recorded_per_question(served, kind):
    policy, judge = served
    scorer = judge_scorer(LLMJudge(policy, kind=kind))
    tasks = [task(c) for c in CASES] + [SILENT]
    results = scorer.score_many([c.prediction for c in CASES] + [None], tasks)
    assert len(judge.received) == len(CASES)  # no judge call for the missing answer

    rubric = RUBRICS[kind]
    expected = [c.labels[KINDS.index(kind)] for c in CASES] + [rubric.unanswered]
    recorded = [(v.task_id, v.label) for v in scorer.verdicts]
    assert recorded == list(zip([t.id for t in tasks], expected))
    scores = [1.0 if label == rubric.passing else 0.0 for label in expected]
    assert [r["judge"] for r in results] == scores == [v.score for v in scorer.verdicts]
    assert all(v.error is None for v in scorer.verdicts)
    if kind == "simpleqa":  # NOT_ATTEMPTED (from the judge, or no answer at all) scores 0
        not_attempted = [v.task_id for v in scorer.verdicts if v.label == "NOT_ATTEMPTED"]
        assert not_attempted == ["t-not_attempted", "t-asks_back", "t-no-answer"]
    assert {v.label for v in scorer.verdicts} == set(rubric.labels)  # every label came up
    json.dumps([v.to_dict() for v in scorer.verdicts])


# -- (c) a judge failure counts as wrong and is reported -------------------------------------------


def test_unparseable_verdicts_score_zero_with_the_reason_per_question():
    hedged, reordered = CASES[0], CASES[3]
    judge = ScriptedJudge(garbage=(reordered.prediction,))
    with serve_policy(judge) as url, client(url) as policy:
        scorer = judge_scorer(LLMJudge(policy, kind="simpleqa"))
        predictions = [hedged.prediction, reordered.prediction]
        results = scorer.score_many(predictions, [task(hedged), task(reordered)])
    failed = scorer.verdicts[1]
    assert [r["judge"] for r in results] == [0.0, 0.0]  # a failed grading counts as wrong
    assert (failed.task_id, failed.label, failed.score) == ("t-full_list_reordered", None, 0.0)
    assert "unparseable judge output" in failed.error
    assert failed.raw == "I would rather not grade this one."
    assert scorer.verdicts[0].label == "INCORRECT" and scorer.verdicts[0].error is None


def test_a_judge_that_errors_or_is_down_scores_zero_and_says_why():
    case = CASES[1]  # a right answer: only the failure can make it score 0
    with serve_policy(ScriptedJudge(crash=(case.prediction,))) as url, client(url) as policy:
        scorer = judge_scorer(LLMJudge(policy, kind="frames"))
        assert scorer.score(case.prediction, task(case))["judge"] == 0.0
    [verdict] = scorer.verdicts
    assert verdict.label is None and verdict.task_id == "t-hedged_one_answer"
    assert verdict.error.startswith("judge call failed: PolicyRequestError")
    assert "HTTP 500" in verdict.error and "ran out of memory" in verdict.error
    assert case.prediction in verdict.prompt and verdict.raw == ""

    with client(f"http://127.0.0.1:{closed_port()}/v1", timeout_s=2) as policy:
        scorer = judge_scorer(LLMJudge(policy, kind="webwalker"))
        results = scorer.score_many([c.prediction for c in CASES[:2]], [task(c) for c in CASES[:2]])
    assert [r["judge"] for r in results] == [0.0, 0.0]
    assert [v.task_id for v in scorer.verdicts] == ["t-hedged", "t-hedged_one_answer"]
    for verdict in scorer.verdicts:
        assert verdict.label is None and verdict.error.startswith("judge call failed:")


# -- through `matpo-bench run` ---------------------------------------------------------------------

PROMPT_FILES = ("planner", "worker", "single", "worker_task")


class AnswerBook:
    """An agent that answers each question with its case's prediction (``None``: never answers)."""

    name = "answer-book"

    def __init__(self, answers: dict[str, str | None]):
        self.answers = answers

    def generate(self, prompts):
        out = []
        for prompt in prompts:
            text = "\n".join(m.content for m in prompt.messages)
            answer = self.answers[next(q for q in self.answers if q in text)]
            text = "Let me think." if answer is None else f"<answer>{answer}</answer>"
            out.append(Completion(text))
        return out


def run_files(tmp_path, judge_url: str, cases: list[Case]):
    """A closed-book jsonl env of ``cases`` (plus the silent question), a judge policy file for
    ``judge_url``, and the agent that answers them."""
    rows = [{"id": t.id, "question": t.question, "answer": t.answer} for t in map(task, cases)]
    rows.append({"id": SILENT.id, "question": SILENT.question, "answer": SILENT.answer})
    data = tmp_path / "tricky.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    prompts = builtin_dir("envs") / "prompts"
    env = tmp_path / "tricky-env.toml"
    env.write_text(
        'description = "Closed-book tricky answers"\nmode = "single"\n\n'
        f'[source]\nkind = "jsonl"\npath = "{data}"\nfamily = "frames"\n\n'
        "[tools]\nnames = []\n\n[limits]\nsingle_turns = 2\n\n[prompts]\n"
        + "".join(f'{role} = "{prompts / role}.md"\n' for role in PROMPT_FILES),
        encoding="utf-8",
    )
    judge = tmp_path / "judge.toml"
    judge.write_text(
        f'type = "openai"\n\n[args]\nmodel = "judge"\nbase_url = "{judge_url}"\nstop = []\n'
        "max_retries = 0\ntimeout_s = 10\n",
        encoding="utf-8",
    )
    answers: dict[str, str | None] = {c.question: c.prediction for c in cases}
    answers[SILENT.question] = None
    return env, judge, AnswerBook(answers)


def bench(tmp_path, name: str, judge_url: str, cases: list[Case], kind: JudgeKind):
    env, judge, agent = run_files(tmp_path, judge_url, cases)
    config = RunConfig(env=str(env), mode="single", limit=None, out=tmp_path, name=name,
                       quiet=True, judge=str(judge), judge_kind=kind)
    [summary] = run(config, policy=agent)
    lines = (tmp_path / name / "single.jsonl").read_text(encoding="utf-8").splitlines()
    return summary, {record["task_id"]: record for record in map(json.loads, lines)}


def test_a_run_records_every_verdict_and_every_judge_failure_per_question(tmp_path):
    failing = CASES[3]  # a right answer the judge answers with no verdict
    with serve_policy(ScriptedJudge(garbage=(failing.prediction,))) as url:
        summary, records = bench(tmp_path, "tricky", url, CASES, "simpleqa")
    assert len(records) == len(CASES) + 1
    for case in CASES:
        record = records[f"t-{case.name}"]
        verdict = record["judge"]
        assert record["prediction"] == case.prediction
        if case is failing:
            assert verdict["label"] is None and "unparseable judge output" in verdict["error"]
            assert record["score"] == record["metrics"]["judge"] == 0.0
            continue
        label = case.labels[0]
        assert verdict["label"] == label and verdict["error"] is None
        assert record["score"] == record["metrics"]["judge"] == float(label == "CORRECT")
        assert case.prediction in verdict["prompt"]
    silent = records[SILENT.id]
    assert silent["prediction"] is None and silent["score"] == 0.0
    assert silent["judge"]["label"] == "NOT_ATTEMPTED" and silent["judge"]["prompt"] == ""
    # one right answer is graded CORRECT; the other's failed grading counts as wrong
    assert summary.accuracy == pytest.approx(1 / (len(CASES) + 1))


def test_a_run_whose_judge_is_down_counts_every_answer_wrong_and_says_why(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    summary, records = bench(tmp_path, "down", url, CASES[:3], "webwalker")
    assert summary.accuracy == 0.0 and len(records) == 4
    for case in CASES[:3]:
        verdict = records[f"t-{case.name}"]["judge"]
        assert verdict["label"] is None and verdict["error"].startswith("judge call failed:")
    silent = records[SILENT.id]["judge"]
    assert (silent["label"], silent["error"]) == ("INCORRECT", None)  # no answer: no call to fail
