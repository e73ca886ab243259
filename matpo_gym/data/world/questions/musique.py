"""MuSiQue-like questions for training: a chain of two to four links, answered by an entity name.

"Who is the founder of the company headquartered in the birthplace of Aldric Venhollow?" Each
step follows a relation, or a backlink that lists exactly one entity, so the chain names one
entity at every step; no entity appears twice in a chain.
"""

from __future__ import annotations

import random

from matpo_gym.data.world import program as p
from matpo_gym.data.world.entities import KINDS
from matpo_gym.data.world.questions.common import (
    HOP,
    Candidate,
    Context,
    Difficulty,
    Template,
    hops_from,
)

_DIFFICULTY: dict[int, Difficulty] = {2: "easy", 3: "medium", 4: "hard"}


def _chain(ctx: Context, rng: random.Random, length: int) -> Candidate | None:
    here = ctx.pick(rng, rng.choice(KINDS))
    expr, phrase, seen = p.entity(here.name), here.name, {here.slug}
    for _ in range(length):
        steps = hops_from(here)
        rng.shuffle(steps)
        for relation in steps:
            nxt = ctx.linked(here, relation)
            if nxt is not None and nxt.slug not in seen:
                break
        else:
            return None
        expr = p.link(expr, relation)
        phrase = HOP[(here.kind, relation)].format(x=phrase)
        seen.add(nxt.slug)
        here = nxt
    wh = "Who" if here.kind == "Person" else "What"
    return Candidate(f"{wh} is {phrase}?", expr, _DIFFICULTY[length])


def two_hops(ctx: Context, rng: random.Random) -> Candidate | None:
    return _chain(ctx, rng, 2)


def three_hops(ctx: Context, rng: random.Random) -> Candidate | None:
    return _chain(ctx, rng, 3)


def four_hops(ctx: Context, rng: random.Random) -> Candidate | None:
    return _chain(ctx, rng, 4)


TEMPLATES: dict[str, tuple[Template, ...]] = {
    "easy": (two_hops,),
    "medium": (three_hops,),
    "hard": (four_hops,),
}
