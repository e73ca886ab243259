"""The MATPO evaluation protocol: repeats, pass@k, outcome accounting and per-category accuracy.

Every figure is over the *planned* episodes, one per (question, sample): an episode that crashed,
timed out, hit a limit or has no record at all still counts, as a wrong answer, so a policy cannot
look better by failing. Questions are the independent units: pass@1 is the mean over questions of
(correct samples / samples), and intervals are percentile bootstraps over questions.

>>> pass_at_k([1, 0, 0, 0], 2)  # 1 - C(3, 2) / C(4, 2)
0.5
>>> pass_ks(8), pass_ks(3)
([1, 2, 4, 8], [1, 2, 3])
>>> record_categories({"family": "gaia", "task_metadata": {"level": 2}})
['level 2']
>>> sum_counters([{"a": 1, "b": {"c": 2}, "e": [1, 2]}, {"a": 3, "b": {"c": 1, "d": 4}}])
{'a': 4, 'b': {'c': 3, 'd': 4}, 'e': 2}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from matpo_gym.bench.stats import mean_ci

OUTCOMES = ("answered", "no_answer", "turn_limit", "context_limit", "error", "missing")
"""How a planned episode ended; ``missing`` is planned but never recorded (the run stopped)."""

_DIFFICULTY_ORDER = {"easy": 0, "medium": 1, "hard": 2}


@dataclass(frozen=True)
class PlannedEpisode:
    """One (question, sample) the protocol counts, whether or not it produced a record."""

    key: str
    task_id: str
    family: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


def complete_records(
    records: Sequence[Mapping[str, Any]], planned: Sequence[PlannedEpisode]
) -> list[dict[str, Any]]:
    """The records of the planned episodes in plan order; a missing one becomes a zero-score record.

    Records of episodes outside the plan (e.g. from an earlier run with a larger limit) are left
    out, so the denominator is exactly the plan.
    """
    by_key = {str(r["key"]): r for r in records}
    out: list[dict[str, Any]] = []
    for episode in planned:
        record = by_key.get(episode.key)
        if record is None:
            record = {
                "key": episode.key, "task_id": episode.task_id, "family": episode.family,
                "task_metadata": dict(episode.metadata), "prediction": None, "score": 0.0,
                "reward": 0.0, "stop_reason": "missing", "turns": 0, "stats": {},
            }
        out.append(dict(record))
    return out


def outcome(record: Mapping[str, Any]) -> str:
    """The bucket of :data:`OUTCOMES` an episode falls in; an unknown stop reason keeps its name."""
    reason = str(record.get("stop_reason") or "")
    if reason == "answer":
        prediction = record.get("prediction")
        return "answered" if prediction is not None and str(prediction).strip() else "no_answer"
    if reason in ("", "no_summary", "no_answer"):
        return "no_answer"
    if reason in ("context", "context_limit"):
        return "context_limit"
    return reason


def outcome_counts(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Episodes per outcome: every name of :data:`OUTCOMES`, then any other stop reason."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for record in records:
        name = outcome(record)
        counts[name] = counts.get(name, 0) + 1
    return counts


def pass_at_k(scores: Sequence[float], k: int) -> float:
    """Unbiased pass@k of one question from its ``n`` sample scores: ``1 - C(n-c, k) / C(n, k)``.

    Written as the expected best score of ``k`` samples drawn without replacement (sorted
    ascending, sample ``i`` is the best with probability ``C(i-1, k-1) / C(n, k)``), which is the
    closed form above for 0/1 scores and stays meaningful for partial credit (F1).
    """
    n = len(scores)
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= samples ({n})")
    ordered = sorted(float(s) for s in scores)
    total = math.comb(n, k)
    return sum(s * math.comb(i, k - 1) for i, s in enumerate(ordered) if i >= k - 1) / total


def pass_ks(samples: int) -> list[int]:
    """The k reported for ``samples`` per question: powers of two up to it, and ``samples``."""
    ks = [1 << e for e in range(samples.bit_length()) if 1 << e <= samples]
    return ks + [samples] if samples >= 1 and ks[-1] != samples else ks


def question_groups(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Records per question (``task_id``), in first-seen order."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(str(record["task_id"]), []).append(record)
    return groups


def _number(x: float) -> float | None:
    return None if math.isnan(x) else x


def interval(values: Sequence[float], *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """``{"n", "mean", "low", "high"}`` of ``values`` with a 95% bootstrap interval (JSON-ready)."""
    stat = mean_ci(values, resamples=resamples, seed=seed)
    return {
        "n": stat.n, "mean": _number(stat.mean),
        "low": _number(stat.low), "high": _number(stat.high),
    }


def pass_at_k_table(
    groups: Mapping[str, Sequence[Mapping[str, Any]]], *, resamples: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """``{"1": interval, "2": ...}``: pass@k averaged over questions, k up to the fewest samples."""
    if not groups:
        return {}
    scores = [[float(r["score"]) for r in group] for group in groups.values()]
    fewest = min(len(s) for s in scores)
    return {
        str(k): interval([pass_at_k(s, k) for s in scores], resamples=resamples, seed=seed)
        for k in pass_ks(fewest)
    }


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split("|") if part.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return []


def record_categories(record: Mapping[str, Any]) -> list[str]:
    """The categories the authors of each benchmark report accuracy by; a question may have several.

    GAIA: ``level N``; FRAMES: each reasoning type; WebWalkerQA: ``type/difficulty``; the offline
    world: ``family/difficulty``; anything else: its family.
    """
    meta = record.get("task_metadata") or {}
    family = str(record.get("family") or "") or "unknown"
    level = meta.get("level", meta.get("Level"))
    if level is not None and str(level).strip():
        return [f"level {level}"]
    types = list(dict.fromkeys(_as_list(meta.get("reasoning_types"))))
    if types:
        return types
    if "difficulty_level" in meta:
        kind = str(meta.get("type") or "").strip() or "unknown"
        return [f"{kind}/{str(meta.get('difficulty_level') or '').strip() or 'unknown'}"]
    difficulty = str(meta.get("difficulty") or "").strip()
    return [f"{family}/{difficulty}" if difficulty else family]


def _category_order(label: str) -> tuple[Any, ...]:
    return tuple((_DIFFICULTY_ORDER.get(part, 3), part) for part in label.split("/"))


def category_breakdown(
    groups: Mapping[str, Sequence[Mapping[str, Any]]], *, resamples: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Per category: questions, episodes, mean pass@1 and its 95% bootstrap interval."""
    members: dict[str, list[Sequence[Mapping[str, Any]]]] = {}
    for group in groups.values():
        for label in record_categories(group[0]):
            members.setdefault(label, []).append(group)
    out = {}
    for label in sorted(members, key=_category_order):
        stat = interval([pass_at_k([float(r["score"]) for r in g], 1) for g in members[label]],
                        resamples=resamples, seed=seed)
        out[label] = {
            "questions": stat["n"], "episodes": sum(len(g) for g in members[label]),
            "accuracy": stat["mean"], "ci_low": stat["low"], "ci_high": stat["high"],
        }
    return out


def sum_counters(stats: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Every numeric leaf of the per-episode ``stats`` summed, nested tables kept, lists counted.

    Generic on purpose: a counter someone adds to the episode stats shows up without a change here.
    """
    total: dict[str, Any] = {}
    for item in stats:
        _add_counters(total, item)
    return total


def _add_counters(total: dict[str, Any], item: Mapping[str, Any]) -> None:
    for key, value in item.items():
        if isinstance(value, Mapping):
            inner = total.setdefault(key, {})
            if isinstance(inner, dict):
                _add_counters(inner, value)
            continue
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, (list, tuple)):
            value = len(value)
        elif not isinstance(value, (int, float)):
            continue
        current = total.get(key, 0)
        if isinstance(current, (int, float)):
            total[key] = current + value
