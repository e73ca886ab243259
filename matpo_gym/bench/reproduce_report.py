"""The report of ``matpo-bench reproduce``, computed only from the records its stages wrote.

Every figure carries its n and a 95% interval: accuracies are bootstrapped over the evaluated
episodes (questions x seeds), learning curves over seeds. ``report.json`` holds every number of
the Markdown and HTML pages, so a test (or a reader) can recompute them from the records.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from matpo_gym.bench.diagnose import breakdown
from matpo_gym.bench.reproduce import (
    SAMPLED,
    Model,
    cell_complete,
    cell_name,
    evaluation_plan,
    model_plan,
    sweep_label,
)
from matpo_gym.bench.reproduce_config import METHODS, ReproduceConfig, load_manifest, rerun_command
from matpo_gym.bench.stats import mean_ci
from matpo_gym.bench.training_logs import COLLAPSE_DROP, budget, curves, held_out_change, stability

ROWS = (("sft", "single"), ("sft", "matpo"), ("grpo", "single"), ("matpo", "matpo"))
"""Report rows: the shared warm start in both modes, then the two trained methods."""
LABELS = {("sft", "single"): "SFT warm start, single agent", ("sft", "matpo"): "SFT warm start, planner + worker",
          ("grpo", "single"): "GRPO (single agent)", ("matpo", "matpo"): "MATPO (planner + worker)"}
COLORS = {"grpo": "tab:orange", "matpo": "tab:blue", "sft": "tab:gray"}
CURVES = {"reward": "training reward", "eval_accuracy": "held-out accuracy, greedy",
          "eval_sampled_accuracy": "held-out accuracy, sampled"}
"""Learning-curve metrics of the trainers' logs -> panel title."""


@dataclass(frozen=True)
class Cell:
    """Accuracy of one (method, mode) on one evaluation cell, pooled over seeds."""

    n: int
    accuracy: float
    low: float
    high: float
    truncations: float
    """Context truncations per episode."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def cell_records(out: Path, method: str, mode: str, seeds: Sequence[int], label: str,
                 rate: float) -> list[dict[str, Any]]:
    """The records of every seed's run of this cell."""
    records: list[dict[str, Any]] = []
    for seed in seeds:
        folder = out / "eval" / cell_name(Model(method, mode, seed, out), label, rate)
        records += _records(folder / f"{mode}.jsonl")
    return records


def cell(records: Sequence[dict[str, Any]]) -> Cell:
    """Accuracy and truncations of one cell's records, pooled over seeds."""
    scores = [float(r["score"]) for r in records]
    if not scores:
        return Cell(0, math.nan, math.nan, math.nan, math.nan)
    ci = mean_ci(scores)
    truncations = sum(r["stats"]["context_truncations"] for r in records) / len(records)
    return Cell(ci.n, ci.mean, ci.low, ci.high, truncations)


def paired_change(treated: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean per-question score of ``treated`` minus that of ``reference``, over the questions both
    played, with a 95% bootstrap interval over those questions (each question is its own control,
    so the spread between easy and hard questions drops out)."""
    def by_question(records: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
        grouped: dict[str, list[float]] = {}
        for record in records:
            grouped.setdefault(record["task_id"], []).append(float(record["score"]))
        return grouped

    treated_scores, reference_scores = by_question(treated), by_question(reference)
    common = sorted(treated_scores.keys() & reference_scores.keys())
    differences = [sum(treated_scores[q]) / len(treated_scores[q]) - sum(reference_scores[q]) / len(reference_scores[q])
                   for q in common]
    return mean_ci(differences)._asdict()


def _seeds(method: str, seeds: Sequence[int]) -> Sequence[int]:
    return (0,) if method == "sft" else seeds


def relative_gain(matpo: float, grpo: float) -> float:
    """(MATPO - GRPO) / GRPO, as the paper reports it; NaN when GRPO scored 0."""
    if math.isnan(matpo) or math.isnan(grpo) or grpo == 0:
        return math.nan
    return (matpo - grpo) / grpo


def compute_seconds(out: Path, sft_log: list[dict[str, Any]], budgets: dict[str, dict[str, float]]) -> dict[str, float]:
    """Seconds each stage computed, summed from its own logs (so a resumed run counts every part)."""
    sft = sum(float(r.get("seconds", 0)) for r in sft_log)
    times = {"sft": sft, **{algo: b["seconds"] for algo, b in budgets.items()}}
    evaluation = 0.0
    for path in (out / "eval").glob("*/*.jsonl"):
        evaluation += max((float(r.get("seconds", 0)) for r in _records(path)), default=0.0)
    times["evaluation"] = evaluation
    return times


def progress(config: ReproduceConfig, sft_log: list[dict[str, Any]],
             logs: dict[str, list[list[dict[str, Any]]]]) -> dict[str, list[int]]:
    """[done, planned] of every stage, so a report of a run cut short says what it is missing."""
    sft = len(sft_log)
    done = {"sft steps": [min(sft, config.sft_steps), config.sft_steps]}
    for algo, runs in logs.items():
        steps = sum(len([r for r in rows if "reward" in r]) for rows in runs)
        done[f"{algo} steps"] = [steps, config.rl_steps * len(config.seeds)]
    models = [Model(*key, config.out) for key in model_plan(config)]
    cells = [(m, label, rate) for m in models for tier in evaluation_plan(config, m.method) for label, rate in tier]
    done["evaluation cells"] = [sum(cell_complete(config, *c) for c in cells), len(cells)]
    return done


# -- the report ---------------------------------------------------------------------------------


def collect(config: ReproduceConfig) -> dict[str, Any]:
    """Every number of the report, from the run folder's records (each file parsed once; the
    progress count only counts an evaluation cell's lines)."""
    out, seeds = config.out, config.seeds
    families = list(config.eval_families)
    diagnosed = {(m, mode, label, 0.0) for m, mode in ROWS for label in (families[0], SAMPLED)}
    records: dict[tuple[str, str, str, float], list[dict[str, Any]]] = {}  # only the diagnosed cells'
    cells: dict[tuple[str, str, str, float], dict[str, Any]] = {}

    def read(method: str, mode: str, label: str, rate: float) -> list[dict[str, Any]]:
        key = (method, mode, label, rate)
        if key in records:
            return records[key]
        found = cell_records(out, method, mode, _seeds(method, seeds), label, rate)
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
    sampled = {f"{m}/{mode}": pooled(m, mode, SAMPLED, 0.0) for m, mode in ROWS}
    sampled_change = {f"{m}/{mode}": paired_change(read(m, mode, SAMPLED, 0.0), read("sft", mode, SAMPLED, 0.0))
                      for m, mode in ROWS[2:]}
    sft_log = _records(out / "sft" / "metrics.jsonl")
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
        "sampled": sampled,
        "sampled_change": sampled_change,
        "curves": {algo: {key: curves(logs[algo], key) for key in CURVES} for algo in METHODS},
        "held_out": {algo: held_out_change(logs[algo]) for algo in METHODS},
        "stability": [stability(rows, algo, s) for algo in METHODS for s, rows in zip(seeds, logs[algo])],
        "budget": budgets,
        "compute_seconds": compute_seconds(out, sft_log, budgets),
        "progress": progress(config, sft_log, logs),
    }


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a (GRPO scored 0)"
    return f"{value:+.1%}"


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
        main_rows.append([LABELS[(method, mode)]] + [_cell_text(row[f]) for f in families] + [_number(row["average"])])
    gains = []
    for family in families:
        text = _pct(data["relative_gain"][family])
        grpo, matpo = data["table"]["grpo/single"][family], data["table"]["matpo/matpo"][family]
        if grpo["n"] and matpo["n"] and grpo["low"] <= matpo["high"] and matpo["low"] <= grpo["high"]:
            text += ", intervals overlap"
        gains.append(text)
    main_rows.append(["MATPO vs GRPO, relative", *gains, _pct(data["relative_gain"]["average"])])
    seeds_note = (f"Greedy accuracy on held-out test questions at noise 0; trained methods pooled over seeds "
                  f"{', '.join(map(str, config.seeds))}; 95% bootstrap interval over episodes.")
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
        gap.append(_number(m["accuracy"] - g["accuracy"]) if m["n"] and g["n"] else "n/a")
    pressure_rows.append(["MATPO - GRPO"] + gap)
    trunc = []
    for c in config.context_sweep:
        values = [data["pressure"][k][str(c)]["truncations"] for k in ("grpo/single", "matpo/matpo")]
        trunc.append(" / ".join(_number(v, 2) for v in values))
    pressure_rows.append(["context truncations per episode (GRPO / MATPO)"] + trunc)
    result.append(Table(f"Pressure: accuracy vs context budget ({families[0]}-like, noise 0)",
                        ["model"] + [f"{c} tokens" for c in config.context_sweep], pressure_rows,
                        "Smaller budgets push a single agent's pages out of its context; workers read in their own."))
    result.append(diagnosis_table(data, families[0]))
    if config.eval_samples:
        result.append(sampled_table(data, config))
    result.append(held_out_table(data))
    stab_rows = [[s["algo"], str(s["seed"]), str(s["steps"]), _number(s["peak"]), _number(s["final"]),
                  {True: "yes", False: "no", None: "n/a"}[s["collapsed"]]] for s in data["stability"]]
    result.append(Table("Training stability", ["method", "seed", "steps", "peak reward", "final reward", "collapsed"],
                        stab_rows,
                        f"Reward smoothed over 3 steps; collapsed = final below {COLLAPSE_DROP:.0%} of peak."))
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
        versus = "" if change is None else (
            f"{_signed(change['mean'])} [{_signed(change['low'])}, {_signed(change['high'])}] (n={change['n']})")
        rows.append([LABELS[(method, mode)], _cell_text(data["sampled"][key]), versus])
    family = config.eval_families[0]
    return Table(
        f"Held-out accuracy under sampling ({family}-like, noise 0)",
        ["model", "accuracy", "change vs the SFT warm start in the same mode [95% CI]"], rows,
        f"The policy RL trains: temperature 1, {config.eval_samples} episodes per held-out question, "
        f"seeds pooled; accuracy intervals bootstrap over episodes. The change is per question (the trained "
        f"model's mean score on it minus the warm start's), bootstrapped over questions, so each question is "
        f"its own control.",
    )


def held_out_table(data: dict[str, Any]) -> Table:
    """What RL changed: each method's held-out accuracy at step 0 and after its last step."""
    rows = []
    for algo in METHODS:
        for decoding, figures in data["held_out"][algo].items():
            before, after, change = figures["before"], figures["after"], figures["change"]
            rows.append([algo, decoding, str(figures["runs"]), _cell_text(_as_cell(before)),
                         f"{_cell_text(_as_cell(after))} (step {figures['final_step']})",
                         f"{_signed(change['mean'])} [{_signed(change['low'])}, {_signed(change['high'])}]"])
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


def diagnosis_table(data: dict[str, Any], family: str) -> Table:
    """Why the rows differ: each stage an episode must pass, as a share of episodes."""
    rows = []
    for method, mode in ROWS:
        d = data["diagnosis"][f"{method}/{mode}"]
        rows.append([LABELS[(method, mode)], str(d["episodes"]), _number(d["accuracy"], 2), _number(d["read_gold"], 2),
                     _number(d["reported_gold"], 2), _number(d["answered"], 2), _number(d["model_calls"], 1),
                     _number(d["workers"], 2), _number(d["worker_stopped"], 2), _number(d["truncations"], 2)])
    return Table(
        f"Where episodes fail ({family}-like, noise 0)",
        ["model", "episodes", "accuracy", "gold answer read", "gold in a worker's report", "answered",
         "model calls", "workers", "workers stopped by a limit", "context truncations"],
        rows,
        "Shares of episodes, from the evaluation records' trajectories: the gold answer appeared in a search or "
        "browse result the agent or a worker read; a worker's report to the planner stated it; the episode ended "
        "with an answer rather than at a turn or context limit. Workers stopped: share of workers that hit their "
        "turn or context limit before reporting.",
    )


def plots(data: dict[str, Any], config: ReproduceConfig, folder: Path) -> list[Path]:
    """Learning curves, accuracy vs noise and accuracy vs context budget; none without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return []
    written = []

    def save(fig: Any, name: str) -> None:
        FigureCanvasAgg(fig)
        path = folder / name
        fig.savefig(path, dpi=110)
        written.append(path)

    fig = Figure(figsize=(5 * len(CURVES), 3.6), layout="constrained")
    for index, (key, title) in enumerate(CURVES.items()):
        ax = fig.add_subplot(1, len(CURVES), index + 1)
        for algo in METHODS:
            points = data["curves"][algo][key]
            if not points:
                continue
            x = [p["step"] for p in points]
            ax.plot(x, [p["mean"] for p in points], marker="o", markersize=3, color=COLORS[algo], label=algo)
            ax.fill_between(x, [p["low"] for p in points], [p["high"] for p in points], color=COLORS[algo], alpha=0.2)
        ax.set_xlabel("step")
        if key != "reward":
            ax.set_ylim(-0.02, max(0.1, ax.get_ylim()[1]))
        ax.set_title(f"{title}\n(mean, 95% CI over seeds)")
        ax.grid(alpha=0.3)
        _legend(ax)
    save(fig, "learning_curves.png")

    families = list(config.eval_families)
    fig = Figure(figsize=(4 * len(families), 3.6), layout="constrained")
    for index, family in enumerate(families):
        ax = fig.add_subplot(1, len(families), index + 1)
        for method, mode in ROWS[2:]:
            cells = [data["noise"][f"{method}/{mode}"][family][f"{r:g}"] for r in config.noise_rates]
            _errorbars(ax, list(config.noise_rates), cells, COLORS[method], method)
        ax.set_title(f"{family}-like")
        ax.set_xlabel("tool noise rate")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        _legend(ax)
    save(fig, "accuracy_vs_noise.png")

    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for method, mode in ROWS[2:]:
        cells = [data["pressure"][f"{method}/{mode}"][str(c)] for c in config.context_sweep]
        _errorbars(ax, list(config.context_sweep), cells, COLORS[method], method)
    ax.set_xlabel("context budget (tokens)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"accuracy vs context budget ({families[0]}-like)")
    ax.grid(alpha=0.3)
    _legend(ax)
    save(fig, "accuracy_vs_context.png")
    return written


def _errorbars(ax: Any, x: list[float], cells: list[dict[str, Any]], color: str, label: str) -> None:
    points = [(xi, c) for xi, c in zip(x, cells) if c["n"]]
    if not points:
        return
    xs = [p[0] for p in points]
    ys = [p[1]["accuracy"] for p in points]
    low = [y - p[1]["low"] for y, p in zip(ys, points)]
    high = [p[1]["high"] - y for y, p in zip(ys, points)]
    ax.errorbar(xs, ys, yerr=[low, high], color=color, marker="o", capsize=3, label=label)
    for xi, (yi, p) in zip(xs, zip(ys, points)):
        ax.annotate(f"n={p[1]['n']}", (xi, yi), textcoords="offset points", xytext=(0, 6), ha="center",
                    fontsize=7, color=color)


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def _header(config: ReproduceConfig, data: dict[str, Any]) -> list[str]:
    c = data["config"]
    minutes = sum(data["compute_seconds"].values()) / 60
    missing = [f"{stage} {done}/{planned}" for stage, (done, planned) in data["progress"].items() if done < planned]
    cut = (["**Incomplete run**: the run stopped before its end, so cells marked n/a have no records yet "
            f"({', '.join(missing)} done). Rerun the command above to finish it.", ""] if missing else [])
    return [
        "# MATPO vs single-agent GRPO on the offline world",
        "",
        f"Preset `{config.preset}`: one SFT warm start ({c['sft_steps']} steps on scripted demonstrations from "
        f"{c.get('sft_worlds', 1)} offline world(s)), then "
        f"GRPO (single agent) and MATPO (planner + worker, the same weights) for {c['rl_steps']} steps each "
        f"from it, with {c['questions_per_step']} questions x G = {c['group_size']} rollouts per step, "
        f"{c['max_new_tokens']} tokens per turn, {c['turns']} turns per role, seeds {c['seeds']}. "
        f"Trained on the `{c['train_family']}` family's train split; evaluated greedily on "
        f"{c['eval_questions']} held-out test questions per family and seed.",
        "",
        f"Pressure knobs: {c['filler_paragraphs']} filler paragraphs per page, browse window "
        f"{c['browse_max_chars']} characters, context {c['context_tokens']} tokens per call, worker summary "
        f"at most {c['summary_chars']} characters. Model: tiny Llama, hidden {c['hidden_size']}, "
        f"{c['num_layers']} layers, vocabulary {c['vocab_size']}.",
        "",
        f"Ran on {' and '.join(m['device'] for m in data['machines']) or 'an unrecorded machine'}. "
        f"Compute time of the stages, from their logs: {_number(minutes, 1)} minutes "
        f"({', '.join(f'{k} {v / 60:.1f}' for k, v in data['compute_seconds'].items())}). Rerun with "
        f"`{rerun_command(config)}`.",
        "",
        *cut,
    ]


HTML_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
              "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;"
              "font-size:.9em}th{background:#f3f3f3}img{max-width:100%}")


def _legend(ax: Any) -> None:
    """A legend where something was drawn (a run cut short may have nothing to plot yet)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def build_report(config: ReproduceConfig) -> Path:
    """Write ``reproduce.md``, ``index.html``, ``report.json`` and the plots to ``config.report``."""
    folder = config.report
    folder.mkdir(parents=True, exist_ok=True)
    data = collect(config)
    (folder / "report.json").write_text(json.dumps(_json_ready(data), indent=1) + "\n", encoding="utf-8")
    rendered = tables(data, config)
    images = plots(data, config, folder)
    header = _header(config, data)
    markdown = header + [t.markdown() for t in rendered] + [f"![{p.stem}]({p.name})\n" for p in images]
    path = folder / "reproduce.md"
    path.write_text("\n".join(markdown), encoding="utf-8")
    embedded = "".join(
        f'<img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        for p in images
    )
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in header[2:] if line)
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">"
        f"<title>matpo-gym reproduce</title><style>{HTML_STYLE}</style></head><body>"
        f"<h1>{html.escape(header[0].lstrip('# '))}</h1>{paragraphs}"
        + "".join(t.html() for t in rendered) + embedded + "</body></html>\n"
    )
    (folder / "index.html").write_text(page, encoding="utf-8")
    return path
