"""Question families over a world, with exact answers, answer programs and a train/test split.

``build_tasks`` draws a fixed pool of questions per family: every difficulty gets an equal share,
spread over that difficulty's templates. Each answer comes from running the question's program
over the world's facts, and ``gold_urls`` are the pages that run read. The split is a stable hash
of the question text, so one text is always in one split, whichever world or family produced it.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from types import ModuleType

from matpo_gym.data.tasks import Task
from matpo_gym.data.world import program
from matpo_gym.data.world.paths import ROOT, entity_path
from matpo_gym.data.world.questions import frames, gaia, musique, webwalker
from matpo_gym.data.world.questions.common import DIFFICULTIES, Candidate, Context, Difficulty

FAMILIES: dict[str, ModuleType] = {
    "frames": frames,
    "webwalker": webwalker,
    "gaia": gaia,
    "musique": musique,
}
SPLITS = ("train", "test")
TEST_PERCENT = 20


def canonical(question: str) -> str:
    """The form two questions are compared in: lower case, single spaces."""
    return " ".join(question.lower().split())


def split_of(question: str) -> str:
    """``"train"`` or ``"test"`` (about 80/20), a pure function of the question text."""
    digest = hashlib.sha256(canonical(question).encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 100 < TEST_PERCENT else "train"


ORDER_FREE = frozenset({"sum", "min", "max", "mean", "argmax", "argmin"})
"""Program ops whose arguments' order does not change the question."""


def program_key(p: program.Program) -> str:
    """A program with the arguments of order-free ops sorted: two questions with equal keys ask
    the same thing (the same two entities named in the other order)."""

    def norm(node: object) -> object:
        if isinstance(node, list):
            return [norm(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: norm(value) for key, value in node.items()}
        if out.get("op") in ORDER_FREE:
            out["args"] = sorted(out["args"], key=lambda a: json.dumps(a, sort_keys=True))
        return out

    return json.dumps(norm(p), sort_keys=True)


def hops(p: program.Program) -> int:
    """Pages read one after another to reach the answer (the longest chain of the program)."""
    op = p["op"]
    if op == "entity":
        return 0
    if op in ("attr", "link", "links", "each"):
        return hops(p["of"]) + 1
    if op == "count":
        return hops(p["of"])
    inner = max(hops(a) for a in p["args"])
    return inner + 1 if op in ("argmax", "argmin") else inner


def _task(ctx: Context, family: str, seed: int, base_url: str, c: Candidate) -> Task:
    answer, read = program.run(c.program, ctx.graph)
    paths = [entity_path(ctx.graph.by_name(name).slug) for name in read]
    metadata = {
        "difficulty": c.difficulty,
        "hops": hops(c.program),
        "gold_urls": [base_url + path for path in paths],
        "program": c.program,
        "split": split_of(c.question),
        **c.metadata,
    }
    root_url = None
    if family == "webwalker":
        root_url = base_url + ROOT
        metadata["gold_path"] = [base_url + path for path in webwalker.gold_path(ctx, read)]
    digest = hashlib.sha256(canonical(c.question).encode()).hexdigest()[:12]
    return Task(
        id=f"world{seed}-{family}-{digest}",
        question=c.question,
        answer=answer,
        family=family,
        root_url=root_url,
        metadata=metadata,
    )


def build_tasks(ctx: Context, family: str, *, seed: int, base_url: str, size: int) -> list[Task]:
    """About ``size`` distinct tasks of ``family``, the same ones for the same world and seed.

    Distinct in text and in program: a question naming the same entities in the other order is
    the same question, and could otherwise land in the other split than its twin."""
    if family not in FAMILIES:
        raise ValueError(f"unknown question family {family!r}; valid families: {sorted(FAMILIES)}")
    templates = FAMILIES[family].TEMPLATES
    rng = random.Random(f"{seed}/questions/{family}")
    seen: set[str] = set()
    asked: set[str] = set()
    tasks: list[Task] = []
    for difficulty in DIFFICULTIES:
        share = math.ceil(size / len(DIFFICULTIES) / len(templates[difficulty]))
        for template in templates[difficulty]:
            made = 0
            for _ in range(share * 20):
                if made == share:
                    break
                candidate = template(ctx, rng)
                if candidate is None or canonical(candidate.question) in seen:
                    continue
                if program_key(candidate.program) in asked:
                    continue
                try:
                    task = _task(ctx, family, seed, base_url, candidate)
                except program.ProgramError:
                    continue
                seen.add(canonical(candidate.question))
                asked.add(program_key(candidate.program))
                tasks.append(task)
                made += 1
    random.Random(f"{seed}/order/{family}").shuffle(tasks)
    return tasks


def select(
    tasks: list[Task], *, split: str, n: int | None, difficulty: Difficulty | str | None
) -> list[Task]:
    """The first ``n`` tasks of one split (and difficulty), in pool order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {difficulty!r}; valid: {list(DIFFICULTIES)}")
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    chosen = [
        t
        for t in tasks
        if t.metadata["split"] == split
        and (difficulty is None or t.metadata["difficulty"] == difficulty)
    ]
    return chosen if n is None else chosen[:n]


__all__ = ["FAMILIES", "SPLITS", "build_tasks", "canonical", "program_key", "select", "split_of"]
