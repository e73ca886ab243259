"""Scripted baselines: a rule-based researcher and a format-only floor.

They need no model, so they give the leaderboard reproducible reference rows and let every
part of the env be exercised on a laptop. :class:`SearchReadPolicy` reads the conversation like a
model would (nothing is smuggled from the env): it searches the question, opens the result whose
title the question names, matches question words against the page's ``Label: value`` rows, and
follows a linked row when the question asks about something one hop away ("the founder of X").
In MATPO mode its planner delegates the whole question to one worker and answers with the
worker's conclusion; with ``decompose=True`` it sends one worker per hop instead ("the founder of
X" first, then the question with the founder's name in its place), so each worker reads one page
and the planner holds only their reports. It cannot do arithmetic, so it solves lookups only: of
one or two hops, or, decomposing, a chain of any length.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matpo_gym.core.actions import Answer, ToolCall, parse_action
from matpo_gym.core.messages import Message, Prompt, Role
from matpo_gym.policies.base import Completion

_WORD = re.compile(r"[a-z]+")
_LINK = re.compile(r"\[([^\]]+)\]\((\S+?)\)")
_URL = re.compile(r"URL: (\S+)")
_START = re.compile(r"Start browsing from: (\S+)")
_STOP = frozenset(
    """a an the of in on at to by for from with and or is was were are be been does do did have has
    what which who whom whose when where how many much year years its it their there that this
    long old number""".split()
)
_UNITS = frozenset({"cm", "m", "km", "min", "million", "km²"})
_COUNT = re.compile(r"^\s*how many\b", re.IGNORECASE)
_ROW = re.compile(r"^([A-Z][^:\n]{0,40}): (.+)$", re.MULTILINE)
_NAME = r"(?:The )?[A-Z][\w'-]*(?:(?: of| the| and)? [A-Z][\w'-]*)*"
_RELATION = re.compile(
    rf"\bthe (?:country in which {_NAME} lies\b"
    rf"|(?:birthplace|mayor|capital|founder|headquarters city|author) of {_NAME}"
    rf"|(?:artist who recorded|company headquartered in|company founded by|book written by|album recorded by) {_NAME})"
)
"""A phrase that names an entity by its link from a named one ("the capital of Taejouia"). Its
argument is a name, so of nested phrases the innermost matches."""
_WHOLE = re.compile(r"^(?:what|who|which)(?: \w+)? (?:is|was) \?$", re.IGNORECASE)
"""What is left of a question that only asks for the entity a link phrase names."""
_REPORTED = re.compile(r"Answer: (.+)")


def _lemma(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def words_match(a: str, b: str) -> bool:
    """Same word up to a short inflection ("die"/"died", "publish"/"published")."""
    short, long = sorted((a, b), key=len)
    return long.startswith(short) and len(long) - len(short) <= 2 and len(short) >= 3


def overlap(question: set[str], label: set[str]) -> set[str]:
    """The question words that a label's words match."""
    return {q for q in question if any(words_match(q, word) for word in label)}


def content_words(text: str) -> set[str]:
    """Lower-cased, singularised words without stop words or units."""
    return {_lemma(w) for w in _WORD.findall(text.lower()) if w not in _STOP and w not in _UNITS}


@dataclass(frozen=True)
class Row:
    """One ``Label: value`` line of a page."""

    label: str
    value: str

    @property
    def links(self) -> list[tuple[str, str]]:
        return _LINK.findall(self.value)

    @property
    def plain(self) -> str:
        return _LINK.sub(r"\1", self.value).strip()


def page_rows(text: str) -> list[Row]:
    return [Row(m.group(1).strip(), m.group(2).strip()) for m in _ROW.finditer(text)]


def _call(name: str, **arguments: object) -> str:
    return ToolCall(name, dict(arguments)).render()


@dataclass
class _Step:
    call: ToolCall
    result: str


def _history(messages: Sequence[Message]) -> list[_Step]:
    """Pairs of (tool call, tool result) in order, read from the conversation."""
    steps: list[_Step] = []
    pending: ToolCall | None = None
    for message in messages:
        if message.role == "assistant":
            action = parse_action(message.content)
            pending = action if isinstance(action, ToolCall) else None
        elif message.role == "tool" and pending is not None:
            steps.append(_Step(pending, message.content))
            pending = None
    return steps


def _question(prompt: Prompt) -> str:
    """What this role must find out: a worker's subtask (not the recapped question), else the question."""
    first = next((m.content for m in prompt.messages if m.role == "user"), "")
    for marker in ("Your subtask:", "Subtask:", "Your task:", "Question:"):
        if marker in first:
            return first.split(marker, 1)[1].split("\nStart browsing from:")[0].strip()
    return first.strip()


class SearchReadPolicy:
    """Search, read the named page, follow one link if needed, answer from an infobox row."""

    name = "scripted"

    def __init__(self, max_hops: int = 2, decompose: bool = False):
        self.max_hops = max_hops
        self.decompose = decompose
        self.name = "scripted-decompose" if decompose else "scripted"

    def generate(self, prompts: Sequence[Prompt]) -> list[Completion]:
        return [Completion(self.act(prompt)) for prompt in prompts]

    def act(self, prompt: Prompt) -> str:
        if prompt.role is Role.PLANNER:
            return self._plan(prompt)
        return self._research(prompt)

    # -- planner ---------------------------------------------------------------------------------

    def _plan(self, prompt: Prompt) -> str:
        question = _question(prompt)
        start = _START.search(prompt.messages[1].content) if len(prompt.messages) > 1 else None
        hint = f"\nStart browsing from: {start.group(1)}" if start else ""
        reports = [step for step in _history(prompt.messages) if step.call.name == "worker"]
        failed = 0
        for step in reports:  # replay the plan: each answered hop puts its answer into the question
            match = _REPORTED.search(step.result)
            if match is None:
                failed += 1
                continue
            hop = self._next_hop(question)
            if hop is not None and step.call.arguments.get("subtask") == hop[0] + hint:
                question = hop[1](match.group(1).strip())
                continue
            return Answer(match.group(1).strip()).render()
        if failed >= 2:
            return Answer("unknown").render()
        hop = self._next_hop(question)
        if hop is not None:
            return "I will look up the linked entity first.\n" + _call("worker", subtask=hop[0] + hint)
        opening = "The worker found nothing; one more try.\n" if failed else "I will delegate the lookup.\n"
        return opening + _call("worker", subtask=question + hint)

    def _next_hop(self, question: str) -> tuple[str, Callable[[str], str]] | None:
        """With ``decompose``: the subtask that resolves the question's innermost link phrase, and
        how to rewrite the question with its answer; None when the question has none left."""
        match = _RELATION.search(question) if self.decompose else None
        if match is None:
            return None
        phrase = match.group(0)
        if _WHOLE.match(question.replace(phrase, "", 1)):
            return None  # the question is this last hop: a worker answers it as asked
        return f"What is {phrase}?", lambda answer: question.replace(phrase, answer, 1)

    # -- researcher (worker or single agent) -----------------------------------------------------

    def _research(self, prompt: Prompt) -> str:
        question = _question(prompt)
        steps = _history(prompt.messages)
        finish = self._finish if prompt.role is Role.WORKER else self._answer
        if prompt.messages and "final summary" in prompt.messages[-1].content and prompt.messages[-1].role == "user":
            return finish(*self._best_so_far(question, steps))  # out of budget: report what was read
        visited = {str(s.call.arguments.get("url")) for s in steps if s.call.name == "browse"}
        wanted = content_words(question)
        hops = 0
        for step in steps:
            if step.call.name != "browse" or not step.result.startswith("Title:"):
                continue
            rows = page_rows(step.result)
            best = self._best_row(rows, wanted)
            if best is None:
                continue
            row, used = best
            wanted -= used
            target = next((url for _, url in row.links if url not in visited), None)
            needs_hop = bool(overlap(wanted, _LABEL_WORDS)) and target is not None
            if not needs_hop or hops >= self.max_hops:
                if step is steps[-1]:
                    value = str(len(row.links)) if _COUNT.match(question) and row.links else row.plain
                    return finish(value, f"{row.label}: {row.plain} ({step.call.arguments.get('url')})")
                continue
            hops += 1
            if step is steps[-1]:
                return _call("browse", url=target)
        return self._explore(prompt, question, steps, visited, finish)

    def _best_so_far(self, question: str, steps: list[_Step]) -> tuple[str | None, str | None]:
        """The best-matching fact of the pages read so far (the latest wins), or nothing."""
        found: tuple[str | None, str | None] = (None, None)
        for step in steps:
            if step.call.name == "browse" and step.result.startswith("Title:"):
                best = self._best_row(page_rows(step.result), content_words(question))
                if best is not None:
                    row = best[0]
                    found = (row.plain, f"{row.label}: {row.plain} ({step.call.arguments.get('url')})")
        return found

    def _explore(self, prompt: Prompt, question: str, steps: list[_Step], visited: set[str], finish) -> str:
        """No answer yet: search, or open the best unvisited result or link."""
        if not steps:
            if "search" in prompt.tool_names:
                return _call("search", query=question)
            start = _START.search("\n".join(m.content for m in prompt.messages if m.role == "user"))
            if start and "browse" in prompt.tool_names:
                return _call("browse", url=start.group(1))
            return finish(None, None)
        last = steps[-1]
        candidates: list[tuple[str, str]] = []
        if last.call.name == "search":
            titles = re.findall(r"^\d+\. (.+)$", last.result, re.MULTILINE)
            candidates = list(zip(titles, _URL.findall(last.result)))
        else:
            for other in reversed(steps):
                if other.call.name == "browse":
                    candidates = _LINK.findall(other.result)
                    break
        lowered = question.lower()
        named = sorted(
            (c for c in candidates if c[0].lower() in lowered and c[1] not in visited),
            key=lambda c: -len(c[0]),
        )
        if named:
            return _call("browse", url=named[0][1])
        if "browse" in prompt.tool_names and last.call.name == "browse":
            for anchor, url in candidates:
                if url not in visited and ("/category/" in url or anchor.lower().startswith("next")):
                    return _call("browse", url=url)
        if last.call.name == "search" and candidates and candidates[0][1] not in visited:
            return _call("browse", url=candidates[0][1])
        return finish(None, None)

    @staticmethod
    def _best_row(rows: list[Row], wanted: set[str]) -> tuple[Row, set[str]] | None:
        """The row whose label shares most words with the question; links win ties (a hop first)."""
        scored = []
        for row in rows:
            used = overlap(wanted, content_words(row.label))
            if used:
                scored.append((len(used), bool(row.links), row, used))
        if not scored:
            return None
        attribute_match = any(not has_link for _, has_link, _, _ in scored)
        linked = [s for s in scored if s[1]]
        if attribute_match and linked:
            pick = max(linked, key=lambda s: s[0])
        else:
            pick = max(scored, key=lambda s: (s[0], not s[1]))
        return pick[2], pick[3]

    @staticmethod
    def _answer(value: str | None, evidence: str | None) -> str:
        return Answer(value or "unknown").render()

    @staticmethod
    def _finish(value: str | None, evidence: str | None) -> str:
        if value is None:
            return Answer("Answer: not found. I could not find a page that answers the subtask.").render()
        return Answer(f"Answer: {value}\nEvidence: {evidence}").render()


_LABEL_WORDS = content_words(
    "Born Died Occupation Height Population Founded Elevation Area Employees Revenue Length Basin "
    "Published Pages Released Tracks Birthplace Country Mayor Capital Founder Headquarters Author "
    "Artist"
)
"""Words that name a fact; a question word among them still unread means one more hop."""


class RandomPolicy:
    """A format-only floor: well-formed actions chosen at random, seeded by the prompt."""

    name = "random"

    def __init__(self, seed: int = 0, answer_rate: float = 0.3):
        self.seed = seed
        self.answer_rate = answer_rate

    def generate(self, prompts: Sequence[Prompt]) -> list[Completion]:
        return [Completion(self.act(prompt)) for prompt in prompts]

    def act(self, prompt: Prompt) -> str:
        digest = hashlib.sha256(
            json.dumps([self.seed, prompt.to_chat()], ensure_ascii=False).encode()
        ).digest()
        rng = random.Random(digest)
        words = sorted(content_words(_question(prompt))) or ["answer"]
        if not prompt.tool_names or rng.random() < self.answer_rate:
            return Answer(rng.choice(words)).render()
        tool = rng.choice(prompt.tool_names)
        if tool == "worker":
            return _call("worker", subtask=" ".join(rng.sample(words, min(3, len(words)))))
        if tool == "search":
            return _call("search", query=" ".join(rng.sample(words, min(3, len(words)))))
        urls = re.findall(r"https?://[^\s)\]]+", "\n".join(m.content for m in prompt.messages))
        return _call("browse", url=rng.choice(urls) if urls else "https://example.invalid/")
