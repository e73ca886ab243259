"""Replicate runs of one reproduction, pooled: RL's change of the sampled held-out reward over the
warm start, per run and over all of them.

Three seeds of a small preset can favour either method by chance: two runs of the cpu preset (at
different generation caps) favoured one method each. Pooling replicates (the same settings, another
``--out`` each: another machine, precision or draw) says which differences survive. Each change
pairs a question with itself, so the spread between easy and hard questions drops out; MATPO's
change minus GRPO's is taken per (run, seed, question), so it compares the methods on the same
questions too.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from matpo_gym.bench.reproduce import SAMPLED, Model, cell_records_file
from matpo_gym.bench.reproduce_config import METHODS, RUN_ONLY, ReproduceConfig, from_manifest
from matpo_gym.bench.results import question_changes, read_jsonl
from matpo_gym.bench.stats import mean_ci
from matpo_gym.config import ConfigError

EVALUATION_GRID = ("noise_rates", "context_sweep")
"""Settings a replicate may differ in: cells beyond the main table and the sampled cell, which
RL and the pooled change never read."""

def replicate_config(config: ReproduceConfig, out: Path) -> ReproduceConfig:
    """The settings the run in ``out`` was made with, refused unless they are ``config``'s (but
    for :data:`EVALUATION_GRID` and how each run computed)."""
    if out.resolve() == config.out.resolve():
        raise ConfigError(f"--replicates names the run itself ({out}); name other runs' folders.")
    other = from_manifest(replace(config, out=out, report_only=True))
    differ = sorted(f.name for f in fields(config) if f.name not in RUN_ONLY + EVALUATION_GRID
                    and getattr(other, f.name) != getattr(config, f.name))
    if differ:
        raise ConfigError(f"{out} is not a replicate of {config.out}: its settings differ in {', '.join(differ)}.")
    return other


def _question_changes(out: Path, method: str, seed: int) -> dict[str, float]:
    """Per question of ``seed``'s sampled cell: the trained model's mean score minus the warm start's."""
    mode = METHODS[method]

    def played(who: str) -> list[dict[str, Any]]:
        return read_jsonl(cell_records_file(out, Model(who, mode, seed, out), SAMPLED, 0.0))[0]

    return question_changes(played(method), played("sft"))


def run_changes(config: ReproduceConfig) -> dict[str, list[float]]:
    """Each method's per (seed, question) change, and MATPO's minus GRPO's on the questions both
    have, in seed order (a seed not evaluated yet adds nothing)."""
    changes: dict[str, list[float]] = {"grpo": [], "matpo": [], "matpo - grpo": []}
    for seed in config.seeds:
        grpo, matpo = (_question_changes(config.out, method, seed) for method in ("grpo", "matpo"))
        changes["grpo"] += [grpo[q] for q in sorted(grpo)]
        changes["matpo"] += [matpo[q] for q in sorted(matpo)]
        changes["matpo - grpo"] += [matpo[q] - grpo[q] for q in sorted(grpo.keys() & matpo.keys())]
    return changes


def _precisions(out: Path) -> str:
    path = out / "machines.json"
    machines = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    return ", ".join(dict.fromkeys(m.get("precision", "unrecorded").split(" (")[0] for m in machines)) or "unrecorded"


def replicates(config: ReproduceConfig) -> list[dict[str, Any]]:
    """One row per run (this one first, then ``config.replicates``), then, with replicates, the
    pooled row: each method's change with its 95% bootstrap interval, and MATPO's minus GRPO's."""
    runs = [config] + [replicate_config(config, Path(out)) for out in config.replicates]
    rows, pooled = [], {key: [] for key in ("grpo", "matpo", "matpo - grpo")}
    for run in runs:
        changes = run_changes(run)
        rows.append({"run": str(run.out), "precision": _precisions(run.out),
                     **{key: mean_ci(values)._asdict() for key, values in changes.items()}})
        for key, values in changes.items():
            pooled[key] += values
    if len(runs) > 1:
        rows.append({"run": f"all {len(runs)} runs", "precision": "",
                     **{key: mean_ci(values)._asdict() for key, values in pooled.items()}})
    return rows


__all__ = ["EVALUATION_GRID", "replicate_config", "replicates", "run_changes"]
