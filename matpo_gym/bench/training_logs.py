"""Figures of the RL runs' own logs (``metrics.jsonl``): learning curves, stability, budget, and
what training changed on the held-out questions.

Curves are bootstrapped over seeds (one value per seed and step). The held-out change pairs each
question's score at step 0 with its score after the last step, in the same run, so the interval
is over questions (pooled over seeds) and the question-to-question spread cancels out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from matpo_gym.bench.stats import mean_ci

COLLAPSE_DROP = 0.5
"""A run collapsed when its smoothed reward ends below this fraction of its peak."""

HELD_OUT = {"eval": "greedy", "eval_sampled": "sampled"}
"""Prefix of the trainer's held-out figures -> how the policy chose its tokens."""


def curves(logs: Sequence[list[dict[str, Any]]], key: str) -> list[dict[str, float]]:
    """Per step: mean of ``key`` over the seeds' logs that have it, with a 95% bootstrap interval."""
    by_step: dict[int, list[float]] = {}
    for rows in logs:
        for row in rows:
            value = row.get(key)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                by_step.setdefault(int(row["step"]), []).append(float(value))
    return [{"step": step, **mean_ci(by_step[step])._asdict()} for step in sorted(by_step)]


def stability(rows: list[dict[str, Any]], algo: str, seed: int, planned: int) -> dict[str, Any]:
    """Peak and final training reward (moving average of 3 steps), whether the run collapsed, and
    what it had to learn from: the share of its episodes answered correctly, and of its trajectories
    with a nonzero advantage (a group whose episodes all score alike teaches nothing). Whether a
    run collapsed is judged only once it has trained its ``planned`` steps."""
    steps = [r for r in rows if "reward" in r]
    rewards = [float(r["reward"]) for r in steps]
    if not rewards:
        return {"algo": algo, "seed": seed, "steps": 0, "peak": None, "final": None, "collapsed": None,
                "accuracy": None, "signal": None}
    smooth = [sum(rewards[max(0, i - 2): i + 1]) / len(rewards[max(0, i - 2): i + 1]) for i in range(len(rewards))]
    peak, final = max(smooth), smooth[-1]
    collapsed = peak > 0 and final < COLLAPSE_DROP * peak if len(rewards) >= planned else None

    def average(key: str) -> float | None:
        values = [float(r[key]) for r in steps if key in r]
        return sum(values) / len(values) if values else None

    return {"algo": algo, "seed": seed, "steps": len(rewards), "peak": peak, "final": final, "collapsed": collapsed,
            "accuracy": average("accuracy"), "signal": average("nonzero_advantage")}


def budget(logs: Sequence[list[dict[str, Any]]]) -> dict[str, float]:
    """What a method actually consumed over its seeds' logs: steps, generated tokens, seconds
    (rollouts, updates and the learning-curve evaluations, step 0's included)."""
    rows = [r for seed_rows in logs for r in seed_rows if "reward" in r]
    evaluations = sum(r.get("eval_seconds", 0) for seed_rows in logs for r in seed_rows)
    return {
        "steps": len(rows),
        "generated_tokens": sum(r.get("generated_tokens", 0) for r in rows),
        "trained_tokens": sum(r.get("trained_tokens", 0) for r in rows),
        "seconds": sum(r.get("rollout_seconds", 0) + r.get("update_seconds", 0) for r in rows) + evaluations,
        "context_truncations": sum(r.get("context_truncations", 0) for r in rows),
    }


def held_out_change(logs: Sequence[list[dict[str, Any]]], planned: int) -> dict[str, dict[str, Any]]:
    """Per decoding (greedy, sampled): held-out score before RL, after it, and the paired change.

    Uses each run's evaluations at step 0 and at its ``planned`` last step; runs without both
    (logs that predate per-question scores, a run not yet trained to the end) are left out and
    ``runs`` says how many counted.
    """
    result: dict[str, dict[str, Any]] = {}
    for prefix, decoding in HELD_OUT.items():
        key = f"{prefix}_question_scores"
        before: list[float] = []
        after: list[float] = []
        runs = 0
        for rows in logs:
            evaluated = [r for r in rows if r.get(key)]
            if len(evaluated) < 2 or evaluated[0]["step"] != 0 or evaluated[-1]["step"] != planned:
                continue
            first, last = evaluated[0][key], evaluated[-1][key]
            if len(first) != len(last):
                continue
            runs += 1
            before += first
            after += last
        change = [b - a for a, b in zip(before, after)]
        result[decoding] = {
            "runs": runs,
            "final_step": planned,
            **{name: mean_ci(values)._asdict() for name, values in
               (("before", before), ("after", after), ("change", change))},
        }
    return result


__all__ = ["COLLAPSE_DROP", "budget", "curves", "held_out_change", "stability"]
