"""An LLM judge: grade a predicted answer against the gold one with any policy.

Three rubrics, written for matpo-gym from each benchmark's published grading rules:

* ``simpleqa`` — the SimpleQA-style grader the MATPO reference uses for rewards: ``CORRECT``,
  ``INCORRECT`` (contradicts, hedges between candidates, or gives only part of the answer) or
  ``NOT_ATTEMPTED`` (gives no answer);
* ``frames`` — FRAMES' auto-rater: is the gold answer's meaning present in the response
  (``TRUE`` / ``FALSE``);
* ``webwalker`` — WebWalkerQA's grader: ``CORRECT`` / ``INCORRECT`` against the reference answer.

The judge is any :class:`~matpo_gym.policies.base.Policy`; in practice an
:class:`~matpo_gym.policies.openai.OpenAIPolicy` pointed at a chat endpoint (``stop=()`` and a
low temperature suit a grader)::

    judge = LLMJudge(OpenAIPolicy(model="qwen3-32b", base_url=URL, stop=(), temperature=0.0), kind="frames")
    verdict = judge.judge(question, gold, prediction)   # Verdict(label="TRUE", score=1.0, ...)

Each prompt asks the judge to end with a line ``VERDICT: <LABEL>``; :func:`parse_label` also accepts
a reply that is just the label, or that names exactly one label. A judge that fails (an exception,
a wrong number of completions, a reply with no label) gives a verdict with score 0 and ``error``
set; it never raises. :meth:`LLMJudge.judge_many` sends all its prompts in one ``generate`` call.

:func:`judge_scorer` wraps a judge as a :class:`~matpo_gym.scoring.scorers.Scorer` whose primary
metric is ``judge`` (plus a string-match metric as a cross-check) and which keeps every verdict,
prompt and raw judge output included, in ``scorer.verdicts`` for the run to store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from matpo_gym.core.messages import Message, Prompt, Role
from matpo_gym.data.tasks import Task
from matpo_gym.policies.base import Policy, generate_checked
from matpo_gym.scoring.metrics import exact_match, f1, gaia_match
from matpo_gym.scoring.scorers import Metric, Scorer

JudgeKind = Literal["simpleqa", "frames", "webwalker"]

_FINAL_LINE = "Explain your grade in one or two sentences, then end with a last line of exactly this form:\n"

SIMPLEQA_TEMPLATE = """\
You are grading an answer to a factual question against the gold answer. Give exactly one grade.

CORRECT: the predicted answer carries the gold answer's meaning and says nothing that contradicts \
it. Differences in capitalisation, punctuation, spelling of names, word order and added context do \
not matter. A number must agree with the gold answer to the precision the gold answer gives. \
Uncertain wording is fine as long as one answer is given and it is the gold one. When the gold \
answer holds more than the question asks for, the prediction needs only what the question asks; \
leaving out what the question itself makes clear (a state after a city, a unit the question names, \
a surname) is fine.
INCORRECT: the predicted answer contradicts the gold answer, names a different answer, offers \
several candidates without settling on one (even when one of them is right), or gives only part \
of what the question asks for (say, one of two names asked for).
NOT_ATTEMPTED: the predicted answer gives no answer (it is empty, declines, says it does not know \
or asks for more information) and contradicts nothing in the gold answer.

Grade only how the two answers match: do not question the gold answer and do not use your own \
knowledge of the subject.

<question>
{question}
</question>
<gold_answer>
{gold}
</gold_answer>
<predicted_answer>
{prediction}
</predicted_answer>

""" + _FINAL_LINE + "VERDICT: CORRECT, VERDICT: INCORRECT or VERDICT: NOT_ATTEMPTED\n"

FRAMES_TEMPLATE = """\
You are checking whether a response to a question contains the correct answer.

Decide whether the meaning of the gold answer is present in the response. The wording does not \
have to match: paraphrases, equivalent formats or units, and extra explanation are all acceptable \
as long as the answer the response gives conveys the same fact as the gold answer. The gold answer \
is not present when the response gives a different answer, leaves out part of an answer that has \
several parts, lists alternatives without committing to the gold one, or gives no answer.

<question>
{question}
</question>
<gold_answer>
{gold}
</gold_answer>
<response>
{prediction}
</response>

""" + _FINAL_LINE + "VERDICT: TRUE or VERDICT: FALSE\n"

WEBWALKER_TEMPLATE = """\
You are a teacher marking a student's answer to a question about information found on a website, \
given the reference answer.

Mark factual accuracy against the reference answer only. Differences in punctuation, phrasing and \
length do not matter, and neither does extra information, as long as nothing in the student's \
answer contradicts the reference. When the reference answer has several parts, the student's \
answer needs every one of them. An answer that contradicts the reference, misses a required part, \
hedges between alternatives or does not answer is INCORRECT.

<question>
{question}
</question>
<reference_answer>
{gold}
</reference_answer>
<student_answer>
{prediction}
</student_answer>

""" + _FINAL_LINE + "VERDICT: CORRECT or VERDICT: INCORRECT\n"


@dataclass(frozen=True)
class Rubric:
    """One grading scheme: its prompt, the labels the judge may answer with, and which one passes."""

    template: str
    """Prompt with ``{question}``, ``{gold}`` and ``{prediction}`` fields."""
    labels: tuple[str, ...]
    """Every label the judge may give."""
    passing: str
    """The label that scores 1.0; every other label scores 0.0."""
    unanswered: str
    """The label for an episode that ended without an answer (no judge call is made)."""


RUBRICS: dict[str, Rubric] = {
    "simpleqa": Rubric(SIMPLEQA_TEMPLATE, ("CORRECT", "INCORRECT", "NOT_ATTEMPTED"), "CORRECT", "NOT_ATTEMPTED"),
    "frames": Rubric(FRAMES_TEMPLATE, ("TRUE", "FALSE"), "TRUE", "FALSE"),
    "webwalker": Rubric(WEBWALKER_TEMPLATE, ("CORRECT", "INCORRECT"), "CORRECT", "INCORRECT"),
}


@dataclass(frozen=True)
class Verdict:
    """The judge's grade of one answer, with everything needed to audit it."""

    label: str | None
    """The grade (``CORRECT``, ``TRUE``, ...); None when the judge failed."""
    score: float
    """1.0 for the passing label, else 0.0 (failures included)."""
    prompt: str
    """The prompt sent to the judge (empty when no call was made)."""
    raw: str
    """The judge's reply, unparsed."""
    error: str | None = None
    """Why there is no label (the call failed, or the reply named no label); None otherwise."""
    task_id: str | None = None
    """The task graded, when known (set by :class:`JudgeScorer`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """The label a judge reply gives, or None when it gives none (or several, ambiguously).

    In order: the last ``VERDICT: <LABEL>`` line (any case, ``**VERDICT**:`` too); a reply that is
    only a label; the one label written in capitals in the reply, not after a "not". Thinking
    (``<think>...</think>``, or an unclosed ``<think>`` a token limit cut off) is ignored.

    >>> parse_label("The years differ.\\nVERDICT: INCORRECT", ("CORRECT", "INCORRECT"))
    'INCORRECT'
    >>> parse_label("**Not attempted**", ("CORRECT", "INCORRECT", "NOT_ATTEMPTED"))
    'NOT_ATTEMPTED'
    >>> parse_label("It could be CORRECT or INCORRECT.", ("CORRECT", "INCORRECT")) is None
    True
    """
    text = _THINK.sub("", text)
    if "</think>" in text.lower():  # an unclosed opening tag: keep what follows the close
        text = text[text.lower().rfind("</think>") + len("</think>"):]
    text = re.sub(r"<think>.*\Z", "", text, flags=re.DOTALL | re.IGNORECASE)  # thinking cut off: no verdict
    spelled = {label: label.replace("_", r"[_ ]") for label in labels}
    alternatives = "|".join(spelled[label] for label in sorted(labels, key=len, reverse=True))

    def canonical(found: str) -> str:
        return re.sub(r"[_ ]", "_", found.upper())

    lines = re.findall(
        rf"VERDICT[\s*_`]*[:=]\s*[*_`\"'\[(]*\s*({alternatives})(?![A-Za-z_])", text, flags=re.IGNORECASE
    )
    if lines:
        return canonical(lines[-1])
    bare = re.sub(r"[\s*_`\"'.!:\[\]()]+", " ", text).strip()
    for label in labels:
        if re.fullmatch(spelled[label], bare, flags=re.IGNORECASE):
            return label
    # "NOT CORRECT" names no passing label
    named = {canonical(m) for m in re.findall(rf"(?<![A-Za-z_])(?<![Nn][Oo][Tt] )({alternatives})(?![A-Za-z_])", text)}
    return named.pop() if len(named) == 1 else None


class LLMJudge:
    """Grades answers with ``policy`` under one rubric (``simpleqa``, ``frames`` or ``webwalker``)."""

    def __init__(self, policy: Policy, *, kind: JudgeKind = "simpleqa"):
        if kind not in RUBRICS:
            raise ValueError(f"Unknown judge kind {kind!r}; known: {', '.join(RUBRICS)}.")
        self.policy = policy
        self.kind = kind
        self.rubric = RUBRICS[kind]

    @property
    def name(self) -> str:
        return f"{self.kind}-judge:{self.policy.name}"

    def prompt_text(self, question: str, gold: str, prediction: str) -> str:
        """The prompt the judge reads for one answer."""
        return self.rubric.template.format(question=question.strip(), gold=gold.strip(), prediction=prediction.strip())

    def judge(self, question: str, gold: str, prediction: str) -> Verdict:
        """Grade one answer (one ``generate`` call)."""
        return self.judge_many([(question, gold, prediction)])[0]

    def judge_many(self, items: Sequence[tuple[str, str, str]]) -> list[Verdict]:
        """Grade ``(question, gold, prediction)`` triples with one ``generate`` call, in order."""
        texts = [self.prompt_text(*item) for item in items]
        if not texts:
            return []
        try:
            completions = generate_checked(self.policy, [Prompt(Role.SINGLE, (Message("user", t),)) for t in texts])
        except Exception as exc:  # noqa: BLE001 - a failed judge scores 0, it never stops a run
            error = f"judge call failed: {type(exc).__name__}: {exc}"
            return [Verdict(None, 0.0, text, "", error) for text in texts]
        return [self.verdict(text, completion.text) for text, completion in zip(texts, completions)]

    def verdict(self, prompt: str, raw: str) -> Verdict:
        """The verdict a judge reply ``raw`` to ``prompt`` gives."""
        label = parse_label(raw, self.rubric.labels)
        if label is None:
            expected = " | ".join(self.rubric.labels)
            return Verdict(None, 0.0, prompt, raw, f"unparseable judge output: expected 'VERDICT: {expected}'")
        return Verdict(label, float(label == self.rubric.passing), prompt, raw)

    def unanswered(self) -> Verdict:
        """The verdict for an episode that gave no answer at all (no judge call)."""
        return Verdict(self.rubric.unanswered, 0.0, "", "")


def gold_text(task: Task) -> str:
    """The gold answer as the judge sees it: the answer, plus any other accepted spellings."""
    if not task.aliases:
        return task.answer
    return f"{task.answer} (also accepted: {'; '.join(task.aliases)})"


FALLBACK_METRICS: dict[str, Metric] = {"exact_match": exact_match, "f1": f1, "gaia_match": gaia_match}
"""String-match metrics a :class:`JudgeScorer` can report next to the judge."""


@dataclass(frozen=True, eq=False)
class JudgeScorer(Scorer):
    """A scorer whose primary metric, ``judge``, is an LLM judge's verdict; see :func:`judge_scorer`."""

    judge: LLMJudge = field(kw_only=True)
    fallback: str = field(kw_only=True, default="exact_match")
    """The string-match metric reported next to ``judge`` (a key of :data:`FALLBACK_METRICS`)."""
    verdicts: list[Verdict] = field(kw_only=True, default_factory=list, repr=False)
    """Every verdict given, in scoring order, each with its task id, prompt and raw judge output."""

    def score(self, prediction: str | None, task: Task) -> dict[str, float]:
        """``{"judge": 1.0 | 0.0, <fallback>: ...}`` for one answer (one judge call, none for None)."""
        return self.score_many([prediction], [task])[0]

    def score_many(self, predictions: Sequence[str | None], tasks: Sequence[Task]) -> list[dict[str, float]]:
        """Scores for many answers, judged in one ``generate`` call."""
        if len(predictions) != len(tasks):
            raise ValueError(f"{len(predictions)} predictions for {len(tasks)} tasks.")
        answered = [i for i, p in enumerate(predictions) if p is not None]
        judged = self.judge.judge_many(
            [(tasks[i].question, gold_text(tasks[i]), predictions[i] or "") for i in answered]
        )
        by_index = dict(zip(answered, judged))
        metric = self.metrics[self.fallback]
        results = []
        for i, (prediction, task) in enumerate(zip(predictions, tasks)):
            verdict = replace(by_index.get(i) or self.judge.unanswered(), task_id=task.id)
            self.verdicts.append(verdict)
            fallback = 0.0 if prediction is None else max(metric(prediction, g) for g in (task.answer, *task.aliases))
            results.append({"judge": verdict.score, self.fallback: fallback})
        return results


def judge_scorer(judge: LLMJudge, fallback_metric: str = "exact_match") -> JudgeScorer:
    """A :class:`~matpo_gym.scoring.scorers.Scorer` backed by ``judge``: metrics ``judge``
    (primary) and ``fallback_metric`` (``exact_match``, ``f1`` or ``gaia_match``)."""
    if fallback_metric not in FALLBACK_METRICS:
        raise KeyError(f"Unknown fallback metric {fallback_metric!r}; known: {', '.join(FALLBACK_METRICS)}")

    def judge_metric(prediction: str, gold: str) -> float:
        """The judge's score without the question (``Scorer.metrics`` entries see answers only)."""
        return judge.judge("", gold, prediction).score

    return JudgeScorer(
        name=f"judge-{judge.kind}",
        primary="judge",
        metrics={"judge": judge_metric, fallback_metric: FALLBACK_METRICS[fallback_metric]},
        judge=judge,
        fallback=fallback_metric,
    )
