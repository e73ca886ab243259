"""The ablation's plot: accuracy against the noise rate (or the switch settings) per mode, with
bootstrap interval bands, as PNG and SVG."""

from __future__ import annotations

import io
from pathlib import Path

from matpo_gym.bench.ablate import CONFIDENCE, AblationResult, Settings, settings_text
from matpo_gym.bench.results import write_bytes_atomic


def plot_accuracy(result: AblationResult, noise_kinds: str) -> dict[str, Path]:
    """``accuracy_vs_noise.png`` and ``.svg``; empty when matplotlib is missing.

    One line per mode and switch setting against the noise rate; with a single rate and a switch
    grid, the settings are the x axis instead, so a switch ablation at fixed noise reads directly.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return {}
    grid = result.grid
    by_settings = len(result.rates) == 1 and len(grid) > 1
    fig = Figure(figsize=(6.4 if len(grid) < 4 else 8.0, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
              "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
    lines: list[tuple[str, Settings | None]] = (
        [(mode, None) for mode in result.modes] if by_settings
        else [(mode, settings) for settings in grid for mode in result.modes]
    )
    positions = list(range(len(grid))) if by_settings else result.rates
    span = (max(positions) - min(positions)) or 1.0
    dodge = (0.06 if by_settings else 0.012) * span  # side by side, so equal curves stay visible
    for i, (mode, settings) in enumerate(lines):
        if settings is None:
            points = [(x, result.cell(mode, result.rates[0], s)) for x, s in zip(positions, grid)]
            label = mode
        else:
            points = [(rate, result.cell(mode, rate, settings)) for rate in result.rates]
            label = f"{mode}, {settings_text(settings)}" if settings else mode
        points = [(x, c) for x, c in points if c.n > 0]
        if not points:
            continue
        color = colors[i % len(colors)]
        x = [p + dodge * (i - (len(lines) - 1) / 2) for p, _ in points]
        y = [c.accuracy for _, c in points]
        low = [c.ci_low for _, c in points]
        high = [c.ci_high for _, c in points]
        if not by_settings:
            ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
        yerr = [[a - lo for a, lo in zip(y, low)], [hi - a for a, hi in zip(y, high)]]
        ax.errorbar(x, y, yerr=yerr, color=color, marker="o", capsize=3, label=label,
                    linestyle="none" if by_settings else "-")
        for (_, cell), xi in zip(points, x):  # lines alternate above / below their points
            ax.annotate(f"n={cell.n}", (xi, cell.accuracy), textcoords="offset points",
                        xytext=(0, 7 if i % 2 == 0 else -13), ha="center", fontsize=7, color=color)
    if by_settings:
        ax.set_xticks(positions)
        ax.set_xticklabels([settings_text(s).replace(", ", "\n") for s in grid], fontsize=8)
        rate = result.rates[0]
        ax.set_xlabel(f"switch settings (tool noise rate {rate:g}, kinds: {noise_kinds})")
    else:
        ax.set_xticks(result.rates)
        ax.set_xticklabels([f"{r:g}" for r in result.rates])
        ax.set_xlabel(f"tool noise rate (kinds: {noise_kinds})")
    ax.set_ylim(-0.1, 1.1)
    ax.set_ylabel(f"accuracy ({CONFIDENCE:.0%} bootstrap CI)")
    ax.set_title(f"{result.env} | policy {result.policy}")
    ax.grid(alpha=0.3)
    ax.legend(title="mode" if by_settings or not result.axes else "mode, settings", fontsize=8)
    files = {}
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg" else None)
        path = result.folder / f"accuracy_vs_noise.{fmt}"
        write_bytes_atomic(path, buffer.getvalue())
        files[fmt] = path
    return files


__all__ = ["plot_accuracy"]
