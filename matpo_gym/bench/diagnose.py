"""Where episodes fail: finding the fact, a worker reporting it, the planner relaying it, or a limit.

Computed from evaluation records (each holds its episode's trajectories), so a report can say why
one method scores below another, not only that it does. Every rate is a share of episodes except
``worker_stopped``, a share of worker trajectories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Breakdown:
    """One model's episodes, stage by stage."""

    episodes: int
    accuracy: float
    read_gold: float
    """The gold answer appeared in a search or browse result the agent (or one of its workers) read."""
    reported_gold: float
    """Planner + worker: a worker's report to the planner stated the gold answer (NaN for a single agent)."""
    relayed: float
    """Planner + worker: of the episodes whose reports stated the gold answer, the share the planner
    answered correctly (NaN for a single agent, or when no report stated it): the planner copies the
    answer a second time, and can lose it there."""
    answered: float
    """The episode ended with an answer, not at a turn or context limit."""
    model_calls: float
    """Mean generated turns per episode, every role counted."""
    workers: float
    worker_stopped: float
    """Share of workers that ended at their turn or context limit instead of with a report."""
    truncations: float
    """Mean context truncations per episode."""

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def mentions(text: str, answer: str) -> bool:
    """Whether ``text`` states ``answer`` as a whole token (case-insensitive): "55" is not in "1955".

    >>> mentions("Employees: 55 (source)", "55"), mentions("Founded: 1955", "55")
    (True, False)
    """
    if not answer.strip():
        return False
    pattern = rf"(?<![\w.]){re.escape(answer.strip())}(?![\w]|\.\d)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def _tool_texts(trajectory: Mapping[str, Any], names: Iterable[str] | None = None) -> list[str]:
    wanted = set(names) if names is not None else None
    return [m["content"] for m in trajectory.get("messages", [])
            if m.get("role") == "tool" and (wanted is None or m.get("name") in wanted)]


def breakdown(records: list[Mapping[str, Any]]) -> Breakdown:
    """The stages of ``records`` (evaluation records of one model, one mode)."""
    if not records:
        nan = float("nan")
        return Breakdown(0, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    read = reported = relayed = calls = workers = stopped = 0
    has_workers = False
    for record in records:
        gold = str(record.get("gold", ""))
        trajectories = record.get("trajectories", [])
        researchers = [t for t in trajectories if t.get("role") in ("single", "worker")]
        planners = [t for t in trajectories if t.get("role") == "planner"]
        read += any(mentions(text, gold) for t in researchers for text in _tool_texts(t, ("search", "browse")))
        if planners:
            has_workers = True
            told = any(mentions(text, gold) for t in planners for text in _tool_texts(t, ("worker",)))
            reported += told
            relayed += told and float(record["score"]) >= 1.0
        calls += sum(1 for t in trajectories for m in t.get("messages", []) if m.get("role") == "assistant")
        spawned = [t for t in trajectories if t.get("role") == "worker"]
        workers += len(spawned)
        stopped += sum(1 for t in spawned if t.get("stop_reason") != "answer")
    n = len(records)
    return Breakdown(
        episodes=n,
        accuracy=sum(float(r["score"]) for r in records) / n,
        read_gold=read / n,
        reported_gold=reported / n if has_workers else float("nan"),
        relayed=relayed / reported if reported else float("nan"),
        answered=sum(r.get("stop_reason") == "answer" for r in records) / n,
        model_calls=calls / n,
        workers=workers / n,
        worker_stopped=stopped / workers if workers else float("nan"),
        truncations=sum(r["stats"]["context_truncations"] for r in records) / n,
    )


__all__ = ["Breakdown", "breakdown", "mentions"]
