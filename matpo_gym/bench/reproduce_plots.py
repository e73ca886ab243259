"""The report's plots: learning curves, accuracy vs noise, accuracy vs context budget (none
without matplotlib)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from matpo_gym.bench.reproduce_config import METHODS, ReproduceConfig
from matpo_gym.bench.reproduce_figures import CURVES, ROWS
from matpo_gym.bench.results import write_bytes_atomic

COLORS = {"grpo": "tab:orange", "matpo": "tab:blue", "sft": "tab:gray"}


def plots(data: dict[str, Any], config: ReproduceConfig, folder: Path) -> dict[Path, bytes]:
    """Learning curves, accuracy vs noise and accuracy vs context budget, written to ``folder`` as
    PNG; returns each file with its bytes (for the HTML page to embed); none without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return {}
    written: dict[Path, bytes] = {}

    def save(fig: Any, name: str) -> None:
        FigureCanvasAgg(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        path = folder / name
        write_bytes_atomic(path, buffer.getvalue())
        written[path] = buffer.getvalue()

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
            for p in points:  # a point over fewer seeds (a run cut short) says so
                if p["n"] < len(config.seeds):
                    ax.annotate(f"n={p['n']}", (p["step"], p["mean"]), textcoords="offset points", xytext=(0, 6),
                                ha="center", fontsize=7, color=COLORS[algo])
        ax.set_xlabel("step")
        if key != "reward":
            ax.set_ylim(-0.02, max(0.1, ax.get_ylim()[1]))
        ax.set_title(f"{title}\n(mean, 95% CI over {len(config.seeds)} seeds)")
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


def _legend(ax: Any) -> None:
    """A legend where something was drawn (a run cut short may have nothing to plot yet)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


__all__ = ["plots"]
