"""Aggregating per-episode records into per-mode summaries and printed tables.

The figures follow :mod:`matpo_gym.bench.protocol`: given the plan, every planned (question,
sample) is in the denominator, and accuracy is the mean pass@1 over questions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from matpo_gym.bench.protocol import (
    PlannedEpisode,
    category_breakdown,
    complete_records,
    interval,
    outcome_counts,
    pass_at_k_table,
    question_groups,
    sum_counters,
)


@dataclass(frozen=True)
class ModeSummary:
    """Aggregate figures of one mode of a run."""

    mode: str
    n: int
    """Episodes in the denominator: every planned (question, sample)."""
    accuracy: float
    """Mean pass@1 over questions; failed, crashed and missing episodes count as 0."""
    accuracy_ci95: float
    """Half-width of the normal-approximation 95% interval over episodes (the leaderboard's ±)."""
    mean_reward: float
    answered: float
    """Fraction of episodes that ended with a non-empty answer."""
    mean_turns: float
    mean_workers: float
    tool_calls: int
    tool_errors: int
    noise_events: int
    context_truncations: int
    errors: int
    questions: int = 0
    samples: int = 0
    """Samples per question (the fewest, when questions differ)."""
    ci_low: float | None = None
    """Lower end of the 95% percentile-bootstrap interval of ``accuracy`` over questions."""
    ci_high: float | None = None
    pass_at_k: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``{"k": {"n", "mean", "low", "high"}}`` for k = 1, 2, 4, ... up to ``samples``."""
    outcomes: dict[str, int] = field(default_factory=dict)
    """Episodes per outcome: answered, no_answer, turn_limit, context_limit, error, missing."""
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per benchmark category: questions, episodes, accuracy, ci_low, ci_high."""
    stats_totals: dict[str, Any] = field(default_factory=dict)
    """Every numeric counter of the episodes' ``stats`` summed (lists counted)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    mode: str,
    records: Sequence[Mapping[str, Any]],
    *,
    planned: Sequence[PlannedEpisode] | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> ModeSummary:
    """Summarise ``records``; with ``planned``, exactly the planned episodes (missing ones as 0)."""
    rows: Sequence[Mapping[str, Any]] = (
        records if planned is None else complete_records(records, planned)
    )
    n = len(rows)

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return sum(values) / len(values) if values else 0.0

    groups = question_groups(rows)
    table = pass_at_k_table(groups, resamples=resamples, seed=seed)
    first = table.get("1") or interval([])
    accuracy = first["mean"] if first["mean"] is not None else 0.0
    ci = 1.96 * math.sqrt(accuracy * (1 - accuracy) / n) if n else 0.0
    stats = [_stats(r) for r in rows]
    outcomes = outcome_counts(rows)
    return ModeSummary(
        mode=mode,
        n=n,
        accuracy=accuracy,
        accuracy_ci95=ci,
        mean_reward=mean(float(r["reward"]) for r in rows),
        answered=outcomes["answered"] / n if n else 0.0,
        mean_turns=mean(float(r["turns"]) for r in rows),
        mean_workers=mean(float(s.get("workers_spawned", 0)) for s in stats),
        tool_calls=sum(s.get("tool_calls", 0) for s in stats),
        tool_errors=sum(s.get("tool_errors", 0) for s in stats),
        noise_events=sum(len(s.get("noise_events", ())) for s in stats),
        context_truncations=sum(s.get("context_truncations", 0) for s in stats),
        errors=outcomes["error"],
        questions=len(groups),
        samples=min((len(g) for g in groups.values()), default=0),
        ci_low=first["low"],
        ci_high=first["high"],
        pass_at_k=table,
        outcomes=outcomes,
        categories=category_breakdown(groups, resamples=resamples, seed=seed),
        stats_totals=sum_counters(stats),
    )


def _stats(record: Mapping[str, Any]) -> Mapping[str, Any]:
    stats = record["stats"]
    if not isinstance(stats, Mapping):
        raise TypeError(f"stats of {record.get('key')!r} is a {type(stats).__name__}, not a table")
    return stats


def _interval_text(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return "-"
    if low is None or high is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def format_table(summaries: Sequence[ModeSummary]) -> str:
    """A fixed-width table for the terminal: accuracy (mean pass@1) with its interval, pass@k,
    then how the episodes ended and the main counters."""
    ks = sorted({int(k) for s in summaries for k in s.pass_at_k if k != "1"})
    header = (
        f"{'mode':<8} {'n':>5} {'q x s':>9} {'accuracy [95% CI]':>23}"
        + "".join(f" {f'pass@{k}':>7}" for k in ks)
        + f" {'answered':>8} {'no ans':>6} {'turn lim':>8} {'ctx lim':>7} {'error':>5}"
        f" {'turns':>6} {'workers':>7} {'tool err':>8} {'noise':>5} {'cut':>4}"
    )
    lines = [header, "-" * len(header)]
    for s in summaries:
        acc = _interval_text(s.accuracy if s.n else None, s.ci_low, s.ci_high)
        passes = "".join(
            f" {s.pass_at_k[str(k)]['mean']:>7.3f}" if str(k) in s.pass_at_k else f" {'-':>7}"
            for k in ks
        )
        o = s.outcomes
        lines.append(
            f"{s.mode:<8} {s.n:>5} {f'{s.questions}x{s.samples}':>9} {acc:>23}{passes}"
            f" {o.get('answered', 0):>8} {o.get('no_answer', 0) + o.get('missing', 0):>6}"
            f" {o.get('turn_limit', 0):>8} {o.get('context_limit', 0):>7} {o.get('error', 0):>5}"
            f" {s.mean_turns:>6.1f} {s.mean_workers:>7.2f} {s.tool_errors:>8} {s.noise_events:>5}"
            f" {s.context_truncations:>4}"
        )
    return "\n".join(lines)


def format_categories(summaries: Sequence[ModeSummary]) -> str:
    """Accuracy per benchmark category (rows) and mode (columns); empty with a single category."""
    labels = list(dict.fromkeys(label for s in summaries for label in s.categories))
    if len(labels) < 2:
        return ""
    width = max(len("category"), *(len(label) for label in labels))
    cells = {
        (s.mode, label):
            f"{_interval_text(c['accuracy'], c['ci_low'], c['ci_high'])} ({c['questions']})"
        for s in summaries for label, c in s.categories.items()
    }
    column = max(23, *(len(text) for text in cells.values()))
    header = f"{'category':<{width}}" + "".join(f" {s.mode:>{column}}" for s in summaries)
    lines = [header, "-" * len(header)]
    for label in labels:
        row = "".join(f" {cells.get((s.mode, label), '-'):>{column}}" for s in summaries)
        lines.append(f"{label:<{width}}{row}")
    return "\n".join(lines)
