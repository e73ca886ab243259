"""Aggregating per-question records into per-mode summaries and a printed table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModeSummary:
    """Aggregate figures of one mode of a run."""

    mode: str
    n: int
    accuracy: float
    """Mean score; failed and crashed episodes count as 0."""
    accuracy_ci95: float
    """Half-width of the normal-approximation 95% interval of the accuracy."""
    mean_reward: float
    answered: float
    """Fraction of episodes that ended with an answer."""
    mean_turns: float
    mean_workers: float
    tool_calls: int
    tool_errors: int
    noise_events: int
    context_truncations: int
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(mode: str, records: Sequence[dict[str, Any]]) -> ModeSummary:
    n = len(records)

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return sum(values) / len(values) if values else 0.0

    scores = [float(r["score"]) for r in records]
    accuracy = mean(scores)
    ci = 1.96 * math.sqrt(accuracy * (1 - accuracy) / n) if n else 0.0
    stats = [r["stats"] for r in records]
    return ModeSummary(
        mode=mode,
        n=n,
        accuracy=accuracy,
        accuracy_ci95=ci,
        mean_reward=mean(float(r["reward"]) for r in records),
        answered=mean(float(r["stop_reason"] == "answer") for r in records),
        mean_turns=mean(float(r["turns"]) for r in records),
        mean_workers=mean(float(s["workers_spawned"]) for s in stats),
        tool_calls=sum(s["tool_calls"] for s in stats),
        tool_errors=sum(s["tool_errors"] for s in stats),
        noise_events=sum(len(s["noise_events"]) for s in stats),
        context_truncations=sum(s["context_truncations"] for s in stats),
        errors=sum(r["stop_reason"] == "error" for r in records),
    )


def format_table(summaries: Sequence[ModeSummary]) -> str:
    """A fixed-width table for the terminal."""
    header = f"{'mode':<8} {'n':>5} {'accuracy':>15} {'answered':>9} {'turns':>6} {'workers':>8} {'tool err':>9} {'noise':>6} {'cut':>5}"
    lines = [header, "-" * len(header)]
    for s in summaries:
        acc = f"{s.accuracy:.3f} ± {s.accuracy_ci95:.3f}"
        lines.append(
            f"{s.mode:<8} {s.n:>5} {acc:>15} {s.answered:>9.2f} {s.mean_turns:>6.1f} "
            f"{s.mean_workers:>8.2f} {s.tool_errors:>9} {s.noise_events:>6} {s.context_truncations:>5}"
        )
    return "\n".join(lines)
