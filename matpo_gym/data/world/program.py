"""Answer programs: a JSON-able recipe for computing a question's answer from page facts.

Every world task carries one in ``metadata["program"]``, so an oracle, a checker or a curious
reader can recompute the answer from the pages alone. A program is a tree of dicts keyed by
``"op"``; ``L`` is an infobox row label as shown on the page:

- ``{"op": "entity", "name": N}``: the entity whose page is titled N.
- ``{"op": "attr", "of": E, "attr": L}``: the number or text in row L of E's infobox.
- ``{"op": "link", "of": E, "attr": L}``: the one entity that row L links to.
- ``{"op": "links", "of": E, "attr": L}``: every entity that row L links to.
- ``{"op": "each", "of": LIST, "attr": L}``: row L of every entity in LIST.
- ``{"op": "count", "of": LIST}``: how many entities LIST holds.
- ``{"op": "sum" | "min" | "max", "args": [...]}``: over the numbers given (lists flattened).
- ``{"op": "mean", "args": [...]}``: their mean, an integer by construction.
- ``{"op": "diff", "args": [A, B]}``: A minus B.
- ``{"op": "argmax" | "argmin", "args": [E, ...], "attr": L}``: the entity with the largest
  (smallest) L; values are never tied.

The answer is the result as a string: an integer without separators, a text, or an entity name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Program = dict[str, Any]


class FactSource(Protocol):
    """Infobox rows by entity name; relations come back as the linked entities' names."""

    def value(self, name: str, label: str) -> int | str | tuple[str, ...]: ...


class ProgramError(ValueError):
    """A program that does not fit the facts (missing row, tie, non-integer mean, ...)."""


@dataclass(frozen=True, slots=True)
class Ref:
    """An entity, by name, inside a running program."""

    name: str


Result = int | str | Ref | list[Any]


def entity(name: str) -> Program:
    return {"op": "entity", "name": name}


def attr(of: Program, label: str) -> Program:
    return {"op": "attr", "of": of, "attr": label}


def link(of: Program, label: str) -> Program:
    return {"op": "link", "of": of, "attr": label}


def links(of: Program, label: str) -> Program:
    return {"op": "links", "of": of, "attr": label}


def each(of: Program, label: str) -> Program:
    return {"op": "each", "of": of, "attr": label}


def count(of: Program) -> Program:
    return {"op": "count", "of": of}


def reduce(op: str, *args: Program) -> Program:
    """``sum``, ``min``, ``max``, ``mean`` or ``diff`` over ``args``."""
    return {"op": op, "args": list(args)}


def arg(op: str, label: str, *args: Program) -> Program:
    """``argmax`` or ``argmin`` of row ``label`` over the entities ``args``."""
    return {"op": op, "args": list(args), "attr": label}


class _Run:
    def __init__(self, facts: FactSource) -> None:
        self.facts = facts
        self.read: list[str] = []

    def row(self, ref: Result, label: str) -> int | str | tuple[str, ...]:
        if not isinstance(ref, Ref):
            raise ProgramError(f"row {label!r} asked of a non-entity {ref!r}")
        if ref.name not in self.read:
            self.read.append(ref.name)
        try:
            return self.facts.value(ref.name, label)
        except KeyError:
            raise ProgramError(f"{ref.name!r} has no {label!r} row") from None

    def numbers(self, args: list[Program]) -> list[int]:
        out: list[int] = []
        for a in args:
            value = self.eval(a)
            for v in value if isinstance(value, list) else [value]:
                if not isinstance(v, int):
                    raise ProgramError(f"not a number: {v!r}")
                out.append(v)
        if not out:
            raise ProgramError("no numbers to combine")
        return out

    def eval(self, p: Program) -> Result:
        op = p["op"]
        if op == "entity":
            return Ref(p["name"])
        if op in ("attr", "link", "links"):
            value = self.row(self.eval(p["of"]), p["attr"])
            if op == "attr":
                if isinstance(value, tuple):
                    raise ProgramError(f"row {p['attr']!r} holds links, not a value")
                return value
            if not isinstance(value, tuple):
                raise ProgramError(f"row {p['attr']!r} holds no links")
            if op == "link":
                if len(value) != 1:
                    raise ProgramError(f"row {p['attr']!r} links to {len(value)} entities, not 1")
                return Ref(value[0])
            return [Ref(v) for v in value]
        if op in ("each", "count"):
            refs = self.eval(p["of"])
            if not isinstance(refs, list):
                raise ProgramError(f"{op} needs a list of entities")
            return len(refs) if op == "count" else [self.row(r, p["attr"]) for r in refs]
        if op in ("sum", "min", "max", "mean", "diff"):
            nums = self.numbers(p["args"])
            if op == "diff":
                if len(nums) != 2:
                    raise ProgramError("diff takes two numbers")
                return nums[0] - nums[1]
            if op == "mean":
                if sum(nums) % len(nums):
                    raise ProgramError("mean is not an integer")
                return sum(nums) // len(nums)
            if op == "sum":
                return sum(nums)
            return min(nums) if op == "min" else max(nums)
        if op in ("argmax", "argmin"):
            scored: dict[int, Result] = {}
            for a in p["args"]:
                ref = self.eval(a)
                value = self.row(ref, p["attr"])
                if not isinstance(value, int) or value in scored:
                    raise ProgramError(f"{op} over a tied or non-numeric {p['attr']!r}")
                scored[value] = ref
            return scored[max(scored) if op == "argmax" else min(scored)]
        raise ProgramError(f"unknown op {op!r}")


def run(program: Program, facts: FactSource) -> tuple[str, list[str]]:
    """The answer, and the names of the entities whose pages it reads, in reading order."""
    r = _Run(facts)
    result = r.eval(program)
    if isinstance(result, list):
        raise ProgramError("a program must end in one value, not a list")
    return (result.name if isinstance(result, Ref) else str(result)), r.read
