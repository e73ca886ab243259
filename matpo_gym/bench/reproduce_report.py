"""The report of ``matpo-bench reproduce``: ``reproduce.md``, ``index.html``, ``report.json`` and
the plots, computed only from the records its stages wrote.

Every figure carries its n and a 95% interval: accuracies are bootstrapped over the evaluated
episodes (questions x seeds), learning curves over seeds. ``report.json`` holds every number of
the Markdown and HTML pages, so a test (or a reader) can recompute them from the records.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from matpo_gym.bench.reproduce_config import ReproduceConfig, rerun_command
from matpo_gym.bench.reproduce_envs import rl_trains_on_imitated_questions, sft_demonstration_worlds
from matpo_gym.bench.reproduce_figures import ROWS, collect
from matpo_gym.bench.reproduce_plots import plots
from matpo_gym.bench.reproduce_tables import number_text, tables
from matpo_gym.bench.results import write_bytes_atomic


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def _worlds(config: ReproduceConfig) -> str:
    """Which questions each stage trained on: RL's are imitated ones when its world is one of SFT's."""
    seeds = [world.seed for world in sft_demonstration_worlds(config)]
    worlds = f"world {seeds[0]}" if len(seeds) == 1 else f"worlds {seeds[0]}-{seeds[-1]}"
    rl = (", **questions the warm start imitated**" if rl_trains_on_imitated_questions(config)
          else ", which no demonstration comes from")
    return (f"SFT imitates the `{config.train_family}` family's train split of {worlds}; RL trains on the train "
            f"split of world {config.rl_world_seed}" + rl)


def _warm_start(config: ReproduceConfig) -> str:
    def questions(difficulty: str) -> str:
        return f"{difficulty} questions" if difficulty else "questions of every difficulty"

    first = f"{config.sft_steps} steps"
    if config.sft_difficulty != config.difficulty or config.sft_tune_steps:
        first += f" on {questions(config.sft_difficulty)}"
    if not config.sft_tune_steps:
        return first
    return f"{first}, then {config.sft_tune_steps} on {questions(config.difficulty)} at lr {config.sft_tune_lr:g}"


def _context_limit(config: ReproduceConfig) -> str:
    if config.context_limit == "total":
        return f"context {config.context_tokens} tokens per role's whole conversation (over it: stopped, or summary)"
    return f"context {config.context_tokens} tokens per call (the middle of a longer conversation dropped)"


def _machine(machine: dict[str, str]) -> str:
    """A machine as the report names it, with the precision it computed in where recorded (runs
    made before it was recorded say only the device)."""
    return f"{machine['device']} in {machine['precision']}" if "precision" in machine else machine["device"]


def _header(config: ReproduceConfig, data: dict[str, Any]) -> list[str]:
    c = data["config"]
    minutes = sum(data["compute_seconds"].values()) / 60
    missing = [f"{stage} {done}/{planned}" for stage, (done, planned) in data["progress"].items() if done < planned]
    cut = (["**Incomplete run**: the run stopped before its end, so cells marked n/a have no records yet "
            f"({', '.join(missing)} done). Rerun the command above to finish it.", ""] if missing else [])
    return [
        "# MATPO vs single-agent GRPO on the offline world",
        "",
        f"Preset `{config.preset}`: one SFT warm start on scripted demonstrations from "
        f"{c.get('sft_worlds', 1)} offline world(s) ({_warm_start(config)}), then "
        f"GRPO (single agent) and MATPO (planner + worker, the same weights) for {c['rl_steps']} steps each "
        f"from it, with {c['questions_per_step']} questions x G = {c['group_size']} rollouts per step, "
        f"lr {c['rl_lr']:g}"
        + (f" and a KL penalty of {c['rl_kl_coef']:g} to the warm start, " if c.get("rl_kl_coef") else ", ")
        + f"{c['max_new_tokens']} tokens per turn, {c['turns']} turns per role, seeds {c['seeds']}. "
        + _worlds(config)
        + f"; evaluated greedily on {c['eval_questions']} held-out test questions of world "
        f"{config.rl_world_seed} per family and seed"
        + (f", and sampling (temperature 1) {c['eval_samples']} times per {config.eval_families[0]}-like question."
           if c.get("eval_samples") else "."),
        "",
        f"Pressure knobs: {c['filler_paragraphs']} filler paragraphs per page, browse window "
        f"{c['browse_max_chars']} characters, {_context_limit(config)}, worker summary "
        f"at most {c['summary_chars']} characters; "
        + ("the demonstrated planner sends one worker per hop" if config.decompose
           else "the demonstrated planner hands the whole question to one worker")
        + f". Model: tiny Llama, hidden {c['hidden_size']}, {c['num_layers']} layers, vocabulary {c['vocab_size']}.",
        "",
        f"Ran on {' and '.join(map(_machine, data['machines'])) or 'an unrecorded machine'}. "
        f"Compute time of the stages, from their logs: {number_text(minutes, 1)} minutes "
        f"({', '.join(f'{k} {v / 60:.1f}' for k, v in data['compute_seconds'].items())}). Rerun with "
        f"`{rerun_command(config)}`.",
        "",
        *cut,
    ]


HTML_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
              "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;"
              "font-size:.9em}th{background:#f3f3f3}img{max-width:100%}")


def build_report(config: ReproduceConfig) -> Path:
    """Write ``reproduce.md``, ``index.html``, ``report.json`` and the plots to ``config.report``."""
    folder = config.report
    folder.mkdir(parents=True, exist_ok=True)
    data = collect(config)
    write_bytes_atomic(folder / "report.json", (json.dumps(_json_ready(data), indent=1) + "\n").encode("utf-8"))
    rendered = tables(data, config)
    images = plots(data, config, folder)
    header = _header(config, data)
    markdown = header + [t.markdown() for t in rendered] + [f"![{p.stem}]({p.name})\n" for p in images]
    path = folder / "reproduce.md"
    write_bytes_atomic(path, "\n".join(markdown).encode("utf-8"))
    embedded = "".join(
        f'<img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for p, png in images.items()
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
    write_bytes_atomic(folder / "index.html", page.encode("utf-8"))
    return path


__all__ = ["ROWS", "build_report", "collect"]
