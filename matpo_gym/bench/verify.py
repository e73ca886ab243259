"""Submission checks: whether a run folder's claimed scores and summary follow from its own records,
so a submitted run can be accepted without trusting the machine that produced it.

``verify_submission`` re-scores every record of a run folder from its prediction and gold answer
with the env's scorer, recomputes the summary, and rejects the run when a claimed score or the
claimed accuracy / n disagree.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from matpo_gym.bench.run_folder import StoreError, load_run_folder
from matpo_gym.bench.summary import ModeSummary, summarize
from matpo_gym.data.tasks import Task
from matpo_gym.scoring.scorers import get_scorer

TOLERANCE = 1e-9
"""Largest difference allowed between a claimed and a recomputed score or accuracy."""


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_submission`: accepted when there is no reason to reject."""

    folder: Path
    reasons: list[str] = field(default_factory=list)
    """Why the submission is rejected (empty when it is accepted)."""
    records_checked: int = 0
    summaries: dict[str, ModeSummary] = field(default_factory=dict)
    """Mode -> the summary recomputed from the re-scored records."""

    @property
    def ok(self) -> bool:
        return not self.reasons

    def format(self, max_reasons: int = 20) -> str:
        """A short human-readable verdict."""
        if self.ok:
            modes = ", ".join(f"{m} n={s.n} accuracy={s.accuracy:.3f}" for m, s in self.summaries.items())
            return f"ACCEPTED {self.folder}: {self.records_checked} records re-scored; {modes}"
        lines = [f"REJECTED {self.folder}: {len(self.reasons)} problem(s)"]
        lines += [f"  - {reason}" for reason in self.reasons[:max_reasons]]
        if len(self.reasons) > max_reasons:
            lines.append(f"  ... and {len(self.reasons) - max_reasons} more")
        return "\n".join(lines)


def _differs(a: Any, b: Any) -> bool:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return True
    return not (math.isfinite(x) and math.isfinite(y)) or abs(x - y) > TOLERANCE


def verify_submission(folder: Path | str) -> VerifyReport:
    """Re-score a run folder's records with its env's scorer and check its claimed summary.

    Raises :class:`StoreError` only when ``folder`` is not a folder at all; anything wrong inside
    it (missing or corrupt files, a score or summary that does not match) is a rejection reason.
    """
    path = Path(folder)
    if not path.is_dir():
        raise StoreError(f"No run folder at {path}." if not path.exists() else f"{path} is not a folder.")
    report = VerifyReport(path)
    reject = report.reasons.append
    try:
        run = load_run_folder(path)
    except StoreError as exc:
        reject(str(exc))
        return report
    judge = run.meta["config"].get("judge")
    if judge or any(r.get("judge") for records in run.records.values() for r in records):
        reject(f"scored by an LLM judge ({judge or 'see the records'}); its verdicts cannot be re-scored offline")
        return report
    if run.scorer is None:
        reject("run.json names no scorer (env_spec.scoring.scorer)")
        return report
    try:
        scorer = get_scorer(run.scorer)
    except KeyError as exc:
        reject(str(exc.args[0]))
        return report

    for mode, records in run.records.items():
        where = f"{mode}.jsonl"
        keys = [str(r["key"]) for r in records]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            reject(f"{where}: key(s) recorded more than once: {', '.join(duplicates[:5])}")
        rescored = []
        for record in records:
            report.records_checked += 1
            label = f"{where} {record['key']}"
            if record.get("mode", mode) != mode:
                reject(f"{label}: the record says mode {record.get('mode')!r}")
            gold = record.get("gold")
            if gold is None:
                reject(f"{label}: no gold answer to re-score against")
                rescored.append({**record, "score": 0.0})
                continue
            prediction = record.get("prediction")
            task = Task(
                id=str(record["task_id"]), question=str(record.get("question") or ""), answer=str(gold),
                family=str(record.get("family") or ""), aliases=tuple(map(str, record.get("aliases") or ())),
            )
            metrics = scorer.score(None if prediction is None else str(prediction), task)
            score = metrics[scorer.primary]
            if _differs(record["score"], score):
                reject(f"{label}: claims score {record['score']!r}, re-scored {score!r} with {scorer.name}")
            claimed_metrics = record.get("metrics") or {}
            for name, value in metrics.items():
                if name in claimed_metrics and _differs(claimed_metrics[name], value):
                    reject(f"{label}: claims {name} {claimed_metrics[name]!r}, re-scored {value!r}")
            rescored.append({**record, "score": score})
        try:
            planned = run.plan(mode)
        except StoreError as exc:
            reject(str(exc))
            planned = None
        report.summaries[mode] = summarize(mode, rescored, planned=planned,
                                           seed=int(run.meta["config"].get("seed") or 0))

    if run.summaries is None:
        reject("no summary.json: the run did not finish")
        return report
    for mode in sorted(set(run.summaries) - set(run.records)):
        reject(f"summary.json reports mode {mode!r} but there is no {mode}.jsonl")
    for mode, recomputed in report.summaries.items():
        claimed = run.summaries.get(mode)
        if claimed is None:
            reject(f"summary.json has no entry for mode {mode!r}")
            continue
        if claimed.get("n") != recomputed.n:
            reject(f"summary.json {mode}: claims n={claimed.get('n')!r}, the run's plan counts {recomputed.n}")
        if _differs(claimed.get("accuracy"), recomputed.accuracy):
            reject(
                f"summary.json {mode}: claims accuracy {claimed.get('accuracy')!r}, "
                f"recomputed {recomputed.accuracy!r}"
            )
    return report


# -- the command ---------------------------------------------------------------------------------


@dataclass
class LeaderboardVerifyConfig:
    """Re-score a submitted run folder and check its claimed summary; exit code 1 if rejected."""

    folder: Path
    """The run folder to check (``<out>/<name>/`` of ``matpo-bench run``)."""


def leaderboard_verify(config: LeaderboardVerifyConfig, *, stream: TextIO | None = None) -> int:
    """``matpo-bench leaderboard verify``: 0 when the submission checks out, 1 when it is rejected."""
    report = verify_submission(config.folder)
    print(report.format(), file=stream or sys.stdout)
    return 0 if report.ok else 1
