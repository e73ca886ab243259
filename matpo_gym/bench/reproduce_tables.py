"""The report's tables, as Markdown and HTML, rendered from :func:`~matpo_gym.bench.reproduce_figures.collect`'s
numbers (every cell with its n and 95% interval)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

from matpo_gym.bench.reproduce_config import METHODS, ReproduceConfig
from matpo_gym.bench.reproduce_figures import LABELS, ROWS
from matpo_gym.bench.training_logs import COLLAPSE_DROP


def number_text(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _gain_text(gain: float, grpo_accuracy: float) -> str:
    """The relative gain, or why there is none: GRPO scored 0, or a method has no records yet."""
    if not math.isnan(gain):
        return f"{gain:+.1%}"
    return "n/a (GRPO scored 0)" if grpo_accuracy == 0 else "n/a"


def _cell_text(data: dict[str, Any]) -> str:
    if not data["n"]:
        return "n/a"
    return f"{data['accuracy']:.3f} [{data['low']:.3f}, {data['high']:.3f}] (n={data['n']})"


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "---|" * len(self.headers))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        note = f"<p>{html.escape(self.note)}</p>" if self.note else ""
        return f"<h3>{html.escape(self.title)}</h3>{note}<table><tr>{head}</tr>{body}</table>"


def tables(data: dict[str, Any], config: ReproduceConfig) -> list[Table]:
    families = list(config.eval_families)
    main_rows = []
    for method, mode in ROWS:
        row = data["table"][f"{method}/{mode}"]
        cells = [_cell_text(row[f]) for f in families]
        main_rows.append([LABELS[(method, mode)], *cells, number_text(row["average"])])
    gains = []
    for family in families:
        grpo, matpo = data["table"]["grpo/single"][family], data["table"]["matpo/matpo"][family]
        text = _gain_text(data["relative_gain"][family], grpo["accuracy"] if grpo["n"] else math.nan)
        if grpo["n"] and matpo["n"] and grpo["low"] <= matpo["high"] and matpo["low"] <= grpo["high"]:
            text += ", intervals overlap"
        gains.append(text)
    average = _gain_text(data["relative_gain"]["average"], data["table"]["grpo/single"]["average"])
    main_rows.append(["MATPO vs GRPO, relative", *gains, average])
    seeds_note = (f"Greedy accuracy on held-out test questions at noise 0; trained methods pooled over seeds "
                  f"{', '.join(map(str, config.seeds))}; 95% bootstrap interval over episodes. The average "
                  "column's gain compares the average accuracies; the paper's \"on average\" is the mean of "
                  "the per-benchmark gains, which a family near 0 (a gain of -100% or more than +100%) "
                  "would dominate here.")
    result = [Table("Accuracy per family (the paper's table, in miniature)",
                    ["model"] + [f"{f}-like" for f in families] + ["average"], main_rows, seeds_note)]
    noise_rows = []
    for method, mode in ROWS:
        for family in families:
            cells = data["noise"][f"{method}/{mode}"][family]
            texts = [_cell_text(cells[f"{r:g}"]) for r in config.noise_rates]
            noise_rows.append([LABELS[(method, mode)], family, *texts])
    result.append(Table("Accuracy vs tool noise", ["model", "family"] + [f"noise {r:g}" for r in config.noise_rates],
                        noise_rows, "Every tool call is hit by injected noise (all kinds) with this probability."))
    pressure_rows = []
    for method, mode in ROWS:
        cells = data["pressure"][f"{method}/{mode}"]
        pressure_rows.append([LABELS[(method, mode)]] + [_cell_text(cells[str(c)]) for c in config.context_sweep])
    gap = []
    for c in config.context_sweep:
        m, g = data["pressure"]["matpo/matpo"][str(c)], data["pressure"]["grpo/single"][str(c)]
        gap.append(number_text(m["accuracy"] - g["accuracy"]) if m["n"] and g["n"] else "n/a")
    pressure_rows.append(["MATPO - GRPO"] + gap)
    trunc = []
    for c in config.context_sweep:
        values = [data["pressure"][k][str(c)]["truncations"] for k in ("grpo/single", "matpo/matpo")]
        trunc.append(" / ".join(number_text(v, 2) for v in values))
    pressure_rows.append(["context truncations per episode (GRPO / MATPO)"] + trunc)
    stops = []
    for c in config.context_sweep:
        values = [data["pressure"][k][str(c)].get("limit_stops", math.nan) for k in ("grpo/single", "matpo/matpo")]
        stops.append(" / ".join(number_text(v, 2) for v in values))
    pressure_rows.append(["context limit stops per episode (GRPO / MATPO)"] + stops)
    how = ("each role's whole conversation is capped at the budget: a single agent whose pages overflow it is "
           "stopped, a worker asked for its summary" if config.context_limit == "total"
           else "each call's prompt is fitted to the budget by dropping the middle of the conversation; a worker "
                "over it is asked for its summary")
    result.append(Table(f"Pressure: accuracy vs context budget ({families[0]}-like, noise 0)",
                        ["model"] + [f"{c} tokens" for c in config.context_sweep], pressure_rows,
                        f"Smaller budgets push a single agent's pages out of its context; workers read in their own. "
                        f"Here {how}."))
    result.append(diagnosis_table(data, families[0]))
    if config.eval_samples:
        result.append(sampled_table(data, config))
        result.append(replicates_table(data))
        result.append(diagnosis_table(data, families[0], sampled=True))
    result.append(held_out_table(data))
    stab_rows = [[s["algo"], str(s["seed"]), str(s["steps"]), number_text(s["peak"]), number_text(s["final"]),
                  {True: "yes", False: "no", None: "n/a"}[s["collapsed"]], number_text(s.get("accuracy")),
                  number_text(s.get("signal"))] for s in data["stability"]]
    result.append(Table("Training stability",
                        ["method", "seed", "steps", "peak reward", "final reward", "collapsed", "correct episodes",
                         "trajectories with a nonzero advantage"], stab_rows,
                        f"Reward smoothed over 3 steps; collapsed = final below {COLLAPSE_DROP:.0%} of peak. "
                        "Correct episodes and trajectories (MATPO's: planner and worker) with a nonzero advantage: "
                        "mean shares over the run's training steps; a group whose episodes all score alike "
                        "gives no gradient."))
    budget_rows = [[algo, str(b["steps"]), str(b["generated_tokens"]), str(b["trained_tokens"]),
                    str(b["context_truncations"]), f"{b['seconds']:.0f}"] for algo, b in data["budget"].items()]
    result.append(Table("Training budget actually used (all seeds)",
                        ["method", "steps", "generated tokens", "trained tokens", "context truncations", "seconds"],
                        budget_rows))
    return result


def sampled_table(data: dict[str, Any], config: ReproduceConfig) -> Table:
    """The held-out reward RL maximises: every model sampling, each trained one against its warm start."""
    rows = []
    for method, mode in ROWS:
        key = f"{method}/{mode}"
        change = data["sampled_change"].get(key)
        versus = "" if change is None else _paired_text(change, len(config.seeds))
        rows.append([LABELS[(method, mode)], _cell_text(data["sampled"][key]), versus])
    family = config.eval_families[0]
    return Table(
        f"Held-out accuracy under sampling ({family}-like, noise 0)",
        ["model", "accuracy", "change vs the SFT warm start in the same mode [95% CI]"], rows,
        f"The policy RL trains: temperature 1, {config.eval_samples} episodes per held-out question, "
        f"seeds pooled; accuracy intervals bootstrap over episodes. Each seed plays its own questions, and "
        f"the warm start plays each seed's: the change is per question (the trained model's mean score on "
        f"it minus the warm start's on the same question), bootstrapped over the (seed, question) pairs, so "
        f"each question is its own control.",
    )


def replicates_table(data: dict[str, Any]) -> Table:
    """RL's sampled change per run and, with ``--replicates``, pooled over runs: whether the
    difference between the methods is more than one run's draw."""
    rows = [[row["run"], row["precision"]] + [f"{_change_text(row[key])} (n={row[key]['n']})"
                                               for key in ("grpo", "matpo", "matpo - grpo")]
            for row in data["replicates"]]
    return Table(
        "Replicates: RL's change of the sampled held-out reward, per run",
        ["run", "precision", "GRPO vs its warm start", "MATPO vs its warm start", "MATPO - GRPO"], rows,
        "Each change is per (seed, question), as above; MATPO - GRPO is MATPO's change minus GRPO's on the "
        "same question. Three seeds of a small preset can favour either method by chance: pool replicate runs "
        "(the same settings, another --out each) with --replicates to see which differences survive. Runs "
        "play each seed's same questions, so pooled intervals are, if anything, narrow.",
    )


def _paired_text(change: dict[str, Any], seeds: int) -> str:
    """A paired change with its n, and the seeds it pairs where the warm start lacks some seed's
    questions (a run made before the warm start played every seed's)."""
    text = f"{_change_text(change)} (n={change['n']})"
    paired = change["paired_seeds"]
    return text if paired >= seeds else f"{text}, {paired} of {seeds} seeds paired"


def held_out_table(data: dict[str, Any]) -> Table:
    """What RL changed: each method's held-out accuracy at step 0 and after its last step."""
    rows = []
    for algo in METHODS:
        for decoding, figures in data["held_out"][algo].items():
            before, after, change = figures["before"], figures["after"], figures["change"]
            rows.append([algo, decoding, str(figures["runs"]), _cell_text(_as_cell(before)),
                         f"{_cell_text(_as_cell(after))} (step {figures['final_step']})",
                         _change_text(change)])
    return Table(
        "What RL changed on held-out questions",
        ["method", "decoding", "runs", "before RL", "after RL", "change [95% CI]"], rows,
        "The learning-curve questions (test split), evaluated in each run before its first update and after "
        "its last. Greedy: one answer per question. Sampled: the policy RL trains (temperature 1), each "
        "question's score averaged over its samples; this is the reward RL maximises and it moves before the "
        "greedy answers flip. The change pairs each question with itself; intervals bootstrap over questions "
        "pooled over seeds.",
    )


def _as_cell(ci: dict[str, Any]) -> dict[str, Any]:
    return {"n": ci["n"], "accuracy": ci["mean"], "low": ci["low"], "high": ci["high"]}


def _signed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.3f}"


def _change_text(change: dict[str, Any]) -> str:
    """A paired change as ``+mean [+low, +high]``."""
    return f"{_signed(change['mean'])} [{_signed(change['low'])}, {_signed(change['high'])}]"


def diagnosis_table(data: dict[str, Any], family: str, *, sampled: bool = False) -> Table:
    """Why the rows differ: each stage an episode must pass, as a share of episodes, for the greedy
    evaluation or (``sampled``) the policy RL trains, where failures RL reinforces show first."""
    rows = []
    for method, mode in ROWS:
        d = data["diagnosis_sampled" if sampled else "diagnosis"][f"{method}/{mode}"]
        shares = [number_text(d.get(key), 2) for key in ("accuracy", "read_gold", "reported_gold", "relayed",
                                                          "answered")]
        rest = [number_text(d["workers"], 2), number_text(d["worker_stopped"], 2), number_text(d["truncations"], 2)]
        rows.append([LABELS[(method, mode)], str(d["episodes"]), *shares, number_text(d["model_calls"], 1), *rest])
    title = (f"Where sampled episodes fail ({family}-like, noise 0, temperature 1)" if sampled
             else f"Where episodes fail ({family}-like, noise 0)")
    return Table(
        title,
        ["model", "episodes", "accuracy", "gold answer read", "gold in a worker's report",
         "reported gold relayed by the planner", "answered",
         "model calls", "workers", "workers stopped by a limit", "context truncations"],
        rows,
        "Shares of episodes, from the evaluation records' trajectories: the gold answer appeared in a search or "
        "browse result the agent or a worker read; a worker's report to the planner stated it; the episode ended "
        "with an answer rather than at a turn or context limit. Relayed: of the episodes whose reports stated "
        "the gold answer, the share the planner answered correctly. Workers stopped: share of workers that hit their "
        "turn or context limit and gave no report.",
    )


__all__ = ["Table", "number_text", "tables"]
