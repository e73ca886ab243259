"""Every number of the ``matpo-bench reproduce`` report, computed only from the records its
stages wrote: evaluation records per cell, the trainers' ``metrics.jsonl`` and the run manifest.

Accuracies are bootstrapped over the evaluated episodes (questions x seeds); a change between two
models on the same questions is bootstrapped over those questions, each its own control.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from matpo_gym.bench.diagnose import breakdown
from matpo_gym.bench.reproduce import (
    SAMPLED,
    SFT_SEED,
    Model,
    cell_complete,
    cell_records_file,
    evaluation_plan,
    model_plan,
    sft_seeds,
    sweep_label,
)
from matpo_gym.bench.reproduce_config import METHODS, ReproduceConfig, load_manifest
from matpo_gym.bench.reproduce_replicates import replicates
from matpo_gym.bench.results import question_changes, read_jsonl
from matpo_gym.bench.stats import mean_ci
from matpo_gym.bench.training_logs import budget, curves, held_out_change, stability

ROWS = (("sft", "single"), ("sft", "matpo"), ("grpo", "single"), ("matpo", "matpo"))
"""Report rows: the shared warm start in both modes, then the two trained methods."""
LABELS = {("sft", "single"): "SFT warm start, single agent", ("sft", "matpo"): "SFT warm start, planner + worker",
          ("grpo", "single"): "GRPO (single agent)", ("matpo", "matpo"): "MATPO (planner + worker)"}
CURVES = {"reward": "training reward", "eval_accuracy": "held-out accuracy, greedy",
          "eval_sampled_accuracy": "held-out accuracy, sampled"}
"""Learning-curve metrics of the trainers' logs -> panel title."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """Accuracy of one (method, mode) on one evaluation cell, pooled over seeds."""

    n: int
    accuracy: float
    low: float
    high: float
    truncations: float
    """Context truncations per episode."""
    limit_stops: float = math.nan
    """Roles per episode stopped (or, a worker, asked for its summary) at a context limit."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _records(path: Path) -> list[dict[str, Any]]:
    """A records file's complete lines: a report of a run cut short mid-write still builds (the
    rerun that finishes the run repairs the file), with a warning that says which file was cut."""
    records, cut = read_jsonl(path)
    if cut:
        log.warning("%s: a line does not parse (a write cut short?); the report counts its %d complete records, "
                    "and rerunning the same reproduce command replays the missing ones", path, len(records))
    return records


def cell_files(out: Path, method: str, mode: str, seeds: Sequence[int], label: str, rate: float) -> list[Path]:
    """The records file of every seed's run of this cell."""
    return [cell_records_file(out, Model(method, mode, seed, out), label, rate) for seed in seeds]


def cell(records: Sequence[dict[str, Any]]) -> Cell:
    """Accuracy and truncations of one cell's records, pooled over seeds."""
    scores = [float(r["score"]) for r in records]
    if not scores:
        return Cell(0, math.nan, math.nan, math.nan, math.nan)
    ci = mean_ci(scores)
    truncations = sum(r["stats"]["context_truncations"] for r in records) / len(records)
    stops = sum(r["stats"].get("context_limit_stops", 0) for r in records) / len(records)
    return Cell(ci.n, ci.mean, ci.low, ci.high, truncations, stops)


def paired_change(pairs: Iterable[tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]]]]) -> dict[str, Any]:
    """Mean per-question score of the treated records minus that of the reference ones, over the
    questions both played in each (treated, reference) pair (one pair per seed, whose questions
    differ), with a 95% bootstrap interval over those (seed, question) pairs: each question is its
    own control, so the spread between easy and hard questions drops out. ``paired_seeds`` counts
    the pairs that had a question in common."""
    differences, paired = [], 0
    for treated, reference in pairs:
        changes = question_changes(treated, reference)
        differences += [changes[q] for q in sorted(changes)]
        paired += bool(changes)
    return {**mean_ci(differences)._asdict(), "paired_seeds": paired}


def _seeds(method: str, seeds: Sequence[int], label: str) -> Sequence[int]:
    """The seeds a cell was evaluated under: the warm start's only under :data:`SFT_SEED`, except
    the sampled cell (see :func:`~matpo_gym.bench.reproduce.sft_seeds`)."""
    if method != "sft":
        return seeds
    return sft_seeds(seeds) if label == SAMPLED else (SFT_SEED,)


def relative_gain(matpo: float, grpo: float) -> float:
    """(MATPO - GRPO) / GRPO, as the paper reports it per benchmark; NaN when GRPO scored 0. (The
    paper's average is the mean of the per-benchmark gains; the report's average column is the
    gain of the average accuracies, as its table says.)"""
    if math.isnan(matpo) or math.isnan(grpo) or grpo == 0:
        return math.nan
    return (matpo - grpo) / grpo


def compute_seconds(sft_log: list[dict[str, Any]], budgets: dict[str, dict[str, float]],
                    evaluation_runs: Iterable[float]) -> dict[str, float]:
    """Seconds each stage computed, summed from its own logs (so a resumed run counts every part);
    ``evaluation_runs`` holds each evaluation run's seconds (its records' largest)."""
    sft = sum(float(r.get("seconds", 0)) for r in sft_log)
    return {"sft": sft, **{algo: b["seconds"] for algo, b in budgets.items()}, "evaluation": sum(evaluation_runs)}


def progress(config: ReproduceConfig, sft_logs: list[list[dict[str, Any]]],
             logs: dict[str, list[list[dict[str, Any]]]]) -> dict[str, list[int]]:
    """[done, planned] of every stage, so a report of a run cut short says what it is missing."""
    done = {"sft steps": [min(len(sft_logs[0]), config.sft_steps), config.sft_steps]}
    if config.sft_tune_steps:
        done["sft second stage steps"] = [min(len(sft_logs[1]), config.sft_tune_steps), config.sft_tune_steps]
    for algo, runs in logs.items():
        steps = sum(len([r for r in rows if "reward" in r]) for rows in runs)
        done[f"{algo} steps"] = [steps, config.rl_steps * len(config.seeds)]
    models = [Model(*key, config.out) for key in model_plan(config)]
    cells = [(m, label, rate) for m in models for tier in evaluation_plan(config, m.method, m.seed)
             for label, rate in tier]
    done["evaluation cells"] = [sum(cell_complete(config, *c) for c in cells), len(cells)]
    return done


def collect(config: ReproduceConfig) -> dict[str, Any]:
    """Every number of the report, from the run folder's records (each file parsed once; the
    progress count only counts an evaluation cell's lines)."""
    out, seeds = config.out, config.seeds
    families = list(config.eval_families)
    diagnosed = {(m, mode, label, 0.0) for m, mode in ROWS for label in (families[0], SAMPLED)}
    records: dict[tuple[str, str, str, float], list[dict[str, Any]]] = {}  # only the diagnosed cells'
    cells: dict[tuple[str, str, str, float], dict[str, Any]] = {}
    run_seconds: dict[Path, float] = {}
    """Each evaluation run file read so far -> the largest ``seconds`` of its records."""
    sampled_files: dict[Path, list[dict[str, Any]]] = {}
    """The sampled cells' records by file: RL's change pairs them seed by seed."""

    def read(method: str, mode: str, label: str, rate: float) -> list[dict[str, Any]]:
        key = (method, mode, label, rate)
        if key in records:
            return records[key]
        found: list[dict[str, Any]] = []
        for path in cell_files(out, method, mode, _seeds(method, seeds, label), label, rate):
            part = _records(path)
            run_seconds[path] = max((float(r.get("seconds", 0)) for r in part), default=0.0)
            if label == SAMPLED:
                sampled_files[path] = part
            found += part
        if key in diagnosed:
            records[key] = found
        return found

    def pooled(method: str, mode: str, label: str, rate: float) -> dict[str, Any]:
        key = (method, mode, label, rate)
        if key not in cells:
            cells[key] = cell(read(*key)).to_dict()
        return cells[key]

    table: dict[str, dict[str, Any]] = {}
    for method, mode in ROWS:
        row: dict[str, Any] = {f: pooled(method, mode, f, 0.0) for f in families}
        accuracies = [c["accuracy"] for c in row.values() if c["n"]]
        row["average"] = sum(accuracies) / len(accuracies) if accuracies else math.nan
        table[f"{method}/{mode}"] = row
    gains = {f: relative_gain(table["matpo/matpo"][f]["accuracy"], table["grpo/single"][f]["accuracy"])
             for f in families}
    gains["average"] = relative_gain(table["matpo/matpo"]["average"], table["grpo/single"]["average"])
    noise = {f"{m}/{mode}": {f: {f"{r:g}": pooled(m, mode, f, r) for r in config.noise_rates} for f in families}
             for m, mode in ROWS}
    pressure = {f"{m}/{mode}": {str(c): pooled(m, mode, sweep_label(config, c), 0.0) for c in config.context_sweep}
                for m, mode in ROWS}
    diagnosis = {f"{m}/{mode}": breakdown(read(m, mode, families[0], 0.0)).to_dict() for m, mode in ROWS}
    diagnosis_sampled = {f"{m}/{mode}": breakdown(read(m, mode, SAMPLED, 0.0)).to_dict() for m, mode in ROWS}
    sampled = {f"{m}/{mode}": pooled(m, mode, SAMPLED, 0.0) for m, mode in ROWS}

    def sampled_records(method: str, mode: str, seed: int) -> list[dict[str, Any]]:
        read(method, mode, SAMPLED, 0.0)  # parses each seed's file once, into sampled_files
        return sampled_files.get(cell_records_file(out, Model(method, mode, seed, out), SAMPLED, 0.0), [])

    sampled_change = {f"{m}/{mode}": paired_change((sampled_records(m, mode, s), sampled_records("sft", mode, s))
                                                   for s in seeds)
                      for m, mode in ROWS[2:]}
    sft_logs = [_records(out / stage / "metrics.jsonl") for stage in ("sft", "sft-tune")]
    logs = {algo: [_records(out / f"{algo}-seed{s}" / "metrics.jsonl") for s in seeds] for algo in METHODS}
    budgets = {algo: budget(logs[algo]) for algo in METHODS}
    return {
        "config": load_manifest(out),
        "machines": json.loads((out / "machines.json").read_text(encoding="utf-8"))
        if (out / "machines.json").is_file() else [],
        "table": table,
        "relative_gain": gains,
        "noise": noise,
        "pressure": pressure,
        "diagnosis": diagnosis,
        "diagnosis_sampled": diagnosis_sampled,
        "sampled": sampled,
        "sampled_change": sampled_change,
        "replicates": replicates(config) if config.eval_samples else [],
        "curves": {algo: {key: curves(logs[algo], key) for key in CURVES} for algo in METHODS},
        "held_out": {algo: held_out_change(logs[algo], config.rl_steps) for algo in METHODS},
        "stability": [stability(rows, algo, s, config.rl_steps)
                      for algo in METHODS for s, rows in zip(seeds, logs[algo])],
        "budget": budgets,
        "compute_seconds": compute_seconds(sft_logs[0] + sft_logs[1], budgets, run_seconds.values()),  # cells read
        "progress": progress(config, sft_logs, logs),
    }


__all__ = ["CURVES", "LABELS", "ROWS", "Cell", "collect", "paired_change"]
